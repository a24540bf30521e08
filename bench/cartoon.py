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
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

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


def bench(style: Style, size: int, repeats: int) -> tuple[float, float]:
    """Median wall and process-CPU milliseconds of one stylize() of a size x size photo."""
    rgb = np.random.default_rng(0).integers(0, 256, (size, size, 3), dtype=np.uint8)
    stylize(rgb, style)  # warm-up
    wall, cpu = [], []
    for _ in range(repeats):
        t, c = time.perf_counter(), time.process_time()
        stylize(rgb, style)
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
    args = ap.parse_args(argv)
    for device in args.devices:
        for kind in args.styles:
            style, weights = _style(kind, args.official, device)
            for size in args.sizes:
                wall, cpu = bench(style, size, args.repeats)
                row = {
                    "style": kind,
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
