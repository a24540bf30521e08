"""RenderService: worker thread, superseding, cancel, errors, OOM fallback."""

from __future__ import annotations

import dataclasses
import threading

import numpy as np
import pytest
import torch
from torch import nn

from facesketch.engine.bundle import random_bundle
from facesketch.engine.service import CANCELLED, JobResult, RenderRequest, RenderService
from facesketch.models import preset
from facesketch.sketch.document import AppearanceSlot as Slot
from facesketch.sketch.document import Document, DocumentSnapshot, Stroke

WAIT = 60  # seconds; generous because the test machine is shared
TINY = dataclasses.replace(preset("tiny"), canvas=128)  # tiny networks, 128 canvas
SIZE = 2 * TINY.canvas  # what they render with their 2x head


def doc(value: int = 0, **kw) -> DocumentSnapshot:
    """A document with one stroke whose length depends on ``value``."""
    pts = np.array([[120.0 + value, 200.0], [390.0, 210.0]], np.float32)
    return Document(strokes=[Stroke(pts, 3.0)], **kw).snapshot()


class Collector:
    """Callback that records results and lets a test wait for a number of them."""

    def __init__(self) -> None:
        self.results: list = []
        self.cv = threading.Condition()

    def __call__(self, result) -> None:
        with self.cv:
            self.results.append(result)
            self.cv.notify_all()

    def wait(self, n: int = 1) -> list:
        with self.cv:
            assert self.cv.wait_for(lambda: len(self.results) >= n, WAIT), self.results
        return self.results


@pytest.fixture()
def service():
    svc = RenderService("cpu", bundle=random_bundle(TINY, seed=1))
    assert svc.wait_ready(WAIT)
    yield svc
    svc.shutdown()


def block_worker(svc: RenderService) -> threading.Event:
    """Occupy the worker with a job until the returned event is set."""
    release, started = threading.Event(), threading.Event()

    def hold() -> None:
        started.set()
        release.wait(WAIT)

    svc.run_async(hold)
    assert started.wait(WAIT)
    return release


def test_render_result_and_status(service):
    got = Collector()
    rid = service.submit(RenderRequest(doc(), size=SIZE), got)
    (res,) = got.wait()
    assert res.request_id == rid and res.error is None
    assert res.face.shape == (SIZE, SIZE, 3) and res.face.dtype == np.uint8
    assert res.sketch.shape == (SIZE, SIZE)
    assert res.device.startswith("cpu") and "total" in res.timings
    st = service.status()
    assert st["ready"] and st["device"].startswith("cpu") and st["error"] is None
    assert "random init" in st["weights"]["weights"]


def test_newer_request_supersedes_queued_one(service):
    got = Collector()
    release = block_worker(service)
    ids = [service.submit(RenderRequest(doc(i), size=SIZE), got) for i in range(3)]
    release.set()
    (res,) = got.wait(1)
    assert res.request_id == ids[-1] and res.error is None
    done = Collector()
    service.run_async(lambda: None, callback=done)
    done.wait()
    assert len(got.results) == 1  # the two superseded requests never called back


def test_cancel_queued_and_running(service):
    got = Collector()
    release = block_worker(service)
    rid = service.submit(RenderRequest(doc(), size=SIZE), got)
    assert service.cancel(rid)
    release.set()
    assert got.wait(1)[0].error == CANCELLED

    # a running render stops at the next network boundary
    entered, go_on = threading.Event(), threading.Event()
    fusion = service.pipeline.bundle.fusion
    original = fusion.forward

    def slow_forward(*args):
        entered.set()
        go_on.wait(WAIT)
        return original(*args)

    fusion.forward = slow_forward
    running = Collector()
    rid = service.submit(RenderRequest(doc(7), size=SIZE), running)
    assert entered.wait(WAIT)
    assert service.cancel(rid)
    go_on.set()
    (res,) = running.wait(1)
    assert res.error == CANCELLED and res.face is None
    fusion.forward = original
    after = Collector()
    service.submit(RenderRequest(doc(7), size=SIZE), after)
    assert after.wait(1)[0].error is None
    assert not service.cancel(rid)  # finished long ago


def test_bad_references_give_error_results_and_service_keeps_working(service, tmp_path):
    bad = tmp_path / "corrupt.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n broken")
    got = Collector()
    service.submit(RenderRequest(doc(appearance={"nose": Slot((str(bad),))}), size=SIZE), got)
    (res,) = got.wait(1)
    assert res.face is None and "corrupt.png" in res.error

    import facesketch.face

    if not hasattr(facesketch.face, "align_face"):
        pytest.skip("facesketch.face.align_face is not built yet")
    noface = tmp_path / "wall.png"
    import cv2

    cv2.imwrite(str(noface), np.full((200, 200, 3), 180, np.uint8))
    service.submit(RenderRequest(doc(appearance={"face": Slot((str(noface),))}), size=SIZE), got)
    res = got.wait(2)[1]
    assert res.face is None and "no face found in" in res.error and "wall.png" in res.error

    service.submit(RenderRequest(doc(), size=SIZE), got)
    assert got.wait(3)[2].error is None


class _OOMOnce(nn.Module):
    """Wraps a module; its first call raises the CUDA out-of-memory error."""

    raised = False  # class attribute: shared by the copies the service makes

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner
        self.cfg = getattr(inner, "cfg", None)

    def forward(self, *args):
        if not _OOMOnce.raised:
            _OOMOnce.raised = True
            raise torch.cuda.OutOfMemoryError("CUDA out of memory (simulated)")
        return self.inner(*args)


def test_out_of_memory_falls_back_to_cpu_for_that_request():
    bundle = random_bundle(TINY, seed=2)
    bundle.fusion = _OOMOnce(bundle.fusion)
    _OOMOnce.raised = True  # let the warm-up pass
    svc = RenderService("cpu", bundle=bundle)
    try:
        assert svc.wait_ready(WAIT)
        _OOMOnce.raised = False
        got = Collector()
        svc.submit(RenderRequest(doc(3), size=SIZE), got)
        (res,) = got.wait(1)
        assert res.error is None and res.face.shape == (SIZE, SIZE, 3)
        assert any("out of memory" in w and "CPU" in w for w in res.warnings)
        svc.submit(RenderRequest(doc(4), size=SIZE), got)
        assert got.wait(2)[1].warnings == []
    finally:
        svc.shutdown()


def test_run_async_returns_values_and_errors(service):
    got = Collector()
    service.run_async(lambda a, b: a + b, 2, 3, callback=got)

    def boom():
        raise ValueError("no face found in x.jpg")

    service.run_async(boom, callback=got)
    ok, err = got.wait(2)
    assert isinstance(ok, JobResult) and ok.result == 5 and ok.error is None
    assert err.result is None and err.error == "no face found in x.jpg"


def test_missing_weights_is_an_error_result(tmp_path):
    svc = RenderService("cpu", weights_dir=tmp_path, warmup=False)
    try:
        assert svc.wait_ready(WAIT)
        st = svc.status()
        assert not st["ready"] and "could not start" in st["error"]
        got = Collector()
        svc.submit(RenderRequest(doc(), size=SIZE), got)
        assert "could not start" in got.wait(1)[0].error
    finally:
        svc.shutdown()


def test_unknown_cartoon_style_keeps_the_face(service):
    got = Collector()
    service.submit(RenderRequest(doc(), size=SIZE, cartoon_style="no-such-style"), got)
    (res,) = got.wait(1)
    assert res.face is not None and res.cartoon is None
    assert "no-such-style" in res.error
