"""Window-test helpers: a ``contract.RenderEngine`` double that answers on other
threads, as the real render service does, without torch; a shown window on it; a
mouse stroke.

Subclass :class:`FakeEngine` and override :meth:`FakeEngine.render` (what a request
renders to); jobs run for real on plain threads and come back as ``contract.JobResult``.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from PySide6.QtCore import QSettings, Qt
from PySide6.QtWidgets import QMessageBox

from facesketch.engine.contract import (
    JobCallback,
    RenderCallback,
    RenderRequest,
    RenderResult,
    run_job,
)
from facesketch.ui.backend import Backend
from facesketch.ui.engine_client import EngineClient
from facesketch.ui.main_window import MainWindow
from facesketch.ui.settings import Settings


class FakeEngine:
    """Renders a flat face whose grey level counts the strokes (``render`` to change)."""

    device = "fake-cpu"
    side = 32  # pixels of the fake face and sketch

    def __init__(self) -> None:
        self.requests: list[RenderRequest] = []
        self._ids = itertools.count(1)
        self._lock = threading.Lock()

    def render(self, request: RenderRequest, rid: int) -> RenderResult:
        """The result of one request (override for errors, sizes, cartoons)."""
        n = len(request.document.strokes)
        face = np.full((self.side, self.side, 3), n % 255, np.uint8)
        sketch = np.full((self.side, self.side), 255, np.uint8)
        return RenderResult(rid, face, sketch, timings={"total": 1.0}, device=self.device)

    def deliver(
        self, request: RenderRequest, result: RenderResult, callback: RenderCallback
    ) -> None:
        """Runs on the answering thread (override to record what was answered)."""
        callback(result)

    def submit(self, request: RenderRequest, callback: RenderCallback) -> int:
        with self._lock:
            rid = next(self._ids)
            self.requests.append(request)
        result = self.render(request, rid)
        threading.Thread(target=self.deliver, args=(request, result, callback)).start()
        return rid

    def run_async(
        self, fn: Callable[..., Any], *args: Any, callback: JobCallback | None = None, tag: str = ""
    ) -> int:
        with self._lock:
            jid = next(self._ids)

        def job() -> None:
            result = run_job(jid, fn, args, tag)
            if callback is not None:
                callback(result)

        threading.Thread(target=job).start()
        return jid

    def status(self) -> dict[str, Any]:
        return {"device": self.device}

    def shutdown(self) -> None:
        pass


def open_window(
    qtbot: Any,
    tmp_path: Any,
    monkeypatch: pytest.MonkeyPatch,
    engine: FakeEngine,
    backend: Backend,
    canvas: int = 256,
    size: tuple[int, int] = (1200, 800),
    zoom_one: bool = True,
) -> MainWindow:
    """A shown main window on ``engine``: its own settings and home under ``tmp_path``,
    every unsaved-changes question answered Discard, canvas at zoom 1 and centred
    (``zoom_one=False``: as the window fitted it at start)."""
    monkeypatch.setenv("FACESKETCH_HOME", str(tmp_path / "home"))
    discard = QMessageBox.StandardButton.Discard
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: discard)
    settings = Settings(QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat))
    settings.set("canvas_size", canvas)
    settings.set("last_dir", str(tmp_path))
    win = MainWindow(EngineClient(engine), backend, settings, samples_dir=None)
    win.service = engine  # type: ignore[attr-defined]  (tests read what was requested)
    qtbot.addWidget(win)
    win.resize(*size)
    win.show()
    qtbot.waitExposed(win)
    qtbot.wait(10)  # the window fits the canvas once shown (a zero timer): let it run first
    if zoom_one:
        win.canvas.set_zoom(1.0)
        win.canvas.centerOn(canvas / 2, canvas / 2)
    return win


def draw(qtbot: Any, win: MainWindow, points: Any) -> None:
    """Drag the mouse over the canvas through ``points`` (canvas pixels)."""
    vp = win.canvas.viewport()
    pos = [win.canvas.scene_to_viewport(float(x), float(y)) for x, y in points]
    qtbot.mousePress(vp, Qt.MouseButton.LeftButton, pos=pos[0])
    for p in pos[1:]:
        qtbot.mouseMove(vp, p)
    qtbot.mouseRelease(vp, Qt.MouseButton.LeftButton, pos=pos[-1])
