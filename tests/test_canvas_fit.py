"""The canvas fits its view at start and on resize: the whole paper on screen, no scroll bars.

The scene is larger than the paper (room to pan), so a fit drawn with scroll bars left
the paper scrolled partly out of view in a 1600x1000 window (seen under Xvfb).
"""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import pytest

pytest.importorskip("pytestqt")
from fake_engine import FakeEngine, open_window  # noqa: E402
from PySide6.QtCore import QRect  # noqa: E402

from facesketch.ui.backend import Backend  # noqa: E402


def _paper_on_screen(win) -> QRect:
    c = win.model.doc.layout.canvas
    return win.canvas.mapFromScene(0, 0, c, c).boundingRect()


def _assert_fitted(win) -> None:
    vp = win.canvas.viewport().rect()
    paper = _paper_on_screen(win)
    assert vp.contains(paper), (vp, paper)
    # fitted, not merely small: the paper fills the view's shorter side
    assert max(paper.width() / vp.width(), paper.height() / vp.height()) > 0.95
    assert not win.canvas.horizontalScrollBar().isVisible()
    assert not win.canvas.verticalScrollBar().isVisible()


@pytest.mark.parametrize("canvas", [256, 512])
def test_the_paper_fits_its_view_at_start_and_after_a_resize(qtbot, tmp_path, monkeypatch, canvas):
    win = open_window(
        qtbot, tmp_path, monkeypatch, FakeEngine(), Backend(), canvas, (1600, 1000), zoom_one=False
    )
    qtbot.waitUntil(lambda: win.canvas.viewport().width() > 0)
    _assert_fitted(win)
    win.resize(1100, 700)
    qtbot.wait(20)
    _assert_fitted(win)


def test_a_chosen_zoom_brings_the_scroll_bars_back_and_fit_restores(qtbot, tmp_path, monkeypatch):
    win = open_window(qtbot, tmp_path, monkeypatch, FakeEngine(), Backend(), 512, zoom_one=False)
    win.canvas.set_zoom(3.0)  # larger than the view: it must be scrollable
    qtbot.wait(20)
    assert win.canvas.horizontalScrollBar().isVisible()
    win.canvas.fit()
    qtbot.wait(20)
    _assert_fitted(win)
