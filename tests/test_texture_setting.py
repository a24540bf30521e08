"""The window's Real texture setting and the status line's texture source."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

pytest.importorskip("pytestqt")
from fake_engine import FakeEngine, open_window  # noqa: E402

from facesketch.engine.contract import RenderResult, texture_label  # noqa: E402
from facesketch.ui.backend import Backend  # noqa: E402


def test_texture_labels():
    assert texture_label("gallery:7") == "gallery face 7"
    assert texture_label("/home/me/photos/anna.jpg") == "anna.jpg"


def test_the_real_texture_setting_reaches_the_engine_and_the_status_names_the_source(
    qtbot, tmp_path, monkeypatch
):
    """Settings > Real texture goes with every render request; the status line says
    which photo gave the face its texture."""
    engine = FakeEngine()
    win = open_window(qtbot, tmp_path, monkeypatch, engine, Backend(), 256)
    win.request_render()
    qtbot.waitUntil(lambda: len(engine.requests) >= 1)
    assert engine.requests[-1].texture is True  # the default: on
    win._set_setting("texture", "off")
    qtbot.waitUntil(lambda: engine.requests[-1].texture is False, timeout=5000)
    face = np.zeros((256, 256, 3), np.uint8)
    win.on_render_finished(RenderResult(99, face=face, texture=["gallery:42"]))
    assert "texture: gallery face 42" in win.time_label.text()
    win._set_setting("texture", "on")  # leave the test's settings as they were
