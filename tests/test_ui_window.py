"""The main window with a fake render service: drawing, undo, windows, drops, files.

Why one ~540-line file: every test drives the same real window through tests/fake_engine;
splitting by menu would only repeat the set-up imports.
"""

from __future__ import annotations

import os
import subprocess
import sys

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import threading
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

pytest.importorskip("pytestqt")
from fake_engine import FakeEngine, draw, open_window  # noqa: E402
from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl  # noqa: E402
from PySide6.QtGui import QDropEvent  # noqa: E402
from PySide6.QtWidgets import QMessageBox  # noqa: E402

from facesketch.engine.contract import RenderRequest, RenderResult  # noqa: E402
from facesketch.layout import NOSE  # noqa: E402
from facesketch.ui.backend import Backend  # noqa: E402
from facesketch.ui.canvas import SELECT  # noqa: E402
from facesketch.ui.main_window import MainWindow  # noqa: E402

CANVAS = 256


def FakeResult(request_id: int, face: Any, sketch: Any, **kw: Any) -> RenderResult:
    kw.setdefault("timings", {"total": 12.0})
    return RenderResult(request_id, face, sketch, device="fake-cpu", **kw)


class FakeService(FakeEngine):
    """Answers each render on another thread with a face whose colour counts strokes."""

    side = 64

    def __init__(self, error: str | None = None) -> None:
        super().__init__()
        self.error = error

    def render(self, request: RenderRequest, rid: int) -> RenderResult:
        if self.error:
            return FakeResult(rid, None, None, error=self.error)
        result = super().render(request, rid)
        return FakeResult(rid, result.face, result.sketch)


class FakeBackend(Backend):
    """Real image reading; alignment replaced by a centre crop; 'noface' files fail."""

    def reference_thumbnails(self, path: str) -> dict[str, np.ndarray]:
        from facesketch.imaging import read_image

        if "noface" in Path(path).name:
            raise ValueError(f"no face found in {path}: try a photo with one clear, frontal face")
        img = cv2.resize(read_image(path), (64, 64))
        return {k: img for k in ("face", "left_eye", "right_eye", "nose", "mouth", "background")}

    def list_styles(self) -> list[str]:
        return ["testing"]


@pytest.fixture
def window(qtbot, tmp_path, monkeypatch):
    # (open_window answers every question box: pytest-qt closes the window first)
    win = open_window(qtbot, tmp_path, monkeypatch, FakeService(), FakeBackend(), CANVAS)
    win.activateWindow()
    qtbot.waitUntil(win.isActiveWindow, timeout=2000)  # shortcuts need an active window
    yield win


_draw = draw


def _wait_render(qtbot, win: MainWindow) -> Any:
    with qtbot.waitSignal(win.renderShown, timeout=5000) as blocker:
        pass
    return blocker.args[0]


def test_drawing_creates_a_stroke_and_requests_a_render(qtbot, window):
    n0 = len(window.service.requests)
    threads = []
    window.renderShown.connect(lambda _r: threads.append(threading.current_thread()))

    # the render of the one-stroke sketch (an earlier answer may still be on its way)
    def one_stroke(r: RenderResult) -> bool:
        return r.face is not None and r.face[0, 0, 0] == 1

    with qtbot.waitSignal(window.renderShown, timeout=5000, check_params_cb=one_stroke) as got:
        _draw(qtbot, window, [(15, 20), (25, 30), (35, 32), (45, 40)])
    assert len(window.model.doc.strokes) == 1
    stroke = window.model.doc.strokes[0]
    assert len(stroke.points) >= 3
    assert abs(stroke.points[0][0] - 15) < 2 and abs(stroke.points[-1][1] - 40) < 2
    result = got.args[0]
    assert len(window.service.requests) > n0
    snapshot = window.service.requests[-1].document
    assert len(snapshot.strokes) == 1
    assert result.face[0, 0, 0] == 1
    assert window.result_view.face_array is not None
    assert "12 ms" in window.time_label.text()
    assert "fake-cpu" in window.device_label.text()
    # the fake engine answers on its own thread; the window handles it on the GUI thread
    assert threads and all(t is threading.main_thread() for t in threads)


def test_undo_redo_with_shortcuts(qtbot, window):
    _draw(qtbot, window, [(20, 20), (30, 35), (45, 40)])
    _draw(qtbot, window, [(200, 200), (220, 230)])
    assert len(window.model.doc.strokes) == 2
    qtbot.keyClick(window.canvas, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert len(window.model.doc.strokes) == 1
    qtbot.keyClick(window.canvas, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert len(window.model.doc.strokes) == 0
    qtbot.keyClick(
        window.canvas,
        Qt.Key.Key_Z,
        Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier,
    )
    assert len(window.model.doc.strokes) == 1
    qtbot.keyClick(window.canvas, Qt.Key.Key_Y, Qt.KeyboardModifier.ControlModifier)
    assert len(window.model.doc.strokes) == 2
    window.clear_canvas()
    assert window.model.doc.strokes == [] or len(window.model.doc.strokes) == 0
    window.model.undo()
    assert len(window.model.doc.strokes) == 2


def test_select_move_and_delete_strokes(qtbot, window):
    _draw(qtbot, window, [(15, 200), (30, 210), (45, 200)])
    _draw(qtbot, window, [(200, 30), (220, 40)])
    window.set_tool(SELECT)
    vp = window.canvas.viewport()
    # rubber band around the first stroke only
    qtbot.mousePress(vp, Qt.MouseButton.LeftButton, pos=window.canvas.scene_to_viewport(5, 185))
    qtbot.mouseMove(vp, window.canvas.scene_to_viewport(30, 200))
    qtbot.mouseMove(vp, window.canvas.scene_to_viewport(55, 225))
    qtbot.mouseRelease(vp, Qt.MouseButton.LeftButton, pos=window.canvas.scene_to_viewport(55, 225))
    first = window.model.doc.strokes[0]
    assert window.canvas.selected_ids() == [str(first.id)]
    before = np.array(first.points, copy=True)
    # drag the selected stroke by its middle point
    px, py = (float(v) for v in before[len(before) // 2])
    steps = [(px + 10 * t, py - 5 * t) for t in (0.25, 0.5, 0.75, 1.0)]
    qtbot.mousePress(vp, Qt.MouseButton.LeftButton, pos=window.canvas.scene_to_viewport(px, py))
    for x, y in steps:
        qtbot.mouseMove(vp, window.canvas.scene_to_viewport(x, y))
    qtbot.mouseRelease(
        vp, Qt.MouseButton.LeftButton, pos=window.canvas.scene_to_viewport(*steps[-1])
    )
    moved = next(s for s in window.model.doc.strokes if str(s.id) == str(first.id))
    np.testing.assert_allclose(np.asarray(moved.points), before + [10.0, -5.0], atol=1e-4)
    window.canvas._strokes[str(first.id)].setSelected(True)
    qtbot.keyClick(window.canvas, Qt.Key.Key_Delete)
    assert [str(s.id) for s in window.model.doc.strokes] != [str(first.id)]
    assert len(window.model.doc.strokes) == 1
    window.model.undo()
    assert len(window.model.doc.strokes) == 2


def _drag(qtbot, window, start, end) -> None:
    vp = window.canvas.viewport()
    qtbot.mousePress(vp, Qt.MouseButton.LeftButton, pos=window.canvas.scene_to_viewport(*start))
    for t in (0.3, 0.6, 1.0):
        p = (start[0] + (end[0] - start[0]) * t, start[1] + (end[1] - start[1]) * t)
        qtbot.mouseMove(vp, window.canvas.scene_to_viewport(*p))
    qtbot.mouseRelease(vp, Qt.MouseButton.LeftButton, pos=window.canvas.scene_to_viewport(*end))


def test_dragging_a_component_window_moves_the_layout(qtbot, window):
    win0 = window.model.doc.layout.window(NOSE)
    # grab the nose window by its name tab (top-left corner), with the pen still selected
    start = (win0.x + 3, win0.y + 3)
    _drag(qtbot, window, start, (start[0] + 12, start[1] + 8))
    moved = window.model.doc.layout.window(NOSE)
    assert (moved.x, moved.y) == (win0.x + 12, win0.y + 8)
    assert len(window.model.doc.strokes) == 0  # a window drag draws nothing
    qtbot.waitUntil(
        lambda: (
            bool(window.service.requests)
            and window.service.requests[-1].document.layout.window(NOSE) == moved
        )
    )
    window.model.undo()
    assert window.model.doc.layout.window(NOSE) == win0


def test_the_pen_draws_across_window_borders_and_select_drags_them(qtbot, window):
    win0 = window.model.doc.layout.window(NOSE)
    # a pen stroke that starts on the nose window's top border draws; the window stays
    mid = (win0.x + win0.size / 2, win0.y)
    _drag(qtbot, window, mid, (mid[0] + 12, mid[1] + 8))
    assert len(window.model.doc.strokes) == 1
    assert window.model.doc.layout.window(NOSE) == win0
    # with the select tool the border band grabs the window
    window.set_tool(SELECT)
    _drag(qtbot, window, (mid[0] + 20, mid[1]), (mid[0] + 10, mid[1] - 6))
    moved = window.model.doc.layout.window(NOSE)
    assert (moved.x, moved.y) == (win0.x - 10, win0.y - 6)
    assert len(window.model.doc.strokes) == 1


def _photo(tmp_path: Path, name: str) -> Path:
    img = np.zeros((80, 80, 3), np.uint8)
    img[:, :, 0] = 200
    path = tmp_path / name
    cv2.imwrite(str(path), img)
    return path


def _drop(widget: Any, path: Path) -> None:
    """A drop of ``path`` in the middle of ``widget``, as a file manager sends it."""
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(path))])
    pos = QPointF(widget.width() / 2, widget.height() / 2)
    event = QDropEvent(
        pos, Qt.DropAction.CopyAction, mime, Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier
    )
    widget.dropEvent(event)
    assert event.isAccepted()


def test_dropping_a_photo_on_a_slot_sets_its_appearance(qtbot, window):
    photo = _photo(tmp_path := Path(window.settings.get("last_dir")), "ref_a.png")
    slot = window.appearance.slots["nose"]
    with qtbot.waitSignal(window.model.changed, timeout=5000):
        _drop(slot.first, photo)
    assert tuple(window.model.slot("nose").paths) == (str(photo),)
    assert not slot.first.pixmap().isNull()
    # a second photo on the same slot mixes; the slider then sets the mix
    other = _photo(tmp_path, "ref_b.png")
    with qtbot.waitSignal(window.model.changed, timeout=5000):
        _drop(slot.second, other)
    assert tuple(window.model.slot("nose").paths) == (str(photo), str(other))
    assert window.model.slot("nose").mix == pytest.approx(0.5)
    assert slot.mix.isEnabled()
    window.appearance_actions.on_mix_changed("nose", 0.25)
    assert window.model.slot("nose").mix == pytest.approx(0.25)
    slot.clear_button.click()
    assert window.model.slot("nose") is None or not window.model.slot("nose").paths


def test_a_slot_can_lend_its_photo_shape(qtbot, window):
    photo = _photo(Path(window.settings.get("last_dir")), "ref_shape.png")
    slot = window.appearance.slots["mouth"]
    assert not slot.shape.isEnabled()  # nothing to take a shape from yet
    with qtbot.waitSignal(window.model.changed, timeout=5000):
        _drop(slot.first, photo)
    assert slot.shape.isEnabled() and not window.model.slot("mouth").shape
    slot.shape.click()  # the mouth now takes the photo's shape, not the strokes'
    assert window.model.slot("mouth").shape
    qtbot.waitUntil(
        lambda: (
            bool(window.service.requests)
            and window.service.requests[-1].document.appearance["mouth"].shape
        )
    )
    other = _photo(Path(window.settings.get("last_dir")), "ref_shape_b.png")
    with qtbot.waitSignal(window.model.changed, timeout=5000):
        _drop(slot.second, other)  # other slot edits keep it
    assert window.model.slot("mouth").shape and slot.shape.isChecked()
    window.model.undo()
    window.model.undo()
    assert not window.model.slot("mouth").shape and not slot.shape.isChecked()
    assert tuple(window.model.slot("mouth").paths) == (str(photo),)


def test_dropping_a_photo_on_the_canvas_uses_the_component_under_it(qtbot, window):
    photo = _photo(Path(window.settings.get("last_dir")), "ref_c.png")
    with qtbot.waitSignal(window.model.changed, timeout=5000):
        window.canvas.photoDropped.emit("mouth", str(photo))
    assert tuple(window.model.slot("mouth").paths) == (str(photo),)
    layout = window.model.doc.layout
    w = layout.window("left_eye")
    vp_pos = window.canvas.scene_to_viewport(w.x + w.size / 2, w.y + w.size / 2)
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(photo))])
    event = QDropEvent(
        QPointF(vp_pos),
        Qt.DropAction.CopyAction,
        mime,
        Qt.MouseButton.NoButton,
        Qt.KeyboardModifier.NoModifier,
    )
    with qtbot.waitSignal(window.canvas.photoDropped, timeout=2000) as blocker:
        window.canvas.dropEvent(event)
    assert blocker.args == ["left_eye", str(photo)]


def test_a_photo_without_a_face_shows_a_message_and_keeps_the_appearance(qtbot, window):
    good = _photo(Path(window.settings.get("last_dir")), "ref_good.png")
    with qtbot.waitSignal(window.model.changed, timeout=5000):
        _drop(window.appearance.slots["face"].first, good)
    bad = _photo(Path(window.settings.get("last_dir")), "noface.png")
    _drop(window.appearance.slots["face"].first, bad)
    qtbot.waitUntil(lambda: window.notice.isVisible(), timeout=5000)
    assert "no face found" in window.notice.text()
    assert "no face found" in window.statusBar().currentMessage()
    assert tuple(window.model.slot("face").paths) == (str(good),)


def test_save_open_round_trip(qtbot, window, tmp_path):
    _draw(qtbot, window, [(15, 20), (30, 40), (40, 45)])
    window.model.move_window(NOSE, 100, 120)
    window.model.set_scn(0.4)
    path = tmp_path / "face.json"
    assert window.file_actions.save_to(path)
    assert not window.model.modified and "face.json" in window.windowTitle()
    saved = window.model.doc
    window.model.new(CANVAS)
    assert len(window.model.doc.strokes) == 0
    assert window.file_actions.open_project(path)
    doc = window.model.doc
    assert len(doc.strokes) == 1
    np.testing.assert_allclose(doc.strokes[0].points, saved.strokes[0].points, atol=1e-3)
    assert doc.layout.window(NOSE) == saved.layout.window(NOSE)
    assert doc.scn_strength == pytest.approx(0.4)
    assert str(path.resolve()) in window.settings.get("recent")
    # a corrupt file is refused with a message and changes nothing
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    assert not window.file_actions.open_project(bad)
    assert window.notice.isVisible()
    assert len(window.model.doc.strokes) == 1


def test_exports_write_images(qtbot, window, tmp_path):
    assert (
        window.file_actions.export_image("face", tmp_path / "none.png") is None
    )  # nothing rendered yet
    _draw(qtbot, window, [(15, 20), (30, 40), (40, 45)])
    _wait_render(qtbot, window)
    for kind, name in (("face", "f.png"), ("sketch", "s.jpg"), ("sheet", "sheet.png")):
        out = window.file_actions.export_image(kind, tmp_path / name)
        assert out is not None and out.is_file()
        img = cv2.imread(str(out))
        assert img is not None and img.shape[0] > 0
    sheet = cv2.imread(str(tmp_path / "sheet.png"))
    assert sheet.shape[1] == 2 * sheet.shape[0]  # sketch | face


def test_engine_errors_are_shown_in_the_result_view(qtbot, window):
    window.engine.service.error = "no trained weights in resources/weights: run the training"
    window.schedule_render()
    qtbot.waitUntil(lambda: "no trained weights" in window.result_view.message, timeout=5000)
    assert window.result_view.face_array is None


def test_close_with_unsaved_changes_asks(qtbot, window, monkeypatch):
    _draw(qtbot, window, [(15, 20), (30, 40)])
    asked = []

    def answer(*args: Any, **kwargs: Any) -> Any:
        asked.append(args[1])
        return QMessageBox.StandardButton.Cancel

    monkeypatch.setattr(QMessageBox, "question", answer)
    window.close()
    assert asked and window.isVisible()


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_autosave_and_recovery(qtbot, window, monkeypatch):
    import facesketch.sketch as sk

    _draw(qtbot, window, [(15, 20), (30, 40)])
    window.autosave_actions.autosave()
    assert not window.model.find_autosaves()  # this session still keeps its own copy
    (own,) = sk.find_autosaves(left_behind_only=False)
    # the copy of a session that crashed: its process is gone
    pid = _dead_pid()
    crashed = own.with_name(f"untitled-{pid}.json")
    own.rename(crashed)
    crashed.with_name(crashed.name + ".owner").write_text(str(pid))
    assert window.model.find_autosaves() == [crashed]
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: QMessageBox.StandardButton.Yes)
    window.model.new(CANVAS)
    assert window.autosave_actions.offer_recovery()
    assert len(window.model.doc.strokes) == 1 and window.model.modified
    assert not crashed.exists() and not window.model.find_autosaves()
    assert sk.find_autosaves(left_behind_only=False)  # protected by this session's autosave
    window.autosave_actions.discard_autosave()
    assert not sk.find_autosaves(left_behind_only=False)


def test_eraser_zoom_and_pan(qtbot, window):
    window.set_tool("eraser")
    window.pen_width.setValue(9.0)
    _draw(qtbot, window, [(15, 20), (30, 40)])
    stroke = window.model.doc.strokes[-1]
    assert stroke.eraser and stroke.width == pytest.approx(9.0)
    assert window.settings.get("eraser_width") == pytest.approx(18.0)  # kept at 512 px
    z0 = window.canvas.zoom()
    qtbot.keyClick(window.canvas, Qt.Key.Key_Plus)
    assert window.canvas.zoom() == pytest.approx(z0 * 1.25)
    qtbot.keyClick(window.canvas, Qt.Key.Key_Minus)
    assert window.canvas.zoom() == pytest.approx(z0)
    window.canvas.set_zoom(3.0)
    h = window.canvas.horizontalScrollBar()
    before = h.value()
    vp = window.canvas.viewport()
    qtbot.mousePress(vp, Qt.MouseButton.MiddleButton, pos=QPointF(200, 200).toPoint())
    qtbot.mouseMove(vp, QPointF(150, 200).toPoint())
    qtbot.mouseRelease(vp, Qt.MouseButton.MiddleButton, pos=QPointF(150, 200).toPoint())
    assert h.value() == before + 50
    assert len(window.model.doc.strokes) == 1  # panning draws nothing


def test_import_sketch_as_layer_and_as_strokes(qtbot, window, tmp_path):
    sketch = np.full((100, 100), 255, np.uint8)
    cv2.line(sketch, (10, 50), (90, 50), 0, 2)
    cv2.circle(sketch, (50, 30), 12, 0, 2)
    path = tmp_path / "sketch.png"
    cv2.imwrite(str(path), sketch)
    window.file_actions.import_sketch(path, as_strokes=False)
    assert window.model.doc.background_image.shape == (CANVAS, CANVAS)
    with qtbot.waitSignal(window.model.changed, timeout=10_000):
        window.file_actions.import_sketch(path, as_strokes=True)
    assert len(window.model.doc.strokes) >= 2
    xs = np.concatenate([np.asarray(s.points)[:, 0] for s in window.model.doc.strokes])
    assert xs.max() > 0.8 * CANVAS  # scaled to the canvas, not left at 100 px
    window.model.undo()  # one step removes every imported stroke
    assert len(window.model.doc.strokes) == 0
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"not a png")
    window.file_actions.import_sketch(bad, as_strokes=False)
    assert "broken.png" in window.notice.text()


def test_start_from_photo_makes_an_editable_document(qtbot, window, tmp_path, monkeypatch):
    from facesketch.sketch import Stroke
    from facesketch.ui.backend import PhotoImport

    photo = _photo(tmp_path, "person.png")
    strokes = [Stroke(np.array([[10, 10], [50, 60]], np.float32), 2.0) for _ in range(3)]

    def fake_import(path: str, canvas: int) -> PhotoImport:
        assert canvas == CANVAS
        blank = np.zeros((canvas, canvas, 3), np.uint8)
        return PhotoImport(path, strokes, blank, blank[..., 0])

    monkeypatch.setattr(window.backend, "photo_to_document", fake_import)
    with qtbot.waitSignal(window.model.changed, timeout=5000):
        window.file_actions.start_from_photo(photo)
    qtbot.waitUntil(lambda: window.model.slot("face") is not None, timeout=5000)
    assert len(window.model.doc.strokes) == 3
    assert tuple(window.model.slot("face").paths) == (str(photo),)
    assert window.model.modified and window.model.path is None


def test_cartoon_preview_shows_the_engine_cartoon(qtbot, window):
    assert window.cartoon.style() is None  # off by default: renders stay fast
    window.cartoon.enabled.setChecked(True)
    assert window.cartoon.style() == "testing"
    qtbot.waitUntil(
        lambda: (
            bool(window.service.requests) and window.service.requests[-1].cartoon_style == "testing"
        )
    )
    assert window.service.requests[-1].cartoon_style == "testing"
    result = FakeResult(
        99, np.zeros((8, 8, 3), np.uint8), None, cartoon=np.ones((8, 8, 3), np.uint8)
    )
    window.on_render_finished(result)
    assert window.cartoon.export_button.isEnabled()
    assert window.file_actions.export_array("cartoon") is result.cartoon


def test_import_style_dialog_imports_and_lists_the_style(qtbot, window, monkeypatch, tmp_path):
    from PySide6.QtWidgets import QFileDialog, QInputDialog

    weights = tmp_path / "Hayao_net_G_float.pth"
    weights.write_bytes(b"weights")
    imported = []

    def fake_import(path: str, name: str) -> Path:
        imported.append((path, name))
        return tmp_path / f"{name}.safetensors"

    monkeypatch.setattr(window.backend, "import_style", fake_import)
    monkeypatch.setattr(window.backend, "list_styles", lambda: ["testing", "hayao"])
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (str(weights), ""))
    asked = {}

    def get_text(*args: Any, **kwargs: Any) -> tuple[str, bool]:
        asked["default"] = kwargs.get("text")
        return "hayao", True

    monkeypatch.setattr(QInputDialog, "getText", get_text)
    window.file_actions.import_style_dialog()
    qtbot.waitUntil(lambda: window.cartoon.styles.count() == 2, timeout=5000)
    assert imported == [(str(weights), "hayao")] and asked["default"] == "hayao"


def test_recent_files_menu_reopens_a_project(qtbot, window, tmp_path):
    _draw(qtbot, window, [(15, 20), (30, 40)])
    path = tmp_path / "recent.json"
    assert window.file_actions.save_to(path)
    window.model.new(CANVAS)
    actions = window.file_actions.recent_menu.actions()
    assert [a.toolTip() for a in actions] == [str(path.resolve())]
    actions[0].trigger()
    assert (
        window.model.path == path.resolve() or Path(window.model.path).resolve() == path.resolve()
    )
    assert len(window.model.doc.strokes) == 1


def test_pen_draws_at_the_trained_width_on_every_canvas(qtbot, window, tmp_path):
    """The pen's default is the width the networks were trained on, scaled to the canvas:
    a 256 sketch is not drawn twice as thick as a 512 one."""
    import facesketch.sketch as sk

    _draw(qtbot, window, [(15, 20), (30, 40)])
    assert window.model.doc.layout.canvas == 256
    assert window.model.doc.strokes[-1].width == pytest.approx(sk.default_pen_width(256))
    assert window.pen_width.value() == pytest.approx(sk.default_pen_width(256))
    sk.save_project(sk.Document.new(512), tmp_path / "big.json")
    assert window.file_actions.open_project(tmp_path / "big.json")
    window.canvas.set_zoom(1.0)
    window.canvas.centerOn(256, 256)
    _draw(qtbot, window, [(200, 200), (260, 240)])
    assert window.model.doc.strokes[-1].width == pytest.approx(sk.default_pen_width(512))
