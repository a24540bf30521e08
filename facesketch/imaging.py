"""Image reading and the one normalisation convention of the project.

Arrays at the edges of the program are uint8: RGB photos (H, W, 3) and grayscale
sketches (H, W) with white (255) paper and black (0) lines.  Networks see float
tensors in [-1, 1], RGB, laid out (N, C, H, W); sketches keep white = +1.
Everything converts through here so the convention lives in one place.
"""

from __future__ import annotations

import os
import struct
from pathlib import Path

import cv2
import numpy as np

from facesketch.fileio import (
    MAX_IMAGE_BYTES,
    FileCheckError,
    atomic_write_bytes,
    check_writable_dest,
    read_file_bytes,
)

#: Longest side an input photo is reduced to before anything else looks at it.
MAX_INPUT_SIDE = 2048
#: Image types :func:`write_image` writes.
WRITE_EXTS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")


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


def exif_orientation(data: bytes) -> int:
    """The EXIF orientation tag (1..8) of an encoded JPEG, PNG, WebP or TIFF; 1 if none.

    Phones store photos as the sensor saw them and say in this tag how to turn them
    upright; a face lying on its side is not found by the detector.
    """
    try:
        tiff = _exif_block(data)
        return _tiff_orientation(tiff) if tiff else 1
    except (IndexError, ValueError, struct.error):
        return 1  # a damaged EXIF block: show the pixels as stored


def _exif_block(data: bytes) -> bytes | None:
    if data[:2] == b"\xff\xd8":  # JPEG: APP1 "Exif\0\0" among the first segments
        i = 2
        while i + 4 <= len(data) and data[i] == 0xFF:
            marker, size = data[i + 1], struct.unpack(">H", data[i + 2 : i + 4])[0]
            if marker == 0xE1 and data[i + 4 : i + 10] == b"Exif\x00\x00":
                return data[i + 10 : i + 2 + size]
            if marker in (0xDA, 0xD9):  # start of scan / end: no EXIF before the pixels
                return None
            i += 2 + size
        return None
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        i = 8
        while i + 8 <= len(data):
            size, kind = struct.unpack(">I4s", data[i : i + 8])
            if kind == b"eXIf":
                return data[i + 8 : i + 8 + size]
            if kind in (b"IDAT", b"IEND"):
                return None
            i += 12 + size
        return None
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        i = 12
        while i + 8 <= len(data):
            kind, size = struct.unpack("<4sI", data[i : i + 8])
            if kind == b"EXIF":
                block = data[i + 8 : i + 8 + size]
                return block[6:] if block.startswith(b"Exif\x00\x00") else block
            i += 8 + size + (size & 1)
        return None
    if data[:4] in (b"II*\x00", b"MM\x00*"):
        return data
    return None


def _tiff_orientation(tiff: bytes) -> int:
    endian = {b"II": "<", b"MM": ">"}.get(tiff[:2])
    if endian is None:
        return 1
    (ifd,) = struct.unpack(endian + "I", tiff[4:8])
    (count,) = struct.unpack(endian + "H", tiff[ifd : ifd + 2])
    for k in range(min(count, 512)):
        entry = tiff[ifd + 2 + 12 * k : ifd + 14 + 12 * k]
        tag, kind, _n = struct.unpack(endian + "HHI", entry[:8])
        if tag == 0x0112:
            fmt = "H" if kind == 3 else "I" if kind == 4 else None
            if fmt is None:
                return 1
            value = struct.unpack(endian + fmt, entry[8 : 8 + struct.calcsize(fmt)])[0]
            return int(value) if 1 <= value <= 8 else 1
    return 1


def apply_orientation(img: np.ndarray, orientation: int) -> np.ndarray:
    """Turn a decoded image upright as EXIF ``orientation`` (1..8) says."""
    if orientation == 2:
        return cv2.flip(img, 1)
    if orientation == 3:
        return cv2.rotate(img, cv2.ROTATE_180)
    if orientation == 4:
        return cv2.flip(img, 0)
    if orientation == 5:
        return np.ascontiguousarray(np.swapaxes(img, 0, 1))
    if orientation == 6:
        return cv2.rotate(img, cv2.ROTATE_90_CLOCKWISE)
    if orientation == 7:
        return cv2.rotate(np.ascontiguousarray(np.swapaxes(img, 0, 1)), cv2.ROTATE_180)
    if orientation == 8:
        return cv2.rotate(img, cv2.ROTATE_90_COUNTERCLOCKWISE)
    return img


def read_image(path: str | os.PathLike[str], max_side: int = MAX_INPUT_SIDE) -> np.ndarray:
    """Read any common image file as uint8 RGB, upright (EXIF orientation), downscaled.

    Only a regular file of at most :data:`~facesketch.fileio.MAX_IMAGE_BYTES` is read
    (a device or FIFO fails at once).  Raises :class:`ImageError` naming the file for a
    missing, unreadable or corrupt file, so callers can show it to the user as it is.
    """
    p = Path(path)
    try:
        raw = read_file_bytes(p, MAX_IMAGE_BYTES, "image file")
    except FileCheckError as exc:
        raise ImageError(str(exc)) from None
    if not raw:
        raise ImageError(f"{p}: the file is empty")
    img = cv2.imdecode(np.frombuffer(raw, np.uint8), cv2.IMREAD_UNCHANGED)
    if img is None:
        raise ImageError(f"{p}: not an image this program can read (corrupt or unknown format)")
    if img.ndim == 3 and img.shape[2] >= 3:
        code = cv2.COLOR_BGRA2RGBA if img.shape[2] == 4 else cv2.COLOR_BGR2RGB
        img = cv2.cvtColor(img, code)
    img = apply_orientation(img, exif_orientation(raw))
    return downscale_to(as_rgb(img), max_side)


def read_sketch(path: str | os.PathLike[str], max_side: int = MAX_INPUT_SIDE) -> np.ndarray:
    """Read a sketch image as uint8 grayscale (white paper, dark lines)."""
    rgb = read_image(path, max_side)
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)


def check_output_image(path: str | os.PathLike[str]) -> Path:
    """Raise :class:`ImageError` now if an image cannot be written to ``path`` later.

    Commands call it before slow work, so a typo in ``-o`` (an unknown extension, a
    folder that is a file, one that cannot be written) costs no render.
    """
    p = Path(path)
    ext = p.suffix.lower() or ".png"
    if ext not in WRITE_EXTS:
        raise ImageError(f"{p}: unknown image type {ext!r}; use one of {', '.join(WRITE_EXTS)}")
    try:
        check_writable_dest(p)
    except FileCheckError as exc:
        raise ImageError(str(exc)) from None
    return p


def write_image(path: str | os.PathLike[str], img: np.ndarray, quality: int = 95) -> Path:
    """Write an RGB or grayscale uint8 image (PNG, JPEG, … by extension), atomically.

    Raises :class:`ImageError` saying what to do for an unknown extension, a folder
    that cannot be made or written, or a path through a file.
    """
    p = Path(path)
    ext = p.suffix.lower() or ".png"
    if ext not in WRITE_EXTS:
        raise ImageError(f"{p}: unknown image type {ext!r}; use one of {', '.join(WRITE_EXTS)}")
    arr = img if img.ndim == 2 else cv2.cvtColor(img, cv2.COLOR_RGB2BGR)
    params = [cv2.IMWRITE_JPEG_QUALITY, quality] if ext in (".jpg", ".jpeg") else []
    ok, buf = cv2.imencode(ext, arr, params)
    if not ok:
        raise ImageError(f"{p}: cannot encode an image as {ext}")
    try:
        check_writable_dest(p)
        atomic_write_bytes(p, buf.tobytes())
    except FileCheckError as exc:
        raise ImageError(str(exc)) from None
    except OSError as exc:
        raise ImageError(
            f"{p}: cannot write the image ({exc.strerror or exc}); choose a folder you can write to"
        ) from None
    return p


# -- tensors -------------------------------------------------------------------------
#: Tensor value of blank paper in a sketch (white, +1) and of "no content" in a photo
#: (mid grey, 0): what a blanked component window holds (``models.local.component_input``).
SKETCH_BLANK, PHOTO_BLANK = 1.0, 0.0


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
