"""The drawn-gender reader: its fit, the gallery that carries it, the texture pick that
heeds it and the pipeline that feeds it the drawing's latents (train/drawn_gender.py)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from gallery_fixtures import assert_refused, tiny_gallery

from facesketch.engine import gallery as gal_mod
from facesketch.engine import real_pixels as rp
from facesketch.engine.gallery import Gallery, drawn_features, write_gallery
from facesketch.layout import COMPONENTS
from train import drawn_gender as dg

D = 8  # pooled latent size per component in the tiny galleries


def _labelled(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Features where gender shows in a few directions among many noisy ones, on a
    scale and offset of their own per feature (as pooled latents are)."""
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.5).astype(float)
    x = rng.normal(size=(n, 5 * D))
    x[:, :3] += (2 * y[:, None] - 1) * 1.2
    scale = np.random.default_rng(3).uniform(0.1, 10, 5 * D)
    return (x * scale + 4).astype(np.float32), y


def test_the_reader_learns_the_gender_directions_and_a_refit_gives_the_same_weights():
    x, y = _labelled(600, 0)
    vx, vy = _labelled(300, 1)
    weight, bias = dg.fit_reader(x, y)
    p = dg.p_female(weight, bias, vx)
    assert ((p > 0.5) == (vy > 0.5)).mean() > 0.9
    again = dg.fit_reader(x, y)
    assert np.array_equal(weight, again[0]) and bias == again[1]
    # more penalty, less sure: fewer drawings past the margin
    sure = np.abs(p - 0.5) >= 0.3
    timid = np.abs(dg.p_female(*dg.fit_reader(x, y, l2=10.0), vx) - 0.5) >= 0.3
    assert timid.sum() < sure.sum()
    s = dg.summary(p, vy, 0.3)
    assert s["faces"] == 300 and s["accuracy"] > 0.9 and 0 < s["confident"] <= 1


def test_rough_copies_redraw_every_sketch_the_same_way_for_the_same_seed():
    from facesketch.engine.gallery import Gallery as G
    from facesketch.engine.sketchify import SketchExtractor

    shipped = G.load()
    sketches = SketchExtractor(batch_size=2)(
        [shipped.image(i) for i in range(2)], [shipped.mask(i) for i in range(2)]
    )
    a = dg.rough_copies(sketches, 0.5, 1.0, np.random.default_rng(3))
    b = dg.rough_copies(sketches, 0.5, 1.0, np.random.default_rng(3))
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    assert all(
        x.shape == s.shape and not np.array_equal(x, s) for x, s in zip(a, sketches, strict=True)
    )


def _tiny_gallery(folder, m=8):
    return tiny_gallery(folder, m, latent=D, genders=True)


def test_a_gallery_carries_the_reader_keeps_it_on_a_rebuild_and_refuses_a_broken_one(tmp_path):
    _tiny_gallery(tmp_path)
    gal = Gallery.load(tmp_path)
    pooled = {c: np.full(D, 0.5, np.float32) for c in COMPONENTS}
    assert gal.drawn_gender(pooled) is None  # no reader: no opinion
    assert gal.female.tolist() == [False, True] * 4
    weight = np.zeros(5 * D, np.float32)
    weight[D * COMPONENTS.index("background")] = 4.0  # reads the outline's first channel
    dg.install(tmp_path, weight, -1.0, {"networks": {"local_nose": "x"}})
    gal = Gallery.load(tmp_path)
    assert gal.manifest["drawn_gender"] == {"networks": {"local_nose": "x"}}
    assert gal.drawn_gender(pooled) == pytest.approx(1 / (1 + np.exp(-1.0)))
    assert drawn_features(pooled).shape == (5 * D,)
    assert gal.drawn_gender({**pooled, "nose": np.zeros(3, np.float32)}) is None
    assert gal.drawn_gender({c: pooled[c] for c in COMPONENTS[:-1]}) is None
    # a rebuild (train.gallery) writes new arrays: the reader comes along
    from train.gallery import carry_fitted

    arrays = _tiny_gallery(tmp_path / "new")
    manifest = {"faces": [{"source": "y", "gender": "male"}] * 8, "networks": {}}
    carry_fitted(tmp_path, arrays, manifest)
    write_gallery(tmp_path / "new", arrays, manifest)
    gal_mod.clear_cache()
    assert np.array_equal(Gallery.load(tmp_path / "new").gender_reader[0], weight)
    assert Gallery.load(tmp_path / "new").female.tolist() == [False] * 8
    # a reader of the wrong size is a corrupt gallery, named as such
    arrays["gender_weight"] = np.zeros(7, np.float32)
    assert_refused(tmp_path / "bad", arrays, manifest)


def test_the_pick_lends_texture_only_from_the_drawn_gender_when_the_reader_is_sure(tmp_path):
    _tiny_gallery(tmp_path, m=12)
    gal = Gallery.load(tmp_path)
    stage = rp.RealPixels(gal)
    stage.sharp = np.ones(12, bool)
    stage.mouths = None  # the mouth rule is tested in test_real_pixels
    women = gal.female
    assert stage.allowed(None, None).all()
    assert stage.allowed(None, 0.55).all()  # unsure: every face
    assert stage.allowed(None, 0.95).tolist() == women.tolist()
    assert stage.allowed(None, 0.05).tolist() == (~women).tolist()
    # a rule that would leave fewer than PICK_K faces is dropped, not obeyed
    stage.sharp = np.array([True] * 4 + [False] * 8)
    assert stage.allowed(None, 0.95).tolist() == stage.sharp.tolist()
    # the whole pick: the nearest face by descriptor is a man's; a sure "woman" skips him
    desc = gal.descriptors[0]
    stage.sharp = np.ones(12, bool)
    assert gal.nearest_identity(desc, None, 1, stage.allowed(None, None)) == 0
    assert women[gal.nearest_identity(desc, None, 1, stage.allowed(None, 0.9))]


def test_a_gallery_without_gender_labels_ignores_the_reader(tmp_path):
    _tiny_gallery(tmp_path)
    manifest = json.loads((tmp_path / "gallery.json").read_text())
    manifest["faces"][3].pop("gender")
    (tmp_path / "gallery.json").write_text(json.dumps(manifest))
    gal_mod.clear_cache()
    gal = Gallery.load(tmp_path)
    assert gal.female is None
    stage = rp.RealPixels(gal)
    stage.sharp, stage.mouths = None, None
    assert stage.allowed(None, 0.99) is None


def test_black_and_white_photos_never_lend_their_colour(tmp_path):
    import cv2

    from facesketch.engine.gallery import Gallery as G

    shipped = G.load()
    faces = [shipped.image(i) for i in range(3)]
    grey = cv2.cvtColor(cv2.cvtColor(faces[1], cv2.COLOR_RGB2GRAY), cv2.COLOR_GRAY2RGB)

    class Three:
        descriptors = np.zeros((3, 128), np.float32)

        def image(self, i):
            return [faces[0], grey, faces[2]][i]

        def landmarks(self, i):
            return shipped.landmarks(i)

    ok = rp.colour_faces(Three())
    assert ok.tolist() == [True, False, True]


def test_the_pipeline_hands_the_stage_what_the_reader_reads_of_the_drawing(monkeypatch):
    from facesketch.engine.bundle import load_bundle
    from facesketch.engine.pipeline import FacePipeline
    from facesketch.resources import samples_dir
    from facesketch.sketch.project import load_project

    monkeypatch.delenv("FACESKETCH_TEXTURE", raising=False)
    pipe = FacePipeline(load_bundle(), "cpu", real_pixels=True)
    if pipe.real_pixels is None:
        pytest.skip(f"no real-texture stage here: {pipe.real_pixels_problem}")
    seen = []
    real_apply = pipe.real_pixels.apply

    def spy(render, landmarks, layout, sources, recomputed, female=None):
        seen.append(female)
        return real_apply(render, landmarks, layout, sources, recomputed, female)

    monkeypatch.setattr(pipe.real_pixels, "apply", spy)
    pipe.render_sketch(load_project(samples_dir() / "demo.json").rasterize(256))
    pooled = {n: pipe._branches[n].pooled for n in COMPONENTS}
    assert seen and seen[0] == pytest.approx(pipe.real_pixels.gallery.drawn_gender(pooled))
    assert 0.0 <= seen[0] <= 1.0


def test_the_shipped_reader_was_fitted_on_the_shipped_networks():
    gal = Gallery.load()
    assert gal.gender_reader is not None, (
        "no drawn-gender reader: run `python -m train.drawn_gender`"
    )
    record = gal.manifest["drawn_gender"]
    assert record["networks"] == dg.network_shas(), (
        "a local network changed since the gallery's drawn-gender reader was fitted: refit "
        "it with `python -m train.drawn_gender --data <prepared>` (about 2 min)"
    )
    assert record["checks"]["validation"]["accuracy"] > 0.8
    assert record["checks"]["validation_rough_1.0"]["accuracy"] > 0.7  # holds on rough strokes
    assert gal.female is not None and 0.4 < gal.female.mean() < 0.6


def test_the_command_fits_and_installs_on_a_tiny_prepared_set(tmp_path):
    """The real path: the shipped E_sketch reads prepared sketches, the reader is
    fitted on their UTKFace labels and installed into a copy of a gallery."""
    import shutil

    import cv2

    from facesketch.engine.sketchify import SketchExtractor

    shipped = Gallery.load()
    women = [i for i in range(shipped.size) if shipped.female[i]][:6]
    men = [i for i in range(shipped.size) if not shipped.female[i]][:6]
    chosen = [j for pair in zip(women, men, strict=True) for j in pair]
    faces = [shipped.image(i) for i in chosen]
    sketches = SketchExtractor(batch_size=6)(faces, [shipped.mask(i) for i in chosen])
    data = tmp_path / "prepared"
    (data / "256" / "sketch").mkdir(parents=True)
    items = []
    for i, sketch in enumerate(sketches):
        cv2.imwrite(str(data / "256" / "sketch" / f"f{i}.png"), sketch)
        name = shipped.labels(chosen[i])["source"].split("/")[-1]
        items.append(
            {
                "id": f"f{i}",
                "source": "utkface",
                "split": "val" if i < 3 else "train",
                "file": f"faces/utkface/{name}",
            }
        )
    items.append({"id": "h0", "source": "hq", "split": "train", "file": "faces/hq/a.jpg"})
    (data / "index.json").write_text(json.dumps({"items": items}))
    gallery = tmp_path / "gallery"
    shutil.copytree(shipped.folder, gallery)
    import torch

    threads = torch.get_num_threads()
    try:
        rc = dg.main(["--data", str(data), "--gallery", str(gallery), "--threads", "1"])
    finally:
        torch.set_num_threads(threads)
    assert rc == 0
    gal_mod.clear_cache()
    gal = Gallery.load(gallery)
    record = gal.manifest["drawn_gender"]
    assert record["faces"] == {"train": 9, "val": 3}  # the HQ face has no label
    assert record["fit"]["rough"] == [0.25, 1.0] and "validation_rough_1.0" in record["checks"]
    assert record["networks"] == dg.network_shas()
    assert not np.array_equal(gal.gender_reader[0], shipped.gender_reader[0])
    gal_mod.clear_cache()
