"""Windows and renders that follow the drawing: a face drawn off-centre and small is
found by its landmarks and rendered where it was drawn; the setting is saved and undoable.

The render tests use tiny random networks and a stand-in predictor (exact landmarks
of a drawn template face), so they check the geometry, not the trained network;
tests/test_landmarks_net.py checks the shipped network on real drawings.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from facesketch.engine.landmarks import (
    MIN_SUPPORT,
    fit_drawing,
    fitted_layout,
    ink_support,
    move_document,
    render_following,
)
from facesketch.layout import LOCAL_COMPONENTS, FaceLayout
from facesketch.sketch.commands import CommandStack, SetFollowDrawing, SetLayout
from facesketch.sketch.document import Document, Stroke
from facesketch.sketch.project import document_from_dict, document_to_dict
from train.landmarks import STROKES, template_landmarks

DOC = 512


def _moved(pts: np.ndarray, scale: float, dx: float, dy: float, size: int = DOC) -> np.ndarray:
    c = (size - 1) / 2
    return ((pts - c) * scale + c + np.array([dx, dy])).astype(np.float32)


def _face_doc(pts: np.ndarray, width: float = 3.0) -> Document:
    doc = Document.new(DOC)
    doc.strokes = [
        Stroke(np.r_[pts[a : b + 1], pts[a : a + 1]] if closed else pts[a : b + 1], width)
        for a, b, closed in STROKES
    ]
    return doc


class FakePredictor:
    """Returns ``pts`` (document pixels) in the pixels of the sketch it is given."""

    def __init__(self, pts: np.ndarray) -> None:
        self.pts, self.calls = pts, 0

    def predict(self, sketch: np.ndarray) -> np.ndarray:
        self.calls += 1
        f = sketch.shape[0] / DOC
        return ((self.pts + 0.5) * f - 0.5).astype(np.float32)


def test_fit_measures_where_and_how_large_the_face_is_drawn() -> None:
    lay = FaceLayout.default(DOC)
    pts = template_landmarks(DOC)
    base = fit_drawing(pts, lay)
    assert base is not None and base.is_identity
    small = fit_drawing(_moved(pts, 0.5, -90, -60), lay)
    assert small is not None and not small.is_identity
    assert small.scale == pytest.approx(2 * base.scale, rel=1e-3)
    # the moved face's eye centre maps back onto the layout's eye window
    moved_eye = _moved(pts, 0.5, -90, -60)[36:42].mean(0)
    u = small.matrix[:, :2] @ moved_eye + small.matrix[:, 2]
    v = base.matrix[:, :2] @ pts[36:42].mean(0) + base.matrix[:, 2]
    assert np.allclose(u, v, atol=0.5)
    assert fit_drawing(_moved(pts, 0.05, 0, 0), lay) is None  # a speck is no face


def test_fitted_windows_move_with_the_drawing() -> None:
    lay = FaceLayout.default(DOC)
    pts = template_landmarks(DOC)
    here = fitted_layout(pts, lay)
    there = fitted_layout(_moved(pts, 1.0, 60, -30), lay)
    for name in LOCAL_COMPONENTS:
        (x0, y0), (x1, y1) = here.window(name).center, there.window(name).center
        assert (x1 - x0, y1 - y0) == pytest.approx((60, -30), abs=1.0)
    smaller = fitted_layout(_moved(pts, 0.7, 0, 0), lay)
    gap = lambda la: la.window("right_eye").center[0] - la.window("left_eye").center[0]  # noqa: E731
    assert gap(smaller) == pytest.approx(0.7 * gap(here), abs=1.5)


def test_moving_a_document_moves_strokes_and_pen_widths() -> None:
    drawn = _moved(template_landmarks(DOC), 0.5, -90, -60)
    doc = _face_doc(drawn).snapshot()
    fit = fit_drawing(drawn, doc.layout)
    moved = move_document(doc, fit)
    assert moved.strokes[0].width == pytest.approx(3.0 * fit.scale)  # lines as thick as drawn
    jaw = drawn[0:17] @ fit.matrix[:, :2].T + fit.matrix[:, 2]
    assert np.allclose(moved.strokes[0].points, jaw, atol=1e-3)
    assert [s.id for s in moved.strokes] == [s.id for s in doc.strokes]
    # the moved face now sits on the layout
    refit = fit_drawing(drawn @ fit.matrix[:, :2].T + fit.matrix[:, 2], doc.layout)
    assert refit is not None and refit.is_identity


@pytest.fixture(scope="module")
def pipe():
    from facesketch.engine.bundle import random_bundle
    from facesketch.engine.pipeline import FacePipeline
    from facesketch.models import preset

    return FacePipeline(random_bundle(dataclasses.replace(preset("tiny"), canvas=128)), "cpu")


def test_a_small_off_centre_face_renders_where_it_was_drawn(pipe) -> None:
    pts = _moved(template_landmarks(DOC), 0.45, -110, -90)
    doc = _face_doc(pts)
    doc.follow_drawing = True
    snap = doc.snapshot()
    out = render_following(pipe, snap, FakePredictor(pts), size=256)
    face = out.face.astype(np.float32)
    assert out.face.shape == (256, 256, 3) and "follow" in out.timings
    # where the face was drawn the render varies; far from it is one neutral colour
    f = 256 / DOC
    x0, y0 = (pts.min(0) * f).astype(int)
    x1, y1 = (pts.max(0) * f).astype(int)
    inside = face[y0:y1, x0:x1]
    far = face[200:, 200:]
    assert inside.std(axis=(0, 1)).mean() > 3 * (far.std(axis=(0, 1)).mean() + 0.5)
    assert np.abs(far - far.reshape(-1, 3).mean(0)).max() < 2
    # what the canonical render shows at the aligned eyes and mouth is at the drawn ones
    fit = fit_drawing(pts, snap.layout)
    canon = pipe.render(move_document(snap, fit), size=256).face.astype(np.float32)
    for idx in (slice(36, 42), slice(42, 48), slice(48, 68)):
        eye = pts[idx].mean(0)
        cx, cy = np.round((fit.matrix[:, :2] @ eye + fit.matrix[:, 2]) * f).astype(int)
        ex, ey = np.round(eye * f).astype(int)
        want = canon[cy - 3 : cy + 4, cx - 3 : cx + 4].mean((0, 1))
        got = face[ey - 1 : ey + 2, ex - 1 : ex + 2].mean((0, 1))
        assert np.abs(want - got).max() < 12
    # the output says where the layout went: the canvas shows the windows there
    eye = pts[36:42].mean(0)
    canon_eye = fit.matrix[:, :2] @ eye + fit.matrix[:, 2]
    back = out.placement[:, :2] @ canon_eye + out.placement[:, 2]
    assert np.allclose(back, eye, atol=1e-3)


def test_a_face_still_being_drawn_is_not_moved(pipe) -> None:
    """Only jaw and brows drawn so far: the network still places eyes, nose and mouth,
    on blank paper; the drawing renders as drawn until most of them are on ink."""
    pts = _moved(template_landmarks(DOC), 0.45, -110, -90)
    doc = _face_doc(pts)
    doc.strokes = doc.strokes[:3]  # the jaw line and both brows
    fake = FakePredictor(pts)
    out = render_following(pipe, doc.snapshot(), fake, size=256)
    assert fake.calls == 1 and "follow" not in out.timings
    assert np.array_equal(out.face, pipe.render(doc.snapshot(), size=256).face)
    whole = _face_doc(pts).rasterize(256)
    assert ink_support(whole, fake.predict(whole)) == 1.0
    assert ink_support(doc.rasterize(256), fake.predict(whole)) < MIN_SUPPORT
    assert ink_support(np.full((256, 256), 255, np.uint8), fake.predict(whole)) == 0.0


def test_a_face_in_place_renders_as_without_the_setting(pipe) -> None:
    pts = template_landmarks(DOC)
    snap = _face_doc(pts).snapshot()
    fake = FakePredictor(pts)
    out = render_following(pipe, snap, fake, size=256)
    assert fake.calls == 1 and "follow" not in out.timings
    assert np.array_equal(out.face, pipe.render(snap, size=256).face)
    assert out.placement is None


def test_an_empty_canvas_is_not_sent_to_the_network(pipe) -> None:
    fake = FakePredictor(template_landmarks(DOC))
    render_following(pipe, Document.new(DOC).snapshot(), fake, size=256)
    assert fake.calls == 0


def test_the_setting_round_trips_and_old_projects_load_with_it_off(tmp_path) -> None:
    doc = _face_doc(template_landmarks(DOC))
    assert doc.follow_drawing  # a new drawing follows by default
    doc.follow_drawing = False
    data = document_to_dict(doc)
    assert "follow_drawing" not in data  # files of documents without it are unchanged
    assert document_from_dict(data).follow_drawing is False
    doc.follow_drawing = True
    again = document_from_dict(document_to_dict(doc))
    assert again.follow_drawing is True and again == doc
    assert again.snapshot().follow_drawing and again.copy().follow_drawing
    bad = {**document_to_dict(doc), "follow_drawing": "yes"}
    with pytest.raises(ValueError, match="follow_drawing"):
        document_from_dict(bad)


def test_follow_and_fit_windows_are_undoable() -> None:
    pts = _moved(template_landmarks(DOC), 1.0, 70, 30)
    doc = _face_doc(pts)
    doc.follow_drawing = False
    stack = CommandStack(doc)
    stack.push(SetFollowDrawing(True))
    assert doc.follow_drawing
    before = doc.layout
    stack.push(SetLayout(fitted_layout(pts, doc.layout)))  # "Fit windows to drawing"
    assert doc.layout.window("left_eye").center[0] == pytest.approx(
        before.window("left_eye").center[0] + 70, abs=1.0
    )
    stack.undo()
    assert doc.layout == before
    stack.undo()
    assert not doc.follow_drawing
    stack.redo()
    assert doc.follow_drawing
    assert math.isfinite(doc.layout.window("nose").center[0])


def test_a_small_change_of_the_fit_keeps_per_part_caching(pipe) -> None:
    """Landmarks jitter a little with every stroke; the strokes must not all move
    (that would re-run every branch), so an edit re-renders only its component."""
    pts = _moved(template_landmarks(DOC), 0.5, -90, -60)
    doc = _face_doc(pts)
    render_following(pipe, doc.snapshot(), FakePredictor(pts), size=256)
    mouth = pts[48:60].mean(0)
    doc.strokes = [*doc.strokes, Stroke(np.array([mouth, mouth + 2]), 3.0)]
    jitter = pts + np.float32(0.3)  # the new prediction moved a third of a pixel
    out = render_following(pipe, doc.snapshot(), FakePredictor(jitter), size=256)
    assert out.recomputed and "left_eye" not in out.recomputed


def test_missing_landmark_weights_render_as_drawn_with_a_warning(pipe, monkeypatch) -> None:
    from facesketch.engine import landmarks as el
    from facesketch.engine.weights import WeightsError

    def missing(_device):
        raise WeightsError("landmarks.safetensors: not found; reinstall facesketch")

    monkeypatch.setattr(el, "predictor_for", missing)
    snap = _face_doc(_moved(template_landmarks(DOC), 0.5, -90, -60)).snapshot()
    out = el.render_following(pipe, snap, size=256)
    assert out.face is not None
    assert any("Follow my drawing" in w and "reinstall" in w for w in out.warnings)
