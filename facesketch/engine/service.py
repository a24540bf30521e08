"""The render service: one worker thread owns torch; requests in, results out.

The GUI thread only enqueues (microseconds) and receives callbacks, so inference
never blocks it.  Policy:
- a render request supersedes a render that is still queued: the older one is
  dropped without a callback (the UI only ever shows the newest state);
- ``cancel(id)`` drops a queued request, or stops a running one at the next network
  boundary; either way its callback gets a result with ``error == "cancelled"``;
- other jobs (``run_async``: photo alignment, document import, style import) run on
  the same worker in submission order, so two threads never use torch at once;
- callbacks run on the worker thread (except the "cancelled" callback of a task that
  had not started: it runs inside ``cancel``); the UI marshals them into Qt itself.
The request and result types are the torch-free contract in
:mod:`facesketch.engine.contract` (re-exported here); the service is a
``contract.RenderEngine``.  No Qt here.
"""

from __future__ import annotations

import copy
import itertools
import threading
import time
import traceback
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from facesketch.engine.bundle import NetworkBundle, load_bundle
from facesketch.engine.contract import (
    CANCELLED,
    EXPECTED_ERRORS,
    JobCallback,
    JobResult,
    RenderCallback,
    RenderRequest,
    RenderResult,
    error_message,
    run_job,
)
from facesketch.engine.devices import DeviceSpec, select_device
from facesketch.engine.pipeline import FacePipeline, PipelineOutput, RenderCancelled
from facesketch.sketch.document import DocumentSnapshot

_OOM = getattr(torch, "OutOfMemoryError", torch.cuda.OutOfMemoryError)

__all__ = [  # the contract's types, re-exported: callers of the service need them
    "CANCELLED",
    "JobResult",
    "RenderRequest",
    "RenderResult",
    "RenderService",
]


@dataclass
class _Task:
    id: int
    kind: str  # "render" | "job"
    payload: RenderRequest | Callable[..., Any]
    args: tuple = ()
    callback: RenderCallback | JobCallback | None = None
    tag: str = ""


class RenderService:
    """Owns the networks and one worker thread; see the module docstring for the policy.

    ``bundle`` (tests, benchmarks) replaces loading the shipped weights from
    ``weights_dir``; ``warmup`` runs one small render at start so the first stroke
    does not pay for lazy initialisation.
    """

    def __init__(
        self,
        device: str | torch.device = "auto",
        weights_dir: str | Path | None = None,
        *,
        bundle: NetworkBundle | None = None,
        fp16: bool | None = None,
        warmup: bool = True,
    ) -> None:
        self._device_arg, self._fp16 = device, fp16
        self._weights_dir, self._given_bundle, self._warmup = weights_dir, bundle, warmup
        self._cv = threading.Condition()
        self._queue: deque[_Task] = deque()
        self._ids = itertools.count(1)
        self._running: int | None = None
        self._running_kind = ""
        self._cancelled: set[int] = set()
        self._stopping = False
        self._ready = threading.Event()
        self.pipeline: FacePipeline | None = None
        self._cpu_bundle: NetworkBundle | None = None
        self._cpu_pipeline: FacePipeline | None = None
        self._spec: DeviceSpec | None = None
        self._load_error: str | None = None
        self._thread = threading.Thread(target=self._main, name="facesketch-render", daemon=True)
        self._thread.start()

    # -- public API (any thread) ---------------------------------------------------------
    def submit(self, request: RenderRequest, callback: RenderCallback) -> int:
        """Queue a render; a render still queued is dropped (no callback). Returns its id."""
        with self._cv:
            rid = next(self._ids)
            self._queue = deque(t for t in self._queue if t.kind != "render")
            self._queue.append(_Task(rid, "render", request, callback=callback))
            self._cv.notify()
        return rid

    def run_async(
        self, fn: Callable[..., Any], *args: Any, callback: JobCallback | None = None, tag: str = ""
    ) -> int:
        """Run ``fn(*args)`` on the worker; ``callback`` gets a :class:`JobResult` (``tag``)."""
        with self._cv:
            jid = next(self._ids)
            self._queue.append(_Task(jid, "job", fn, args, callback, tag))
            self._cv.notify()
        return jid

    def cancel(self, request_id: int) -> bool:
        """Cancel a queued task or a running render; False if it is past stopping.

        A job already running (``run_async``) cannot be interrupted.
        """
        with self._cv:
            for task in self._queue:
                if task.id == request_id:
                    self._queue.remove(task)
                    break
            else:
                task = None
                if self._running == request_id and self._running_kind == "render":
                    self._cancelled.add(request_id)
                    return True
        if task is None:
            return False
        if task.callback is not None:
            res: RenderResult | JobResult = (
                RenderResult(request_id, error=CANCELLED)
                if task.kind == "render"
                else JobResult(request_id, error=CANCELLED, tag=task.tag)
            )
            task.callback(res)
        return True

    def status(self) -> dict[str, Any]:
        """Device, weights provenance and readiness (cheap; any thread)."""
        pipe = self.pipeline
        return {
            "ready": self._ready.is_set() and self._load_error is None,
            "device": self._spec.describe() if self._spec is not None else "starting",
            "fp16": bool(self._spec is not None and self._spec.dtype == torch.float16),
            "weights": dict(pipe.bundle.info) if pipe is not None else {},
            "error": self._load_error,
        }

    def wait_ready(self, timeout: float | None = None) -> bool:
        """Block until start-up (loading + warm-up) finished; True if it did in time."""
        return self._ready.wait(timeout)

    def shutdown(self, timeout: float | None = 10.0) -> None:
        """Stop the worker after the task in progress; queued tasks are dropped."""
        with self._cv:
            self._stopping = True
            self._queue.clear()
            if self._running is not None:
                self._cancelled.add(self._running)
            self._cv.notify()
        if threading.current_thread() is not self._thread:
            self._thread.join(timeout)

    # -- worker ----------------------------------------------------------------------------
    def _main(self) -> None:
        self._start()
        self._ready.set()
        while True:
            with self._cv:
                while not self._queue and not self._stopping:
                    self._cv.wait()
                if self._stopping:
                    return
                task = self._queue.popleft()
                self._running, self._running_kind = task.id, task.kind
            try:
                result = self._run_task(task)
            finally:
                with self._cv:
                    self._running = None
                    cancelled = task.id in self._cancelled
                    self._cancelled.discard(task.id)
            if cancelled and isinstance(result, RenderResult) and result.error is None:
                result = RenderResult(task.id, error=CANCELLED, device=result.device)
            if task.callback is not None:
                try:
                    task.callback(result)
                except Exception:  # a broken callback must not kill the worker
                    traceback.print_exc()

    def _start(self) -> None:
        try:
            self._spec = select_device(self._device_arg, self._fp16)
            bundle = self._given_bundle or load_bundle(self._weights_dir)
            # keep a CPU copy for out-of-memory fallback before moving to the device
            self._cpu_bundle = copy.deepcopy(bundle.to(self._spec.cpu().module))
            self.pipeline = FacePipeline(bundle, self._spec)
        except Exception as exc:  # reported in status() and in every render result
            self._load_error = f"the render engine could not start: {error_message(exc)}"
            return
        if self._warmup:
            try:
                self.pipeline.render_sketch(
                    np.full((self.pipeline.canvas,) * 2, 255, np.uint8),
                    size=self.pipeline.canvas * (2 if bundle.upsampler is not None else 1),
                )
            except Exception:
                traceback.print_exc()

    def _run_task(self, task: _Task) -> RenderResult | JobResult:
        if isinstance(task.payload, RenderRequest):
            return self._render(task.id, task.payload)
        return run_job(task.id, task.payload, task.args, task.tag)

    def _render(self, rid: int, req: RenderRequest) -> RenderResult:
        if self._load_error is not None or self.pipeline is None:
            return RenderResult(rid, error=self._load_error or "the render engine is not ready")
        warnings: list[str] = []
        pipe = self.pipeline
        try:
            try:
                out = self._render_on(pipe, rid, req)
            except _OOM:
                warnings.append(
                    f"{pipe.spec.describe()} ran out of memory; this render ran on the CPU"
                )
                if torch.cuda.is_available():
                    torch.cuda.empty_cache()
                pipe = self._cpu()
                out = self._render_on(pipe, rid, req)
        except RenderCancelled:
            return RenderResult(rid, error=CANCELLED, device=pipe.spec.describe())
        except EXPECTED_ERRORS as exc:  # AppearanceError, unreadable files, ...
            return RenderResult(rid, error=error_message(exc), device=pipe.spec.describe())
        except Exception as exc:  # keep the worker alive and tell the user what broke
            traceback.print_exc()
            return RenderResult(
                rid,
                error=f"render failed: {type(exc).__name__}: {exc}",
                device=pipe.spec.describe(),
            )
        result = RenderResult(
            rid,
            face=out.face,
            sketch=out.sketch,
            timings=out.timings,
            device=pipe.spec.describe(),
            recomputed=out.recomputed,
            warnings=warnings + out.warnings,
            texture=list(out.texture),
            placement=out.placement,
        )
        if req.cartoon_style:
            t = time.perf_counter()
            try:
                result.cartoon = self._stylize(
                    req.cartoon_style, out.face, req.document, out.sketch
                )
            except Exception as exc:
                result.error = f"cartoon style {req.cartoon_style!r}: {error_message(exc)}"
            result.timings["cartoon"] = (time.perf_counter() - t) * 1000
        return result

    def _render_on(self, pipe: FacePipeline, rid: int, req: RenderRequest) -> PipelineOutput:
        if req.texture is not None and req.texture != pipe.texture_wanted:
            pipe.set_real_pixels(req.texture)
        kwargs: dict[str, Any] = dict(
            size=req.size,
            scn_strength=req.scn_strength,
            geometry_photo=req.geometry_photo,
            photo_components=req.photo_components,
            cancel=lambda: rid in self._cancelled or self._stopping,
        )
        if getattr(req.document, "follow_drawing", False):  # face rendered where drawn
            from facesketch.engine.landmarks import render_following

            return render_following(pipe, req.document, **kwargs)
        return pipe.render(req.document, **kwargs)

    def _cpu(self) -> FacePipeline:
        """A CPU pipeline on a copy of the networks (created on first out-of-memory)."""
        if self._cpu_pipeline is None:
            assert self._cpu_bundle is not None and self._spec is not None
            self._cpu_pipeline = FacePipeline(self._cpu_bundle, self._spec.cpu())
        return self._cpu_pipeline

    def _stylize(
        self, style: str, face: np.ndarray, doc: DocumentSnapshot, sketch: np.ndarray | None
    ) -> np.ndarray:
        """Cartoonize on the engine's device (the cartoon module caches loaded styles),
        with the document's ink and proportions (``doc.cartoon``)."""
        from facesketch.engine import cartoon

        assert self.pipeline is not None
        st = cartoon.load_style(style, self.pipeline.spec)
        return cartoon.cartoon_portrait(face, st, doc.cartoon, sketch, doc.layout)
