"""Hair strands along the drawn flow (facesketch.engine.hair), on synthetic faces.

The face is the shipped gallery's mean landmark shape at 256, painted: a light
background, a skin-coloured face, a dark hair cap over the forehead and down the sides.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from facesketch.engine import hair
from facesketch.engine.gallery import Gallery
from facesketch.engine.real_pixels import face_region
from facesketch.layout import FaceLayout

SIZE = 256


@pytest.fixture(scope="module")
def landmarks() -> np.ndarray:
    g = Gallery.load()
    return np.mean([g.landmarks(i) for i in range(len(g.descriptors))], axis=0)


def _painted(landmarks: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(render, hair mask, skin mask): a dark cap around the face's top and sides."""
    pts = landmarks.astype(np.float32)
    render = np.full((SIZE, SIZE, 3), (200, 205, 210), np.uint8)  # light grey wall
    cx, top, height, width, chin, brow = hair._geometry(landmarks)
    cap = np.zeros((SIZE, SIZE), np.uint8)
    cv2.ellipse(
        cap, (round(cx), round(brow)), (round(0.75 * width), round(0.75 * height)), 0, 0, 360, 1, -1
    )
    cap[round(chin - 0.2 * height) :] = 0
    render[cap > 0] = (60, 40, 30)  # dark brown hair
    face = face_region(pts, SIZE, 0.2) > 0
    render[face] = (225, 180, 150)  # skin
    return render, (cap > 0) & ~face, face


def test_the_strands_run_along_the_drawn_strokes(landmarks):
    sketch = np.full((SIZE, SIZE), 255, np.uint8)
    for k in range(-SIZE, SIZE, 6):  # diagonal hair strokes, 45 degrees
        cv2.line(sketch, (k, 0), (k + SIZE, SIZE), 0, 1)
    vx, vy = hair.flow_field(sketch, landmarks, SIZE)
    c = np.abs(vx * np.cos(np.pi / 4) + vy * np.sin(np.pi / 4))
    assert np.median(c) > 0.98
    t = hair.strand_texture(sketch, landmarks, SIZE)
    d_along = np.abs(t[1:, 1:] - t[:-1, :-1]).mean()  # step along (1, 1): the strokes
    d_across = np.abs(t[1:, :-1] - t[:-1, 1:]).mean()  # step along (-1, 1): across them
    assert d_across > 2.0 * d_along


def test_the_default_strands_fall_down_the_sides_where_nothing_is_drawn(landmarks):
    blank = np.full((SIZE, SIZE), 255, np.uint8)
    vx, vy = hair.flow_field(blank, landmarks, SIZE)
    cx, top, height, width, chin, brow = hair._geometry(landmarks)
    y, x = round(brow + 0.5 * height), round(cx - 0.75 * width)  # beside the cheek
    assert abs(vy[y, x]) > 0.75  # mostly vertical: hair hangs
    crown = np.array([cx, top - hair.CROWN_ABOVE * height])
    for y, x in ((2, round(cx - 0.6 * width)), (2, round(cx + 0.6 * width)), (round(top), 5)):
        radial = (np.array([x, y]) - crown) / np.linalg.norm(np.array([x, y]) - crown)
        assert abs(vx[y, x] * radial[0] + vy[y, x] * radial[1]) > 0.95  # from the crown


def test_the_hair_weight_marks_dark_hair_not_skin_nor_the_light_wall(landmarks):
    render, cap, face = _painted(landmarks)
    w = hair.hair_weight(render, landmarks)
    wall = (render == (200, 205, 210)).all(-1)
    assert w[cap].mean() > 0.5
    assert w[face].mean() < 0.05
    assert w[wall].mean() < 0.05


def test_hair_lighter_than_the_skin_gets_no_strands(landmarks):
    render, cap, _ = _painted(landmarks)
    render[cap] = (250, 240, 200)  # platinum blond: not darker than the skin
    assert hair.hair_weight(render, landmarks).max() < 0.05
    stage = hair.HairStage()
    sketch = np.full((SIZE, SIZE), 255, np.uint8)
    assert np.array_equal(stage.apply(render, sketch, landmarks, FaceLayout.default()), render)


def test_strands_are_added_in_the_hair_only_and_reused_across_a_window_edit(landmarks):
    render, cap, face = _painted(landmarks)
    sketch = np.full((SIZE, SIZE), 255, np.uint8)
    layout = FaceLayout.default()
    stage = hair.HairStage()
    out = stage.apply(render, sketch, landmarks, layout)
    assert stage.last == "miss"
    diff = np.abs(out.astype(int) - render).sum(-1)
    assert diff[cap].mean() > 2.0  # strands in the hair
    assert diff[face].mean() < 0.2 * diff[cap].mean()
    nose = layout.scaled(SIZE).window("nose")
    edited = sketch.copy()
    cv2.line(edited, (nose.x + 10, nose.y + 10), (nose.x + 40, nose.y + 30), 0, 2)
    again = stage.apply(render, edited, landmarks, layout)
    assert stage.last == "hit" and np.array_equal(again, out)  # same strands, no flicker
    stroke = sketch.copy()
    cv2.line(stroke, (10, 10), (60, 80), 0, 2)  # a hair stroke outside the windows
    stage.apply(render, stroke, landmarks, layout)
    assert stage.last == "miss"
