"""FaceLayout: the canonical windows, scaling, moving, hit-testing and paste/blend."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from facesketch.layout import (
    BACKGROUND,
    COMPONENTS,
    LEFT_EYE,
    LOCAL_COMPONENTS,
    MOUTH,
    NOSE,
    RIGHT_EYE,
    FaceLayout,
    Window,
)

# The reference systems' windows on a 512 canvas (DESIGN.md), written out once here
# as the test's independent expectation.
EXPECTED_512 = {
    LEFT_EYE: (108, 156, 128),
    RIGHT_EYE: (255, 156, 128),
    NOSE: (182, 232, 160),
    MOUTH: (169, 301, 192),
    BACKGROUND: (0, 0, 512),
}


def as_tuple(w: Window) -> tuple[int, int, int]:
    return (w.x, w.y, w.size)


def test_reference_windows_at_512() -> None:
    lay = FaceLayout.default(512)
    assert {n: as_tuple(lay.window(n)) for n in COMPONENTS} == EXPECTED_512


@pytest.mark.parametrize("canvas", [256, 1024])
def test_default_layout_scales(canvas: int) -> None:
    f = canvas / 512
    lay = FaceLayout.default(canvas)
    for name, (x, y, s) in EXPECTED_512.items():
        assert as_tuple(lay.window(name)) == (round(x * f), round(y * f), round(s * f))
    assert FaceLayout.default(512).scaled(canvas) == lay


def test_training_canvas_window_sizes() -> None:
    lay = FaceLayout.default(256)
    sizes = {n: lay.window(n).size for n in COMPONENTS}
    assert sizes == {LEFT_EYE: 64, RIGHT_EYE: 64, NOSE: 80, MOUTH: 96, BACKGROUND: 256}


def test_moved_window_survives_scaling() -> None:
    lay = FaceLayout.default(512).moved(NOSE, 200, 240)
    assert as_tuple(lay.window(NOSE)) == (200, 240, 160)
    small = lay.scaled(256)
    assert as_tuple(small.window(NOSE)) == (100, 120, 80)
    back = small.scaled(512)
    assert as_tuple(back.window(NOSE)) == (200, 240, 160)
    assert not back.is_default()
    assert back.window(LEFT_EYE) == lay.window(LEFT_EYE)


def test_move_is_clamped_and_background_fixed() -> None:
    lay = FaceLayout.default(512)
    moved = lay.moved(MOUTH, 10_000, -50)
    assert as_tuple(moved.window(MOUTH)) == (512 - 192, 0, 192)
    with pytest.raises(ValueError, match="background"):
        lay.moved(BACKGROUND, 1, 1)
    with pytest.raises(KeyError, match="unknown component"):
        lay.moved("ear", 1, 1)
    assert lay.is_default()  # moving returns a new layout


def test_component_at() -> None:
    lay = FaceLayout.default(512)
    for name in LOCAL_COMPONENTS:
        cx, cy = lay.window(name).center
        assert lay.component_at(cx, cy) == name
    assert lay.component_at(5, 5) == BACKGROUND
    assert lay.component_at(511, 511) == BACKGROUND
    # The eyes overlap the nose window's top: the eye (pasted later) wins there.
    assert lay.component_at(190, 240) == LEFT_EYE


def test_hard_paste_overwrites_exactly() -> None:
    lay = FaceLayout.default(256)
    base = np.zeros((3, 256, 256), np.float32)
    w = lay.window(MOUTH)
    patch = np.full((3, w.size, w.size), 7.0, np.float32)
    out = lay.paste(base, MOUTH, patch, feather=0)
    rows, cols = w.slices
    assert np.all(out[:, rows, cols] == 7.0)
    outside = np.ones_like(out, bool)
    outside[:, rows, cols] = False
    assert np.all(out[outside] == 0.0)
    assert np.all(base == 0.0)  # the input is not modified


def test_feathered_mask_and_nose_cut() -> None:
    lay = FaceLayout.default(512)
    m = lay.paste_mask(LEFT_EYE)
    s = m.shape[0]
    assert m[s // 2, s // 2] == pytest.approx(1.0)
    assert m[0, 0] < 0.1 and m[s // 2, 0] < 0.1 and m[-1, s // 2] < 0.1
    assert np.all((m >= 0) & (m <= 1))
    nose = lay.paste_mask(NOSE, feather=0)
    cut = lay.nose_bottom_cut
    assert cut == 36
    assert np.all(nose[-cut:] == 0) and np.all(nose[: nose.shape[0] - cut] == 1)
    soft_nose = lay.paste_mask(NOSE)
    assert np.all(soft_nose[-cut:] == 0)


def test_paste_works_on_torch_tensors() -> None:
    lay = FaceLayout.default(256)
    base = torch.zeros(1, 4, 256, 256)
    w = lay.window(NOSE)
    out = lay.paste_all(base, {NOSE: torch.ones(1, 4, w.size, w.size)}, feather=0)
    assert out.shape == base.shape
    assert float(out.sum()) == pytest.approx(4 * w.size * (w.size - lay.nose_bottom_cut))
    assert float(base.abs().sum()) == 0.0


def test_layout_round_trips_through_dict() -> None:
    lay = FaceLayout.default(512).moved(RIGHT_EYE, 260, 150)
    assert FaceLayout.from_dict(lay.to_dict()) == lay
    with pytest.raises(ValueError, match="malformed"):
        FaceLayout.from_dict({"canvas": 512})
