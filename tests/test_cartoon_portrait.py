"""Cartoon portraits: ink from the user's sketch, anime proportions, saved settings."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from torch import nn

from facesketch.engine import cartoon as C
from facesketch.engine.devices import select_device
from facesketch.engine.ink import apply_ink, ink_mask
from facesketch.face.proportions import (
    FaceParts,
    anime_warp,
    parts_from_landmarks,
    parts_from_layout,
    warp_maps,
)
from facesketch.layout import FaceLayout
from facesketch.sketch.cartoon_settings import CartoonSettings, SetCartoonSettings
from facesketch.sketch.commands import CommandStack
from facesketch.sketch.document import Document
from facesketch.sketch.project import document_from_dict, document_to_dict, load_project


class _Identity(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


def _identity_style() -> C.Style:
    spec = select_device("cpu")
    return C.Style("id", spec.module(_Identity()), "rgb", spec)


def _line_sketch(size: int = 128) -> np.ndarray:
    s = np.full((size, size), 255, np.uint8)
    cv2.line(s, (10, size // 2), (size - 10, size // 2), 0, 2)
    return s


# -- settings in the document ------------------------------------------------------------
def test_settings_validate_with_clear_messages() -> None:
    with pytest.raises(ValueError, match="ink width"):
        CartoonSettings(ink_width=9)
    with pytest.raises(ValueError, match="proportions"):
        CartoonSettings(proportions=float("nan"))
    with pytest.raises(ValueError, match="unknown cartoon settings"):
        CartoonSettings.from_dict({"ink": True, "colour": 3})
    assert CartoonSettings().is_default and not CartoonSettings(ink=True).is_default


def test_settings_are_saved_undoable_and_old_projects_still_load(tmp_path: Path) -> None:
    doc = Document.new(256)
    stack = CommandStack(doc)
    stack.push(SetCartoonSettings(CartoonSettings(ink=True, ink_width=2.0, proportions=0.6)))
    assert doc.cartoon.proportions == 0.6 and doc.snapshot().cartoon == doc.cartoon
    back = document_from_dict(document_to_dict(doc))
    assert back.cartoon == doc.cartoon and back == doc
    stack.undo()
    assert doc.cartoon == CartoonSettings()
    stack.redo()
    assert doc.cartoon.ink
    old = document_to_dict(Document.new(256))
    assert "cartoon" not in old  # default settings add nothing: older apps read the file
    assert document_from_dict(old).cartoon == CartoonSettings()
    bad = {**old, "cartoon": {"ink": "yes"}}
    with pytest.raises(ValueError, match="cartoon"):
        document_from_dict(bad)
    p = tmp_path / "p.json"
    from facesketch.sketch.project import save_project

    save_project(doc, p)
    assert load_project(p).cartoon == doc.cartoon


# -- ink --------------------------------------------------------------------------------
def test_ink_darkens_only_the_lines_and_width_darkness_work() -> None:
    cartoon = np.full((256, 256, 3), 200, np.uint8)
    sketch = _line_sketch(128)  # half the size: scaled to the cartoon
    inked = apply_ink(cartoon, sketch, 1.0, 1.0)
    assert inked[128, 128].max() < 40  # on the line: nearly black
    assert (inked[20, 128] == 200).all()  # paper: untouched
    thick = (ink_mask(sketch, (256, 256), 3.0) > 0.5).sum()
    thin = (ink_mask(sketch, (256, 256), 0.5) > 0.5).sum()
    normal = (ink_mask(sketch, (256, 256), 1.0) > 0.5).sum()
    assert thick > 1.5 * normal > 1.5 * thin > 0
    half = apply_ink(cartoon, sketch, 1.0, 0.5)
    assert 80 < half[128, 128, 0] < 120
    assert np.array_equal(apply_ink(cartoon, sketch, 1.0, 0.0), cartoon)
    with pytest.raises(ValueError, match="gray sketch"):
        apply_ink(cartoon, np.zeros((4, 4), np.float32))


# -- proportions --------------------------------------------------------------------------
def _disc_face(size: int, parts: FaceParts) -> np.ndarray:
    img = np.full((size, size, 3), 230, np.uint8)
    for c in (parts.left_eye, parts.right_eye, parts.nose, parts.mouth):
        cv2.circle(img, (round(c[0]), round(c[1])), size // 40, (0, 0, 0), -1)
    return img


def _dark_area(img: np.ndarray, c: tuple[float, float], r: int) -> int:
    x, y = round(c[0]), round(c[1])
    return int((img[y - r : y + r, x - r : x + r, 0] < 100).sum())


def test_anime_warp_enlarges_eyes_shrinks_nose_and_mouth() -> None:
    parts = parts_from_layout(FaceLayout.default(512), 256)
    face = _disc_face(256, parts)
    assert warp_maps(face.shape[:2], parts, 0.0) is None
    assert np.array_equal(anime_warp(face, parts, 0.0), face)
    warped = anime_warp(face, parts, 1.0)
    r = 30
    assert _dark_area(warped, parts.left_eye, r) > 1.4 * _dark_area(face, parts.left_eye, r)
    assert _dark_area(warped, parts.right_eye, r) > 1.4 * _dark_area(face, parts.right_eye, r)
    assert _dark_area(warped, parts.nose, r) < 0.8 * _dark_area(face, parts.nose, r)
    assert _dark_area(warped, parts.mouth, r) < 0.8 * _dark_area(face, parts.mouth, r)
    assert np.array_equal(warped[:10], face[:10])  # far from the face: untouched


def test_parts_from_landmarks_uses_ibug_groups() -> None:
    lm = np.zeros((68, 2))
    lm[36:42], lm[42:48], lm[30:36], lm[48:68], lm[7:10] = (1, 1), (3, 1), (2, 2), (2, 3), (2, 4)
    p = parts_from_landmarks(lm)
    assert p.left_eye == (1, 1) and p.right_eye == (3, 1) and p.chin == (2, 4)
    assert p.eye_distance == 2
    with pytest.raises(ValueError, match="68"):
        parts_from_landmarks(np.zeros((5, 2)))


def test_portrait_warps_ink_with_the_face() -> None:
    layout = FaceLayout.default(512)
    parts = parts_from_layout(layout, 256)
    face = _disc_face(256, parts)
    sketch = np.full((256, 256), 255, np.uint8)
    for c in (parts.left_eye, parts.right_eye):  # the user circled the eyes
        cv2.circle(sketch, (round(c[0]), round(c[1])), 12, 0, 2)
    st = _identity_style()
    plain = C.cartoon_portrait(face, st, None, sketch, layout)
    assert np.array_equal(plain, C.stylize(face, st))  # defaults: a plain stylization
    s = CartoonSettings(ink=True, ink_darkness=1.0, proportions=1.0)
    out = C.cartoon_portrait(face, st, s, sketch, layout)
    ex, ey = (round(v) for v in parts.left_eye)
    ring_plain = (sketch[ey, ex - 14 : ex + 14] < 128).sum()
    ring_row = out[ey, ex - 30 : ex + 30, 0]
    dark = np.flatnonzero(ring_row < 60)
    assert ring_plain > 0 and dark.size > 0
    assert dark.max() - dark.min() > 28  # the inked circle grew with the enlarged eye


# -- engine path ------------------------------------------------------------------------
def test_service_stylize_uses_the_document_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    from facesketch.engine.service import RenderService

    seen = {}

    def fake_portrait(face, style, settings, sketch, layout):  # noqa: ANN001, ANN202
        seen.update(settings=settings, sketch=sketch, layout=layout)
        return face

    monkeypatch.setattr(C, "cartoon_portrait", fake_portrait)
    monkeypatch.setattr(C, "load_style", lambda name, spec: name)
    svc = RenderService.__new__(RenderService)
    svc.pipeline = type("P", (), {"spec": None})()
    doc = Document.new(256)
    doc.cartoon = CartoonSettings(ink=True)
    sk = np.full((64, 64), 255, np.uint8)
    svc._stylize("x", np.zeros((64, 64, 3), np.uint8), doc.snapshot(), sk)
    assert seen["settings"].ink and seen["sketch"] is sk and seen["layout"] == doc.layout


# -- facesketch render --cartoon: the same settings from the command line ----------------------
@pytest.fixture()
def render_cli(monkeypatch: pytest.MonkeyPatch):  # noqa: ANN201
    """`facesketch render` with tiny random networks and an identity cartoon style."""
    import dataclasses

    from facesketch.commands import render
    from facesketch.engine.bundle import random_bundle
    from facesketch.models import preset

    tiny = dataclasses.replace(preset("tiny"), canvas=128)
    monkeypatch.setattr(render, "load_bundle", lambda _w: random_bundle(tiny, seed=3))
    monkeypatch.setattr(render, "_load_style", lambda name, pipe: _identity_style())
    seen: list[CartoonSettings] = []
    real = C.cartoon_portrait

    def spy(face, style, settings, sketch, layout):  # noqa: ANN001, ANN202
        seen.append(settings)
        return real(face, style, settings, sketch, layout)

    monkeypatch.setattr(C, "cartoon_portrait", spy)
    return seen


def _stroked_project(tmp_path: Path, settings: CartoonSettings) -> Path:
    from facesketch.sketch import Stroke, save_project

    doc = Document.new(512)
    pts = np.array([[120.0, 300.0], [256.0, 290.0], [392.0, 300.0]], np.float32)
    doc.strokes.append(Stroke(pts, 4.0))
    doc.cartoon = settings
    return save_project(doc, tmp_path / "face.json")


def test_render_ink_flags_draw_the_strokes_over_the_cartoon(render_cli, tmp_path: Path) -> None:
    from facesketch import cli
    from facesketch.imaging import read_image

    proj = _stroked_project(tmp_path, CartoonSettings())
    base = ["render", str(proj), "--size", "256", "--cartoon", "x"]
    assert cli.main([*base, "-o", str(tmp_path / "plain.png")]) == 0
    assert cli.main([*base, "-o", str(tmp_path / "ink.png"), "--ink-darkness", "1"]) == 0
    plain, inked = (read_image(tmp_path / f"{n}_cartoon.png") for n in ("plain", "ink"))
    assert not render_cli[0].ink  # the project's settings: no ink
    assert render_cli[1] == CartoonSettings(ink=True, ink_darkness=1.0)  # darkness turns it on
    dark = (inked.max(axis=2) < 40) & ~(plain.max(axis=2) < 40)
    assert dark.sum() > 100  # the stroke is drawn in black where the plain cartoon had none


def test_render_flags_override_the_project_and_apply_to_images(render_cli, tmp_path: Path) -> None:
    from facesketch import cli

    proj = _stroked_project(tmp_path, CartoonSettings(ink=True, ink_width=2.0, proportions=0.3))
    out = str(tmp_path / "a.png")
    assert (
        cli.main(
            ["render", str(proj), "-o", out, "--size", "256", "--cartoon", "x", "--ink", "off"]
        )
        == 0
    )
    assert render_cli[-1] == CartoonSettings(ink=False, ink_width=2.0, proportions=0.3)
    sk = tmp_path / "sketch.png"
    cv2.imwrite(str(sk), _line_sketch(256))
    args = ["render", str(sk), "-o", out, "--size", "256", "--cartoon", "x", "--ink-width", "1.5"]
    assert cli.main([*args, "--proportions", "0.6"]) == 0
    assert render_cli[-1] == CartoonSettings(ink=True, ink_width=1.5, proportions=0.6)
    assert (tmp_path / "a_cartoon.png").is_file()


def test_render_cartoon_flags_need_a_cartoon_and_valid_values(
    render_cli, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    from facesketch import cli

    proj = str(_stroked_project(tmp_path, CartoonSettings()))
    out = str(tmp_path / "a.png")
    assert cli.main(["render", proj, "-o", out, "--ink", "on"]) == 2
    assert "add --cartoon STYLE" in capsys.readouterr().err
    assert not (tmp_path / "a.png").exists()  # refused before any rendering
    for flag, bad in (("--ink-width", "9"), ("--proportions", "1.5"), ("--ink-darkness", "-1")):
        assert cli.main(["render", proj, "-o", out, "--cartoon", "x", flag, bad]) == 2
        assert "expected a number within" in capsys.readouterr().err
    assert not render_cli  # nothing was stylized
