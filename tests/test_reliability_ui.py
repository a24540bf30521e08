"""Crash recovery with the real window: a recovery copy is never lost by accident.

A session that crashed leaves its autosave behind (written here by a child process
that exits without cleaning up, as a crash does).  Cancel on the recovery offer must
keep that copy through everything this session does (opening the same project,
editing, autosaving, saving, quitting) and offer it again next time; a damaged newer
copy must not hide an older readable one; a recovered sketch comes back under its
project's name.
"""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402

pytest.importorskip("pytestqt")
from fake_engine import FakeEngine  # noqa: E402
from PySide6.QtCore import QSettings  # noqa: E402
from PySide6.QtWidgets import QMessageBox  # noqa: E402

import facesketch.sketch as sk  # noqa: E402
from facesketch.engine.contract import JobResult  # noqa: E402
from facesketch.ui.backend import Backend  # noqa: E402
from facesketch.ui.engine_client import EngineClient  # noqa: E402
from facesketch.ui.main_window import MainWindow  # noqa: E402
from facesketch.ui.settings import Settings  # noqa: E402

CANVAS = 256


class _Service(FakeEngine):
    """Renders nothing (the tests are about files); answers on another thread."""

    device, side = "fake", 8


class _Backend(Backend):
    def list_styles(self) -> list[str]:
        return []


@pytest.fixture
def make_window(qtbot, tmp_path, monkeypatch):
    monkeypatch.setenv("FACESKETCH_HOME", str(tmp_path / "home"))
    answers: list[QMessageBox.StandardButton] = []
    asked: list[str] = []

    def question(_parent: Any, title: str, text: str, *a: Any, **k: Any) -> Any:
        asked.append(f"{title}: {text}")
        return answers.pop(0) if answers else QMessageBox.StandardButton.Discard

    monkeypatch.setattr(QMessageBox, "question", question)

    def make() -> MainWindow:
        q = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
        settings = Settings(q)
        settings.set("canvas_size", CANVAS)
        win = MainWindow(EngineClient(_Service()), _Backend(), settings, None)
        qtbot.addWidget(win)
        win.show()
        qtbot.waitExposed(win)
        return win

    make.answers = answers  # type: ignore[attr-defined]
    make.asked = asked  # type: ignore[attr-defined]
    return make


def _crashed_session(project: Path | None, strokes: int, home: Path) -> None:
    """A child process autosaves ``strokes`` strokes and dies without cleaning up."""
    target = None if project is None else str(project)
    code = (
        "import os, numpy as np\n"
        "import facesketch.sketch as sk\n"
        f"doc = sk.Document.new({CANVAS})\n"
        "doc.strokes = [sk.Stroke(np.array([[10.0 + i, 20.0], [30.0, 40.0 + i]]), 2.0)"
        f" for i in range({strokes})]\n"
        f"sk.write_autosave(doc, {target!r})\n"
        "os._exit(1)\n"
    )
    env = {**os.environ, "FACESKETCH_HOME": str(home)}
    subprocess.run([sys.executable, "-c", code], env=env, check=False, timeout=120)


def _copies(home: Path) -> dict[str, bytes]:
    folder = home / "autosave"
    return {p.name: p.read_bytes() for p in sorted(folder.glob("*.json")) if p.parent == folder}


def test_cancel_keeps_the_recovery_copy_through_edits_saves_and_quit(
    qtbot, make_window, tmp_path
) -> None:
    home = tmp_path / "home"
    project = tmp_path / "mine.json"
    sk.save_project(sk.Document.new(CANVAS), project)
    _crashed_session(project, 7, home)
    crashed = _copies(home)
    assert len(crashed) == 1

    win = make_window()
    make_window.answers.append(QMessageBox.StandardButton.Cancel)
    assert not win.autosave_actions.offer_recovery()
    assert "mine.json" in make_window.asked[-1]  # the offer names the project, not a hash
    # the person goes on working on the same project: open, draw, autosave, save, quit
    assert win.file_actions.open_project(project)
    win.model.add_stroke(np.array([[5.0, 5.0], [50.0, 60.0]]), 2.0, False)
    win.autosave_actions.autosave()
    win.autosave_timer.timeout.emit()
    assert win.file_actions.save_to(project)
    win.model.add_stroke(np.array([[6.0, 5.0], [51.0, 60.0]]), 2.0, False)
    win.autosave_actions.autosave()
    win.close()
    qtbot.waitUntil(lambda: not win.isVisible())
    assert _copies(home) == crashed  # untouched, byte for byte

    # next start: offered again, and it still holds the crashed session's 7 strokes
    win2 = make_window()
    make_window.answers.append(QMessageBox.StandardButton.Yes)
    assert win2.autosave_actions.offer_recovery()
    assert len(win2.model.doc.strokes) == 7 and win2.model.modified
    # it comes back under its project's name, not untitled and not the hashed file name
    assert win2.model.path is not None and Path(win2.model.path) == project
    assert win2.windowTitle().startswith("mine.json*")


def test_discard_removes_the_copy(qtbot, make_window, tmp_path) -> None:
    home = tmp_path / "home"
    _crashed_session(None, 3, home)
    win = make_window()
    make_window.answers.append(QMessageBox.StandardButton.Discard)
    assert not win.autosave_actions.offer_recovery()
    assert _copies(home) == {}
    assert not win.autosave_actions.offer_recovery()  # nothing offered any more
    assert len(make_window.asked) == 1


def test_a_damaged_newest_copy_does_not_hide_an_older_one(qtbot, make_window, tmp_path) -> None:
    home = tmp_path / "home"
    older = tmp_path / "older.json"
    _crashed_session(older, 4, home)
    time.sleep(0.05)
    _crashed_session(tmp_path / "newer.json", 5, home)
    newest = max((home / "autosave").glob("newer-*.json"), key=lambda p: p.stat().st_mtime)
    newest.write_bytes(newest.read_bytes()[:50])  # torn by the crash
    os.utime(newest, (time.time() + 10, time.time() + 10))
    win = make_window()
    make_window.answers.append(QMessageBox.StandardButton.Yes)
    assert win.autosave_actions.offer_recovery()
    assert len(win.model.doc.strokes) == 4
    assert Path(win.model.path) == older and win.windowTitle().startswith("older.json*")
    # the damaged copy is kept aside, not deleted (someone may still rescue strokes from it)
    assert (home / "autosave" / "damaged" / newest.name).is_file()


def test_an_import_that_would_make_the_sketch_unsavable_is_refused(
    qtbot, make_window, tmp_path, monkeypatch
) -> None:
    from facesketch.sketch import project

    monkeypatch.setattr(project, "MAX_STROKES", 10)
    win = make_window()
    for i in range(6):
        win.model.add_stroke(np.array([[5.0 + i, 5.0], [50.0, 60.0]]), 2.0, False)
    before = [s.id for s in win.model.doc.strokes]
    many = [sk.Stroke(np.array([[1.0 + i, 2.0], [3.0, 4.0]]), 2.0) for i in range(5)]
    win.file_actions.on_job("strokes", [], JobResult(0, result=many, tag="strokes"))
    assert [s.id for s in win.model.doc.strokes] == before
    assert "11 strokes, more than the 10" in win.statusBar().currentMessage()
    # and a sketch that somehow got too big is never written over a good file
    path = tmp_path / "p.json"
    assert win.file_actions.save_to(path)
    good = path.read_bytes()
    win.model.add_strokes(many)
    assert not win.file_actions.save_to(path)
    assert path.read_bytes() == good and "erase some strokes" in win.statusBar().currentMessage()
