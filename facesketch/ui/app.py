"""Start the desktop app, take a screenshot of it, or render the demo without a display.

``facesketch app`` lands here (see :mod:`facesketch.commands.app`).
"""

from __future__ import annotations

import os
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from facesketch.resources import samples_dir

#: Bundled samples: a demo sketch project and a few reference photos.
SAMPLES_DIR = samples_dir()
DEMO_PROJECT = SAMPLES_DIR / "demo.json"
#: Side of the demo render and of each half of its sheet (the app's default render size).
DEMO_SIZE = 512
#: How long ``--screenshot`` waits for the first render before giving up (s).
SCREENSHOT_TIMEOUT_S = 300
_EXPLICIT_PLATFORMS = ("offscreen", "xcb", "wayland", "eglfs", "vnc", "minimal", "cocoa", "windows")


def has_display() -> bool:
    """Whether a window can be shown (or QT_QPA_PLATFORM explicitly names a platform)."""
    platform = os.environ.get("QT_QPA_PLATFORM", "").strip().lower()
    if platform.startswith(_EXPLICIT_PLATFORMS):
        return True
    if sys.platform in ("darwin", "win32"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


@dataclass
class EngineUnavailableResult:
    """The answer to every render when the engine itself could not start."""

    request_id: int
    error: str
    face: Any = None
    sketch: Any = None
    cartoon: Any = None
    device: str = "none"
    timings: dict = field(default_factory=dict)
    warnings: list = field(default_factory=list)
    recomputed: list = field(default_factory=list)


class EngineUnavailable:
    """Stands in for the render service when it cannot start, so the window still opens.

    Every render answers with ``reason`` (shown in the result view); other jobs
    (aligning photos, importing sketches) still run, on a plain thread.
    """

    def __init__(self, reason: str) -> None:
        self.reason = reason
        self._next = 0

    def submit(self, request: Any, callback: Any) -> int:
        self._next += 1
        rid = self._next
        threading.Thread(
            target=callback, args=(EngineUnavailableResult(rid, self.reason),), daemon=True
        ).start()
        return rid

    def run_async(self, fn: Any, *args: Any, callback: Any) -> None:
        threading.Thread(target=lambda: callback(fn(*args)), daemon=True).start()

    def status(self) -> dict:
        return {"device": "none", "error": self.reason}


def _start_engine(backend: Any, device: str) -> tuple[Any, Any]:
    """The render service and request factory, or a stand-in that explains the failure."""
    try:
        return backend.make_service(device), backend.make_request
    except Exception as exc:
        reason = f"The render engine could not start: {exc}"
        print(f"facesketch: {reason}", file=sys.stderr)
        return EngineUnavailable(reason), lambda *a: None


def run_app(project: str | None = None, screenshot: str | None = None) -> int:
    """Open the window (with ``project`` or the demo); with ``screenshot``, grab it and exit."""
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    from facesketch.ui.backend import Backend
    from facesketch.ui.engine_client import EngineClient
    from facesketch.ui.main_window import MainWindow
    from facesketch.ui.settings import APPLICATION, ORGANIZATION, Settings

    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setOrganizationName(ORGANIZATION)
    app.setApplicationName(APPLICATION)
    settings = Settings()
    backend = Backend()
    service, make_request = _start_engine(backend, settings.get("device"))
    engine = EngineClient(service, make_request)
    window = MainWindow(engine, backend, settings, SAMPLES_DIR)
    if project:
        if not window.open_project(project):
            print(f"facesketch app: cannot open {project}", file=sys.stderr)
            return 1
    elif DEMO_PROJECT.is_file():
        window.open_sample(DEMO_PROJECT)
    if screenshot:
        return _screenshot(app, window, Path(screenshot))
    window.show()
    QTimer.singleShot(0, window.offer_recovery)
    return app.exec()


def _screenshot(app: Any, window: Any, out: Path) -> int:
    """Show the window, wait for the first render, grab it to ``out``."""
    from PySide6.QtCore import QTimer

    state = {"code": 1}

    def grab() -> None:
        out.parent.mkdir(parents=True, exist_ok=True)
        ok = window.grab().save(str(out))
        state["code"] = 0 if ok else 1
        print(f"facesketch app: screenshot {'written to' if ok else 'FAILED for'} {out}")
        window.model.modified = False  # nothing to save: it was only a screenshot
        window.close()
        app.quit()

    def on_render(result: Any) -> None:
        window.renderShown.disconnect(on_render)
        QTimer.singleShot(400, grab)  # let the spinner stop and the layout settle

    def give_up() -> None:
        print("facesketch app: no render result in time; grabbing anyway", file=sys.stderr)
        grab()
        state["code"] = 1

    window.renderShown.connect(on_render)
    window.resize(1500, 860)
    window.show()
    QTimer.singleShot(SCREENSHOT_TIMEOUT_S * 1000, give_up)
    app.exec()
    return state["code"]


def render_demo(out: str | Path = "facesketch-demo.png", project: str | None = None) -> int:
    """No display: render the demo (or ``project``) with the engine and write sketch | face."""
    import cv2

    from facesketch.engine.service import RenderRequest, RenderService
    from facesketch.imaging import write_image
    from facesketch.sketch import load_project

    doc = load_project(project or DEMO_PROJECT)
    service = RenderService(device="auto")
    done = threading.Event()
    box: dict[str, Any] = {}

    def callback(result: Any) -> None:
        box["result"] = result
        done.set()

    start = time.perf_counter()
    service.submit(
        RenderRequest(
            document=doc.snapshot(),
            size=DEMO_SIZE,
            scn_strength=doc.scn_strength,
            cartoon_style=None,
        ),
        callback,
    )
    if not done.wait(600):
        print("facesketch app: the demo render did not finish in 10 minutes", file=sys.stderr)
        return 1
    service.shutdown()
    result = box["result"]
    sketch = doc.render_sketch(DEMO_SIZE)
    if result.error or result.face is None:
        print(f"facesketch app: the demo could not be rendered: {result.error}", file=sys.stderr)
        return 1
    face = cv2.resize(result.face, (DEMO_SIZE, DEMO_SIZE), interpolation=cv2.INTER_AREA)
    sheet = np.concatenate([np.repeat(sketch[:, :, None], 3, axis=2), face], axis=1)
    path = write_image(out, sheet)
    print(
        f"No display found, so facesketch rendered its demo sketch instead of opening a window:\n"
        f"  {path.resolve()}  (sketch | face, {result.device}, "
        f"{(time.perf_counter() - start):.1f} s)\n"
        "Run it on a desktop (or set QT_QPA_PLATFORM=offscreen) to open the app."
    )
    return 0
