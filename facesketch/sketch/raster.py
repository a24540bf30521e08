"""Stroke rasterization: vector strokes to the sketch image the networks see.

Lines are drawn on a grid ``SUPERSAMPLE`` times finer and box-filtered down, which
gives anti-aliasing, fractional line widths, the same ink profile at every canvas
size and byte-identical output for identical input.  On that grid each run of
strokes with the same pen is drawn as thin centre lines (OpenCV polylines with
sub-pixel shift bits) and dilated with a disc of the pen's diameter: round caps and
joins, any width, and a cost that hardly depends on the number of strokes
(OpenCV's own thick lines only come in odd pixel widths).  Mouse strokes are
smoothed with Chaikin corner cutting so that they look like pen lines.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

import cv2
import numpy as np

from facesketch.layout import REFERENCE_CANVAS
from facesketch.sketch.document import Stroke
from facesketch.sketch.edges import SKETCH_LINE_WIDTH_512

#: Pen width (pixels on a 512 canvas) the networks are trained on: the line width of
#: the synthesized training sketches (:mod:`facesketch.sketch.edges`), one definition.
DEFAULT_LINE_WIDTH_512: float = SKETCH_LINE_WIDTH_512
#: Drawing happens on a grid this many times finer, then is averaged down.
SUPERSAMPLE = 4
#: Largest side of the supersampled grid (bounds memory for very large canvases).
MAX_SUPERSAMPLED_SIDE = 4096
#: OpenCV fixed-point bits for sub-pixel vertex positions.
SHIFT_BITS = 4
#: Pens wider than this many grid pixels are drawn with a distance map, not a dilation
#: (a 256 px pen took minutes as a dilation; the look is the same disc).
WIDE_PEN_GRID_PX = 48
#: Rounds of Chaikin corner cutting applied to each stroke.
SMOOTHING_ROUNDS = 2

INK = 0
PAPER = 255


def width_on_canvas(width_512: float, canvas: int) -> float:
    """Pixels on a ``canvas``-pixel document of a width given at the 512 reference canvas
    (a line keeps its look relative to the face whatever the canvas)."""
    return float(width_512) * canvas / REFERENCE_CANVAS


def width_at_reference(width: float, canvas: int) -> float:
    """The inverse of :func:`width_on_canvas`: ``width`` pixels on ``canvas`` at 512."""
    return float(width) * REFERENCE_CANVAS / canvas


def default_pen_width(canvas: int) -> float:
    """Default pen width in pixels on a ``canvas``-pixel document (the trained line width)."""
    return width_on_canvas(DEFAULT_LINE_WIDTH_512, canvas)


def smooth_polyline(points: np.ndarray, rounds: int = SMOOTHING_ROUNDS) -> np.ndarray:
    """Chaikin-smoothed copy of a (K, 2) polyline; the end points stay where they are."""
    pts = np.asarray(points, np.float64).reshape(-1, 2)
    for _ in range(rounds):
        if len(pts) < 3:
            break
        out = np.empty((2 * len(pts) - 2, 2))
        out[1:-1:2] = 0.75 * pts[:-2] + 0.25 * pts[1:-1]
        out[2:-1:2] = 0.25 * pts[1:-1] + 0.75 * pts[2:]
        out[0], out[-1] = pts[0], pts[-1]
        pts = out
    return pts


def _supersample_factor(canvas: int) -> int:
    return max(1, min(SUPERSAMPLE, MAX_SUPERSAMPLED_SIDE // max(canvas, 1)))


@lru_cache(maxsize=64)
def _disc(diameter_q: int) -> np.ndarray:
    """Disc structuring element of diameter ``diameter_q / 4`` grid pixels."""
    diameter = diameter_q / 4.0
    n = max(1, round(diameter))
    c = (n - 1) / 2.0
    yy, xx = np.mgrid[0:n, 0:n]
    disc = ((xx - c) ** 2 + (yy - c) ** 2 <= (diameter / 2.0) ** 2 + 1e-9).astype(np.uint8)
    disc[n // 2, n // 2] = 1
    return disc


def _draw_run(grid: np.ndarray, strokes: Sequence[Stroke], scale: float, diameter: float) -> None:
    """Draw strokes of one pen (same width and kind) on the supersampled ``grid``."""
    one = 1 << SHIFT_BITS
    lines = []
    for s in strokes:
        # A source point is a continuous position; OpenCV puts pixel centres on integers.
        pts = smooth_polyline(s.points) * scale - 0.5
        # Far-away points (strokes dragged off the canvas) must not overflow int32.
        pts = np.clip(pts, -8.0 * MAX_SUPERSAMPLED_SIDE, 8.0 * MAX_SUPERSAMPLED_SIDE)
        if len(pts) == 1:
            pts = np.vstack([pts, pts])
        lines.append(np.round(pts * one).astype(np.int32).reshape(-1, 1, 2))
    diameter_q = max(4, round(diameter * 4))
    wide = diameter_q / 4.0 > WIDE_PEN_GRID_PX
    kernel = None if wide else _disc(diameter_q)
    margin = (int(np.ceil(diameter_q / 4.0)) if wide else kernel.shape[0]) + 2
    value = PAPER if strokes[0].eraser else INK
    boxes = [(ln[:, 0].min(axis=0) // one, ln[:, 0].max(axis=0) // one) for ln in lines]
    lo = np.min([b[0] for b in boxes], axis=0)
    hi = np.max([b[1] for b in boxes], axis=0)
    union = float(np.prod(hi - lo + 2 * margin + 1))
    own = sum(float(np.prod(b[1] - b[0] + 2 * margin + 1)) for b in boxes)
    if len(lines) > 1 and 2 * own < union:  # scattered strokes: one small mask each
        for ln, (blo, bhi) in zip(lines, boxes, strict=True):
            _stamp(grid, [ln], blo, bhi, margin, kernel, diameter_q, value)
    else:
        _stamp(grid, lines, lo, hi, margin, kernel, diameter_q, value)


def _stamp(
    grid: np.ndarray,
    lines: list[np.ndarray],
    lo: np.ndarray,
    hi: np.ndarray,
    margin: int,
    kernel: np.ndarray | None,
    diameter_q: int,
    value: int,
) -> None:
    """Centre lines dilated to the pen's disc, painted with ``value`` inside their box."""
    one = 1 << SHIFT_BITS
    h, w = grid.shape
    x0, y0 = np.maximum(lo - margin, 0)
    x1, y1 = np.minimum(hi + margin + 1, [w, h])
    if x0 >= x1 or y0 >= y1:
        return  # entirely off the canvas
    offset = np.array([x0, y0], np.int32) * one
    mask = np.zeros((y1 - y0, x1 - x0), np.uint8)
    cv2.polylines(mask, [ln - offset for ln in lines], False, 255, 1, cv2.LINE_8, SHIFT_BITS)
    if kernel is not None:
        mask = cv2.dilate(mask, kernel)
    else:  # a dilation's cost grows with the disc's area; a distance map's does not
        dist = cv2.distanceTransform(
            np.where(mask > 0, 0, 255).astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE
        )
        mask = (dist <= diameter_q / 8.0 + 1e-6).astype(np.uint8)
    region = grid[y0:y1, x0:x1]
    region[mask > 0] = value


def rasterize_strokes(
    strokes: Sequence[Stroke],
    canvas: int,
    source_canvas: int,
    line_width_scale: float = 1.0,
    background: np.ndarray | None = None,
) -> np.ndarray:
    """Draw ``strokes`` (in ``source_canvas`` pixels) on a white ``canvas`` square.

    Returns uint8 (canvas, canvas): paper 255, ink 0, anti-aliased, deterministic.
    Coordinates and widths scale by canvas / source_canvas, so the same document
    looks the same at any size; ``line_width_scale`` thickens or thins every line.
    Eraser strokes paint paper.  ``background`` (uint8 gray, any size) is resized to
    the canvas and drawn on first, so erasing also erases it.
    """
    canvas = int(canvas)
    if canvas <= 0 or int(source_canvas) <= 0:
        raise ValueError(f"canvas sizes must be positive, got {canvas} and {source_canvas}")
    if not (line_width_scale > 0 and np.isfinite(line_width_scale)):
        raise ValueError(f"line_width_scale must be positive, got {line_width_scale!r}")
    ss = _supersample_factor(canvas)
    side = canvas * ss
    if background is None:
        grid = np.full((side, side), PAPER, np.uint8)
    else:
        bg = np.asarray(background)
        if bg.dtype != np.uint8 or bg.ndim != 2:
            raise ValueError(f"background must be uint8 grayscale, got {bg.dtype} {bg.shape}")
        if bg.shape != (canvas, canvas):
            shrink = bg.shape[0] > canvas or bg.shape[1] > canvas
            interp = cv2.INTER_AREA if shrink else cv2.INTER_LINEAR
            bg = cv2.resize(bg, (canvas, canvas), interpolation=interp)
        if not strokes:
            return np.ascontiguousarray(bg, dtype=np.uint8).copy()
        grid = cv2.resize(bg, (side, side), interpolation=cv2.INTER_NEAREST)
    if not strokes:
        return np.full((canvas, canvas), PAPER, np.uint8)
    scale = side / float(source_canvas)
    run: list[Stroke] = []
    run_pen: tuple[bool, float] | None = None
    for stroke in strokes:
        pen = (stroke.eraser, stroke.width)
        if run and pen != run_pen:
            _draw_run(grid, run, scale, run[0].width * line_width_scale * scale)
            run = []
        run.append(stroke)
        run_pen = pen
    _draw_run(grid, run, scale, run[0].width * line_width_scale * scale)
    if ss == 1:
        return grid
    return cv2.resize(grid, (canvas, canvas), interpolation=cv2.INTER_AREA)
