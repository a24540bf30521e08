"""The UI's one door to the render engine: requests in, results out as Qt signals.

The engine's :class:`~facesketch.engine.service.RenderService` calls back on its
worker thread; widgets may only be touched on the GUI thread.  This QObject turns
every callback into a signal emission, which Qt delivers to GUI-thread slots via a
queued connection.  No torch here: the engine owns it.
"""

from __future__ import annotations

import threading
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import QObject, Qt, Signal


@dataclass
class JobOutcome:
    """What a background job produced: ``value`` on success, else ``error`` (a message)."""

    tag: str
    value: Any = None
    error: str | None = None
    exception: BaseException | None = None


def _error_message(exc: BaseException) -> str:
    text = str(exc).strip()
    return text if text else type(exc).__name__


class _Outcome:
    """Runs a job and records its outcome, whatever the engine does with exceptions."""

    def __init__(self, tag: str, fn: Callable[..., Any]) -> None:
        self.tag, self.fn = tag, fn

    def __call__(self, *args: Any) -> JobOutcome:
        try:
            return JobOutcome(self.tag, value=self.fn(*args))
        except Exception as exc:  # shown to the user, so keep the message
            traceback.print_exc()
            return JobOutcome(self.tag, error=_error_message(exc), exception=exc)


class EngineClient(QObject):
    """Qt-side wrapper around a render service (the real one or a test double).

    ``service`` must offer ``submit(request, callback) -> id``,
    ``run_async(fn, *args, callback=...)`` and ``status() -> dict``; ``make_request``
    builds the service's request object from (snapshot, size, scn, cartoon style).
    """

    renderFinished = Signal(object)  # the engine's RenderResult
    jobFinished = Signal(object)  # JobOutcome
    busyChanged = Signal(bool)

    def __init__(
        self,
        service: Any,
        make_request: Callable[..., Any],
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.service = service
        self._make_request = make_request
        self._pending: set[int] = set()
        self._latest_id: int | None = None
        self._lock = threading.Lock()
        self.renderFinished.connect(self._on_render_done, Qt.ConnectionType.QueuedConnection)
        self.last_result: Any = None

    # -- rendering -------------------------------------------------------------------
    def render(self, snapshot: Any, size: int, scn_strength: float, style: str | None) -> int:
        """Queue a render of ``snapshot``; a newer request supersedes queued ones."""
        request = self._make_request(snapshot, size, scn_strength, style)
        rid = self.service.submit(request, self._render_callback)
        with self._lock:
            self._pending.add(rid)
            self._latest_id = rid
        self.busyChanged.emit(True)
        return rid

    def _render_callback(self, result: Any) -> None:
        # worker thread: only emit
        self.renderFinished.emit(result)

    def _on_render_done(self, result: Any) -> None:
        with self._lock:
            rid = getattr(result, "request_id", None)
            self._pending.discard(rid)
            # superseded requests never call back: anything older is gone too
            if rid is not None:
                self._pending = {p for p in self._pending if p > rid}
            busy = bool(self._pending)
        self.last_result = result
        self.busyChanged.emit(busy)

    @property
    def busy(self) -> bool:
        """Whether a render is queued or running."""
        with self._lock:
            return bool(self._pending)

    # -- other jobs --------------------------------------------------------------------
    def run_job(self, tag: str, fn: Callable[..., Any], *args: Any) -> None:
        """Run ``fn(*args)`` on the engine's worker; ``jobFinished`` gets a JobOutcome."""
        self.service.run_async(_Outcome(tag, fn), *args, callback=self._job_callback)

    def _job_callback(self, *payload: Any) -> None:
        outcome = next((p for p in payload if isinstance(p, JobOutcome)), None)
        if outcome is None:
            value = payload[0] if payload else None
            outcome = getattr(value, "result", value)
            if not isinstance(outcome, JobOutcome):
                outcome = JobOutcome("?", error=f"background job failed: {payload!r}")
        self.jobFinished.emit(outcome)

    def status(self) -> dict:
        """The engine's status (device, weights), or {} when it cannot tell."""
        try:
            return dict(self.service.status())
        except Exception:
            return {}

    def shutdown(self) -> None:
        """Stop the engine's worker (on window close)."""
        stop = getattr(self.service, "shutdown", None)
        if stop is not None:
            stop()
