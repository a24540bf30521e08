"""Stroke rasterization: determinism, paper/ink, anti-aliasing, eraser, scale invariance."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from facesketch import sketch as sk
from facesketch.sketch.raster import smooth_polyline


def face_strokes() -> list[sk.Stroke]:
    t = np.linspace(0, 2 * np.pi, 120)
    outline = np.stack([256 + 150 * np.cos(t), 270 + 190 * np.sin(t)], 1)
    eye = np.stack([170 + 30 * np.cos(t[:60]), 220 + 12 * np.sin(t[:60])], 1)
    mouth = np.array([[200, 370], [230, 380], [260, 383], [290, 380], [320, 370]], float)
    return [
        sk.Stroke(outline, 2.5, id="outline"),
        sk.Stroke(eye, 2.5, id="eye"),
        sk.Stroke(mouth, 3.0, id="mouth"),
        sk.Stroke([[256, 300]], 5.0, id="dot"),
    ]


def test_deterministic_bytes() -> None:
    a = sk.rasterize_strokes(face_strokes(), 256, 512)
    b = sk.rasterize_strokes(face_strokes(), 256, 512)
    assert a.dtype == np.uint8 and a.shape == (256, 256)
    assert a.tobytes() == b.tobytes()


def test_white_paper_black_antialiased_lines() -> None:
    img = sk.rasterize_strokes(face_strokes(), 512, 512)
    assert sk.rasterize_strokes([], 64, 512).min() == 255
    assert img[5, 5] == 255 and img.max() == 255
    assert img.min() == 0  # solid ink somewhere
    grey = np.count_nonzero((img > 0) & (img < 255))
    assert grey > 200  # anti-aliased edges, not a binary image
    # The outline passes through (406, 270): its centre pixel is dark.
    assert img[270, 405] < 60


def test_line_width_matches_pen_width() -> None:
    for width in (1.25, 2.5, 4.0):
        img = sk.rasterize_strokes([sk.Stroke([[10, 50], [90, 50]], width)], 100, 100)
        ink = (255.0 - img[:, 30:70].astype(np.float64)).sum() / 255.0 / 40
        assert ink == pytest.approx(width, abs=0.15)


def test_eraser_paints_paper() -> None:
    pen = sk.Stroke([[10, 50], [90, 50]], 4.0)
    eraser = sk.Stroke([[50, 10], [50, 90]], 10.0, eraser=True)
    img = sk.rasterize_strokes([pen, eraser], 100, 100)
    assert img[50, 20] < 30 and img[50, 80] < 30
    assert np.all(img[40:60, 47:54] == 255)
    # Order matters: a pen stroke after the eraser draws again.
    again = sk.rasterize_strokes([pen, eraser, pen], 100, 100)
    assert again[50, 50] < 30


def test_scale_invariance() -> None:
    big = sk.rasterize_strokes(face_strokes(), 512, 512)
    small = sk.rasterize_strokes(face_strokes(), 256, 512)
    down = cv2.resize(big, (256, 256), interpolation=cv2.INTER_AREA)
    diff = np.abs(down.astype(np.int16) - small.astype(np.int16))
    assert diff.mean() < 1.5
    ink_big = (255.0 - big).sum() / 4
    ink_small = (255.0 - small).sum()
    assert ink_small == pytest.approx(ink_big, rel=0.08)


def test_line_width_scale_and_default_width() -> None:
    strokes = [sk.Stroke([[10, 50], [90, 50]], sk.default_pen_width(100))]
    thin = sk.rasterize_strokes(strokes, 100, 100)
    thick = sk.rasterize_strokes(strokes, 100, 100, line_width_scale=2.0)
    assert (255.0 - thick).sum() > 1.7 * (255.0 - thin).sum()
    assert sk.default_pen_width(512) == sk.DEFAULT_LINE_WIDTH_512
    assert sk.default_pen_width(256) == pytest.approx(sk.DEFAULT_LINE_WIDTH_512 / 2)


def test_smoothing_keeps_ends_and_rounds_corners() -> None:
    pts = np.array([[0, 0], [10, 0], [10, 10]], float)
    out = smooth_polyline(pts)
    assert np.allclose(out[0], pts[0]) and np.allclose(out[-1], pts[-1])
    assert len(out) > len(pts)
    assert np.linalg.norm(out - [10, 0], axis=1).min() > 1.0  # the corner is cut


def test_bad_arguments() -> None:
    with pytest.raises(ValueError):
        sk.rasterize_strokes([], 0, 512)
    with pytest.raises(ValueError):
        sk.rasterize_strokes([], 64, 64, line_width_scale=0)


def test_document_render_composites_background() -> None:
    doc = sk.Document.new(128)
    bg = np.full((64, 64), 255, np.uint8)
    bg[:, 30:34] = 0  # a vertical line in the layer
    stack = sk.CommandStack(doc)
    stack.push(sk.SetBackground(bg))
    stack.push(sk.AddStrokes([sk.Stroke([[10, 20], [120, 20]], 3.0)]))
    img = doc.rasterize(128)
    assert img.shape == (128, 128)
    assert img[100, 62] < 60  # the layer's line, scaled 2x
    assert img[20, 100] < 60  # the stroke
    assert img[100, 100] == 255
    stack.push(sk.AddStrokes([sk.Stroke([[64, 90], [64, 110]], 12.0, eraser=True)]))
    assert doc.rasterize(128)[100, 62] == 255  # erasing erases the layer too
    assert doc.rasterize(64).shape == (64, 64)
    # Without strokes the layer comes back resized, untouched.
    stack.push(sk.ClearStrokes())
    assert doc.rasterize(64).tobytes() == bg.tobytes()


def test_strokes_off_the_canvas() -> None:
    far = sk.Stroke([[-1e9, 50], [1e9, 50]], 3.0)
    img = sk.rasterize_strokes([far], 100, 100)
    assert img[50, 50] < 60 and img[10, 50] == 255
    gone = sk.Stroke([[500, 500], [600, 650]], 3.0)
    assert sk.rasterize_strokes([gone], 100, 100).min() == 255
