"""Image reading and the one normalisation convention of the project.

Arrays at the edges of the program are uint8: RGB photos (H, W, 3) and grayscale
sketches (H, W) with white (255) paper and black (0) lines.  Networks see float
tensors in [-1, 1], RGB, laid out (N, C, H, W); sketches keep white = +1.
Everything converts through here so the convention lives in one place.
"""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np

#: Longest side an input photo is reduced to before anything else looks at it.
MAX_INPUT_SIDE = 2048


class ImageError(ValueError):
    """An image file could not be used; the message says which file and why."""


def _to_uint8(img: np.ndarray) -> np.ndarray:
    if img.dtype == np.uint8:
        return img
    if img.dtype == np.uint16:
        return (img / 257.0 + 0.5).astype(np.uint8)
    if np.issubdtype(img.dtype, np.floating):
        hi = 1.0 if float(np.nanmax(img)) <= 1.0 else 255.0
        return np.clip(np.nan_to_num(img) * (255.0 / hi) + 0.5, 0, 255).astype(np.uint8)
    return np.clip(img, 0, 255).astype(np.uint8)


def as_rgb(img: np.ndarray) -> np.ndarray:
    """Any decoded image (gray, gray+alpha, RGB, RGBA; 8/16-bit/float) as uint8 RGB.

    Transparent pixels are composited on white, which is what a person expects of a
    cut-out photo or a sketch with a transparent background.
    """
    img = _to_uint8(np.asarray(img))
    if img.ndim == 2:
        return np.repeat(img[:, :, None], 3, axis=2)
    if img.ndim != 3 or img.shape[2] not in (1, 2, 3, 4):
        raise ImageError(f"unsupported image shape {img.shape}")
    if img.shape[2] == 1:
        return np.repeat(img, 3, axis=2)
    if img.shape[2] in (2, 4):
        color, alpha = img[:, :, :-1], img[:, :, -1:].astype(np.float32) / 255.0
        if color.shape[2] == 1:
            color = np.repeat(color, 3, axis=2)
        out = color.astype(np.float32) * alpha + 255.0 * (1 - alpha)
        return (out + 0.5).astype(np.uint8)
    return np.ascontiguousarray(img)


def downscale_to(img: np.ndarray, max_side: int = MAX_INPUT_SIDE) -> np.ndarray:
    """Shrink so the longest side is at most ``max_side`` (area filter); never enlarge."""
    h, w = img.shape[:2]
    s = max(h, w)
    if s <= max_side:
        return img
    f = max_side / s
    return cv2.resize(
        img, (max(1, round(w * f)), max(1, round(h * f))), interpolation=cv2.INTER_AREA
    )


def read_image(path: str | os.PathLike[str], max_side: int = MAX_INPUT_SIDE) -> np.ndarray:
    """Read any common image file as uint8 RGB, downscaled to ``max_side``.

    Raises :class:`ImageError` naming the file for a missing, unreadable or corrupt
    file, so callers can show it to the user as it is.
    """
    p = Path(path)
    if not p.is_file():
        raise ImageError(f"{p}: no such file")
    data = np.fromfile(str(p), dtype=np.uint8)
    if data.size == 0:
        raise ImageError(f"{p}: the file is empty")
    img = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    if img is None:
        raise ImageError(f"{p}: not an image this program can read (corrupt or unknown format)")
    if img.ndim == 3 and img.shape[2] >= 3:
        code = cv2.COLOR_BGRA2RGBA if img.shape[2] == 4 else cv2.COLOR_BGR2RGB
        img = cv2.cvtColor(img, code)
    return downscale_to(as_rgb(img), max_side)


def read_sketch(path: str | os.PathLike[str], max_side: int = MAX_INPUT_SIDE) -> np.ndarray:
    """Read a sketch image as uint8 grayscale (white paper, dark lines)."""
    rgb = read_image(path, max_side)
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)


def write_image(path: str | os.PathLike[str], img: np.ndarray, quality: int = 95) -> Path:
    """Write an RGB or grayscale uint8 image (PNG, JPEG, … by extension), atomically."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    ext = p.suffix.lower() or ".png"
    arr = img if img.ndim == 2 else cv2.cvtColor(img, cv2.COLOR_RGB2BGR)
    params = [cv2.IMWRITE_JPEG_QUALITY, quality] if ext in (".jpg", ".jpeg") else []
    ok, buf = cv2.imencode(ext, arr, params)
    if not ok:
        raise ImageError(f"{p}: cannot encode an image as {ext}")
    tmp = p.with_name(f".{p.name}.tmp")
    buf.tofile(str(tmp))
    os.replace(tmp, p)
    return p


# -- tensors -------------------------------------------------------------------------
def image_to_tensor(img: np.ndarray):  # -> torch.Tensor
    """uint8 RGB (H, W, 3) or batch (N, H, W, 3) to float (N, 3, H, W) in [-1, 1]."""
    import torch

    t = torch.from_numpy(np.ascontiguousarray(img))
    if t.ndim == 3:
        t = t[None]
    return t.permute(0, 3, 1, 2).float().div(127.5).sub(1.0)


def sketch_to_tensor(sketch: np.ndarray):  # -> torch.Tensor
    """uint8 gray (H, W) or batch (N, H, W) to float (N, 1, H, W) in [-1, 1], white = +1."""
    import torch

    t = torch.from_numpy(np.ascontiguousarray(sketch))
    if t.ndim == 2:
        t = t[None]
    return t[:, None].float().div(127.5).sub(1.0)


def tensor_to_image(t) -> np.ndarray:
    """Float tensor in [-1, 1], (N, C, H, W) or (C, H, W), to uint8 (H, W, C) or (N, H, W, C).

    One-channel tensors come back as (H, W) / (N, H, W) grayscale.
    """
    x = t.detach().float().clamp(-1, 1).add(1).mul(127.5).round().to("cpu")
    batched = x.ndim == 4
    if not batched:
        x = x[None]
    arr = x.permute(0, 2, 3, 1).numpy().astype(np.uint8)
    if arr.shape[-1] == 1:
        arr = arr[..., 0]
    return arr if batched else arr[0]
