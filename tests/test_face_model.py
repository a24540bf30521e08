"""One face model (facesketch.models.face_model): what is trained, evaluated and shown."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from facesketch.layout import COMPONENTS, FaceLayout
from facesketch.models import preset
from facesketch.models.face_model import FaceModel, appearance_input, assemble_sketch, mesh_period


def drawn_sketch(size: int = 256) -> np.ndarray:
    """A deterministic line drawing of a face (head, brows, eyes, nose, lips, hair)."""
    s = size / 256
    img = np.full((size, size), 255, np.uint8)

    def p(x: float, y: float) -> tuple[int, int]:
        return int(round(x * s)), int(round(y * s))

    w = max(1, round(2 * s))
    cv2.ellipse(img, p(128, 130), p(78, 100), 0, 0, 360, 0, w, cv2.LINE_AA)
    for cx in (96, 160):
        cv2.ellipse(img, p(cx, 112), p(16, 7), 0, 0, 360, 0, w, cv2.LINE_AA)
        cv2.circle(img, p(cx, 112), max(1, round(4 * s)), 0, -1, cv2.LINE_AA)
        cv2.ellipse(img, p(cx, 96), p(20, 6), 0, 190, 350, 0, w, cv2.LINE_AA)
    cv2.polylines(
        img, [np.array([p(124, 118), p(118, 152), p(128, 158), p(138, 152)])], False, 0, w
    )
    cv2.ellipse(img, p(128, 182), p(24, 7), 0, 0, 180, 0, w, cv2.LINE_AA)
    cv2.line(img, p(104, 181), p(152, 181), 0, w, cv2.LINE_AA)
    cv2.ellipse(img, p(128, 80), p(84, 60), 0, 180, 360, 0, w, cv2.LINE_AA)
    return img


REF_DIR = Path(__file__).parent / "data"


def _read_rgb(path: Path) -> np.ndarray:
    return cv2.cvtColor(cv2.imread(str(path), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


def test_shipped_renders_match_the_reference_made_before_the_face_model():
    """The shipped weights render what they rendered before sketch -> face became one
    FaceModel (references written by the old pipeline, rewritten when the fusion was
    fine-tuned against the top-edge band: 512 default look, and 256 with
    the stroke calibrator at 0.6 and a moved nose window)."""
    from facesketch.engine.bundle import load_bundle
    from facesketch.engine.pipeline import FacePipeline

    pipe = FacePipeline(load_bundle(), "cpu")
    sk = drawn_sketch()
    face = pipe.render_sketch(sk, scn_strength=0.0).face
    lay = FaceLayout.default(256)
    nose = lay.window("nose")
    moved = lay.moved("nose", nose.x + 6, nose.y - 4)
    face_scn = pipe.render_sketch(sk, moved, scn_strength=0.6, size=256).face
    for got, name in ((face, "face_model_ref_512.png"), (face_scn, "face_model_ref_256_scn.png")):
        ref = _read_rgb(REF_DIR / name)
        diff = np.abs(got.astype(int) - ref.astype(int))
        # identical here; a level of float noise allowed on other CPUs
        assert diff.max() <= 2 and diff.mean() < 0.05, (name, diff.max(), diff.mean())


@pytest.fixture(scope="module")
def tiny_bundle():
    from facesketch.engine.bundle import random_bundle

    return random_bundle(dataclasses.replace(preset("tiny"), canvas=128), seed=3)


@pytest.mark.parametrize("strength", [0.0, 0.5])
def test_forward_is_what_the_engine_shows(tiny_bundle, strength):
    """FaceModel.forward (training, evaluation) gives the engine's face."""
    from facesketch.engine.pipeline import FacePipeline
    from facesketch.imaging import sketch_to_tensor, tensor_to_image

    pipe = FacePipeline(tiny_bundle, "cpu")
    torch.nn.init.normal_(tiny_bundle.scn.net[-1].weight, 0.0, 0.5)  # a visible calibration
    sk = drawn_sketch(128)
    shown = pipe.render_sketch(sk, size=128, scn_strength=strength).face
    lay = FaceLayout.default(128)
    codes = {c: v[None] if v.ndim == 1 else v for c, v in tiny_bundle.default_codes.items()}
    with torch.inference_mode():
        face = pipe.model(sketch_to_tensor(sk), codes, lay, strength=strength)
    diff = np.abs(tensor_to_image(face[0]).astype(int) - shown.astype(int))
    # strength 0: identical; with the SCN the engine's sketch skip is the uint8 sketch
    assert diff.max() <= (0 if strength == 0 else 3)


def test_old_fusion_keeps_the_notch_a_resize_fusion_needs_none():
    from facesketch.models.config import FusionConfig
    from facesketch.models.filters import DEFAULT_PERIOD
    from facesketch.models.fusion import GlobalFusion

    assert mesh_period(GlobalFusion(FusionConfig(base=4, n_down=2, max_ch=8))) == DEFAULT_PERIOD
    new = GlobalFusion(FusionConfig(base=4, n_down=2, max_ch=8, decoder="resize", ref_ch=4))
    assert mesh_period(new) == 0


def test_the_2x_head_is_notched_only_after_a_fusion_that_leaves_a_mesh():
    from facesketch.models.config import FusionConfig, UpConfig
    from facesketch.models.filters import DEFAULT_PERIOD
    from facesketch.models.fusion import GlobalFusion, Upsampler2x
    from facesketch.models.local import ComponentModel

    local = {c: ComponentModel(preset("lite").local, c) for c in COMPONENTS}
    up = Upsampler2x(UpConfig())
    for decoder, period in (("transpose", DEFAULT_PERIOD), ("resize", 0)):
        fusion = GlobalFusion(FusionConfig(base=4, n_down=2, max_ch=8, decoder=decoder))
        model = FaceModel.from_components(local, fusion, upsampler=up)
        assert (model.pattern_period, model.up_period) == (period, period)
        x = torch.rand(1, 3, 16, 16) * 2 - 1
        if period == 0:  # nothing filtered: the head's own output
            assert torch.equal(model.upsample(x), up(x))


def test_appearance_input_and_assembled_sketch():
    lay = FaceLayout.default(128)
    photo = torch.arange(3 * 128 * 128, dtype=torch.float32).view(1, 3, 128, 128)
    assert appearance_input(photo, lay, "background") is photo
    assert torch.equal(appearance_input(photo, lay, "nose"), lay.crop(photo, "nose"))
    parts = {c: torch.full_like(lay.crop(photo[:, :1], c), i) for i, c in enumerate(COMPONENTS)}
    parts["background"] = torch.full((1, 1, 128, 128), -1.0)
    out = assemble_sketch(parts, lay)
    rows, cols = lay.window("right_eye").slices  # pasted last: wins where windows overlap
    assert torch.all(out[..., rows, cols] == COMPONENTS.index("right_eye"))
    assert out[0, 0, 0, 0] == -1.0
