"""Shared test set-up: offscreen Qt, a private user-data folder, seeds, the data path."""

from __future__ import annotations

import gc
import os
import random
import sys
import threading
import time
from pathlib import Path

# Before anything imports Qt: tests never need (or may have) a display.
os.environ["QT_QPA_PLATFORM"] = "offscreen"
# The real-texture stage (dlib descriptor + gallery warp after the networks) is tested
# on its own in test_real_pixels.py, which turns it on; elsewhere tests look at what
# the networks draw (exact outputs, cache behaviour, colours of a dropped reference).
os.environ["FACESKETCH_TEXTURE"] = "0"

import numpy as np  # noqa: E402
import pytest  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
#: The shared data folder sits beside the repository (never copied into it).
SHARED_DATA = REPO.parent / "shared" / "data"


@pytest.fixture(scope="session", autouse=True)
def _private_user_dirs(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Autosaves and imported styles go to a temp folder, not the user's home."""
    home = tmp_path_factory.mktemp("facesketch_home")
    os.environ["FACESKETCH_HOME"] = str(home)


@pytest.fixture(autouse=True)
def _seed() -> None:
    """Same random numbers in every test run (torch too, when a test module uses it)."""
    random.seed(0)
    np.random.seed(0)
    torch = sys.modules.get("torch")  # not imported here: tests without torch stay fast
    if torch is not None:
        torch.manual_seed(0)


#: How long a test's leftover worker threads may take to finish after it (seconds).
THREAD_JOIN_S = 60.0


def _flush_deferred_deletes() -> None:
    """Really delete the windows pytest-qt closed (``deleteLater`` waits for this)."""
    widgets = sys.modules.get("PySide6.QtWidgets")
    if widgets is None or widgets.QApplication.instance() is None:
        return  # Qt never started: nothing to delete (and no import of Qt here)
    from PySide6.QtCore import QCoreApplication, QEvent

    QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)
    QCoreApplication.processEvents()
    gc.collect()


@pytest.fixture(autouse=True)
def _nothing_left_running():
    """Each test ends with its worker threads finished and its windows deleted.

    Engine doubles answer on plain threads; one still running (e.g. importing torch
    for a job) used to run on into the next test, where a second import of torch or
    a callback into a deleted window crashed the process.  So the suite needed two
    pytest processes; with this it runs in one.
    """
    before = set(threading.enumerate())
    yield
    deadline = time.monotonic() + THREAD_JOIN_S
    for t in set(threading.enumerate()) - before:
        if not t.daemon:
            t.join(max(0.0, deadline - time.monotonic()))
    _flush_deferred_deletes()
    stuck = [t.name for t in set(threading.enumerate()) - before if t.is_alive() and not t.daemon]
    if stuck:
        pytest.fail(f"the test left threads running after {THREAD_JOIN_S:g} s: {stuck}")


@pytest.fixture(autouse=True)
def _no_blocking_questions(monkeypatch: pytest.MonkeyPatch):
    """A modal question a test did not answer fails it instead of hanging the suite.

    Closing a window with unsaved changes asks "Save them?"; offscreen nobody clicks,
    so the run would wait forever.  Tests that mean to answer patch it themselves.
    """
    asked: list[str] = []
    widgets = sys.modules.get("PySide6.QtWidgets")
    if widgets is not None:

        def unexpected(_parent, title, text, *args, **kwargs):
            asked.append(f"{title}: {text}")
            return widgets.QMessageBox.StandardButton.Discard

        monkeypatch.setattr(widgets.QMessageBox, "question", unexpected)
    yield
    if asked:
        pytest.fail(f"the test left a modal question unanswered: {asked}")


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data`` beside the repository, or skip the test when it is absent."""
    if not (SHARED_DATA / "README.md").is_file():
        pytest.skip(f"../shared/data not present: {SHARED_DATA} has the training data")
    return SHARED_DATA
