"""Rough-sketch synthesis: deterministic per seed, identity at 0, stronger = further off."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from facesketch.sketch.rough import roughen_sketch


def _clean_sketch(size: int = 128) -> np.ndarray:
    img = np.full((size, size), 255, np.uint8)
    s = size / 128
    cv2.ellipse(img, (64, 68), (40, 52), 0, 0, 360, 0, 1)
    for ex in (46, 82):
        cv2.ellipse(img, (round(ex * s), round(60 * s)), (9, 4), 0, 0, 360, 0, 1)
        cv2.line(img, (round((ex - 10) * s), 50), (round((ex + 10) * s), 48), 0, 1)
    cv2.line(img, (64, 66), (60, 84), 0, 1)
    cv2.ellipse(img, (64, 98), (13, 5), 0, 0, 360, 0, 1)
    return img


def _distance(a: np.ndarray, b: np.ndarray) -> float:
    """1 - F1 of the ink, a drawn pixel matching if the other has ink within 2 px."""
    ia, ib = a < 128, b < 128
    near_a = cv2.dilate(ia.astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
    near_b = cv2.dilate(ib.astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
    precision = (ib & near_a).sum() / max(1, ib.sum())
    recall = (ia & near_b).sum() / max(1, ia.sum())
    return 1.0 - 2 * precision * recall / max(1e-9, precision + recall)


def test_strength_zero_returns_the_input() -> None:
    clean = _clean_sketch()
    out = roughen_sketch(clean, 0.0, seed=3)
    assert np.array_equal(out, clean) and out is not clean


def test_same_seed_same_drawing_other_seed_other_drawing() -> None:
    clean = _clean_sketch()
    a = roughen_sketch(clean, 0.6, seed=11)
    assert np.array_equal(a, roughen_sketch(clean, 0.6, seed=11))
    assert not np.array_equal(a, roughen_sketch(clean, 0.6, seed=12))
    assert a.dtype == np.uint8 and a.shape == clean.shape


def test_more_strength_moves_further_from_the_clean_sketch() -> None:
    clean = _clean_sketch()
    strengths = (0.1, 0.35, 0.7, 1.0)
    dist = [
        np.mean([_distance(clean, roughen_sketch(clean, s, seed)) for seed in range(6)])
        for s in strengths
    ]
    assert all(x < y for x, y in zip(dist, dist[1:], strict=False)), dist
    assert dist[0] > 0.0
    # still a drawing of the same face, not noise
    assert dist[-1] < 0.8


def test_output_stays_a_line_drawing_on_white_paper() -> None:
    out = roughen_sketch(_clean_sketch(), 1.0, seed=5)
    assert (out > 200).mean() > 0.85
    assert (out < 128).sum() > 50


def test_bad_input_is_refused_clearly() -> None:
    with pytest.raises(ValueError, match="strength"):
        roughen_sketch(_clean_sketch(), 1.5, seed=0)
    with pytest.raises(ValueError, match="grayscale"):
        roughen_sketch(np.zeros((8, 8, 3), np.uint8), 0.5, seed=0)
