"""Alignment of a face photo to the canonical face layout, and component crops.

The same code aligns training photos and the reference photos a user drops, so a
component crop of a reference looks like the crops the networks were trained on.
A similarity transform (rotation, uniform scale, translation) maps landmark
centres of the eyes, nose and mouth to the centres of the layout's windows.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from facesketch.face.detect import NoFaceError, detect_faces
from facesketch.imaging import as_rgb
from facesketch.layout import (
    COMPONENTS,
    LEFT_EYE,
    LOCAL_COMPONENTS,
    MOUTH,
    NOSE,
    RIGHT_EYE,
    FaceLayout,
)

# dlib / iBUG 68-point indices.  Points 36-41 are the person's right eye, which a
# photo shows on the image's LEFT: the layout's "left_eye" means image left.
_IMAGE_LEFT_EYE = slice(36, 42)
_IMAGE_RIGHT_EYE = slice(42, 48)
_NOSE_BRIDGE = slice(27, 31)
_NOSE_LOWER = slice(30, 36)
_MOUTH = slice(48, 68)
#: Weight of the nose bridge against the lower nose in the nose centre; chosen on
#: real photos so the nose sits centred (vertically) in its window.
NOSE_BRIDGE_WEIGHT = 0.2

#: Least-squares weights (x residual, y residual) of each component centre.  The
#: reference windows are not left-right symmetric (nose and mouth windows sit
#: ~17 px right of the eyes' midline at 512), so the nose and mouth constrain only
#: the vertical placement: fitting their x would tilt every face.  The eyes get
#: the most weight because eye placement matters most to the eye branches.
FIT_WEIGHTS: dict[str, tuple[float, float]] = {
    LEFT_EYE: (1.0, 1.0),
    RIGHT_EYE: (1.0, 1.0),
    NOSE: (0.0, 0.1),
    MOUTH: (0.0, 0.2),
}
#: Shrink factor below which the photo is area-resized before warping (warpAffine
#: has no true area filter, so a large reduction would alias).
_PRESHRINK_BELOW = 0.6


@dataclass(frozen=True)
class AlignedFace:
    """A face warped onto the layout canvas.

    ``mask`` is 255 where the pixel came from the photo and 0 where the border was
    filled in; ``matrix`` (2x3) maps input pixels to aligned pixels;
    ``landmarks`` (68, 2) are in the aligned frame.
    """

    image: np.ndarray
    mask: np.ndarray
    matrix: np.ndarray
    landmarks: np.ndarray
    score: float


def landmark_centres(landmarks: np.ndarray) -> dict[str, np.ndarray]:
    """Centre (x, y) of each local component computed from 68 landmarks."""
    pts = np.asarray(landmarks, np.float64)
    if pts.shape != (68, 2):
        raise ValueError(f"expected (68, 2) landmarks, got {pts.shape}")
    nose = NOSE_BRIDGE_WEIGHT * pts[_NOSE_BRIDGE].mean(0) + (1 - NOSE_BRIDGE_WEIGHT) * pts[
        _NOSE_LOWER
    ].mean(0)
    return {
        LEFT_EYE: pts[_IMAGE_LEFT_EYE].mean(0),
        RIGHT_EYE: pts[_IMAGE_RIGHT_EYE].mean(0),
        NOSE: nose,
        MOUTH: pts[_MOUTH].mean(0),
    }


def similarity_transform(landmarks: np.ndarray, layout: FaceLayout) -> np.ndarray:
    """The 2x3 similarity matrix taking the landmark centres to the layout's window
    centres, by weighted least squares (:data:`FIT_WEIGHTS`)."""
    src = landmark_centres(landmarks)
    dst = layout.alignment_targets()
    rows, rhs = [], []
    for name in LOCAL_COMPONENTS:
        (x, y), (u, v) = src[name], dst[name]
        wx, wy = (np.sqrt(w) for w in FIT_WEIGHTS[name])
        # u = a x - b y + tx ; v = b x + a y + ty
        rows += [wx * np.array([x, -y, 1.0, 0.0]), wy * np.array([y, x, 0.0, 1.0])]
        rhs += [wx * u, wy * v]
    (a, b, tx, ty), *_ = np.linalg.lstsq(np.array(rows), np.array(rhs), rcond=None)
    return np.array([[a, -b, tx], [b, a, ty]], np.float64)


def transform_points(matrix: np.ndarray, pts: np.ndarray) -> np.ndarray:
    """Apply a 2x3 affine matrix to (K, 2) points."""
    pts = np.asarray(pts, np.float64)
    return (pts @ matrix[:, :2].T + matrix[:, 2]).astype(np.float32)


def warp_to_canvas(rgb: np.ndarray, matrix: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Warp ``rgb`` by ``matrix`` onto a ``size`` canvas; returns (image, validity mask).

    Outside the photo the border is replicated and heavily blurred so the input
    looks plausible without inventing detail; the mask marks real pixels only.
    """
    matrix = np.asarray(matrix, np.float64)
    scale = float(np.sqrt(abs(np.linalg.det(matrix[:, :2]))))
    src = rgb
    if scale < _PRESHRINK_BELOW:
        # Shrink with an area filter to about the target scale, then fix the matrix.
        h, w = rgb.shape[:2]
        nw, nh = max(1, round(w * scale)), max(1, round(h * scale))
        src = cv2.resize(rgb, (nw, nh), interpolation=cv2.INTER_AREA)
        sx, sy = nw / w, nh / h
        pre = np.array([[sx, 0, 0.5 * sx - 0.5], [0, sy, 0.5 * sy - 0.5], [0, 0, 1]])
        matrix = (_full_matrix(matrix) @ np.linalg.inv(pre))[:2]
    image = cv2.warpAffine(
        src, matrix, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
    )
    ones = np.full(src.shape[:2], 255, np.uint8)
    cover = cv2.warpAffine(
        ones, matrix, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT
    )
    mask = np.where(cover >= 250, 255, 0).astype(np.uint8)
    if mask.min() == 0:
        sigma = max(2.0, size / 32)
        blurred = cv2.GaussianBlur(image, (0, 0), sigma)
        w = cv2.GaussianBlur(mask.astype(np.float32) / 255.0, (0, 0), sigma / 4)[..., None]
        w = np.maximum(w, mask[..., None] / 255.0)
        image = (image * w + blurred * (1 - w) + 0.5).astype(np.uint8)
    return image, mask


def _full_matrix(m2x3: np.ndarray) -> np.ndarray:
    return np.vstack([m2x3, [0.0, 0.0, 1.0]])


def align_face(
    rgb: np.ndarray,
    size: int = 512,
    layout: FaceLayout | None = None,
    face_index: int = 0,
    source: str | None = None,
) -> AlignedFace:
    """Detect face number ``face_index`` (by score) and warp it onto the layout.

    ``layout`` defaults to the canonical layout; it is scaled to ``size``.
    ``source`` (a file name) only improves the error message.  Raises
    :class:`NoFaceError` when there is no such face.
    """
    if size < 16:
        raise ValueError(f"aligned size must be at least 16 px, got {size}")
    if face_index < 0:
        raise ValueError(f"face index must be 0 or more, got {face_index}")
    img = as_rgb(np.asarray(rgb))
    lay = (layout or FaceLayout.default(size)).scaled(size)
    faces = detect_faces(img)
    where = f" in {source}" if source else ""
    if not faces:
        raise NoFaceError(f"no face found{where}: use a clear, frontal photo")
    if face_index >= len(faces):
        raise NoFaceError(
            f"face {face_index} requested{where} but only {len(faces)} face(s) found "
            f"(faces are numbered from 0, highest detection score first)"
        )
    face = faces[face_index]
    matrix = similarity_transform(face.landmarks, lay)
    image, mask = warp_to_canvas(img, matrix, size)
    return AlignedFace(
        image=image,
        mask=mask,
        matrix=matrix,
        landmarks=transform_points(matrix, face.landmarks),
        score=face.score,
    )


def component_crops(image: np.ndarray, layout: FaceLayout | None = None) -> dict[str, np.ndarray]:
    """Crops of every component (background = the whole canvas) from an aligned image.

    The layout is rescaled to the image's side when their sizes differ.
    """
    h, w = image.shape[:2]
    if h != w:
        raise ValueError(f"an aligned face is square; got {w}x{h}")
    lay = (layout or FaceLayout.default(h)).scaled(h)
    return {name: lay.crop(image, name) for name in COMPONENTS}


__all__ = [
    "AlignedFace",
    "FIT_WEIGHTS",
    "NoFaceError",
    "align_face",
    "component_crops",
    "landmark_centres",
    "similarity_transform",
    "transform_points",
    "warp_to_canvas",
]
