"""Appearance references: photo file -> aligned face -> per-component E_app codes.

A reference is identified by the hash of its file content (not its path), so a
photo re-saved under another name is not re-encoded and an edited one is.  Reading
and dlib alignment are slow (~100 ms), so aligned references and their codes are
kept in small LRU caches; a failing reference raises :class:`AppearanceError`
and leaves everything cached before it usable.
"""

from __future__ import annotations

import hashlib
import os
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from facesketch.layout import BACKGROUND, COMPONENTS, FaceLayout
from facesketch.sketch.document import FACE

#: How many aligned references / codes are kept.
_MAX_REFERENCES = 32


class AppearanceError(ValueError):
    """A reference photo cannot be used; the message names the file and why."""


@dataclass(frozen=True)
class AlignedReference:
    """A reference photo aligned to the canonical layout at the networks' canvas."""

    path: str
    digest: str
    image: np.ndarray  # uint8 (S, S, 3)
    mask: np.ndarray | None  # uint8 (S, S), 255 = came from the photo


class _LRU(OrderedDict):
    def __init__(self, cap: int) -> None:
        super().__init__()
        self.cap = cap

    def put(self, key: Any, value: Any) -> Any:
        self[key] = value
        self.move_to_end(key)
        while len(self) > self.cap:
            self.popitem(last=False)
        return value


_digests: _LRU = _LRU(256)
# Shared by the UI's thumbnail job and the pipeline (both on the engine's worker
# thread), so a dropped photo is aligned once, while its thumbnails are made.
_aligned: _LRU = _LRU(_MAX_REFERENCES)


def file_digest(path: str | os.PathLike[str]) -> str:
    """Content hash of a file, remembered per (path, mtime, size) so it is read once."""
    p = Path(path)
    try:
        st = p.stat()
    except OSError as exc:
        raise AppearanceError(f"cannot use appearance reference {p}: no such file") from exc
    key = (str(p.resolve()), st.st_mtime_ns, st.st_size)
    if key in _digests:
        return _digests[key]
    from facesketch.fileio import MAX_IMAGE_BYTES, FileCheckError, read_file_bytes

    try:  # a regular file of sane size only: /dev/zero or a FIFO fails at once
        data = read_file_bytes(p, MAX_IMAGE_BYTES, "photo")
    except FileCheckError as exc:
        raise AppearanceError(f"cannot use appearance reference: {exc}") from None
    digest = hashlib.blake2b(data, digest_size=16).hexdigest()
    return _digests.put(key, digest)


def align_reference(path: str | os.PathLike[str], canvas: int) -> AlignedReference:
    """Read and align a reference photo at ``canvas`` px, once per file content.

    Raises :class:`AppearanceError` naming the file when it is unreadable or faceless.
    """
    from facesketch.imaging import ImageError, read_image

    p = Path(path)
    digest = file_digest(p)
    if (digest, canvas) in _aligned:
        return _aligned[(digest, canvas)]
    try:
        rgb = read_image(p)
    except ImageError as exc:
        raise AppearanceError(f"cannot use appearance reference: {exc}") from exc
    from facesketch.face import NoFaceError, align_face  # dlib loads lazily, only here

    try:
        aligned = align_face(rgb, size=canvas, layout=FaceLayout.default(canvas))
    except NoFaceError as exc:
        raise AppearanceError(f"no face found in {p}: {exc}") from exc
    ref = AlignedReference(str(p), digest, aligned.image, getattr(aligned, "mask", None))
    return _aligned.put((digest, canvas), ref)


def component_crop(image: Any, name: str, layout: FaceLayout) -> Any:
    """The part of an aligned face E_app of ``name`` sees (the whole face for background)."""
    return image if name == BACKGROUND else layout.crop(image, name)


def reference_thumbnails(path: str | os.PathLike[str], canvas: int = 256) -> dict[str, np.ndarray]:
    """Aligned crops of a reference per component (plus ``"face"``), for the UI's tiles."""
    ref = align_reference(path, canvas)
    layout = FaceLayout.default(canvas)
    thumbs = {n: np.ascontiguousarray(component_crop(ref.image, n, layout)) for n in COMPONENTS}
    thumbs[FACE] = ref.image
    return thumbs


Encoder = Callable[[str, torch.Tensor], torch.Tensor]


class AppearanceBank:
    """Caches aligned references and their E_app codes per (content, component).

    ``encode(component, crop)`` runs that component's E_app on a float crop in
    [-1, 1] (N, 3, s, s) and returns (N, A); the pipeline supplies it so this class
    knows nothing of devices.
    """

    def __init__(self, encode: Encoder, canvas: int, aligner: Callable[..., Any] | None = None):
        self.encode = encode
        self.canvas = canvas
        self.layout = FaceLayout.default(canvas)
        self._align = aligner or align_reference
        self._refs: _LRU = _LRU(_MAX_REFERENCES)
        self._codes: _LRU = _LRU(_MAX_REFERENCES * len(COMPONENTS))
        self.encodes = 0  # how many E_app runs happened (tests assert the cache works)

    def reference(self, path: str | os.PathLike[str]) -> AlignedReference:
        """The aligned reference for ``path`` (aligned once per file content)."""
        from facesketch.imaging import ImageError

        digest = file_digest(path)
        if digest not in self._refs:
            try:
                ref = self._align(path, self.canvas)
            except ImageError as exc:
                raise AppearanceError(f"cannot use appearance reference: {exc}") from exc
            self._refs.put(digest, ref)
        self._refs.move_to_end(digest)
        return self._refs[digest]

    def code(self, path: str | os.PathLike[str], component: str) -> torch.Tensor:
        """E_app code (1, A) of ``component`` in the reference at ``path``."""
        from facesketch.imaging import image_to_tensor

        key = (file_digest(path), component)
        if key not in self._codes:
            ref = self.reference(path)
            crop = component_crop(ref.image, component, self.layout)
            self._codes.put(key, self.encode(component, image_to_tensor(crop)))
            self.encodes += 1
        return self._codes[key]

    def slot_code(
        self, slot: Any, component: str, default: torch.Tensor
    ) -> tuple[torch.Tensor, str]:
        """Code and cache key of an appearance slot (``paths`` 0..2 and ``mix``) or default.

        Two references interpolate their codes linearly: ``(1 - mix) * a + mix * b``.
        """
        paths = tuple(getattr(slot, "paths", ()) or ()) if slot is not None else ()
        if not paths:
            return default, "default"
        if len(paths) > 2:
            raise AppearanceError(f"an appearance slot holds 0 to 2 references, not {len(paths)}")
        codes = [self.code(p, component) for p in paths]
        keys = [file_digest(p) for p in paths]
        if len(codes) == 1:
            return codes[0], keys[0]
        mix = float(getattr(slot, "mix", 0.5))
        if not 0.0 <= mix <= 1.0:
            raise AppearanceError(f"appearance mix must be within 0..1, got {mix}")
        return torch.lerp(codes[0], codes[1], mix), f"{keys[0]}|{keys[1]}|{mix:.4f}"


def slot_for(appearance: Any, component: str) -> Any:
    """The slot that applies to ``component``: its own, else the whole-face one, else None."""
    if not appearance:
        return None
    own = appearance.get(component)
    if own is not None and getattr(own, "paths", None):
        return own
    return appearance.get(FACE)
