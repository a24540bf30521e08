"""The cartoon panel in the main window: ink, proportions and split as a person uses them.

Ink and proportions are document settings (one undo step each, saved in the
project, sent with the next render); the before/after split is a view option.
"""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402

pytest.importorskip("pytestqt")
from fake_engine import FakeEngine  # noqa: E402
from PySide6.QtCore import QPoint, QSettings, Qt  # noqa: E402
from PySide6.QtWidgets import QMessageBox, QTabWidget  # noqa: E402

from facesketch.engine.contract import RenderRequest, RenderResult  # noqa: E402
from facesketch.sketch.cartoon_settings import CartoonSettings  # noqa: E402
from facesketch.sketch.project import load_project  # noqa: E402
from facesketch.ui.backend import Backend  # noqa: E402
from facesketch.ui.engine_client import EngineClient  # noqa: E402
from facesketch.ui.main_window import MainWindow  # noqa: E402
from facesketch.ui.settings import Settings  # noqa: E402


class _CartoonEngine(FakeEngine):
    """Answers with a face and, when a style is asked for, a cartoon."""

    def render(self, request: RenderRequest, rid: int) -> RenderResult:
        r = super().render(request, rid)
        cartoon = None
        if request.cartoon_style:
            cartoon = np.full((self.side, self.side, 3), 200, np.uint8)
        return RenderResult(rid, r.face, r.sketch, cartoon=cartoon, timings={"total": 1.0})


class _Backend(Backend):
    def list_styles(self) -> list[str]:
        return ["testing"]

    def gallery_suggestions(self) -> dict:
        return {}  # the real one loads torch on a worker thread


@pytest.fixture
def window(qtbot, tmp_path, monkeypatch):  # noqa: ANN001, ANN201
    monkeypatch.setenv("FACESKETCH_HOME", str(tmp_path / "home"))
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: QMessageBox.StandardButton.Discard)
    settings = Settings(QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat))
    settings.set("canvas_size", 256)
    settings.set("last_dir", str(tmp_path))
    service = _CartoonEngine()
    win = MainWindow(EngineClient(service), _Backend(), settings, samples_dir=None)
    win.service = service
    qtbot.addWidget(win)
    win.resize(1200, 800)
    win.show()
    qtbot.waitExposed(win)
    tabs = next(t for t in win.findChildren(QTabWidget) if t.indexOf(win.cartoon) >= 0)
    tabs.setCurrentWidget(win.cartoon)  # the user opens the Cartoon tab
    qtbot.waitExposed(win.cartoon)
    yield win


def _click(qtbot, box) -> None:  # noqa: ANN001
    """Click a check box on its indicator (its middle may be past the label)."""
    qtbot.mouseClick(box, Qt.MouseButton.LeftButton, pos=QPoint(8, box.height() // 2))


def test_ink_and_proportions_are_undoable_saved_and_rendered(qtbot, window, tmp_path: Path):
    panel, model = window.cartoon, window.model
    assert not panel.ink_width.isEnabled()  # width and darkness wait for the ink
    _click(qtbot, panel.ink)
    assert model.doc.cartoon.ink and panel.ink_width.isEnabled()
    panel.ink_width.setValue(250)  # keyboard / wheel changes are edits too
    panel.ink_darkness.setValue(40)
    panel.proportions.setValue(60)
    want = CartoonSettings(ink=True, ink_width=2.5, ink_darkness=0.4, proportions=0.6)
    assert model.doc.cartoon == want and model.modified
    qtbot.waitUntil(
        lambda: (
            bool(window.service.requests) and window.service.requests[-1].document.cartoon == want
        )
    )

    model.undo()  # one step per change: proportions first
    assert model.doc.cartoon == want.with_(proportions=0.0)
    assert panel.proportions.value() == 0  # the panel shows the undone value
    for _ in range(3):
        model.undo()
    assert model.doc.cartoon == CartoonSettings() and not panel.ink.isChecked()
    assert not panel.ink_width.isEnabled()
    for _ in range(4):
        model.redo()
    assert model.doc.cartoon == want and panel.ink_width.value() == 250

    path = tmp_path / "inked.json"
    assert window.file_actions.save_to(path)
    assert load_project(path).cartoon == want
    model.new(256)
    assert model.doc.cartoon == CartoonSettings() and panel.proportions.value() == 0
    assert window.file_actions.open_project(path)
    assert model.doc.cartoon == want
    assert panel.ink.isChecked() and panel.proportions.value() == 60


def test_dragging_a_slider_is_one_undo_step(qtbot, window):
    panel, model = window.cartoon, window.model
    panel.proportions.setSliderDown(True)  # the user holds the handle and drags
    for v in (10, 20, 35, 50):
        panel.proportions.setValue(v)
    assert model.doc.cartoon.proportions == 0.0  # nothing committed mid-drag
    panel.proportions.setSliderDown(False)  # release
    assert model.doc.cartoon.proportions == 0.5
    model.undo()
    assert model.doc.cartoon.proportions == 0.0 and not model.can_undo()


def test_split_view_shows_before_and_after_without_editing_the_document(qtbot, window):
    panel, model = window.cartoon, window.model
    panel.enabled.setChecked(True)
    qtbot.waitUntil(lambda: panel.cartoon is not None, timeout=5000)
    assert not panel.preview.split
    _click(qtbot, panel.split)
    assert panel.preview.split
    assert not model.can_undo() and model.doc.cartoon == CartoonSettings()  # a view option
    _click(qtbot, panel.split)
    assert not panel.preview.split
