"""Suggested gallery faces in the appearance panel: shown with weights, picked, undone, saved."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import threading
from typing import Any

import numpy as np
import pytest

pytest.importorskip("pytestqt")
from PySide6.QtCore import QSettings  # noqa: E402

from facesketch.engine.contract import RenderResult, run_job  # noqa: E402
from facesketch.sketch.project import load_project, save_project  # noqa: E402
from facesketch.ui.appearance_panel import AppearancePanel  # noqa: E402
from facesketch.ui.backend import Backend  # noqa: E402
from facesketch.ui.engine_client import EngineClient  # noqa: E402
from facesketch.ui.main_window import MainWindow  # noqa: E402
from facesketch.ui.settings import Settings  # noqa: E402


def _faces(n: int) -> list[tuple[str, float, Any, str]]:
    return [
        (f"gallery:{i + 10}", w, None, f"gallery face {i + 10}")
        for i, w in enumerate([0.5, 0.3, 0.2][:n])
    ]


def test_panel_shows_suggestions_with_weights_and_reports_a_pick(qtbot):
    panel = AppearancePanel()
    qtbot.addWidget(panel)
    panel.show()
    row = panel.slots["nose"].suggested
    assert not row.isVisible()  # nothing rendered yet: nothing suggested
    panel.show_suggestions("nose", _faces(3), used=True)
    shown = [b for b in row.buttons if b.isVisible()]
    assert [b.text() for b in shown] == ["50%", "30%", "20%"]
    assert row.title.text() == "look from"
    with qtbot.waitSignal(panel.photoDropped) as got:
        shown[1].click()
    assert got.args == ["nose", "gallery:11", 0]
    panel.show_suggestions("nose", _faces(1), used=False)
    assert row.title.text() == "suggested"
    assert [b.isVisible() for b in row.buttons].count(True) == 1
    panel.show_suggestions("nose", [], used=False)
    assert not row.isVisible()


class _Service:
    """Renders a grey face at once; runs jobs on a thread like the real worker."""

    def __init__(self) -> None:
        self.requests: list[Any] = []

    def submit(self, request: Any, callback: Any) -> int:
        self.requests.append(request)
        face = np.full((64, 64, 3), 128, np.uint8)
        result = RenderResult(len(self.requests), face, np.full((64, 64), 255, np.uint8))
        threading.Thread(target=callback, args=(result,)).start()
        return len(self.requests)

    def cancel(self, request_id: int) -> None:
        pass

    def run_async(self, fn: Any, *args: Any, callback: Any, tag: str = "") -> int:
        threading.Thread(target=lambda: callback(run_job(0, fn, args, tag))).start()
        return 0

    def status(self) -> dict:
        return {"device": "fake-cpu"}

    def shutdown(self) -> None:
        pass


class _Backend(Backend):
    """The real gallery thumbnails; suggestions as the engine reports them."""

    def gallery_suggestions(self) -> dict:
        crop = np.full((32, 32, 3), 90, np.uint8)
        rows = [("gallery:3", 0.7, crop, "gallery face 3"), ("gallery:8", 0.3, crop, "face 8")]
        return {"look": "gallery", "components": {"nose": rows, "background": rows[:1]}}

    def list_styles(self) -> list[str]:
        return []


def test_picking_a_suggested_face_sets_the_slot_undoably_and_saves(qtbot, tmp_path, monkeypatch):
    monkeypatch.setenv("FACESKETCH_HOME", str(tmp_path / "home"))
    settings = Settings(QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat))
    settings.set("last_dir", str(tmp_path))
    win = MainWindow(EngineClient(_Service()), _Backend(), settings, samples_dir=None)
    qtbot.addWidget(win)
    win.show()
    win.model.set_scn(0.3)  # any edit renders; the render asks for suggestions
    row = win.appearance.slots["nose"].suggested
    qtbot.waitUntil(lambda: row.isVisible() and row.buttons[0].isVisible(), timeout=30000)
    assert row.title.text() == "look from"  # gallery look, no photo in the slot
    assert row.buttons[0].text() == "70%"
    with qtbot.waitSignal(win.model.changed, timeout=30000):
        row.buttons[0].click()  # the real engine thumbnails of gallery face 3
    assert tuple(win.model.slot("nose").paths) == ("gallery:3",)
    assert not win.appearance.slots["nose"].first.pixmap().isNull()
    path = tmp_path / "p.json"
    save_project(win.model.doc, path)
    assert tuple(load_project(path).appearance["nose"].paths) == ("gallery:3",)
    win.model.undo()
    assert win.model.slot("nose") is None or not win.model.slot("nose").paths
    win.model.modified = False  # closing asks nothing: the edits were checked, not kept


def test_project_refuses_a_malformed_gallery_reference(tmp_path):
    import json

    from facesketch.sketch import Document
    from facesketch.sketch.document import AppearanceSlot
    from facesketch.sketch.project import ProjectError

    doc = Document(appearance={"mouth": AppearanceSlot(("gallery:7",))})
    path = tmp_path / "x.json"
    save_project(doc, path)
    data = json.loads(path.read_text(encoding="utf-8"))
    assert data["appearance"]["mouth"]["paths"] == ["gallery:7"]  # not made a file path
    data["appearance"]["mouth"]["paths"] = ["gallery:seven"]
    path.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(ProjectError, match="gallery:<face number>"):
        load_project(path)
