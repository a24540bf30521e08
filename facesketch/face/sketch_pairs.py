"""Artist sketches drawn over photos (CUHK style): find a sketch's photo, align by it.

A drawing in a ``sketch/`` folder whose sibling ``photo/`` folder holds the photo it
was traced from can be aligned exactly by the dlib alignment of that photo (faces
are not found reliably in drawings).  ``facesketch render`` and ``train.eval`` both
use this, so the CLI and the evaluation see artist sketches the same way.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from facesketch.imaging import WRITE_EXTS


def paired_photo(sketch_path: Path) -> Path | None:
    """The photo of a sketch in a ``sketch/`` folder with a sibling ``photo/`` folder.

    Same stem first; then the CUHK convention (``F2-005-01-sz1`` -> ``f-005-01``).
    """
    photos = sketch_path.parent.parent / "photo"
    if sketch_path.parent.name.lower() != "sketch" or not photos.is_dir():
        return None
    stems = [sketch_path.stem]
    m = re.fullmatch(r"([A-Za-z])2?-(\d+-\d+)(?:-sz\d+)?", sketch_path.stem)
    if m:
        stems.append(f"{m.group(1).lower()}-{m.group(2)}")
    for stem in stems:
        for ext in WRITE_EXTS:
            for cand in (photos / f"{stem}{ext}", photos / f"{stem}{ext.upper()}"):
                if cand.is_file():
                    return cand
    return None


def _warp_sketch(
    sketch: np.ndarray, matrix: np.ndarray, photo_shape: tuple, canvas: int
) -> np.ndarray:
    """The sketch through the photo's alignment (its pixels scaled to the photo's)."""
    import cv2

    m = np.asarray(matrix, np.float64).copy()
    ph, pw = photo_shape[:2]
    sh, sw = sketch.shape[:2]
    m[:, 0] *= pw / sw  # sketch pixels -> photo pixels -> aligned canvas
    m[:, 1] *= ph / sh
    return cv2.warpAffine(sketch, m, (canvas, canvas), flags=cv2.INTER_LINEAR, borderValue=255)


def align_sketch_with_photo(sketch: np.ndarray, photo_path: Path, canvas: int) -> np.ndarray:
    """Warp ``sketch`` by the alignment that dlib finds for the (pixel-aligned) photo."""
    from facesketch.face import align_face
    from facesketch.imaging import read_image
    from facesketch.layout import FaceLayout

    photo = read_image(photo_path)
    aligned = align_face(photo, size=canvas, layout=FaceLayout.default(canvas))
    return _warp_sketch(sketch, aligned.matrix, photo.shape, canvas)


def print_skipped(path: Path, exc: Exception) -> None:
    """The evaluations' report of a pair they could not use."""
    print(f"skipped {path.name}: {exc}")


def aligned_pairs(
    root: Path,
    canvas: int,
    limit: int | None = None,
    on_skip: Callable[[Path, Exception], None] | None = None,
) -> Iterator[tuple[Path, Any, np.ndarray]]:
    """``(sketch path, AlignedFace of its photo, sketch on that alignment)`` for every pair
    under ``root/sketch`` + ``root/photo`` (one alignment per pair); pairs without a
    photo are passed over, unusable ones (no face, unreadable) reported to ``on_skip``."""
    from facesketch.face import align_face
    from facesketch.imaging import read_image, read_sketch
    from facesketch.layout import FaceLayout

    lay = FaceLayout.default(canvas)
    for path in sorted((Path(root) / "sketch").iterdir())[:limit]:
        photo_path = paired_photo(path)
        if photo_path is None:
            continue
        try:
            photo = read_image(photo_path)
            aligned = align_face(photo, size=canvas, layout=lay)
            sketch = _warp_sketch(read_sketch(path), aligned.matrix, photo.shape, canvas)
        except Exception as exc:  # no face in the photo, unreadable file: report, go on
            if on_skip is not None:
                on_skip(path, exc)
            continue
        yield path, aligned, sketch
