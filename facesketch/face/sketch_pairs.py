"""Artist sketches drawn over photos (CUHK style): find a sketch's photo, align by it.

A drawing in a ``sketch/`` folder whose sibling ``photo/`` folder holds the photo it
was traced from can be aligned exactly by the dlib alignment of that photo (faces
are not found reliably in drawings).  ``facesketch render`` and ``train.eval`` both
use this, so the CLI and the evaluation see artist sketches the same way.
"""

from __future__ import annotations

import re
from pathlib import Path

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


def align_sketch_with_photo(sketch: np.ndarray, photo_path: Path, canvas: int) -> np.ndarray:
    """Warp ``sketch`` by the alignment that dlib finds for the (pixel-aligned) photo."""
    import cv2

    from facesketch.face import align_face
    from facesketch.imaging import read_image
    from facesketch.layout import FaceLayout

    photo = read_image(photo_path)
    aligned = align_face(photo, size=canvas, layout=FaceLayout.default(canvas))
    matrix = np.asarray(aligned.matrix, np.float64).copy()
    ph, pw = photo.shape[:2]
    sh, sw = sketch.shape[:2]
    matrix[:, 0] *= pw / sw  # sketch pixels -> photo pixels -> aligned canvas
    matrix[:, 1] *= ph / sh
    return cv2.warpAffine(sketch, matrix, (canvas, canvas), flags=cv2.INTER_LINEAR, borderValue=255)
