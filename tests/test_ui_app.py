"""`facesketch app`: display detection, headless demo, screenshot, engine failures."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

pytest.importorskip("pytestqt")
from PySide6.QtCore import QSettings  # noqa: E402

from facesketch.resources import shipped_weights_dir  # noqa: E402
from facesketch.ui.app import DEMO_PROJECT, SAMPLES_DIR, _start_engine, has_display  # noqa: E402
from facesketch.ui.backend import Backend  # noqa: E402
from facesketch.ui.engine_client import EngineClient  # noqa: E402
from facesketch.ui.main_window import MainWindow  # noqa: E402
from facesketch.ui.settings import Settings  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
FACESKETCH = Path(sys.executable).with_name("facesketch")


def _weights_present() -> bool:
    folder = Path(os.environ.get("FACESKETCH_WEIGHTS", shipped_weights_dir()))
    return any(folder.glob("fusion*.json"))


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, False),
        ({"DISPLAY": ":0"}, True),
        ({"WAYLAND_DISPLAY": "wayland-0"}, True),
        ({"QT_QPA_PLATFORM": "offscreen"}, True),
        ({"QT_QPA_PLATFORM": "xcb"}, True),
    ],
)
def test_display_detection(monkeypatch, env, expected):
    for key in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM"):
        monkeypatch.delenv(key, raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setattr(sys, "platform", "linux")
    assert has_display() is expected


def test_samples_are_small_and_the_demo_loads():
    from facesketch.sketch import load_project

    photos = sorted(SAMPLES_DIR.glob("*.jpg"))
    assert 2 <= len(photos) <= 4
    for p in photos:
        assert p.stat().st_size <= 40_000
        assert cv2.imread(str(p)).shape == (256, 256, 3)
    doc = load_project(DEMO_PROJECT)
    assert len(doc.strokes) > 50
    assert all(Path(p).is_file() for slot in doc.appearance.values() for p in slot.paths)
    sketch = doc.rasterize(256)
    assert 0.005 < float((sketch < 128).mean()) < 0.2  # a drawing, not a blank or a blot


class _BrokenBackend(Backend):
    def make_service(self, device: str = "auto"):
        raise RuntimeError("no weights for fusion: train them first")

    def list_styles(self) -> list[str]:
        return []


def _window_without_engine(qtbot, tmp_path, monkeypatch) -> MainWindow:
    """The real window and backend, with a render engine that could not start."""
    monkeypatch.setenv("FACESKETCH_HOME", str(tmp_path))
    backend = _BrokenBackend()
    settings = Settings(QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat))
    win = MainWindow(EngineClient(_start_engine(backend, "auto")), backend, settings, SAMPLES_DIR)
    qtbot.addWidget(win)
    return win


def test_window_opens_and_explains_when_the_engine_cannot_start(qtbot, tmp_path, monkeypatch):
    win = _window_without_engine(qtbot, tmp_path, monkeypatch)
    win.file_actions.open_sample(DEMO_PROJECT)
    win.show()
    qtbot.waitUntil(lambda: "no weights for fusion" in win.result_view.message, timeout=5000)
    assert win.model.path is None and len(win.model.doc.strokes) > 50
    assert win.appearance.samples.count() == len(list(SAMPLES_DIR.glob("*.jpg")))
    mime = win.appearance.samples.mimeData([win.appearance.samples.item(0)])
    assert mime.urls()[0].toLocalFile().endswith(".jpg")
    assert not win.cartoon.enabled.isEnabled()  # no styles: the preview cannot be turned on
    # photos still align without the render engine: the demo's whole-face thumbnail appears
    face_slot = win.appearance.slots["face"].first
    qtbot.waitUntil(lambda: not face_slot.pixmap().isNull(), timeout=60_000)


@pytest.mark.slow
def test_screenshot_command_writes_the_window(tmp_path):
    out = tmp_path / "shot.png"
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", FACESKETCH_HOME=str(tmp_path))
    proc = subprocess.run(
        [str(FACESKETCH), "app", "--screenshot", str(out)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    img = cv2.imread(str(out))
    assert img is not None and img.shape[1] >= 1000 and img.shape[0] >= 600
    assert float(np.std(img)) > 10  # not an empty grab


@pytest.mark.slow
def test_headless_app_renders_the_demo_or_says_why(tmp_path):
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")
    }
    proc = subprocess.run(
        [str(FACESKETCH), "app"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    out = tmp_path / "facesketch-demo.png"
    if _weights_present():
        assert proc.returncode == 0, proc.stderr
        assert str(out.resolve()) in proc.stdout
        img = cv2.imread(str(out))
        assert img.shape == (512, 1024, 3)
    else:
        assert proc.returncode == 1
        assert "could not be rendered" in proc.stderr and "weights" in proc.stderr
        assert not out.exists()


def test_real_alignment_of_a_dropped_photo_and_a_photo_without_a_face(qtbot, tmp_path, monkeypatch):
    win = _window_without_engine(qtbot, tmp_path, monkeypatch)
    win.show()
    sample = sorted(SAMPLES_DIR.glob("*.jpg"))[1]
    with qtbot.waitSignal(win.model.changed, timeout=60_000):
        win.appearance_actions.drop_photo("nose", str(sample), 0)
    assert tuple(win.model.slot("nose").paths) == (str(sample),)
    thumb = win.appearance_actions.ref_thumbs[str(sample)]["nose"]
    assert thumb.shape[:2] == (80, 80)  # the aligned nose window at 256
    blank = tmp_path / "wall.png"
    cv2.imwrite(str(blank), np.full((120, 160, 3), 180, np.uint8))
    win.appearance_actions.drop_photo("nose", str(blank), 0)
    qtbot.waitUntil(win.notice.isVisible, timeout=60_000)
    assert "no face" in win.notice.text().lower() and "wall.png" in win.notice.text()
    assert tuple(win.model.slot("nose").paths) == (str(sample),)
    win.model.modified = False


def test_the_ui_layer_does_not_import_torch():
    code = (
        "import sys; import facesketch.ui.main_window, facesketch.ui.app, facesketch.commands.app;"
        "print('torch' in sys.modules)"
    )
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"


@pytest.mark.skipif(not _weights_present(), reason="no trained weights in resources/weights")
def test_a_user_draws_drops_two_photos_cartoonizes_and_exports(qtbot, tmp_path, monkeypatch):
    """The issue's whole flow, with the shipped networks and real alignment."""
    from PySide6.QtCore import Qt
    from PySide6.QtWidgets import QMessageBox

    monkeypatch.setenv("FACESKETCH_HOME", str(tmp_path))
    # A failing step must not leave a modal "save changes?" box blocking the run.
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: QMessageBox.StandardButton.Discard)
    backend = Backend()
    service = _start_engine(backend, "cpu")
    settings = Settings(QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat))
    win = MainWindow(EngineClient(service), backend, settings, SAMPLES_DIR)
    qtbot.addWidget(win)
    win.resize(1200, 800)
    win.show()
    qtbot.waitExposed(win)
    win.file_actions.new_document()  # a blank canvas
    assert not win.model.doc.strokes
    c = win.model.doc.layout.canvas / 512  # draw on the layout of a 512 canvas
    vp = win.canvas.viewport()
    shapes = [
        [(150, 120), (110, 260), (160, 420), (256, 470), (352, 420), (402, 260), (362, 120)],
        [(140, 220), (170, 205), (200, 220), (170, 232), (140, 220)],  # left eye
        [(310, 220), (340, 205), (370, 220), (340, 232), (310, 220)],  # right eye
        [(270, 335), (240, 325), (252, 262)],  # nose, begun clear of window borders
        [(205, 380), (256, 395), (307, 380), (256, 370), (205, 380)],  # mouth
    ]
    win.canvas.fit()  # the whole canvas on screen, whatever the window size
    for shape in shapes:
        pos = [win.canvas.scene_to_viewport(x * c, y * c) for x, y in shape]
        qtbot.mousePress(vp, Qt.MouseButton.LeftButton, pos=pos[0])
        for p in pos[1:]:
            qtbot.mouseMove(vp, p)
        qtbot.mouseRelease(vp, Qt.MouseButton.LeftButton, pos=pos[-1])
    assert len(win.model.doc.strokes) == len(shapes)
    qtbot.waitUntil(lambda: win.file_actions.export_array("face") is not None, timeout=60_000)
    before = win.file_actions.export_array("face").copy()
    samples = sorted(SAMPLES_DIR.glob("*.jpg"))
    for component, photo in (("left_eye", samples[1]), ("mouth", samples[2])):
        with qtbot.waitSignal(win.model.changed, timeout=60_000):
            win.appearance_actions.drop_photo(component, str(photo), 0)
        assert tuple(win.model.slot(component).paths) == (str(photo),)
    qtbot.waitUntil(
        lambda: not np.array_equal(win.file_actions.export_array("face"), before), timeout=60_000
    )
    win.cartoon.enabled.setChecked(True)
    assert win.cartoon.style() is not None
    qtbot.waitUntil(lambda: win.file_actions.export_array("cartoon") is not None, timeout=60_000)
    for kind in ("face", "cartoon"):
        out = win.file_actions.export_image(kind, tmp_path / f"{kind}.png")
        assert out is not None and cv2.imread(str(out)).std() > 5  # a real image, not flat
    service.shutdown() if hasattr(service, "shutdown") else None
    win.model.modified = False
