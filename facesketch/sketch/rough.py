"""Rough-sketch synthesis: clean sketches made to look like a person's quick drawing.

The Stroke Calibration Network (Cali-Sketch) learns to undo exactly these
defects, so they model what people's input gets wrong: wobbly strokes, features
slightly out of place, broken and missing strokes, stray extra strokes, uneven
pressure and width.  Every random number is drawn from the seed regardless of
``strength``; ``strength`` only scales amplitudes and thresholds, so a stronger
setting makes a (statistically) monotonically more different drawing and
``strength == 0`` gives the input back.
"""

from __future__ import annotations

import cv2
import numpy as np

#: Canvas side the pixel amplitudes below are tuned for; other sizes scale them.
ROUGH_CANVAS = 256
#: Largest smooth wobble of a stroke (px at 256) at strength 1.
WOBBLE_PX = 3.0
#: Largest fine jitter (px at 256) at strength 1.
JITTER_PX = 0.9
#: Largest shift of a face region such as an eye (px at 256) at strength 1.
SHIFT_PX = 6.0
#: Number of regions that may be moved.
N_REGIONS = 4
#: Share of strokes (connected pieces) left out at strength 1.
MISSING_FRACTION = 0.25
#: Share of the paper cut by gaps at strength 1 (gaps land on strokes by chance).
GAP_FRACTION = 0.12
#: Stray strokes drawn at strength 1.
MAX_STRAYS = 10
#: Share of strokes drawn twice, slightly offset (re-traced), at strength 1.
RETRACE_FRACTION = 0.3


def _smooth_noise(rng: np.random.Generator, shape: tuple[int, int], cells: int) -> np.ndarray:
    """Zero-mean, unit-scale smooth noise: a ``cells``-per-side random grid, up-sampled."""
    grid = rng.standard_normal((cells + 1, cells + 1)).astype(np.float32)
    return cv2.resize(grid, (shape[1], shape[0]), interpolation=cv2.INTER_CUBIC)


def _displacement(
    rng: np.random.Generator, shape: tuple[int, int], f: float, strength: float
) -> tuple[np.ndarray, np.ndarray]:
    """Per-pixel (dx, dy): smooth wobble + fine jitter + a few shifted regions."""
    h, w = shape
    dx = WOBBLE_PX * _smooth_noise(rng, shape, 4) + JITTER_PX * _smooth_noise(rng, shape, 24)
    dy = WOBBLE_PX * _smooth_noise(rng, shape, 4) + JITTER_PX * _smooth_noise(rng, shape, 24)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    centres = rng.uniform(0.2, 0.8, (N_REGIONS, 2)) * (w, h)
    radii = rng.uniform(0.06, 0.14, N_REGIONS) * w
    shifts = rng.uniform(-1.0, 1.0, (N_REGIONS, 2)) * SHIFT_PX
    for (cx, cy), r, (sx, sy) in zip(centres, radii, shifts, strict=True):
        blob = np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * r * r))
        dx += sx * blob
        dy += sy * blob
    k = strength * f
    return xx + k * dx, yy + k * dy


def _stray_strokes(rng: np.random.Generator, ink: np.ndarray, f: float, count: int) -> np.ndarray:
    """Short curved strokes, mostly near existing lines (where people over-draw)."""
    h, w = ink.shape
    layer = np.zeros((h, w), np.uint8)
    ys, xs = np.nonzero(ink > 0.5)
    # draw every candidate's randomness up front so the first ``count`` never change
    starts_on_ink = rng.random(MAX_STRAYS) < 0.7
    picks = rng.integers(0, max(1, len(xs)), MAX_STRAYS)
    free = rng.uniform(0.15, 0.85, (MAX_STRAYS, 2)) * (w, h)
    angles = rng.uniform(0, 2 * np.pi, MAX_STRAYS)
    lengths = rng.uniform(10, 40, MAX_STRAYS) * f
    bends = rng.uniform(-1.0, 1.0, MAX_STRAYS)
    shades = rng.integers(140, 256, MAX_STRAYS)
    for i in range(count):
        if starts_on_ink[i] and len(xs):
            x0, y0 = float(xs[picks[i]]), float(ys[picks[i]])
        else:
            x0, y0 = free[i]
        t = np.linspace(0, 1, 8)
        a = angles[i] + bends[i] * t
        steps = lengths[i] / 7
        px = x0 + np.concatenate([[0], np.cumsum(np.cos(a[1:]) * steps)])
        py = y0 + np.concatenate([[0], np.cumsum(np.sin(a[1:]) * steps)])
        pts = np.round(np.stack([px, py], 1) * 16).astype(np.int32)[None]
        cv2.polylines(layer, pts, False, int(shades[i]), 1, cv2.LINE_AA, shift=4)
    return layer.astype(np.float32) / 255.0


def roughen_sketch(sketch: np.ndarray, strength: float, seed: int) -> np.ndarray:
    """A poorly drawn version of a clean ``sketch`` (uint8 (H, W), white paper).

    ``strength`` in [0, 1] (0 = unchanged); the same ``seed`` always gives the same
    drawing, and at a fixed seed a larger strength moves it further from the input.
    """
    arr = np.asarray(sketch)
    if arr.dtype != np.uint8 or arr.ndim != 2:
        raise ValueError(f"sketch must be uint8 grayscale (H, W), got {arr.dtype} {arr.shape}")
    if not 0.0 <= float(strength) <= 1.0:
        raise ValueError(f"strength must be between 0 and 1, got {strength!r}")
    strength = float(strength)
    if strength == 0.0:
        return arr.copy()
    rng = np.random.default_rng(int(seed))
    h, w = arr.shape
    f = min(h, w) / ROUGH_CANVAS
    ink = (255.0 - arr.astype(np.float32)) / 255.0

    # missing strokes: whole connected pieces dropped
    n, labels = cv2.connectedComponents((ink > 0.5).astype(np.uint8), connectivity=8)
    drop = rng.random(max(n, 1)) < MISSING_FRACTION * strength
    drop[0] = False
    if drop.any():
        gone = cv2.dilate(drop[labels].astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
        ink = np.where(gone, 0.0, ink)

    # re-traced strokes: some pieces drawn again a little off
    again = (rng.random(max(n, 1)) < RETRACE_FRACTION * strength) & ~drop
    again[0] = False
    offset = rng.uniform(-2.5, 2.5, 2) * f
    if again.any():
        piece = np.where(again[labels], ink, 0.0).astype(np.float32)
        shift = np.float32([[1, 0, offset[0]], [0, 1, offset[1]]])
        ink = np.maximum(ink, 0.8 * cv2.warpAffine(piece, shift, (w, h)))

    # wobble, jitter and misplaced features
    map_x, map_y = _displacement(rng, (h, w), f, strength)
    ink = cv2.remap(ink, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)

    # broken strokes: blob-shaped gaps
    gap_field = cv2.resize(
        rng.random((max(2, h // 5), max(2, w // 5))).astype(np.float32),
        (w, h),
        interpolation=cv2.INTER_LINEAR,
    )
    ink = np.where(gap_field < GAP_FRACTION * strength, 0.0, ink)

    # uneven pressure and width: darker/thicker in places, fainter in others
    pressure = _smooth_noise(rng, (h, w), 6)
    thick = cv2.dilate(ink, np.ones((2, 2), np.uint8))
    heavy = np.clip(pressure - 0.6, 0, 1) * strength
    faint = np.clip(-pressure - 0.4, 0, 1) * strength
    ink = ink * (1 - heavy) + thick * heavy
    ink = ink * (1 - 0.7 * faint)

    # stray extra strokes
    strays = _stray_strokes(rng, ink, f, round(MAX_STRAYS * strength))
    ink = np.maximum(ink, strays)
    return (255.0 - 255.0 * np.clip(ink, 0, 1) + 0.5).astype(np.uint8)
