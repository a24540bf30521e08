"""Anime proportions: a smooth, landmark-driven warp that enlarges the eyes and
shrinks the nose, the mouth and the chin (applied before stylization).

The warp is a sum of local displacement fields (a radial scaling around each eye,
the nose and the mouth, and an upward pull of the chin), each fading smoothly to
zero, so straight lines bend gently and nothing tears.  The same maps can be
applied to the sketch so the user's ink stays on the warped features
(:func:`warp_maps` + :func:`apply_maps`).

Where the parts are comes from dlib's 68 landmarks (:func:`parts_from_landmarks`,
for arbitrary photos) or, for a face rendered from a sketch, from the document's
component windows (:func:`parts_from_layout`: no detection needed).  Pure numpy +
OpenCV; no dlib import here.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

#: At strength 1: eye scale, nose and mouth scales, chin lift (x eye distance).
EYE_GAIN, NOSE_GAIN, MOUTH_GAIN, CHIN_LIFT = 0.38, -0.30, -0.25, 0.14


@dataclass(frozen=True)
class FaceParts:
    """Centres (x, y) in image pixels of the parts the warp moves."""

    left_eye: tuple[float, float]
    right_eye: tuple[float, float]
    nose: tuple[float, float]
    mouth: tuple[float, float]
    chin: tuple[float, float]

    @property
    def eye_distance(self) -> float:
        """Distance between the eye centres: the warp's unit of length."""
        return float(np.hypot(*np.subtract(self.right_eye, self.left_eye)))

    def scaled(self, f: float) -> FaceParts:
        """The same parts on an image ``f`` times as large."""
        s = [
            (p[0] * f, p[1] * f)
            for p in (self.left_eye, self.right_eye, self.nose, self.mouth, self.chin)
        ]
        return FaceParts(*s)


def parts_from_landmarks(lm: np.ndarray) -> FaceParts:
    """Parts from dlib's 68 iBUG landmarks ((68, 2) in image pixels)."""
    lm = np.asarray(lm, np.float64)
    if lm.shape != (68, 2):
        raise ValueError(f"expected (68, 2) landmarks, got {lm.shape}")

    def c(a: int, b: int) -> tuple[float, float]:
        m = lm[a:b].mean(0)
        return (float(m[0]), float(m[1]))

    return FaceParts(c(36, 42), c(42, 48), c(30, 36), c(48, 68), c(7, 10))


def parts_from_layout(layout: object, size: int) -> FaceParts:
    """Parts of a face rendered from a document, from its component windows.

    ``layout`` is a :class:`facesketch.layout.FaceLayout`; ``size`` the render's side.
    The chin is not a window: it lies below the mouth by about half the
    eye-to-mouth distance, as on the aligned faces the networks were trained on.
    """
    f = size / layout.canvas  # type: ignore[attr-defined]
    win = layout.windows  # type: ignore[attr-defined]
    le, re_, no, mo = (win[k].center for k in ("left_eye", "right_eye", "nose", "mouth"))
    eyes = ((le[0] + re_[0]) / 2, (le[1] + re_[1]) / 2)
    chin = (mo[0], mo[1] + 0.5 * (mo[1] - eyes[1]))
    return FaceParts(le, re_, no, mo, chin).scaled(f)


def _radial(gx: np.ndarray, gy: np.ndarray, c: tuple[float, float], radius: float, gain: float):
    """Backward displacement of a local scaling by (1 + gain) around ``c`` within ``radius``."""
    dx, dy = gx - c[0], gy - c[1]
    r2 = (dx * dx + dy * dy) / (radius * radius)
    fall = np.clip(1.0 - r2, 0.0, None) ** 2  # 1 at the centre, 0 (and flat) at the radius
    k = (1.0 / (1.0 + gain) - 1.0) * fall
    return dx * k, dy * k


def warp_maps(
    shape: tuple[int, int], parts: FaceParts, strength: float
) -> tuple[np.ndarray, np.ndarray] | None:
    """cv2.remap maps (map_x, map_y) of the anime warp; None when ``strength`` is 0."""
    s = float(np.clip(strength, 0.0, 1.0))
    if s <= 0:
        return None
    h, w = shape
    d = max(parts.eye_distance, 1.0)
    gy, gx = np.mgrid[0:h, 0:w].astype(np.float32)
    mx, my = np.zeros_like(gx), np.zeros_like(gy)
    for c, radius, gain in (
        (parts.left_eye, 0.48 * d, EYE_GAIN * s),
        (parts.right_eye, 0.48 * d, EYE_GAIN * s),
        (parts.nose, 0.42 * d, NOSE_GAIN * s),
        (parts.mouth, 0.52 * d, MOUTH_GAIN * s),
    ):
        ax, ay = _radial(gx, gy, c, radius, gain)
        mx += ax
        my += ay
    # chin: pull the lower face up (the output samples from below), fading sideways/up
    lift = CHIN_LIFT * s * d
    cx, cy = parts.chin
    bump = np.exp(-(((gx - cx) / (0.75 * d)) ** 2) - (((gy - (cy - lift)) / (0.45 * d)) ** 2))
    my += lift * bump
    return gx + mx, gy + my


def apply_maps(
    img: np.ndarray, maps: tuple[np.ndarray, np.ndarray] | None, border: int = cv2.BORDER_REPLICATE
) -> np.ndarray:
    """``img`` resampled through ``maps`` (unchanged copy when None)."""
    if maps is None:
        return img.copy()
    return cv2.remap(img, maps[0], maps[1], cv2.INTER_LINEAR, borderMode=border)


def anime_warp(img: np.ndarray, parts: FaceParts, strength: float) -> np.ndarray:
    """``img`` with anime proportions at ``strength`` (0 = unchanged, 1 = strongest)."""
    return apply_maps(img, warp_maps(img.shape[:2], parts, strength))
