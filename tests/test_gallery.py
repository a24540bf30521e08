"""The face gallery: nearest faces + LLE weights, validation, the gallery default look.

Small synthetic galleries (written with the real writer) test the maths and the
engine plumbing; the shipped gallery is checked for what its card promises.
"""

from __future__ import annotations

import dataclasses
import json

import cv2
import numpy as np
import pytest
import torch

from facesketch.engine import appearance as app_mod
from facesketch.engine import gallery as gal_mod
from facesketch.engine.appearance import AppearanceBank, AppearanceError, align_reference
from facesketch.engine.bundle import random_bundle
from facesketch.engine.gallery import (
    Gallery,
    GalleryError,
    lle_weights,
    parse_reference,
    pool_latent,
    reference_id,
    write_gallery,
)
from facesketch.engine.pipeline import FacePipeline
from facesketch.layout import COMPONENTS, LOCAL_COMPONENTS, FaceLayout
from facesketch.models import preset
from facesketch.models.face_model import FaceModel

TINY = dataclasses.replace(preset("tiny"), canvas=128)


def make_gallery(folder, m=8, geo_dim=None, app_dim=None, seed=0, side=256):
    """A synthetic gallery of ``m`` faces (random latents; face i is a flat colour)."""
    rng = np.random.default_rng(seed)
    geo_dim = geo_dim or {c: 16 for c in COMPONENTS}
    app_dim = app_dim or {c: 4 for c in COMPONENTS}
    blobs = []
    for i in range(m):
        img = np.full((side, side, 3), (20 * i % 256, 100, 200), np.uint8)
        blobs.append(cv2.imencode(".jpg", img[..., ::-1].copy())[1].ravel())  # RGB -> BGR
    mask = np.zeros((side, side), bool)
    mask[:, side // 5 : -side // 5] = True
    arrays = {
        "jpeg": np.concatenate(blobs).astype(np.uint8),
        "offsets": np.concatenate([[0], np.cumsum([len(b) for b in blobs])]).astype(np.int64),
        "masks": np.stack([np.packbits(mask, axis=1)] * m),
        "landmarks": rng.uniform(0, side, (m, 68, 2)).astype(np.float32),
    }
    for c in COMPONENTS:
        arrays[f"geometry_{c}"] = rng.normal(size=(m, geo_dim[c])).astype(np.float16)
        arrays[f"appearance_{c}"] = rng.normal(size=(m, app_dim[c])).astype(np.float32)
    faces = [
        {"source": f"x/{i}.jpg", "gender": "female", "age": 30, "ethnicity": "Asian"}
        for i in range(m)
    ]
    write_gallery(folder, arrays, {"faces": faces, "networks": {}})
    gal_mod.clear_cache()
    return Gallery.load(folder)


def test_suggest_returns_the_face_itself_for_its_own_latent(tmp_path):
    gal = make_gallery(tmp_path)
    for i in range(gal.size):
        picks = gal.suggest("nose", gal.geometry["nose"][i], k=5)
        assert picks[0][0] == i
        assert picks[0][1] == pytest.approx(1.0, abs=1e-6)


def test_lle_weights_are_a_convex_reconstruction(tmp_path):
    gal = make_gallery(tmp_path, m=20)
    bank = gal.geometry["mouth"]
    x = 0.3 * bank[2] + 0.7 * bank[5]
    picks = dict(gal.suggest("mouth", x, k=6))
    assert sum(picks.values()) == pytest.approx(1.0, abs=1e-9)
    assert all(w >= 0 for w in picks.values())
    # the two faces it was made of carry (nearly) all the weight, in that ratio
    assert picks.get(2, 0) == pytest.approx(0.3, abs=0.02)
    assert picks.get(5, 0) == pytest.approx(0.7, abs=0.02)
    rng = np.random.default_rng(1)
    for _ in range(20):
        w = lle_weights(rng.normal(size=16), rng.normal(size=(5, 16)))
        assert w.sum() == pytest.approx(1.0) and (w >= 0).all()


def test_face_data_and_labels(tmp_path):
    gal = make_gallery(tmp_path)
    img, mask = gal.image(3), gal.mask(3)
    assert img.shape == (256, 256, 3) and img.dtype == np.uint8
    assert abs(int(img[100, 100, 0]) - 60) <= 3  # face 3's colour came back
    assert mask[:, :40].max() == 0 and mask[:, 60:190].min() == 255
    assert gal.landmarks(3).shape == (68, 2)
    assert gal.labels(3)["ethnicity"] == "Asian"
    with pytest.raises(IndexError, match="does not exist"):
        gal.image(gal.size)


def test_corrupt_or_missing_gallery_gives_a_clear_error(tmp_path):
    make_gallery(tmp_path)
    data = bytearray((tmp_path / "gallery.npz").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (tmp_path / "gallery.npz").write_bytes(bytes(data))
    gal_mod.clear_cache()
    with pytest.raises(GalleryError, match="checksum mismatch.*corrupt"):
        Gallery.load(tmp_path)
    with pytest.raises(GalleryError, match="missing"):
        Gallery.load(tmp_path / "nowhere")
    (tmp_path / "gallery.json").write_text("{", encoding="utf-8")
    gal_mod.clear_cache()
    with pytest.raises(GalleryError, match="unreadable gallery manifest"):
        Gallery.load(tmp_path)


def test_gallery_references_parse_strictly():
    assert parse_reference(reference_id(12)) == 12
    assert parse_reference("/photos/me.jpg") is None
    with pytest.raises(ValueError, match="gallery:<face number>"):
        parse_reference("gallery:../etc")


# -- the engine ------------------------------------------------------------------------
@pytest.fixture()
def tiny_gallery(tmp_path, monkeypatch):
    """A gallery whose latent sizes fit the tiny random networks, as the shipped one."""
    bundle = random_bundle(TINY, seed=0)
    lay = FaceLayout.default(TINY.canvas)
    sk = torch.zeros(1, 1, TINY.canvas, TINY.canvas)
    geo = {
        c: pool_latent(bundle.components[c].geometry(FaceModel.component_input(sk, lay, c))).shape[
            1
        ]
        for c in COMPONENTS
    }
    app = {c: bundle.default_codes[c].shape[-1] for c in COMPONENTS}
    gal = make_gallery(tmp_path, m=10, geo_dim=geo, app_dim=app)
    monkeypatch.setattr(app_mod, "_checked_gallery", lambda: gal)
    monkeypatch.setattr(app_mod, "_gallery", lambda: gal)
    app_mod._aligned.clear()
    return bundle, gal


def face_sketch(canvas: int) -> np.ndarray:
    sk = np.full((canvas, canvas), 255, np.uint8)
    lay = FaceLayout.default(canvas)
    for name in LOCAL_COMPONENTS:
        w = lay.window(name)
        cv2.line(sk, (w.x + 4, w.y + w.size // 2), (w.x + w.size - 4, w.y + w.size // 2), 0, 2)
    return sk


def _pipe(bundle, look: str) -> FacePipeline:
    pipe = FacePipeline(bundle, "cpu")
    pipe.appearance._gallery_loader = app_mod._checked_gallery
    pipe.appearance.default_look = look
    return pipe


def test_gallery_default_look_blends_the_suggested_faces(tiny_gallery):
    bundle, gal = tiny_gallery
    sk = face_sketch(TINY.canvas)
    mean = _pipe(bundle, "mean").render_sketch(sk, size=TINY.canvas)
    pipe = _pipe(bundle, "gallery")
    out = pipe.render_sketch(sk, size=TINY.canvas)
    assert sorted(out.recomputed) == sorted(COMPONENTS)
    assert not np.array_equal(out.face, mean.face)  # the look changed
    for c in COMPONENTS:
        picks = pipe.appearance.suggestions[c]
        assert sum(w for _, w in picks) == pytest.approx(1.0)
    # a stroke in the nose re-runs only the nose (and its look is looked up again)
    before = dict(pipe.appearance.suggestions)
    lay = FaceLayout.default(TINY.canvas)
    y = (lay.window("left_eye").y + lay.window("left_eye").size + lay.window("mouth").y) // 2
    nose = lay.window("nose")
    sk2 = cv2.line(sk.copy(), (nose.x + nose.size // 4, y), (nose.x + nose.size * 3 // 4, y), 0, 1)
    again = pipe.render_sketch(sk2, size=TINY.canvas)
    assert again.recomputed == ["nose"]
    assert pipe.appearance.suggestions["left_eye"] == before["left_eye"]


def test_mean_look_still_records_suggestions(tiny_gallery):
    bundle, _ = tiny_gallery
    pipe = _pipe(bundle, "mean")
    pipe.render_sketch(face_sketch(TINY.canvas), size=TINY.canvas)
    assert set(pipe.appearance.suggestions) == set(COMPONENTS)


def test_broken_gallery_falls_back_to_the_mean_look(tiny_gallery, tmp_path):
    bundle, _ = tiny_gallery
    (tmp_path / "bad").mkdir()

    def broken():
        return Gallery.load(tmp_path / "bad")

    sk = face_sketch(TINY.canvas)
    mean = _pipe(bundle, "mean").render_sketch(sk, size=TINY.canvas).face
    pipe = FacePipeline(bundle, "cpu")
    pipe.appearance._gallery_loader = broken
    pipe.appearance.default_look = "gallery"
    out = pipe.render_sketch(sk, size=TINY.canvas)
    assert np.array_equal(out.face, mean)
    assert "missing" in pipe.appearance.gallery_problem
    assert "mean face" in pipe.appearance.gallery_problem


def test_a_gallery_reference_needs_no_photo_file(tiny_gallery):
    bundle, gal = tiny_gallery
    ref = align_reference("gallery:3", 128)
    assert ref.image.shape == (128, 128, 3)
    assert abs(int(ref.image[64, 64, 0]) - 60) <= 3
    pipe = _pipe(bundle, "mean")

    @dataclasses.dataclass(frozen=True)
    class Slot:
        paths: tuple = ("gallery:3",)
        mix: float = 0.5
        shape: bool = False

    code, key = pipe.appearance.slot_code(Slot(), "nose", pipe.defaults["nose"])
    assert key.startswith("gallery-") and key.endswith("-3")
    assert code.shape == pipe.defaults["nose"].shape
    with pytest.raises(AppearanceError, match="does not exist"):
        align_reference(f"gallery:{gal.size}", 128)


def test_bank_default_look_setting_is_validated(monkeypatch):
    monkeypatch.setenv("FACESKETCH_DEFAULT_LOOK", "nonsense")
    bank = AppearanceBank(lambda c, x: x, 128)
    assert bank.default_look == app_mod.DEFAULT_LOOK
    monkeypatch.setenv("FACESKETCH_DEFAULT_LOOK", "gallery")
    assert AppearanceBank(lambda c, x: x, 128).default_look == "gallery"


# -- the shipped gallery ---------------------------------------------------------------
def _shipped() -> Gallery:
    gal_mod.clear_cache()
    try:
        return Gallery.load()
    except GalleryError as exc:  # pragma: no cover (the gallery ships with the source)
        pytest.fail(f"the shipped gallery does not load: {exc}")


def test_shipped_gallery_is_what_its_card_says():
    gal = _shipped()
    folder = gal.folder
    size = sum(p.stat().st_size for p in folder.iterdir() if p.is_file())
    assert size < 25e6
    assert 800 <= gal.size <= 1200
    groups: dict[tuple[str, str], int] = {}
    for i in range(gal.size):
        lab = gal.labels(i)
        assert lab["source"].startswith("utkface/")
        groups[lab["gender"], lab["ethnicity"]] = (
            groups.get((lab["gender"], lab["ethnicity"]), 0) + 1
        )
    assert len(groups) == 10 and max(groups.values()) - min(groups.values()) <= 1
    assert "non-commercial" in gal.manifest["licence"]
    card = (folder / "gallery.md").read_text(encoding="utf-8")
    assert "non-commercial" in card and str(gal.size) in card
    # the latents are of the shipped local networks (else the engine refuses them)
    assert app_mod._checked_gallery() is gal
    # UTKFace crops are tight: the validity mask marks the filled border as unknown
    cover = np.mean([gal.mask(i).mean() / 255 for i in range(0, gal.size, 25)])
    assert 0.4 < cover < 0.95
    lm = gal.landmarks(0)
    assert ((lm > 0) & (lm < 256)).all()
    json.dumps(gal.labels(0))
    # no photo screened out (watermarks, covered mouths) is in it, and the card says so
    from train.gallery import read_screened

    screened = read_screened()
    sources = {gal.labels(i)["source"].split("/")[-1] for i in range(gal.size)}
    assert screened and not sources & set(screened)
    assert gal.manifest["screened_out"] == screened
    assert "## Screened out" in card


def test_gallery_build_skips_screened_photos(tmp_path, monkeypatch):
    """pick_faces passes over a screened file and takes the next of its group."""
    import facesketch.face as face_mod
    import facesketch.imaging as imaging
    from train import gallery as build_mod

    names = [f"{20 + i}_1_2_2017011{i}000000000.jpg.chip.jpg" for i in range(4)]
    for n in names:
        (tmp_path / n).write_bytes(b"")
    monkeypatch.setattr(imaging, "read_image", lambda p: np.zeros((8, 8, 3), np.uint8))
    monkeypatch.setattr(face_mod, "align_face", lambda img, **kw: kw["source"])
    picked = build_mod.pick_faces(tmp_path, 2, 0)
    skip = {picked[0][0].name}
    again = build_mod.pick_faces(tmp_path, 2, 0, skip)
    assert len(again) == 2 and not skip & {p.name for p, _ in again}
    assert [a for _, a in again] == [p.name for p, _ in again]


def test_a_rebuild_keeps_the_face_numbers_projects_refer_to():
    from pathlib import Path

    from train.gallery import keep_numbers

    def faces(*names):
        return [(Path(f"/src/{n}"), n) for n in names]

    previous = ["utkface/a", "utkface/b", "utkface/c", "utkface/d"]
    # b was screened out: its replacement x takes number 1, the others keep theirs
    got = keep_numbers(faces("a", "c", "x", "d"), previous)
    assert [a for _, a in got] == ["a", "x", "c", "d"]
    assert [a for _, a in keep_numbers(faces("y", "d", "a", "z", "w"), previous)] == [
        "a",
        "y",
        "z",
        "d",
        "w",
    ]
    assert [a for _, a in keep_numbers(faces("q", "r"), [])] == ["q", "r"]


def test_gallery_ships_in_the_wheel():
    """resources/ maps to facesketch_resources with every file but .py/caches: the
    gallery's files are package data of it (no package of its own is needed)."""
    import fnmatch
    from pathlib import Path

    tomllib = pytest.importorskip("tomllib", reason="tomllib is Python 3.11+")
    from facesketch import resources

    root = Path(__file__).resolve().parents[1]
    cfg = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]
    assert cfg["package-data"]["facesketch_resources"] == ["**/*"]
    excluded = cfg["exclude-package-data"]["facesketch_resources"]
    files = sorted(p.name for p in resources.gallery_dir().iterdir())
    assert {"gallery.npz", "gallery.json", "gallery.md"} <= set(files)
    for name in files:
        assert not any(fnmatch.fnmatch(f"gallery/{name}", pat) for pat in excluded), name


def test_a_gallery_of_other_networks_falls_back_to_the_mean_look(tmp_path, monkeypatch):
    """Networks whose latents have another size than the gallery's: mean look, a reason."""
    bundle = random_bundle(TINY, seed=0)
    gal = make_gallery(tmp_path, m=6, geo_dim={c: 7 for c in COMPONENTS})
    monkeypatch.setattr(app_mod, "_checked_gallery", lambda: gal)
    sk = face_sketch(TINY.canvas)
    mean = _pipe(bundle, "mean").render_sketch(sk, size=TINY.canvas).face
    pipe = _pipe(bundle, "gallery")
    assert np.array_equal(pipe.render_sketch(sk, size=TINY.canvas).face, mean)
    assert "does not fit these networks" in pipe.appearance.gallery_problem
    assert pipe.appearance.suggestions == {}
