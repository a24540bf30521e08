"""The window's life cycle: the autosave interval setting, and a clean close.

A closed window must really go away (deleted, its engine's threads finished)
without Python errors from items asking a deleted view for its zoom: leftovers like
these once crashed a later test of the same pytest process, so ``make test`` needed
two processes.
"""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import gc  # noqa: E402
import threading  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402

pytest.importorskip("pytestqt")
from PySide6.QtCore import QCoreApplication, QEvent, QSettings  # noqa: E402
from PySide6.QtWidgets import QApplication, QMessageBox  # noqa: E402

from facesketch.engine.contract import RenderResult, run_job  # noqa: E402
from facesketch.ui.backend import Backend  # noqa: E402
from facesketch.ui.engine_client import EngineClient  # noqa: E402
from facesketch.ui.main_window import MainWindow  # noqa: E402
from facesketch.ui.settings import AUTOSAVE_CHOICES, Settings  # noqa: E402


class _Engine:
    """Answers on plain threads, and joins them all on shutdown (as the real one does)."""

    def __init__(self) -> None:
        self.threads: list[threading.Thread] = []
        self.shut_down = False

    def _start(self, fn: Any, *args: Any) -> None:
        t = threading.Thread(target=fn, args=args)
        self.threads.append(t)
        t.start()

    def submit(self, request: Any, callback: Any) -> int:
        face, sketch = np.zeros((8, 8, 3), np.uint8), np.full((8, 8), 255, np.uint8)
        self._start(callback, RenderResult(len(self.threads) + 1, face, sketch, device="fake"))
        return len(self.threads)

    def run_async(self, fn: Any, *args: Any, callback: Any = None, tag: str = "") -> int:
        def job() -> None:
            result = run_job(0, fn, args, tag)
            if callback is not None:
                callback(result)

        self._start(job)
        return len(self.threads)

    def status(self) -> dict:
        return {"device": "fake"}

    def shutdown(self) -> None:
        self.shut_down = True
        for t in self.threads:
            t.join(30)


class _Backend(Backend):
    def list_styles(self) -> list[str]:
        return []


def _window(qtbot, tmp_path, monkeypatch) -> tuple[MainWindow, _Engine]:
    monkeypatch.setenv("FACESKETCH_HOME", str(tmp_path / "home"))
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: QMessageBox.StandardButton.Discard)
    settings = Settings(QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat))
    settings.set("canvas_size", 256)
    engine = _Engine()
    win = MainWindow(EngineClient(engine), _Backend(), settings, None)
    qtbot.addWidget(win)
    win.show()
    qtbot.waitExposed(win)
    return win, engine


def test_the_autosave_interval_is_a_setting(qtbot, tmp_path, monkeypatch) -> None:
    win, _ = _window(qtbot, tmp_path, monkeypatch)
    assert 0 in AUTOSAVE_CHOICES and 30 in AUTOSAVE_CHOICES
    for seconds in AUTOSAVE_CHOICES:
        win._set_setting("autosave_s", seconds)  # what the Settings menu entry does
        if seconds:
            assert win.autosave_timer.isActive() and win.autosave_timer.interval() == seconds * 1000
        else:
            assert not win.autosave_timer.isActive()  # "off"
    win._set_setting("autosave_s", 10)
    assert win.settings.get("autosave_s") == 10
    # remembered for the next start
    again = Settings(QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat))
    assert again.get("autosave_s") == 10 and again.autosave_ms() == 10_000


def test_a_closed_window_is_deleted_cleanly(qtbot, tmp_path, monkeypatch, capfd) -> None:
    win, engine = _window(qtbot, tmp_path, monkeypatch)
    for i in range(5):
        win.model.add_stroke(np.array([[20.0 + i, 30.0], [120.0, 140.0 + i]]), 2.0, False)
    win.request_render()
    qtbot.wait(50)
    capfd.readouterr()
    win.close()
    assert engine.shut_down and not any(t.is_alive() for t in engine.threads)
    win.deleteLater()
    QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)
    QCoreApplication.processEvents()
    err = capfd.readouterr().err
    assert "already deleted" not in err and "Error calling Python override" not in err, err
    assert not [w for w in QApplication.topLevelWidgets() if isinstance(w, MainWindow)]
    del win  # pytest-qt would close it again
    gc.collect()
