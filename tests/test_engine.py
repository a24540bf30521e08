"""FacePipeline: incremental per-component rendering, appearance codes, devices.

Networks are the real classes at the ``tiny`` preset with random init (seeded), so
these tests check plumbing and caching, not image quality.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import cv2
import numpy as np
import pytest
import torch

from facesketch.engine.appearance import (
    AlignedReference,
    AppearanceBank,
    AppearanceError,
    slot_for,
)
from facesketch.engine.bundle import (
    load_mean_codes,
    mean_codes_from_images,
    random_bundle,
    save_mean_codes,
)
from facesketch.engine.devices import select_device
from facesketch.engine.pipeline import FacePipeline, RenderCancelled
from facesketch.layout import COMPONENTS, LOCAL_COMPONENTS, FaceLayout
from facesketch.models import preset
from facesketch.resources import samples_dir, shipped_weights_dir

# tiny networks on a 128 canvas (fully convolutional: the canvas only sets the layout)
TINY = dataclasses.replace(preset("tiny"), canvas=128)
CANVAS = TINY.canvas  # the networks' internal canvas
BIG = 2 * CANVAS  # with the 2x head


@dataclass(frozen=True)
class Slot:
    """Same fields as facesketch.sketch.AppearanceSlot."""

    paths: tuple[str, ...] = ()
    mix: float = 0.5
    shape: bool = False


@pytest.fixture(scope="module")
def bundle():
    return random_bundle(TINY, seed=0)


@pytest.fixture()
def pipe(bundle):
    return FacePipeline(bundle, "cpu")


def blank() -> np.ndarray:
    return np.full((CANVAS, CANVAS), 255, np.uint8)


def face_sketch() -> np.ndarray:
    """A crude face: an outline plus a line in each local window."""
    sk = blank()
    c = CANVAS
    cv2.ellipse(sk, (c // 2, c * 17 // 32), (c * 5 // 16, c * 13 // 32), 0, 0, 360, 0, 1)
    lay = FaceLayout.default(CANVAS)
    for name in LOCAL_COMPONENTS:
        cx, cy = (int(v) for v in lay.window(name).center)
        cv2.line(sk, (cx - CANVAS // 20, cy), (cx + CANVAS // 20, cy + 2), 0, 1)
    return sk


def nose_only_stroke(sk: np.ndarray) -> np.ndarray:
    """A stroke in the part of the nose window no other window overlaps."""
    lay = FaceLayout.default(CANVAS)
    eye_bottom = lay.window("left_eye").y + lay.window("left_eye").size
    mouth_top = lay.window("mouth").y
    y = (eye_bottom + mouth_top) // 2
    nose = lay.window("nose")
    out = sk.copy()
    cv2.line(out, (nose.x + nose.size // 4, y), (nose.x + nose.size * 3 // 4, y), 0, 1)
    assert mouth_top - eye_bottom >= 3 and lay.component_at(nose.x + nose.size // 2, y) == "nose"
    return out


def test_output_shape_range_and_determinism(bundle, pipe):
    sk = face_sketch()
    small = pipe.render_sketch(sk, size=CANVAS)
    big = pipe.render_sketch(sk, size=BIG)
    assert small.face.shape == (CANVAS, CANVAS, 3) and small.face.dtype == np.uint8
    assert big.face.shape == (BIG, BIG, 3) and big.sketch.shape == (BIG, BIG)
    assert small.face.std() > 0  # not a constant image
    again = FacePipeline(random_bundle(TINY, seed=0), "cpu").render_sketch(sk, size=BIG)
    np.testing.assert_array_equal(again.face, big.face)
    with pytest.raises(ValueError, match="render size"):
        pipe.render_sketch(sk, size=CANVAS + 3)
    with pytest.raises(ValueError, match="SCN strength"):
        pipe.render_sketch(sk, scn_strength=1.5)


def test_nose_stroke_reruns_only_the_nose_branch(pipe):
    sk = face_sketch()
    first = pipe.render_sketch(sk, size=BIG, scn_strength=0.5)
    assert sorted(first.recomputed) == sorted(COMPONENTS)
    before = dict(pipe.counters)
    second = pipe.render_sketch(nose_only_stroke(sk), size=BIG, scn_strength=0.5)
    after = pipe.counters
    assert second.recomputed == ["nose"]
    assert after["branch:nose"] == before["branch:nose"] + 1
    assert after["scn:nose"] == before["scn:nose"] + 1
    for name in ("left_eye", "right_eye", "mouth", "background"):
        assert after[f"branch:{name}"] == before[f"branch:{name}"], name
        assert after[f"scn:{name}"] == before[f"scn:{name}"], name
    assert after["fusion"] == before["fusion"] + 1
    # the same document again re-runs nothing at all
    third = pipe.render_sketch(nose_only_stroke(sk), size=BIG, scn_strength=0.5)
    assert third.recomputed == [] and pipe.counters["fusion"] == after["fusion"]
    np.testing.assert_array_equal(third.face, second.face)


def test_nose_stroke_changes_output_mostly_in_nose_window(pipe):
    sk = face_sketch()
    a = pipe.render_sketch(sk, size=CANVAS).face.astype(np.float32)
    b = pipe.render_sketch(nose_only_stroke(sk), size=CANVAS).face.astype(np.float32)
    diff = np.abs(a - b).sum(-1)
    inside = np.zeros_like(diff, bool)
    inside[FaceLayout.default(CANVAS).window("nose").slices] = True
    assert diff[inside].mean() > 0
    assert diff[inside].mean() > 3 * diff[~inside].mean()


def test_stroke_outside_local_windows_reruns_only_background(pipe):
    sk = face_sketch()
    pipe.render_sketch(sk, size=CANVAS)
    out = sk.copy()
    cv2.line(out, (5, 5), (CANVAS // 4, 10), 0, 1)
    assert pipe.render_sketch(out, size=CANVAS).recomputed == ["background"]


def test_moving_a_window_reruns_that_component(pipe):
    sk = face_sketch()
    lay = FaceLayout.default(512)
    pipe.render_sketch(sk, lay, size=CANVAS)
    moved = lay.moved("mouth", lay.window("mouth").x + 20, lay.window("mouth").y)
    rec = pipe.render_sketch(sk, moved, size=CANVAS).recomputed
    assert "mouth" in rec and "left_eye" not in rec and "nose" not in rec


def test_scn_strength_blends_and_zero_skips_scn(pipe):
    # an untrained (residual) calibrator is the identity: give it a correction to make
    torch.nn.init.normal_(pipe.bundle.scn.net[-1].weight, 0.0, 0.5)
    sk = face_sketch()
    out0 = pipe.render_sketch(sk, size=CANVAS, scn_strength=0.0)
    assert not any(k.startswith("scn:") for k in pipe.counters)
    np.testing.assert_array_equal(out0.sketch, sk)  # nothing calibrated: the raw strokes
    out1 = pipe.render_sketch(sk, size=CANVAS, scn_strength=1.0)
    assert pipe.counters["scn:nose"] == 1
    assert not np.array_equal(out1.sketch, sk)
    assert not np.array_equal(out1.face, out0.face)


def test_cancel_stops_at_a_network_boundary(pipe):
    with pytest.raises(RenderCancelled):
        pipe.render_sketch(face_sketch(), size=CANVAS, cancel=lambda: True)
    # whatever finished before stays valid; the next render completes
    assert pipe.render_sketch(face_sketch(), size=CANVAS).face.shape == (CANVAS, CANVAS, 3)


def test_geometry_from_photo_uses_image_encoder(pipe):
    sk = face_sketch()
    base = pipe.render_sketch(sk, size=CANVAS)
    rng = np.random.default_rng(0)
    photo = rng.integers(0, 255, (CANVAS, CANVAS, 3), dtype=np.uint8)
    out = pipe.render_sketch(sk, size=CANVAS, geometry_photo=photo, photo_components=("nose",))
    assert out.recomputed == ["nose"]
    assert not np.array_equal(out.face, base.face)
    with pytest.raises(ValueError, match="geometry photo"):
        pipe.render_sketch(sk, size=CANVAS, geometry_photo=photo[:10], photo_components=("nose",))


# -- appearance ----------------------------------------------------------------------------
def _fake_aligner(path, canvas):
    """Stands in for dlib alignment: the photo resized to the canvas."""
    from facesketch.engine.appearance import file_digest
    from facesketch.imaging import read_image

    img = cv2.resize(read_image(path), (canvas, canvas))
    return AlignedReference(str(path), file_digest(path), img, None)


def _write_photo(path, colour) -> str:
    img = np.zeros((64, 64, 3), np.uint8)
    img[:] = colour
    img[20:40, 20:40] = 255 - np.array(colour, np.uint8)
    cv2.imwrite(str(path), img[:, :, ::-1])
    return str(path)


def test_appearance_codes_are_cached_and_interpolated(pipe, tmp_path):
    bank = AppearanceBank(pipe._encode_appearance, CANVAS, aligner=_fake_aligner)
    a = _write_photo(tmp_path / "a.png", (200, 30, 30))
    b = _write_photo(tmp_path / "b.png", (30, 30, 200))
    ca = bank.code(a, "nose")
    bank.code(a, "nose")
    assert bank.encodes == 1
    cb = bank.code(b, "nose")
    default = torch.zeros_like(ca)
    assert bank.slot_code(Slot(()), "nose", default)[1] == "default"
    lo, _ = bank.slot_code(Slot((a, b), 0.0), "nose", default)
    hi, _ = bank.slot_code(Slot((a, b), 1.0), "nose", default)
    mid, key = bank.slot_code(Slot((a, b), 0.5), "nose", default)
    torch.testing.assert_close(lo, ca)
    torch.testing.assert_close(hi, cb)
    torch.testing.assert_close(mid, (ca + cb) / 2)
    assert bank.encodes == 2 and "|" in key


def test_reference_changes_colour_and_corrupt_reference_is_a_clear_error(bundle, tmp_path):
    # random tiny networks answer a new appearance with a trace of a grey level, which
    # the mesh filter would smooth away: look at the raw output here (the shipped
    # networks' visible change is tested below)
    pipe = FacePipeline(bundle, "cpu", pattern_period=0)
    pipe.appearance._align = _fake_aligner
    sk = face_sketch()
    plain = pipe.render_sketch(sk, size=CANVAS)
    good = _write_photo(tmp_path / "good.png", (220, 40, 40))
    ref = {"face": Slot((good,))}
    styled = pipe.render_sketch(sk, appearance=ref, size=CANVAS)
    assert sorted(styled.recomputed) == sorted(COMPONENTS)
    assert not np.array_equal(styled.face, plain.face)
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"\xff\xd8 definitely not a jpeg")
    with pytest.raises(AppearanceError, match="broken.jpg"):
        pipe.render_sketch(sk, appearance={"nose": Slot((str(bad),))}, size=CANVAS)
    again = pipe.render_sketch(sk, appearance=ref, size=CANVAS)
    np.testing.assert_array_equal(again.face, styled.face)
    assert again.recomputed == []


def test_a_slot_with_shape_lends_its_photo_geometry(pipe, tmp_path):
    pipe.appearance._align = _fake_aligner
    sk = face_sketch()
    photo = _write_photo(tmp_path / "ref.png", (200, 60, 60))
    looks = pipe.render_sketch(sk, appearance={"nose": Slot((photo,))}, size=CANVAS)
    shaped = pipe.render_sketch(sk, appearance={"nose": Slot((photo,), shape=True)}, size=CANVAS)
    assert shaped.recomputed == ["nose"]  # only the nose's geometry source changed
    assert not np.array_equal(shaped.face, looks.face)
    # the same as asking for that photo's geometry explicitly
    aligned = _fake_aligner(photo, CANVAS).image
    fresh = FacePipeline(pipe.bundle, "cpu")
    fresh.appearance._align = _fake_aligner
    explicit = fresh.render_sketch(
        sk,
        appearance={"nose": Slot((photo,))},
        size=CANVAS,
        geometry_photo=aligned,
        photo_components=("nose",),
    )
    np.testing.assert_array_equal(explicit.face, shaped.face)


def test_slot_for_prefers_component_then_face():
    face, nose = Slot(("f.png",)), Slot(("n.png",))
    assert slot_for({"face": face, "nose": nose}, "nose") is nose
    assert slot_for({"face": face, "nose": Slot(())}, "nose") is face
    assert slot_for({}, "mouth") is None


def test_default_appearance_comes_from_the_bundle(bundle):
    sk = face_sketch()
    base = FacePipeline(bundle, "cpu").render_sketch(sk, size=CANVAS).face
    other = random_bundle(TINY, seed=0)
    other.default_codes = {k: v + 1.0 for k, v in other.default_codes.items()}
    changed = FacePipeline(other, "cpu").render_sketch(sk, size=CANVAS).face
    assert not np.array_equal(base, changed)
    del other.default_codes["nose"]
    with pytest.raises(ValueError, match="default appearance code for nose"):
        FacePipeline(other, "cpu")


def test_mean_codes_round_trip(bundle, tmp_path):
    faces = [np.full((CANVAS, CANVAS, 3), v, np.uint8) for v in (60, 190)]
    codes = mean_codes_from_images(bundle, faces)
    assert set(codes) == set(COMPONENTS)
    path = save_mean_codes(codes, tmp_path / "mean.safetensors")
    loaded = load_mean_codes(path)
    for k in COMPONENTS:
        torch.testing.assert_close(loaded[k], codes[k])
    (tmp_path / "bad.safetensors").write_bytes(b"junk")
    with pytest.raises(ValueError, match="bad.safetensors"):
        load_mean_codes(tmp_path / "bad.safetensors")


# -- devices -------------------------------------------------------------------------------
def test_select_device():
    spec = select_device("cpu")
    assert spec.device.type == "cpu" and spec.dtype == torch.float32
    with pytest.raises(ValueError, match="unknown device"):
        select_device("banana")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no CUDA"):
            select_device("cuda")
        assert select_device("auto").device.type == "cpu"
    else:
        assert select_device("cuda", fp16=True).dtype == torch.float16
        assert select_device("cuda", fp16=False).dtype == torch.float32


# -- loading the shipped network set ---------------------------------------------------
def _export(bundle_seed: int, folder, with_codes: bool = True):
    """Write tiny random networks the way training exports them."""
    from facesketch.engine.weights import save_weights
    from facesketch.models import ComponentModel, GlobalFusion, StrokeCalibrator, Upsampler2x

    torch.manual_seed(bundle_seed)
    nets = {f"local_{c}": ComponentModel(TINY.local, c) for c in COMPONENTS}
    nets.update(
        fusion=GlobalFusion(TINY.fusion), up=Upsampler2x(TINY.up), scn=StrokeCalibrator(TINY.scn)
    )
    for stem, m in nets.items():
        network = m.network
        manifest = {"network": network, "config": m.manifest_config(), "data": "test", "steps": 0}
        save_weights(m, folder / f"{stem}.safetensors", manifest)
    if with_codes:
        codes = {c: torch.full((1, TINY.local.app_dim), 0.1) for c in COMPONENTS}
        save_mean_codes(codes, folder / "appearance_mean.safetensors")


def test_load_bundle_reads_exported_weights(tmp_path):
    from facesketch.engine.bundle import MEAN_CODES_FILE, load_bundle
    from facesketch.engine.weights import WeightsError

    _export(5, tmp_path, with_codes=False)
    with pytest.raises(WeightsError, match=MEAN_CODES_FILE):
        load_bundle(tmp_path)
    _export(5, tmp_path)
    bundle = load_bundle(tmp_path, canvas=CANVAS)
    assert bundle.scn is not None and set(bundle.info["networks"]) >= {"fusion", "up", "scn"}
    out = FacePipeline(bundle, "cpu").render_sketch(face_sketch(), size=BIG, scn_strength=0.5)
    assert out.face.shape == (BIG, BIG, 3)
    (tmp_path / "fusion.safetensors").write_bytes(b"damaged")
    with pytest.raises(WeightsError, match="fusion.safetensors"):
        load_bundle(tmp_path, canvas=CANVAS)
    (tmp_path / "up.json").unlink()
    with pytest.raises(WeightsError, match="no weights for up"):
        load_bundle(tmp_path, canvas=CANVAS)


SHIPPED = shipped_weights_dir()
SAMPLES = samples_dir()


@pytest.mark.skipif(not (SHIPPED / "fusion.json").is_file(), reason="no shipped weights")
def test_shipped_networks_take_the_reference_colour(tmp_path):
    """A red-tinted reference makes the face redder: the transfer a user sees."""
    from facesketch.engine.bundle import load_bundle
    from facesketch.sketch import load_project

    pipe = FacePipeline(load_bundle(SHIPPED), "cpu")
    sketch = load_project(SAMPLES / "demo.json").rasterize(pipe.canvas)
    photo = cv2.imread(str(SAMPLES / "sample-b.jpg")).astype(np.float32)
    tinted = {}
    for name, gain in (("red", (0.55, 0.75, 1.35)), ("blue", (1.35, 0.9, 0.6))):  # BGR gains
        path = tmp_path / f"{name}.png"
        cv2.imwrite(str(path), np.clip(photo * gain, 0, 255).astype(np.uint8))
        tinted[name] = str(path)
    faces = {
        name: pipe.render_sketch(sketch, appearance={"face": Slot((path,))}).face
        for name, path in tinted.items()
    }
    s = pipe.canvas
    centre = (slice(s // 4, 3 * s // 4), slice(s // 4, 3 * s // 4))

    def redness(face: np.ndarray) -> float:
        rgb = face[centre].reshape(-1, 3).astype(np.float64).mean(0)
        return float(rgb[0] - rgb[2])

    assert redness(faces["red"]) > redness(faces["blue"]) + 20
