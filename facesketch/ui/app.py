"""Start the desktop app, take a screenshot of it, or render the demo without a display.

``facesketch app`` lands here (see :mod:`facesketch.commands.app`).
"""

from __future__ import annotations

import itertools
import os
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from facesketch.engine.contract import (
    JobCallback,
    RenderCallback,
    RenderEngine,
    RenderRequest,
    RenderResult,
    error_message,
    run_job,
)
from facesketch.resources import samples_dir
from facesketch.ui.backend import Backend

if TYPE_CHECKING:
    from PySide6.QtWidgets import QApplication

    from facesketch.ui.main_window import MainWindow

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


class EngineUnavailable:
    """Stands in for the render service when it cannot start, so the window still opens.

    Every render answers with ``reason`` (shown in the result view); other jobs
    (aligning photos, importing sketches) still run, on a plain thread.
    """

    def __init__(self, reason: str) -> None:
        self.reason = reason
        self._ids = itertools.count(1)

    def submit(self, request: RenderRequest, callback: RenderCallback) -> int:
        rid = next(self._ids)
        result = RenderResult(rid, error=self.reason, device="none")
        threading.Thread(target=callback, args=(result,), daemon=True).start()
        return rid

    def run_async(
        self, fn: Callable[..., Any], *args: Any, callback: JobCallback | None = None, tag: str = ""
    ) -> int:
        jid = next(self._ids)

        def job() -> None:
            result = run_job(jid, fn, args, tag)
            if callback is not None:
                callback(result)

        threading.Thread(target=job, daemon=True).start()
        return jid

    def status(self) -> dict[str, Any]:
        return {"device": "none", "ready": False, "error": self.reason}

    def shutdown(self) -> None:
        pass


def _start_engine(backend: Backend, device: str) -> RenderEngine:
    """The render service, or a stand-in that explains why it could not start."""
    try:
        return backend.make_service(device)
    except Exception as exc:
        reason = f"The render engine could not start: {error_message(exc)}"
        print(f"facesketch: {reason}", file=sys.stderr)
        return EngineUnavailable(reason)


def run_app(project: str | None = None, screenshot: str | None = None) -> int:
    """Open the window (with ``project`` or the demo); with ``screenshot``, grab it and exit."""
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    from facesketch.ui.engine_client import EngineClient
    from facesketch.ui.main_window import MainWindow
    from facesketch.ui.settings import APPLICATION, ORGANIZATION, Settings

    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setOrganizationName(ORGANIZATION)
    app.setApplicationName(APPLICATION)
    settings = Settings()
    backend = Backend()
    engine = EngineClient(_start_engine(backend, settings.get("device")))
    window = MainWindow(engine, backend, settings, SAMPLES_DIR)
    if project:
        if not window.file_actions.open_project(project):
            print(f"facesketch app: cannot open {project}", file=sys.stderr)
            return 1
    elif DEMO_PROJECT.is_file():
        window.file_actions.open_sample(DEMO_PROJECT)
    if screenshot:
        return _screenshot(app, window, Path(screenshot))
    window.show()
    QTimer.singleShot(0, window.autosave_actions.offer_recovery)
    return app.exec()


def _screenshot(app: QApplication, window: MainWindow, out: Path) -> int:
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

    def on_render(result: RenderResult) -> None:
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

    from facesketch.engine.service import RenderService
    from facesketch.imaging import write_image
    from facesketch.sketch import load_project

    doc = load_project(project or DEMO_PROJECT)
    service = RenderService(device="auto")
    done = threading.Event()
    box: dict[str, RenderResult] = {}

    def callback(result: RenderResult) -> None:
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
    sketch = doc.rasterize(DEMO_SIZE)
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
