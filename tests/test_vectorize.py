"""Sketch to strokes: tracing gives editable strokes that redraw the same sketch."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from facesketch.sketch.document import Stroke
from facesketch.sketch.edges import draw_lines, line_width_for, thin
from facesketch.sketch.raster import rasterize_strokes
from facesketch.sketch.vectorize import sketch_to_strokes, trace_skeleton


def _f1(a: np.ndarray, b: np.ndarray, tol: int = 2) -> float:
    """F1 of the ink of two sketches, a pixel matching if the other has ink within ``tol``."""
    ia, ib = a < 128, b < 128
    k = np.ones((2 * tol + 1, 2 * tol + 1), np.uint8)
    near_a = cv2.dilate(ia.astype(np.uint8), k) > 0
    near_b = cv2.dilate(ib.astype(np.uint8), k) > 0
    precision = (ib & near_a).sum() / max(1, ib.sum())
    recall = (ia & near_b).sum() / max(1, ia.sum())
    return float(2 * precision * recall / max(1e-9, precision + recall))


def _drawing(size: int = 128) -> np.ndarray:
    """A face-like line drawing with ends, junctions, curves and closed loops."""
    img = np.zeros((size, size), np.uint8)
    cv2.ellipse(img, (64, 68), (40, 52), 0, 0, 360, 1, 1)  # closed loop
    for ex in (46, 82):
        cv2.ellipse(img, (ex, 60), (9, 4), 0, 0, 360, 1, 1)
        cv2.circle(img, (ex, 60), 1, 1, -1)
    cv2.line(img, (64, 66), (60, 84), 1, 1)
    cv2.line(img, (60, 84), (70, 84), 1, 1)  # a corner
    cv2.ellipse(img, (64, 98), (13, 5), 0, 0, 360, 1, 1)
    cv2.line(img, (51, 98), (77, 98), 1, 1)  # crosses the mouth: junctions
    cv2.line(img, (10, 10), (40, 30), 1, 1)  # touches nothing
    return draw_lines(thin(img > 0), line_width_for(512))


def test_round_trip_redraws_the_sketch() -> None:
    sketch = _drawing()
    strokes = sketch_to_strokes(sketch, canvas=512)
    assert strokes and all(isinstance(s, Stroke) for s in strokes)
    again = rasterize_strokes(strokes, 128, 512)
    assert _f1(sketch, again) >= 0.9
    # simplification makes far fewer points than ink pixels
    assert sum(len(s.points) for s in strokes) < (sketch < 128).sum() / 3


def test_points_are_in_canvas_pixels_with_the_project_pen_width() -> None:
    sketch = np.full((64, 64), 255, np.uint8)
    sketch[32, 10:54] = 0
    (stroke,) = sketch_to_strokes(sketch, canvas=256)
    xs, ys = stroke.points[:, 0], stroke.points[:, 1]
    assert ys == pytest.approx(np.full_like(ys, (32 + 0.5) * 4))
    assert xs.min() == pytest.approx(10.5 * 4) and xs.max() == pytest.approx(53.5 * 4)
    assert stroke.width == pytest.approx(line_width_for(256))
    assert len(stroke.points) == 2  # a straight line simplifies to its ends


def test_tracing_covers_every_skeleton_pixel_once_per_chain() -> None:
    img = np.zeros((40, 40), bool)
    img[20, 5:35] = True  # a cross: one junction, four arms
    img[5:35, 20] = True
    img[2:6, 2:6] = True  # a small square outline after thinning is a loop or dot
    skel = thin(img)
    chains = trace_skeleton(skel)
    covered = np.zeros_like(skel)
    for c in chains:
        covered[c[:, 1], c[:, 0]] = True
    assert np.array_equal(covered, skel)
    arms = [c for c in chains if len(c) > 8]
    assert len(arms) == 4


def test_empty_and_bad_sketches() -> None:
    assert sketch_to_strokes(np.full((32, 32), 255, np.uint8)) == []
    with pytest.raises(ValueError, match="grayscale"):
        sketch_to_strokes(np.zeros((32, 32, 3), np.uint8))
    with pytest.raises(ValueError, match="square"):
        sketch_to_strokes(np.zeros((32, 48), np.uint8))
