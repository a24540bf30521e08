"""The render-to-photo identity map: the fit, its resumable pairs, the gallery that
carries it and the real-texture pick that uses it (train/render_map.py)."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest
from gallery_fixtures import assert_refused, tiny_gallery

from facesketch.engine import gallery as gal_mod
from facesketch.engine import real_pixels as rp
from facesketch.engine.gallery import Gallery, write_gallery
from train import render_map as rm


def _shifted_renders(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Photo descriptors of a dozen kinds of face, and 'renders' of them: shrunk,
    turned a little and moved, as a render's descriptor sits apart from photos' (which
    is what makes a few photos the nearest to most renders)."""
    rng = np.random.default_rng(seed)
    centres = np.random.default_rng(7).normal(0, 0.08, (12, 128))
    photos = centres[rng.integers(0, 12, n)] + rng.normal(0, 0.03, (n, 128))
    mix = np.eye(128) + 0.6 * np.random.default_rng(99).normal(size=(128, 128)) / np.sqrt(128)
    turn = np.linalg.qr(mix)[0]
    turn *= np.sign(np.diag(turn))[None]
    offset = np.random.default_rng(5).normal(0, 0.08, 128)
    renders = 0.3 * photos @ turn.T + offset + rng.normal(0, 0.004, (n, 128))
    return renders.astype(np.float32), photos.astype(np.float32)


def test_the_fitted_map_picks_photos_near_the_true_one_where_the_raw_pick_hits_hubs():
    r, g = _shifted_renders(1200, 0)
    vr, vg = _shifted_renders(300, 1)
    weight, bias = rm.fit_map(r, g, steps=300, tau=0.1)
    raw = rm.pick_quality(vr, vg, vg, self_out=True)
    mapped = rm.pick_quality(rm.apply_map(weight, bias, vr), vg, vg, self_out=True)
    # raw, a few photos are the nearest to many renders, and rarely of the right kind
    assert raw["most_picked_serves"] > 45
    assert mapped["distance_to_true_photo"] < 0.85 * raw["distance_to_true_photo"]
    assert mapped["most_picked_serves"] < raw["most_picked_serves"] / 2
    # the same seed gives the same map (the card's numbers can be reproduced)
    again = rm.fit_map(r, g, steps=300, tau=0.1)
    assert np.array_equal(again[0], weight) and np.array_equal(again[1], bias)


def test_the_pairs_resume_and_start_again_when_the_networks_change(tmp_path):
    calls = []

    def describe(x):
        calls.append(float(x.mean()))
        return None if x.mean() == 3 else np.full(128, x.mean(), np.float32)

    def items(n):
        for i in range(n):
            img = np.full((4, 4), i, np.float32)
            yield f"f{i}", "val" if i == 0 else "train", lambda img=img: (img, img)

    nets = {"fusion": "a"}
    first = rm.collect_pairs(items(4), describe, describe, tmp_path, nets, every=2)
    assert len(first["ids"]) == 3 and 3.0 not in first["R"][:, 0]  # no face in f3: left out
    assert list(first["split"]) == ["val", "train", "train"]
    n = len(calls)
    again = rm.collect_pairs(items(5), describe, describe, tmp_path, nets)
    assert len(calls) == n + 2  # only f4 was described; f3 (no face) not tried again
    assert list(again["ids"]) == ["f0", "f1", "f2", "f4"]
    assert np.array_equal(again["G"][:3], first["G"])
    rm.collect_pairs(items(5), describe, describe, tmp_path, {"fusion": "b"})
    assert len(calls) == n + 2 + 10  # other networks render other faces: all again


def test_a_gallery_carries_the_map_keeps_it_on_a_rebuild_and_refuses_a_broken_one(tmp_path):
    tiny_gallery(tmp_path)
    assert Gallery.load(tmp_path).render_map is None
    d = np.linspace(-0.1, 0.1, 128).astype(np.float32)
    assert np.array_equal(Gallery.load(tmp_path).as_photo_descriptor(d), d)  # no map: as is
    weight = np.roll(np.eye(128, dtype=np.float32), 1, axis=0) * 2
    bias = np.full(128, 0.5, np.float32)
    rm.install(tmp_path, weight, bias, {"networks": {"fusion": "x"}})
    gal = Gallery.load(tmp_path)
    assert gal.manifest["render_map"] == {"networks": {"fusion": "x"}}
    np.testing.assert_allclose(gal.as_photo_descriptor(d), weight @ d + bias, rtol=1e-6)
    # a rebuild (train.gallery) writes new arrays: the map comes along
    from train.gallery import carry_fitted

    arrays = tiny_gallery(tmp_path / "new")
    manifest = {"faces": [{"source": "y"}] * 6, "networks": {}}
    carry_fitted(tmp_path, arrays, manifest)
    write_gallery(tmp_path / "new", arrays, manifest)
    gal_mod.clear_cache()
    assert np.array_equal(Gallery.load(tmp_path / "new").render_map[0], weight)
    # a map of the wrong shape is a corrupt gallery, named as such
    arrays["render_map_bias"] = np.zeros(64, np.float32)
    assert_refused(tmp_path / "bad", arrays, manifest)


def test_the_texture_pick_looks_up_the_mapped_descriptor(monkeypatch):
    seen = []
    gallery = SimpleNamespace(
        descriptors=np.zeros((3, 128), np.float32),
        as_photo_descriptor=lambda d: d + 1,
        nearest_identity=lambda d, lm, k, allowed: seen.append(d) or 2,
    )
    stage = rp.RealPixels(gallery)
    monkeypatch.setattr(rp, "render_descriptor", lambda render: np.zeros(128, np.float32))
    assert stage.identify(np.zeros((64, 64, 3), np.uint8)) == 2
    assert np.array_equal(seen[0], np.ones(128, np.float32))


def test_the_shipped_gallery_map_was_fitted_on_the_shipped_networks():
    gal = Gallery.load()
    assert gal.render_map is not None, "no render map: run `python -m train.render_map`"
    record = gal.manifest["render_map"]
    assert record["networks"] == rm.network_shas(), (
        "the fusion or a local network changed since the gallery's render map was fitted: "
        "refit it with `python -m train.render_map --data <prepared>` (about 12 min)"
    )
    checks = record["checks"]["validation"]
    assert checks["map"]["distance_to_true_photo"] < checks["raw"]["distance_to_true_photo"]
    json.dumps(record)


def test_a_face_of_average_shape_does_not_win_every_shape_tie_break(tmp_path):
    """Of the descriptor's candidates the pick takes the one shaped most like the drawing,
    relative to how near that face's shape is to any face's: an average shape is near
    every drawing (one such face took 27 of the 88 CUHK renders)."""
    rng = np.random.default_rng(3)
    base = rng.uniform(60, 200, (68, 2))
    moves = rng.normal(0, 1, (8, 68, 2))
    moves *= 6.0 / np.sqrt((moves**2).sum((1, 2), keepdims=True) / 68)
    moves[0] = 0  # face 0: the average shape
    desc = np.zeros((8, 128))
    desc[:, 0] = np.arange(8) * 0.01  # faces 0-4 are the 5 nearest to a zero query
    tiny_gallery(tmp_path, 8, landmarks=base + moves, descriptors=desc)
    gal = Gallery.load(tmp_path)
    drawn = base + 0.45 * moves[1]  # a drawing a little like face 1
    raw = [
        ((gal_mod.landmark_shape(gal.landmarks(i)) - gal_mod.landmark_shape(drawn)) ** 2).sum()
        for i in range(5)
    ]
    assert int(np.argmin(raw)) == 0  # nearer the average face as such
    assert gal.shape_spread[0] < 0.7 * gal.shape_spread[1]
    assert gal.nearest_identity(np.zeros(128), drawn, k=5) == 1
    assert gal.nearest_identity(np.zeros(128), base + 0.9 * moves[2], k=5) == 2


def test_the_command_renders_fits_and_installs_on_a_tiny_prepared_set(tmp_path, monkeypatch):
    """The real path: the shipped networks render gallery faces' sketches, dlib reads
    render and photo, the map is fitted and installed into a copy of a gallery."""
    pytest.importorskip("dlib")
    import shutil

    import cv2

    from facesketch.engine.sketchify import SketchExtractor

    monkeypatch.delenv("FACESKETCH_TEXTURE", raising=False)
    shipped = Gallery.load()
    faces = [shipped.image(i) for i in range(6)]
    sketches = SketchExtractor(batch_size=6)(faces, [shipped.mask(i) for i in range(6)])
    data = tmp_path / "prepared"
    for sub in ("sketch", "img"):
        (data / "256" / sub).mkdir(parents=True)
    items = []
    for i, (face, sketch) in enumerate(zip(faces, sketches, strict=True)):
        cv2.imwrite(str(data / "256" / "sketch" / f"f{i}.png"), sketch)
        cv2.imwrite(str(data / "256" / "img" / f"f{i}.png"), cv2.cvtColor(face, cv2.COLOR_RGB2BGR))
        items.append({"id": f"f{i}", "split": "val" if i < 2 else "train"})
    (data / "index.json").write_text(json.dumps({"items": items}))
    gallery = tmp_path / "gallery"
    shutil.copytree(shipped.folder, gallery)
    args = ["--data", str(data), "--gallery", str(gallery), "--cache", str(tmp_path / "c")]
    import torch

    threads = torch.get_num_threads()
    try:
        assert rm.main([*args, "--steps", "5", "--threads", "1"]) == 0
    finally:
        torch.set_num_threads(threads)
    gal_mod.clear_cache()
    record = Gallery.load(gallery).manifest["render_map"]
    assert record["faces"] == {"train": 4, "val": 2} and record["fit"]["steps"] == 5
    assert record["networks"] == rm.network_shas()
    assert (tmp_path / "c" / rm.PAIRS_FILE).is_file()
    gal_mod.clear_cache()
