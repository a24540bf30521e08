"""The UI/engine contract: torch-free, one error text, the stand-in engine keeps it."""

from __future__ import annotations

import subprocess
import sys
import threading

import numpy as np

from facesketch.engine.contract import (
    CANCELLED,
    JobResult,
    RenderRequest,
    RenderResult,
    error_message,
    run_job,
)
from facesketch.sketch import Document, Stroke


def test_the_contract_loads_without_torch() -> None:
    code = (
        "import sys, facesketch.engine.contract, facesketch.ui.engine_client; "
        "print('torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_jobs_report_values_and_errors_with_their_tag() -> None:
    ok = run_job(3, lambda a, b: a + b, (2, 5), tag="sum")
    assert ok == JobResult(3, result=7, error=None, tag="sum")

    def no_face() -> None:
        raise ValueError("no face found in wall.png: try a photo with one clear face")

    bad = run_job(4, no_face, tag="ref")
    assert bad.result is None and bad.tag == "ref"
    assert bad.error == "no face found in wall.png: try a photo with one clear face"
    assert error_message(KeyError()) == "KeyError"  # no message: say what broke


def test_a_result_knows_its_time_and_a_request_its_document() -> None:
    doc = Document(strokes=[Stroke(np.array([[1.0, 2.0], [30.0, 40.0]]), 2.0)]).snapshot()
    req = RenderRequest(doc, size=256)
    assert req.document is doc and req.scn_strength is None
    assert RenderResult(1, timings={"total": 12.0, "fusion": 3.0}).total_ms == 12.0
    assert RenderResult(1, timings={"scn": 2.0, "fusion": 3.0}).total_ms == 5.0
    assert RenderResult(2, error=CANCELLED).face is None


def test_the_stand_in_engine_answers_with_the_reason_and_still_runs_jobs() -> None:
    from facesketch.ui.app import EngineUnavailable

    engine = EngineUnavailable("The render engine could not start: no weights for fusion")
    got: list = []
    done = threading.Event()

    def collect(result: object) -> None:
        got.append(result)
        if len(got) == 2:
            done.set()

    doc = Document().snapshot()
    rid = engine.submit(RenderRequest(doc), collect)
    engine.run_async(lambda: "aligned", callback=collect, tag="thumb\tx.jpg")
    assert done.wait(10)
    render = next(r for r in got if isinstance(r, RenderResult))
    job = next(r for r in got if isinstance(r, JobResult))
    assert render.request_id == rid and render.face is None
    assert "no weights for fusion" in render.error
    assert job.result == "aligned" and job.tag == "thumb\tx.jpg" and job.error is None
