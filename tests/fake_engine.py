"""A ``contract.RenderEngine`` double for window tests: answers on other threads, as
the real render service does, without torch.

Subclass it and override :meth:`FakeEngine.render` (what a request renders to);
jobs run for real on plain threads and come back as ``contract.JobResult``.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable
from typing import Any

import numpy as np

from facesketch.engine.contract import (
    JobCallback,
    RenderCallback,
    RenderRequest,
    RenderResult,
    run_job,
)


class FakeEngine:
    """Renders a flat face whose grey level counts the strokes (``render`` to change)."""

    device = "fake-cpu"
    side = 32  # pixels of the fake face and sketch

    def __init__(self) -> None:
        self.requests: list[RenderRequest] = []
        self._ids = itertools.count(1)
        self._lock = threading.Lock()

    def render(self, request: RenderRequest, rid: int) -> RenderResult:
        """The result of one request (override for errors, sizes, cartoons)."""
        n = len(request.document.strokes)
        face = np.full((self.side, self.side, 3), n % 255, np.uint8)
        sketch = np.full((self.side, self.side), 255, np.uint8)
        return RenderResult(rid, face, sketch, timings={"total": 1.0}, device=self.device)

    def deliver(
        self, request: RenderRequest, result: RenderResult, callback: RenderCallback
    ) -> None:
        """Runs on the answering thread (override to record what was answered)."""
        callback(result)

    def submit(self, request: RenderRequest, callback: RenderCallback) -> int:
        with self._lock:
            rid = next(self._ids)
            self.requests.append(request)
        result = self.render(request, rid)
        threading.Thread(target=self.deliver, args=(request, result, callback)).start()
        return rid

    def run_async(
        self, fn: Callable[..., Any], *args: Any, callback: JobCallback | None = None, tag: str = ""
    ) -> int:
        with self._lock:
            jid = next(self._ids)

        def job() -> None:
            result = run_job(jid, fn, args, tag)
            if callback is not None:
                callback(result)

        threading.Thread(target=job).start()
        return jid

    def status(self) -> dict[str, Any]:
        return {"device": self.device}

    def shutdown(self) -> None:
        pass
