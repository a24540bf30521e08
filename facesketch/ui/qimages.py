"""numpy uint8 arrays <-> Qt images, so widgets never touch pixel layouts themselves."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtGui import QImage, QPixmap


def array_to_qimage(arr: np.ndarray) -> QImage:
    """uint8 gray (H, W) or RGB (H, W, 3) to a QImage that owns a copy of the pixels."""
    a = np.ascontiguousarray(arr)
    if a.dtype != np.uint8:
        raise ValueError(f"expected a uint8 image, got {a.dtype}")
    if a.ndim == 2:
        h, w = a.shape
        img = QImage(a.data, w, h, a.strides[0], QImage.Format.Format_Grayscale8)
    elif a.ndim == 3 and a.shape[2] == 3:
        h, w, _ = a.shape
        img = QImage(a.data, w, h, a.strides[0], QImage.Format.Format_RGB888)
    else:
        raise ValueError(f"expected (H, W) or (H, W, 3), got shape {a.shape}")
    return img.copy()  # detach from the numpy buffer


def array_to_pixmap(arr: np.ndarray) -> QPixmap:
    """Convenience: :func:`array_to_qimage` as a pixmap (GUI thread only)."""
    return QPixmap.fromImage(array_to_qimage(arr))


def scaled_pixmap(arr: np.ndarray, side: int) -> QPixmap:
    """A thumbnail pixmap whose longer side is ``side`` pixels, smoothly scaled."""
    pm = array_to_pixmap(arr)
    return pm.scaled(
        side,
        side,
        Qt.AspectRatioMode.KeepAspectRatio,
        Qt.TransformationMode.SmoothTransformation,
    )
