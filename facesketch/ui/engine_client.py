"""The UI's one door to the render engine: requests in, results out as Qt signals.

The engine (:class:`~facesketch.engine.contract.RenderEngine`: the real render
service, the stand-in when it cannot start, or a test double) calls back on its
worker thread; widgets may only be touched on the GUI thread.  This QObject turns
every callback into a signal emission, which Qt delivers to GUI-thread slots via a
queued connection.  Requests and results are the contract's types; no torch here.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, Qt, Signal

from facesketch.engine.contract import JobResult, RenderEngine, RenderRequest, RenderResult
from facesketch.sketch.document import DocumentSnapshot


class EngineClient(QObject):
    """Qt-side wrapper around a :class:`RenderEngine`."""

    renderFinished = Signal(RenderResult)
    jobFinished = Signal(JobResult)
    busyChanged = Signal(bool)

    def __init__(self, service: RenderEngine, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.service = service
        self._pending: set[int] = set()
        self._lock = threading.Lock()
        self.renderFinished.connect(self._on_render_done, Qt.ConnectionType.QueuedConnection)

    # -- rendering -------------------------------------------------------------------
    def render(
        self,
        snapshot: DocumentSnapshot,
        size: int,
        scn_strength: float,
        style: str | None,
        texture: bool | None = None,
    ) -> int:
        """Queue a render of ``snapshot``; a newer request supersedes queued ones."""
        request = RenderRequest(
            document=snapshot,
            size=size,
            scn_strength=scn_strength,
            cartoon_style=style,
            texture=texture,
        )
        rid = self.service.submit(request, self.renderFinished.emit)  # emit: any thread
        with self._lock:
            self._pending.add(rid)
        self.busyChanged.emit(True)
        return rid

    def _on_render_done(self, result: RenderResult) -> None:
        with self._lock:
            # superseded requests never call back: anything older is gone too
            self._pending = {p for p in self._pending if p > result.request_id}
            busy = bool(self._pending)
        self.busyChanged.emit(busy)

    @property
    def busy(self) -> bool:
        """Whether a render is queued or running."""
        with self._lock:
            return bool(self._pending)

    # -- other jobs --------------------------------------------------------------------
    def run_job(self, tag: str, fn: Callable[..., Any], *args: Any) -> None:
        """Run ``fn(*args)`` on the engine's worker; ``jobFinished`` gets its JobResult."""
        self.service.run_async(fn, *args, callback=self.jobFinished.emit, tag=tag)

    def status(self) -> dict[str, Any]:
        """The engine's status (device, weights), or {} when it cannot tell."""
        try:
            return dict(self.service.status())
        except Exception:
            return {}

    def shutdown(self) -> None:
        """Stop the engine's worker (on window close)."""
        self.service.shutdown()
