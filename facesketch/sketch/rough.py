"""Rough-sketch synthesis: clean sketches redrawn the way a person quickly draws them.

The Stroke Calibration Network (Cali-Sketch) learns to undo exactly these defects,
so they model what hand drawings have and the clean training sketches lack.  The
clean drawing is traced into strokes (its 1-px skeleton's pixel chains) and every
stroke is redrawn by a shaky hand:

- wobble at low frequency (a shaky hand, shared by nearby strokes) and high frequency
  (along each stroke), features slightly misplaced and mis-sized (eyes, nose, mouth);
- overshoot past the stroke ends, sketchy repeated strokes drawn again a little off;
- broken strokes, closed shapes left open, missing inner details (short strokes in
  the feature windows: nostrils, eye and lip details; sometimes a single lip line);
- hatching and cross-hatching (hair, beard, shadows) and scribbled shading;
- uneven pressure (faint and heavy, thin and thick) and a few stray strokes.

Every random number is drawn from the seed regardless of ``strength``; ``strength``
only scales amplitudes, probabilities and counts, so a stronger setting makes a
(statistically) monotonically more different drawing and ``strength == 0`` gives the
input back.  About 20-30 ms for a 256 sketch; :func:`roughen_chains` takes strokes
traced once (:func:`sketch_chains`) so a data loader can cache them.
"""

from __future__ import annotations

import cv2
import numpy as np

from facesketch.layout import LOCAL_COMPONENTS, MOUTH, FaceLayout
from facesketch.sketch.edges import thin
from facesketch.sketch.vectorize import INK_THRESHOLD, trace_skeleton

#: Canvas side the pixel amplitudes below are tuned for; other sizes scale them.
ROUGH_CANVAS = 256
#: Low-frequency wobble (shaky hand, px at 256) at strength 1.
WOBBLE_PX = 2.5
#: High-frequency wobble along each stroke (px at 256) at strength 1.
JITTER_PX = 0.7
#: Wavelength of the high-frequency wobble (px along the stroke).
JITTER_WAVE_PX = 5.0
#: Largest shift of a feature (eye, nose, mouth; px at 256) at strength 1.
SHIFT_PX = 4.0
#: Largest relative size change of a feature at strength 1.
RESIZE = 0.12
#: Share of strokes left out at strength 1 (anywhere).
MISSING_FRACTION = 0.12
#: Share of short strokes inside feature windows (details) left out at strength 1.
DETAIL_MISSING_FRACTION = 0.45
#: Strokes shorter than this (px at 256) inside a feature window count as details.
DETAIL_LEN_PX = 20.0
#: Chance at strength 1 that the mouth is drawn as its single longest line.
SINGLE_LIP_CHANCE = 0.4
#: Share of strokes broken by a gap (closed shapes: opened) at strength 1.
GAP_FRACTION = 0.35
#: Share of stroke ends that overshoot at strength 1, and the longest overshoot (px).
OVERSHOOT_FRACTION = 0.6
OVERSHOOT_PX = 7.0
#: Share of strokes drawn again, a little off (sketchy repeats), at strength 1.
REPEAT_FRACTION = 0.45
REPEAT_OFFSET_PX = 2.2
#: Hatched patches (hair, beard, shadows) and scribbles at strength 1.
MAX_HATCHES = 7
MAX_SCRIBBLES = 3
#: Stray strokes drawn at strength 1.
MAX_STRAYS = 8
#: Share of strokes drawn heavy (2 px) at strength 1.
HEAVY_FRACTION = 0.2
#: Ink gain of the redrawn lines.
LINE_GAIN = 1.35


def sketch_chains(sketch: np.ndarray) -> list[np.ndarray]:
    """The strokes of a clean sketch: its skeleton's pixel chains, (K, 2) float (x, y)."""
    chains = trace_skeleton(thin(np.asarray(sketch) < INK_THRESHOLD))
    return [c.astype(np.float32) for c in chains if len(c) >= 2]


def _smooth_noise(rng: np.random.Generator, shape: tuple[int, int], cells: int) -> np.ndarray:
    """Zero-mean, unit-scale smooth noise: a ``cells``-per-side random grid, up-sampled."""
    grid = rng.standard_normal((cells + 1, cells + 1)).astype(np.float32)
    return cv2.resize(grid, (shape[1], shape[0]), interpolation=cv2.INTER_CUBIC)


def _arc(points: np.ndarray) -> np.ndarray:
    """Arc length at each point of a polyline."""
    d = np.hypot(*np.diff(points, axis=0).T) if len(points) > 1 else np.zeros(0)
    return np.concatenate([[0.0], np.cumsum(d)]).astype(np.float32)


def _feature_warp(
    rng: np.random.Generator, shape: tuple[int, int], f: float, strength: float
) -> tuple[np.ndarray, np.ndarray]:
    """Per-pixel (dx, dy): shaky-hand wobble plus misplaced, mis-sized features."""
    h, w = shape
    dx = WOBBLE_PX * _smooth_noise(rng, shape, 4)
    dy = WOBBLE_PX * _smooth_noise(rng, shape, 4)
    lay = FaceLayout.default(max(8, min(h, w)))
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    shifts = rng.uniform(-1.0, 1.0, (len(LOCAL_COMPONENTS), 2)) * SHIFT_PX
    scales = rng.uniform(-1.0, 1.0, len(LOCAL_COMPONENTS)) * RESIZE
    for name, (sx, sy), sc in zip(LOCAL_COMPONENTS, shifts, scales, strict=True):
        win = lay.window(name)
        cx, cy = win.center
        r = 0.42 * win.size
        blob = np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * r * r))
        dx += blob * (sx * f + sc * (xx - cx))
        dy += blob * (sy * f + sc * (yy - cy))
    return strength * dx, strength * dy


def _detail_mask(chains: list[np.ndarray], lay: FaceLayout, f: float) -> np.ndarray:
    """Which chains are short strokes inside a feature window (nostrils, lip lines...)."""
    out = np.zeros(len(chains), bool)
    for i, c in enumerate(chains):
        if _arc(c)[-1] >= DETAIL_LEN_PX * f:
            continue
        mx, my = c.mean(0)
        out[i] = any(lay.window(n).contains(mx, my) for n in LOCAL_COMPONENTS)
    return out


def _single_lip(chains: list[np.ndarray], lay: FaceLayout) -> np.ndarray:
    """Chains to drop so the mouth is one line: all in the mouth centre but the longest."""
    win = lay.window(MOUTH)
    cx, cy = win.center
    half = win.size * 0.3
    inside = [
        i
        for i, c in enumerate(chains)
        if abs(c[:, 0].mean() - cx) < half and abs(c[:, 1].mean() - cy) < half * 0.7
    ]
    drop = np.zeros(len(chains), bool)
    if len(inside) > 1:
        keep = max(inside, key=lambda i: _arc(chains[i])[-1])
        drop[[i for i in inside if i != keep]] = True
    return drop


def _overshoot(c: np.ndarray, start: float, end: float) -> np.ndarray:
    """Extend a polyline past its ends along its end tangents by ``start``/``end`` px."""
    if len(c) < 3 or (start <= 0 and end <= 0):
        return c
    k = min(4, len(c) - 1)
    parts = [c]
    for amount, tip, prev, at_end in ((start, c[0], c[k], False), (end, c[-1], c[-1 - k], True)):
        if amount <= 0:
            continue
        t = tip - prev
        n = float(np.hypot(*t))
        if n < 1e-3:
            continue
        ext = tip + t / n * amount
        parts = [*parts, ext[None]] if at_end else [ext[None], *parts]
    return np.concatenate(parts).astype(np.float32)


def _hatch_lines(
    rng: np.random.Generator, centre: np.ndarray, radius: float, f: float
) -> list[np.ndarray]:
    """Parallel short strokes filling an ellipse (cross-hatched sometimes), as polylines."""
    out = []
    angle = rng.uniform(0, np.pi)
    spacing = rng.uniform(2.5, 4.5) * f
    aspect = rng.uniform(0.5, 1.0)
    cross = rng.random() < 0.3
    for a in (angle, angle + rng.uniform(0.9, 1.6)) if cross else (angle,):
        d = np.array([np.cos(a), np.sin(a)], np.float32)
        nrm = np.array([-d[1], d[0]], np.float32)
        offs = np.arange(-radius, radius, spacing, dtype=np.float32)
        for o in offs:
            half = np.sqrt(max(radius * radius - o * o, 0.0)) * aspect
            half *= rng.uniform(0.6, 1.15)
            if half < 1.5 * f:
                continue
            mid = centre + nrm * o + d * rng.uniform(-0.2, 0.2) * half
            bend = nrm * rng.uniform(-1.0, 1.0) * f
            t = np.linspace(-1, 1, 5, dtype=np.float32)[:, None]
            pts = mid + d * (t * half) + bend * (1 - t * t)
            out.append(pts.astype(np.float32))
    return out


def _scribble(rng: np.random.Generator, centre: np.ndarray, radius: float) -> np.ndarray:
    """A scribbled blob: a random walk with momentum, pulled back to its centre."""
    n = 40
    turns = rng.uniform(-2.2, 2.2, n)
    steps = rng.uniform(0.5, 1.0, n) * radius * 0.45
    p = centre.astype(np.float64).copy()
    heading = rng.uniform(0, 2 * np.pi)
    pts = [p.copy()]
    for i in range(n):
        heading += turns[i]
        p = p + steps[i] * np.array([np.cos(heading), np.sin(heading)])
        p = centre + (p - centre) * min(1.0, radius / max(1e-6, np.hypot(*(p - centre))))
        pts.append(p.copy())
    return np.asarray(pts, np.float32)


def _stray(rng: np.random.Generator, start: np.ndarray, f: float) -> np.ndarray:
    """A short curved stroke from ``start``."""
    a = rng.uniform(0, 2 * np.pi) + rng.uniform(-1.0, 1.0) * np.linspace(0, 1, 8)
    step = rng.uniform(10, 35) * f / 7
    px = start[0] + np.concatenate([[0], np.cumsum(np.cos(a[1:]) * step)])
    py = start[1] + np.concatenate([[0], np.cumsum(np.sin(a[1:]) * step)])
    return np.stack([px, py], 1).astype(np.float32)


def _draw(layer: np.ndarray, lines: list[np.ndarray], shade: float, width: int) -> None:
    """Anti-aliased polylines (sub-pixel points), ink ``shade`` in 0..1, max-composited."""
    if not lines:
        return
    tmp = np.zeros_like(layer)
    pts = [np.round(c * 16).astype(np.int32) for c in lines if len(c) >= 2]
    cv2.polylines(tmp, pts, False, 255, width, cv2.LINE_AA, shift=4)
    np.maximum(layer, (tmp.astype(np.float32) * (shade / 255.0)), out=layer)


def roughen_chains(
    chains: list[np.ndarray], shape: tuple[int, int], strength: float, seed: int
) -> np.ndarray:
    """Redraw traced strokes (:func:`sketch_chains`) roughly: uint8 (H, W), white paper."""
    strength = float(strength)
    rng = np.random.default_rng(int(seed))
    h, w = shape
    f = min(h, w) / ROUGH_CANVAS
    s = strength
    lay = FaceLayout.default(max(8, min(h, w)))
    n = len(chains)

    # per-stroke random numbers, all drawn whatever the strength
    u_drop, u_gap, u_rep, u_heavy = rng.random((4, n))
    gap_at, gap_len = rng.random(n), rng.uniform(3.0, 9.0, n) * f
    u_over, over_len = rng.random((n, 2)), rng.uniform(0.3, 1.0, (n, 2)) * OVERSHOOT_PX * f
    rep_off = rng.uniform(-1.0, 1.0, (n, 2)) * REPEAT_OFFSET_PX * f
    rep_span = np.sort(rng.uniform(0.0, 1.0, (n, 2)), axis=1)
    shade = rng.uniform(0.0, 1.0, n)
    jitter_phase = rng.uniform(0, 1000, (n, 2))
    table = rng.standard_normal((2, 1200)).astype(np.float32)
    rep_table = rng.standard_normal((2, 1200)).astype(np.float32)
    u_lip = rng.random()
    warp_x, warp_y = _feature_warp(rng, (h, w), f, s)

    drop = u_drop < MISSING_FRACTION * s
    drop |= _detail_mask(chains, lay, f) & (u_drop < DETAIL_MISSING_FRACTION * s)
    if u_lip < SINGLE_LIP_CHANCE * s:
        drop |= _single_lip(chains, lay)

    def wobble(c: np.ndarray, phase: np.ndarray, tab: np.ndarray, amp: float) -> np.ndarray:
        arc = _arc(c) / (JITTER_WAVE_PX * f)
        idx = np.arange(tab.shape[1], dtype=np.float32)
        jx = np.interp((arc + phase[0]) % (tab.shape[1] - 1), idx, tab[0])
        jy = np.interp((arc + phase[1]) % (tab.shape[1] - 1), idx, tab[1])
        xi = np.clip(np.round(c[:, 0]).astype(int), 0, w - 1)
        yi = np.clip(np.round(c[:, 1]).astype(int), 0, h - 1)
        d = np.stack([warp_x[yi, xi] + amp * jx, warp_y[yi, xi] + amp * jy], 1)
        return (c + d).astype(np.float32)

    groups: dict[tuple[int, int], list[np.ndarray]] = {}  # (shade bin, width) -> lines
    amp = JITTER_PX * f * s
    for i, c in enumerate(chains):
        if drop[i]:
            continue
        heavy = u_heavy[i] < HEAVY_FRACTION * s
        # uneven pressure: fainter strokes, more of them the stronger (4 shade bins)
        level = int(min(3, np.floor(shade[i] * 4 * s)))
        pieces = [c]
        arc = _arc(c)
        if u_gap[i] < GAP_FRACTION * s and arc[-1] > 3 * gap_len[i]:
            closed = len(c) > 3 and np.allclose(c[0], c[-1])
            a0 = 0.0 if closed else gap_at[i] * (arc[-1] - gap_len[i])
            keep_a, keep_b = arc < a0, arc > a0 + gap_len[i]
            pieces = [p for p in (c[keep_a], c[keep_b]) if len(p) >= 2]
        for j, p in enumerate(pieces):
            st = over_len[i, 0] * s if (j == 0 and u_over[i, 0] < OVERSHOOT_FRACTION * s) else 0
            en = over_len[i, 1] * s if (u_over[i, 1] < OVERSHOOT_FRACTION * s) else 0
            p = _overshoot(p, st, en)
            groups.setdefault((level, 2 if heavy else 1), []).append(
                wobble(p, jitter_phase[i], table, amp)
            )
        if u_rep[i] < REPEAT_FRACTION * s and len(c) >= 3:
            a, b = (rep_span[i] * len(c)).astype(int)
            seg = c[a : max(b, a + 3)]
            seg = _overshoot(seg, over_len[i, 0] * s * 0.5, over_len[i, 1] * s * 0.5)
            seg = seg + rep_off[i] * s
            groups.setdefault((min(3, level + 1), 1), []).append(
                wobble(seg, jitter_phase[i], rep_table, amp * 1.5)
            )

    # hatching (hair, beard, shadows) and scribbles, mostly where the drawing has ink
    ink_pts = np.concatenate(chains) if chains else np.zeros((0, 2), np.float32)
    top = ink_pts[ink_pts[:, 1] < 0.45 * h] if len(ink_pts) else ink_pts
    hatch_lines: list[np.ndarray] = []
    hatch_rngs = [np.random.default_rng([int(seed), 1, k]) for k in range(MAX_HATCHES)]
    hatch_pick = rng.random((MAX_HATCHES, 2))
    for k in range(round(MAX_HATCHES * s)):
        hr = hatch_rngs[k]
        pool = top if (hatch_pick[k, 0] < 0.5 and len(top)) else ink_pts
        if len(pool):
            centre = pool[int(hatch_pick[k, 1] * len(pool)) % len(pool)]
        else:
            centre = np.array([w / 2, h / 2], np.float32)
        radius = hr.uniform(8.0, 24.0) * f * (0.6 + 0.4 * s)
        hatch_lines += _hatch_lines(hr, centre, radius, f)
    scribbles: list[np.ndarray] = []
    scrib_pick = rng.random((MAX_SCRIBBLES, 2))
    scrib_rngs = [np.random.default_rng([int(seed), 2, k]) for k in range(MAX_SCRIBBLES)]
    for k in range(round(MAX_SCRIBBLES * s)):
        if scrib_pick[k, 0] < 0.5:  # a feature drawn as a scribble (an eye, a nostril)
            name = LOCAL_COMPONENTS[int(scrib_pick[k, 1] * len(LOCAL_COMPONENTS))]
            centre = np.array(lay.window(name).center, np.float32)
            radius = lay.window(name).size * 0.12
        else:
            centre = (
                ink_pts[int(scrib_pick[k, 1] * len(ink_pts))]
                if len(ink_pts)
                else np.array([w / 2, h / 2], np.float32)
            )
            radius = 7.0 * f
        scribbles.append(_scribble(scrib_rngs[k], centre, radius))
    strays: list[np.ndarray] = []
    stray_pick = rng.random((MAX_STRAYS, 2))
    stray_rngs = [np.random.default_rng([int(seed), 3, k]) for k in range(MAX_STRAYS)]
    for k in range(round(MAX_STRAYS * s)):
        if stray_pick[k, 0] < 0.7 and len(ink_pts):
            start = ink_pts[int(stray_pick[k, 1] * len(ink_pts))]
        else:
            start = stray_pick[k] * (w, h) * 0.7 + 0.15 * np.array([w, h])
        strays.append(_stray(stray_rngs[k], np.asarray(start, np.float32), f))

    ink = np.zeros((h, w), np.float32)
    for (level, width), lines in sorted(groups.items()):
        _draw(ink, lines, 1.0 - 0.13 * level, width)
    _draw(ink, hatch_lines, 0.85, 1)
    _draw(ink, scribbles, 0.9, 1)
    _draw(ink, strays, 0.8, 1)
    ink *= LINE_GAIN  # a 1-px anti-aliased line is as dark as the clean sketch's

    # pressure varying over the page: fainter in places
    pressure = _smooth_noise(rng, (h, w), 6)
    ink *= 1.0 - 0.5 * np.clip(-pressure - 0.3, 0, 1) * s
    return (255.0 - 255.0 * np.clip(ink, 0, 1) + 0.5).astype(np.uint8)


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
    if float(strength) == 0.0:
        return arr.copy()
    return roughen_chains(sketch_chains(arr), arr.shape, float(strength), seed)
