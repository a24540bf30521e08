"""The window's landmark actions: Show landmarks draws the predicted points, Follow my
drawing is an undoable document setting the render request carries, Fit windows moves
the windows onto the drawing in one undo step.  A stand-in predictor (exact points of a
drawn template face) replaces the network; it runs through the engine's job path."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np
import pytest

pytest.importorskip("pytestqt")
from PySide6.QtCore import QSettings  # noqa: E402
from PySide6.QtWidgets import QMessageBox  # noqa: E402

from facesketch.sketch.document import Stroke  # noqa: E402
from facesketch.ui.engine_client import EngineClient  # noqa: E402
from facesketch.ui.main_window import MainWindow  # noqa: E402
from facesketch.ui.settings import Settings  # noqa: E402
from tests.test_ui_window import FakeBackend, FakeService  # noqa: E402
from train.landmarks import STROKES, template_landmarks  # noqa: E402

CANVAS = 256
SHIFT = np.array([40.0, -20.0], np.float32)


def _fake_predict(snapshot):
    """What the engine job returns, from the strokes themselves (jaw = points 0-16...)."""
    from facesketch.engine.landmarks import DocumentLandmarks, fitted_layout

    if not snapshot.strokes:
        return DocumentLandmarks(None, None)
    pts = np.concatenate(
        [s.points[: b - a + 1] for s, (a, b, _) in zip(snapshot.strokes, STROKES, strict=True)]
    )
    return DocumentLandmarks(pts, fitted_layout(pts, snapshot.layout))


@pytest.fixture
def window(qtbot, tmp_path, monkeypatch):
    monkeypatch.setenv("FACESKETCH_HOME", str(tmp_path / "home"))
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: QMessageBox.StandardButton.Discard)
    settings = Settings(QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat))
    settings.set("canvas_size", CANVAS)
    service = FakeService()
    win = MainWindow(EngineClient(service), FakeBackend(), settings, samples_dir=None)
    win.service = service
    win.landmark_actions.predict = _fake_predict
    qtbot.addWidget(win)
    win.show()
    qtbot.waitExposed(win)
    yield win
    win.model.modified = False


def _draw_face(win: MainWindow) -> np.ndarray:
    pts = template_landmarks(CANVAS) + SHIFT
    strokes = [
        Stroke(np.r_[pts[a : b + 1], pts[a : a + 1]] if closed else pts[a : b + 1], 1.5)
        for a, b, closed in STROKES
    ]
    win.model.add_strokes(strokes)
    return pts


def test_show_landmarks_draws_the_predicted_points(qtbot, window):
    assert window.canvas.landmarks_shown == 0
    _draw_face(window)
    window.landmark_actions.act_show.trigger()
    qtbot.waitUntil(lambda: window.canvas.landmarks_shown == 68, timeout=3000)
    window.landmark_actions.act_show.trigger()
    assert window.canvas.landmarks_shown == 0


def test_follow_my_drawing_is_an_undoable_setting_sent_with_renders(qtbot, window):
    _draw_face(window)
    act = window.landmark_actions.act_follow
    # a new drawing follows by default: people rarely draw inside the windows
    assert act.isChecked() and window.model.doc.follow_drawing
    window.request_render()
    assert window.service.requests[-1].document.follow_drawing
    act.trigger()
    assert not window.model.doc.follow_drawing and not act.isChecked()
    window.request_render()
    assert not window.service.requests[-1].document.follow_drawing
    window.model.undo()
    assert window.model.doc.follow_drawing and act.isChecked()


def test_fit_windows_moves_them_onto_the_drawing_in_one_undo_step(qtbot, window):
    _draw_face(window)
    before = window.model.doc.layout
    window.landmark_actions.act_fit.trigger()
    qtbot.waitUntil(lambda: window.model.doc.layout != before, timeout=3000)
    moved = window.model.doc.layout
    for name in ("left_eye", "right_eye"):
        dx = moved.window(name).center[0] - before.window(name).center[0]
        assert dx == pytest.approx(SHIFT[0], abs=6)
    window.model.undo()
    assert window.model.doc.layout == before
    assert len(window.model.doc.strokes) == len(STROKES)  # the strokes stayed


def test_windows_are_shown_where_a_followed_face_was_drawn(qtbot, window):
    """While Follow my drawing moves the face, the dashed windows are drawn through the
    same move (they stay layout windows: a drag still moves the layout's window)."""
    from PySide6.QtCore import QPointF

    from facesketch.engine.contract import RenderResult

    canvas = window.canvas
    item = canvas._windows["left_eye"]
    w = window.model.doc.layout.window("left_eye")
    placement = np.array([[0.5, 0.0, 10.0], [0.0, 0.5, 20.0]])  # drawn at half size
    face = np.zeros((64, 64, 3), np.uint8)
    sketch = np.full((64, 64), 255, np.uint8)
    window.on_render_finished(RenderResult(1, face, sketch, placement=placement))
    corner = item.mapToScene(QPointF(0, 0))
    assert (corner.x(), corner.y()) == pytest.approx((0.5 * w.x + 10, 0.5 * w.y + 20))
    assert item.pos() == QPointF(w.x, w.y)  # still the layout's own place
    assert item.sceneBoundingRect().width() < 0.6 * item.boundingRect().width()
    # a render as drawn (Follow off, or the face already in place) puts them back
    window.on_render_finished(RenderResult(2, face, sketch))
    assert canvas.window_placement().isIdentity()
    corner = item.mapToScene(QPointF(0, 0))
    assert (corner.x(), corner.y()) == pytest.approx((w.x, w.y))
