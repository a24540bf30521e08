"""A tiny gallery on disk for tests of what the gallery carries (render map, drawn-gender
reader) and of the texture pick that reads it."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from facesketch.engine import gallery as gal_mod
from facesketch.engine.gallery import Gallery, GalleryError, write_gallery
from facesketch.layout import COMPONENTS


def tiny_gallery(folder, m=6, landmarks=None, descriptors=None, latent=8, genders=False):
    """Write an ``m``-face gallery of blank photos into ``folder`` (geometry latents of
    ``latent`` values per component; with ``genders``, odd faces are women's); returns
    its arrays."""
    rng = np.random.default_rng(0)
    blob = cv2.imencode(".jpg", np.zeros((16, 16, 3), np.uint8))[1].ravel()
    arrays = {
        "jpeg": np.concatenate([blob] * m).astype(np.uint8),
        "offsets": np.arange(m + 1, dtype=np.int64) * len(blob),
        "masks": np.zeros((m, 16, 2), np.uint8),
        "landmarks": rng.uniform(0, 16, (m, 68, 2)).astype(np.float32),
        "descriptors": rng.normal(0, 0.1, (m, 128)).astype(np.float32),
    }
    if landmarks is not None:
        arrays["landmarks"] = landmarks.astype(np.float32)
    if descriptors is not None:
        arrays["descriptors"] = descriptors.astype(np.float32)
    for c in COMPONENTS:
        arrays[f"geometry_{c}"] = rng.normal(size=(m, latent)).astype(np.float16)
        arrays[f"appearance_{c}"] = rng.normal(size=(m, 4)).astype(np.float32)
    faces = [{"source": f"x/{i}.jpg"} for i in range(m)]
    if genders:
        for i, face in enumerate(faces):
            face["gender"] = "female" if i % 2 else "male"
    write_gallery(folder, arrays, {"faces": faces, "networks": {}})
    gal_mod.clear_cache()
    return arrays


def assert_refused(folder, arrays, manifest) -> None:
    """A gallery written from ``arrays`` into ``folder`` is refused as corrupt, by name."""
    write_gallery(folder, arrays, manifest)
    gal_mod.clear_cache()
    with pytest.raises(GalleryError, match="disagree"):
        Gallery.load(folder)


def lent_detail(stage, src, points: np.ndarray, size: int, where: np.ndarray) -> float:
    """Mean size of the detail ``stage`` (a RealPixels) would lend from ``src`` warped
    onto ``points``, over ``where``: prepared afresh (no warp kept)."""
    stage._warps.clear()
    prep = stage._prepared(src, points, size)
    assert prep is not None
    return float(np.abs(prep.high).mean(-1)[where].mean())
