"""Ink from the user's sketch: the calibrated strokes drawn over the stylized face.

The app knows the lines the person drew; drawn over the cartoon they make it look
inked by hand, in the person's own line, beside the network's own outlines.  The
sketch (uint8, white paper, dark lines; any size) is scaled to the cartoon, its
lines thickened or thinned by ``width`` and multiplied in with ``darkness``, so
colours under the line darken rather than turn flat grey.  numpy + OpenCV only.
"""

from __future__ import annotations

import cv2
import numpy as np

#: Sketch values at or above this are paper (SCN output leaves a faint grey wash).
PAPER = 235
#: Values at or below this are full-strength line.
LINE = 90
#: The line-width unit: pixels of dilation per unit of (width - 1) on a 512 image.
RADIUS_PER_WIDTH = 1.5


def ink_mask(sketch: np.ndarray, size: tuple[int, int], width: float = 1.0) -> np.ndarray:
    """Float32 (H, W) line coverage 0..1 of ``sketch`` at ``size`` (h, w), width-adjusted."""
    s = np.asarray(sketch)
    if s.ndim == 3:
        s = cv2.cvtColor(s, cv2.COLOR_RGB2GRAY)
    if s.dtype != np.uint8 or s.ndim != 2 or s.size == 0:
        raise ValueError(f"ink needs a uint8 gray sketch, got {s.dtype} {s.shape}")
    h, w = size
    if s.shape != (h, w):
        interp = cv2.INTER_AREA if s.shape[0] > h else cv2.INTER_LINEAR
        s = cv2.resize(s, (w, h), interpolation=interp)
    m = np.clip((PAPER - s.astype(np.float32)) / (PAPER - LINE), 0.0, 1.0)
    r = (float(width) - 1.0) * RADIUS_PER_WIDTH * max(h, w) / 512
    k = int(round(abs(r)))
    if k >= 1:
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * k + 1, 2 * k + 1))
        m = cv2.dilate(m, kernel) if r > 0 else cv2.erode(m, kernel)
    elif r < 0:  # thinner than one pixel of erosion: fade the line's soft edge instead
        m = m ** (1.0 + 2.0 * abs(r))
    return m


def apply_ink(
    cartoon: np.ndarray, sketch: np.ndarray, width: float = 1.0, darkness: float = 0.85
) -> np.ndarray:
    """``cartoon`` (uint8 RGB) with the sketch's lines multiplied in (new array)."""
    if cartoon.dtype != np.uint8 or cartoon.ndim != 3 or cartoon.shape[2] != 3:
        raise ValueError(f"ink needs a uint8 RGB cartoon, got {cartoon.dtype} {cartoon.shape}")
    d = float(np.clip(darkness, 0.0, 1.0))
    if d == 0.0:
        return cartoon.copy()
    m = ink_mask(sketch, cartoon.shape[:2], width)
    keep = 1.0 - d * m[..., None]
    return np.clip(cartoon.astype(np.float32) * keep + 0.5, 0, 255).astype(np.uint8)
