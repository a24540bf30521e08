"""Rasterization cost at the size limits, one JSON object per case on stdout.

    .venv/bin/python bench/raster_limits.py

Pen widths up to the widest a project may hold (``MAX_STROKE_WIDTH``) and stroke
counts up to the loader's limits, at the 512 canvas: ``ms`` is the median of 3
renders (1 for the stroke counts), ``load_ms`` the time to load a project of that
many strokes (12 points each, every 17th an eraser stroke).
"""

from __future__ import annotations

import json
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

import facesketch.sketch as sk
from facesketch.sketch.document import MAX_STROKE_WIDTH
from facesketch.sketch.project import MAX_STROKES


def _median_ms(fn, repeats: int = 3) -> float:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1000)
    return round(statistics.median(times), 1)


def main() -> None:
    rng = np.random.default_rng(0)
    for width in (2.5, 12.0, 40.0, 100.0, MAX_STROKE_WIDTH):
        strokes = [sk.Stroke(rng.uniform(0, 512, (50, 2)), width) for _ in range(20)]
        doc = sk.Document(layout=sk.FaceLayout.default(512), strokes=strokes)
        ms = _median_ms(lambda d=doc: d.rasterize(512))
        print(json.dumps({"case": "pen width", "width": width, "strokes": 20, "ms": ms}))
    for count in (1_000, MAX_STROKES):
        strokes = []  # local random walks, as people draw, with an eraser stroke now and then
        for i in range(count):
            start = rng.uniform(30, 480, 2)
            pts = start + np.cumsum(rng.normal(0, 4, (12, 2)), axis=0)
            strokes.append(sk.Stroke(pts, 2.5, i % 17 == 0, f"s{i}"))
        doc = sk.Document(layout=sk.FaceLayout.default(512), strokes=strokes)
        ms = _median_ms(lambda d=doc: d.rasterize(512), 1)
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "p.json"
            sk.save_project(doc, path)
            load_ms = _median_ms(lambda p=path: sk.load_project(p), 1)
        print(json.dumps({"case": "strokes", "strokes": count, "ms": ms, "load_ms": load_ms}))


if __name__ == "__main__":
    main()
