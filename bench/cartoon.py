"""CartoonGAN stylization time, one JSON line per (style, size, device) on stdout.

    .venv/bin/python bench/cartoon.py [--sizes 256 512] [--devices cpu cuda] [--repeats 5]

Keys: ``style``, ``size`` (a size x size portrait), ``device``, ``threads``,
``cpu_ms`` (process CPU time: on a busy shared machine, cpu_ms / threads
estimates the idle wall time), ``load_avg_1min`` (other work skews wall times),
``median_ms`` (the whole :func:`facesketch.engine.cartoon.stylize` call: resize,
pad, network, conversion back), ``weights``.  Styles: ``official`` (the authors'
generator: an imported style, ``--official PATH.pth``, or random init of the same
architecture) and ``lite`` (the shipped style, or random init).  Random weights are
said so; the time depends on the architecture, not on the weight values.
``mode``: ``stylize`` (the network alone) or ``portrait`` (what the app and
``facesketch render --cartoon`` run: anime proportions 0.5 from the layout's
windows, stylization, ink from a sketch at width 1.5; ``--modes``).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from facesketch.engine.cartoon import DEFAULT_STYLE, Style, StyleError, load_style, stylize
from facesketch.engine.devices import select_device
from facesketch.models.cartoon import CartoonGenerator, cartoon_preset

OFFICIAL_PTH = Path("../shared/weights/cartoongan/Hayao_net_G_fp16.pth")


def _style(kind: str, official: Path, device: str) -> tuple[Style, str]:
    spec = select_device(device)
    wanted = [str(official)] if kind == "official" else [DEFAULT_STYLE]
    for name in wanted:
        try:
            style = load_style(name, spec)
            return style, str(style.path)
        except (StyleError, ImportError, OSError):
            pass
    gen = CartoonGenerator(cartoon_preset(kind)).requires_grad_(False)
    return Style(kind, spec.module(gen), "rgb", spec), "random init (timing only)"


def _portrait_fn(size: int) -> Any:
    """cartoon_portrait with ink and proportions on, as the app calls it after a render."""
    import cv2

    from facesketch.engine.cartoon import cartoon_portrait
    from facesketch.layout import FaceLayout
    from facesketch.sketch.cartoon_settings import CartoonSettings

    layout = FaceLayout.default(512)
    settings = CartoonSettings(ink=True, ink_width=1.5, proportions=0.5)
    sketch = np.full((size, size), 255, np.uint8)
    for w in layout.windows.values():  # some strokes where the parts are
        c = (round(w.center[0] * size / 512), round(w.center[1] * size / 512))
        cv2.circle(sketch, c, size // 20, 0, 2)

    def run(rgb: np.ndarray, style: Style) -> np.ndarray:
        return cartoon_portrait(rgb, style, settings, sketch, layout)

    return run


def bench(style: Style, size: int, repeats: int, mode: str = "stylize") -> tuple[float, float]:
    """Median wall and process-CPU milliseconds of one call on a size x size photo."""
    rgb = np.random.default_rng(0).integers(0, 256, (size, size, 3), dtype=np.uint8)
    fn = stylize if mode == "stylize" else _portrait_fn(size)
    fn(rgb, style)  # warm-up
    wall, cpu = [], []
    for _ in range(repeats):
        t, c = time.perf_counter(), time.process_time()
        fn(rgb, style)
        if style.spec.is_cuda:
            torch.cuda.synchronize()
        wall.append((time.perf_counter() - t) * 1000)
        cpu.append((time.process_time() - c) * 1000)
    return statistics.median(wall), statistics.median(cpu)


def main(argv: list[str] | None = None) -> int:
    """Command line entry point."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[256, 512])
    ap.add_argument("--devices", nargs="+", default=["cpu"])
    ap.add_argument("--styles", nargs="+", default=["official", "lite"])
    ap.add_argument("--official", type=Path, default=OFFICIAL_PTH, help="authors' .pth")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--modes", nargs="+", default=["stylize", "portrait"])
    args = ap.parse_args(argv)
    for device in args.devices:
        for kind in args.styles:
            style, weights = _style(kind, args.official, device)
            for size, mode in ((s, m) for s in args.sizes for m in args.modes):
                wall, cpu = bench(style, size, args.repeats, mode)
                row = {
                    "style": kind,
                    "mode": mode,
                    "size": size,
                    "device": style.spec.describe(),
                    "threads": torch.get_num_threads(),
                    "median_ms": round(wall, 1),
                    "cpu_ms": round(cpu, 1),
                    "weights": weights,
                    "load_avg_1min": round(os.getloadavg()[0], 2),  # shared CPUs skew timings
                }
                print(json.dumps(row), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
