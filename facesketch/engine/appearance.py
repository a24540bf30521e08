"""Appearance references: photo file -> aligned face -> per-component E_app codes.

A reference is identified by the hash of its file content (not its path), so a
photo re-saved under another name is not re-encoded and an edited one is.  Reading
and dlib alignment are slow (~100 ms), so aligned references and their codes are
kept in small LRU caches; a failing reference raises :class:`AppearanceError`
and leaves everything cached before it usable.

A reference may also name a face of the shipped gallery, ``gallery:<n>``
(:mod:`facesketch.engine.gallery`): it is already aligned, so it costs no dlib.
With no reference at all a slot gets the default look: the mean code, or (with
``AppearanceBank.default_look == "gallery"``) the LLE blend of the gallery faces
whose geometry latent is nearest to the drawn part's, chosen once E_sketch has run
(:meth:`AppearanceBank.resolve`).
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
#: Default looks: the networks' mean code, or the nearest gallery faces' blend.
DEFAULT_LOOKS = ("mean", "gallery")
#: The default look of a new engine ($FACESKETCH_DEFAULT_LOOK overrides).  "mean":
#: on the 88 CUHK pairs the gallery blend gave descriptor distance 0.624 vs 0.628
#: (no real gain) and edge F1 0.318 vs 0.356 (worse); see resources/gallery/gallery.md.
DEFAULT_LOOK = "mean"


class AppearanceError(ValueError):
    """A reference photo cannot be used; the message names the file and why."""


@dataclass(frozen=True)
class AlignedReference:
    """A reference photo aligned to the canonical layout at the networks' canvas."""

    path: str
    digest: str
    image: np.ndarray  # uint8 (S, S, 3)
    mask: np.ndarray | None  # uint8 (S, S), 255 = came from the photo
    landmarks: np.ndarray | None = None  # dlib (68, 2) in the aligned frame (real texture)


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


def _gallery_index(path: str | os.PathLike[str]) -> int | None:
    from facesketch.engine.gallery import parse_reference

    try:
        return parse_reference(os.fspath(path))
    except ValueError as exc:
        raise AppearanceError(str(exc)) from None


def _gallery() -> Any:
    from facesketch.engine.gallery import Gallery, GalleryError

    try:
        return Gallery.load()
    except GalleryError as exc:
        raise AppearanceError(f"cannot use a gallery face: {exc}") from None


def file_digest(path: str | os.PathLike[str]) -> str:
    """Content hash of a file, remembered per (path, mtime, size) so it is read once.

    A gallery reference hashes to the gallery's content hash plus the face number.
    """
    index = _gallery_index(path)
    if index is not None:
        return f"gallery-{_gallery().digest[:16]}-{index}"
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

    digest = file_digest(path)
    if (digest, canvas) in _aligned:
        return _aligned[(digest, canvas)]
    index = _gallery_index(path)
    if index is not None:
        return _aligned.put((digest, canvas), _gallery_reference(os.fspath(path), index, canvas))
    p = Path(path)
    try:
        rgb = read_image(p)
    except ImageError as exc:
        raise AppearanceError(f"cannot use appearance reference: {exc}") from exc
    from facesketch.face import NoFaceError, align_face  # dlib loads lazily, only here

    try:
        aligned = align_face(rgb, size=canvas, layout=FaceLayout.default(canvas))
    except NoFaceError as exc:
        raise AppearanceError(f"no face found in {p}: {exc}") from exc
    ref = AlignedReference(
        str(p),
        digest,
        aligned.image,
        getattr(aligned, "mask", None),
        getattr(aligned, "landmarks", None),
    )
    return _aligned.put((digest, canvas), ref)


def _gallery_reference(path: str, index: int, canvas: int) -> AlignedReference:
    import cv2

    gal = _gallery()
    try:
        image, mask = gal.image(index), gal.mask(index)
    except IndexError as exc:
        raise AppearanceError(f"cannot use {path}: {exc}") from None
    marks = gal.landmarks(index)
    if image.shape[0] != canvas:
        f = canvas / image.shape[0]
        image = cv2.resize(image, (canvas, canvas), interpolation=cv2.INTER_AREA)
        mask = cv2.resize(mask, (canvas, canvas), interpolation=cv2.INTER_NEAREST)
        marks = (marks + 0.5) * f - 0.5
    return AlignedReference(path, file_digest(path), image, mask, marks)


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
        look = os.environ.get("FACESKETCH_DEFAULT_LOOK", DEFAULT_LOOK)
        #: "mean" or "gallery" (see the module docstring); set it to switch.
        self.default_look = look if look in DEFAULT_LOOKS else DEFAULT_LOOK
        self.gallery_k = 5
        #: component -> [(gallery index, weight)] nearest to the part last drawn
        #: (kept whatever the default look, for the panel's "suggested faces")
        self.suggestions: dict[str, list[tuple[int, float]]] = {}
        #: why the gallery is not used (once it failed to load), else None
        self.gallery_problem: str | None = None
        self._gallery: Any = None
        self._defaults: dict[str, torch.Tensor] = {}  # mean codes, if the gallery fails late
        self._gallery_loader: Callable[[], Any] = _checked_gallery

    def gallery(self) -> Any:
        """The shipped gallery, or None (``gallery_problem`` says why): loaded once."""
        if self._gallery is None and self.gallery_problem is None:
            from facesketch.engine.gallery import GalleryError

            try:
                self._gallery = self._gallery_loader()
            except (GalleryError, OSError) as exc:
                self.gallery_problem = f"{exc}; the default look is the mean face"
        return self._gallery

    def resolve(
        self, component: str, geom: torch.Tensor, code: torch.Tensor | None
    ) -> torch.Tensor:
        """The code to render ``component`` with, once its geometry latent is known.

        Records the gallery faces nearest to ``geom`` (:attr:`suggestions`); ``code``
        None (the gallery default from :meth:`slot_code`) becomes their LLE blend.
        """
        gal = self.gallery()
        if gal is not None:
            try:
                self.suggestions[component] = gal.suggest(component, geom, self.gallery_k)
            except ValueError as exc:  # latents of other networks (another latent size)
                self.gallery_problem = f"the gallery does not fit these networks ({exc})"
                self._gallery = gal = None
                self.suggestions.clear()
            _last.update(look=self.default_look, suggestions=dict(self.suggestions))
        if code is not None:
            return code
        if gal is None:  # the gallery turned out unusable: the mean look after all
            return self._defaults[component]
        blend = gal.blend(component, self.suggestions[component])
        return torch.as_tensor(blend, dtype=geom.dtype, device=geom.device)[None]

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
    ) -> tuple[torch.Tensor | None, str]:
        """Code and cache key of an appearance slot (``paths`` 0..2 and ``mix``) or default.

        With the gallery default look an empty slot gives ``None``: :meth:`resolve`
        picks the code once the part's geometry latent is known.

        Two references interpolate their codes linearly: ``(1 - mix) * a + mix * b``.
        """
        paths = tuple(getattr(slot, "paths", ()) or ()) if slot is not None else ()
        if not paths:
            self._defaults[component] = default
            if self.default_look == "gallery" and self.gallery() is not None:
                # resolved from the geometry latent by resolve(); the key names the
                # gallery, and the branch key holds the crop the latent comes from
                return None, f"gallery-default:{self._gallery.digest[:16]}:{self.gallery_k}"
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


#: What the last render's bank found (written and read on the engine's worker).
_last: dict[str, Any] = {"look": DEFAULT_LOOK, "suggestions": {}}


def gallery_suggestions(canvas: int = 256) -> dict[str, Any]:
    """The gallery faces nearest to each part of the last render, for the UI's panel.

    ``{"look": "mean" | "gallery", "components": {component: [(reference, weight,
    crop uint8, description), ...]}}``; the crop is that part of the gallery face
    (the whole face for the background).  A job for the engine's worker.
    """
    out: dict[str, list[tuple[str, float, np.ndarray, str]]] = {}
    layout = FaceLayout.default(canvas)
    gal = _gallery() if _last["suggestions"] else None
    for component, picks in _last["suggestions"].items():
        rows = []
        for index, weight in picks:
            ref = f"gallery:{index}"
            crop = component_crop(align_reference(ref, canvas).image, component, layout)
            lab = gal.labels(index)
            text = f"gallery face {index}: {lab.get('gender', '?')}, {lab.get('age', '?')}, "
            text += f"{lab.get('ethnicity', '?')}"
            rows.append((ref, float(weight), np.ascontiguousarray(crop), text))
        out[component] = rows
    return {"look": _last["look"], "components": out}


def _checked_gallery() -> Any:
    """The shipped gallery, refused (GalleryError) when its latents are of other networks."""
    from facesketch.engine.gallery import Gallery, GalleryError
    from facesketch.engine.weights import read_manifest

    gal = Gallery.load()
    for name, sha in gal.networks.items():
        try:
            current = read_manifest(name.replace("/", "_")).get("sha256")
        except Exception:  # noqa: BLE001 (weights problems are reported by the bundle)
            current = None
        if current is not None and current != sha:
            raise GalleryError(
                f"the gallery's {name} latents are of other weights (rebuild it with "
                "`python -m train.gallery`)"
            )
    return gal


def slot_for(appearance: Any, component: str) -> Any:
    """The slot that applies to ``component``: its own, else the whole-face one, else None."""
    if not appearance:
        return None
    own = appearance.get(component)
    if own is not None and getattr(own, "paths", None):
        return own
    return appearance.get(FACE)
