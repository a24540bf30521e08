"""The shipped face gallery: the default look when a slot has no photo.

``resources/gallery/`` holds a few hundred aligned faces (UTKFace, stratified by
gender x ethnicity x age decade; see its card) with, per face, the geometry latent
of its sketch for every component (E_sketch of the shipped local networks, pooled
to a small grid), its appearance codes (E_app, what a dropped photo gives) and its
68 dlib landmarks.  DeepFaceDrawing's manifold projection picks the default look:
the drawn part's geometry latent is matched to its ``k`` nearest gallery faces in
that component's latent space, and locally-linear reconstruction weights
(non-negative, summing to 1, regularised) blend their appearance codes, so drawn
eyes get the look of eyes shaped like them.

Files: ``gallery.npz`` (arrays; no pickle) and ``gallery.json`` (its sha256, the
sha256 of the local networks the latents came from, per-face labels and source,
licence).  A gallery may also carry the render-to-photo identity map
(:meth:`Gallery.as_photo_descriptor`, fitted by ``python -m train.render_map``) and the
drawn-gender reader (:meth:`Gallery.drawn_gender`, ``python -m train.drawn_gender``).
:meth:`Gallery.load` checks both and raises :class:`GalleryError`
naming the file and what to do; the engine then falls back to the mean look.
"""

from __future__ import annotations

import hashlib
import json
import threading
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from facesketch.layout import COMPONENTS

#: Files of the gallery folder.
ARRAYS_FILE = "gallery.npz"
MANIFEST_FILE = "gallery.json"
FORMAT_VERSION = 1
#: Geometry latents are average-pooled to this grid (64 ch x 4 x 4 = 1024 values):
#: enough to tell a round eye from a narrow one, small enough to ship.
POOL_GRID = 4
#: Default number of neighbours (DeepFaceDrawing uses K = 10 on 17k faces; ours is
#: a few hundred, so fewer).
DEFAULT_K = 5
#: Tikhonov regularisation of the local Gram matrix, relative to its trace.
LLE_REG = 1e-3
#: Prefix of an appearance reference that names a gallery face instead of a file.
REFERENCE_PREFIX = "gallery:"


class GalleryError(ValueError):
    """The gallery is missing, corrupt or stale; the message names the file and the fix."""


def pool_latent(geom: Any) -> np.ndarray:
    """(N, C, h, w) geometry latents (torch) -> (N, C * g * g) float32 pooled vectors."""
    import torch.nn.functional as F  # noqa: N812

    pooled = F.adaptive_avg_pool2d(geom.detach().float(), POOL_GRID)
    return pooled.flatten(1).cpu().numpy().astype(np.float32)


def lle_weights(x: np.ndarray, neighbours: np.ndarray, reg: float = LLE_REG) -> np.ndarray:
    """Weights w (K,) >= 0, sum 1, minimising ``|x - w @ neighbours|^2`` (+ reg).

    The constrained least squares of locally-linear embedding (Roweis & Saul), with
    negative weights dropped and the rest re-solved (an active set): a blend of
    appearance codes with negative weights would extrapolate past real faces.
    """
    x = np.asarray(x, np.float64).ravel()
    y = np.asarray(neighbours, np.float64).reshape(len(neighbours), -1)
    active = np.arange(len(y))
    w = np.zeros(len(y))
    for _ in range(len(y)):
        d = y[active] - x
        gram = d @ d.T
        gram += np.eye(len(active)) * (reg * max(np.trace(gram), 1e-12))
        sol = np.linalg.solve(gram, np.ones(len(active)))
        sol /= sol.sum()
        if (sol >= 0).all():
            w[:] = 0
            w[active] = sol
            return w
        active = active[sol > 0] if (sol > 0).any() else active[[int(np.argmax(sol))]]
    w[:] = 0
    w[active] = 1.0 / len(active)
    return w


def landmark_shape(points: np.ndarray) -> np.ndarray:
    """68 points centred and scaled to unit RMS: their shape, without position and size."""
    p = np.asarray(points, np.float64) - np.mean(points, axis=0)
    return p / max(float(np.sqrt((p**2).sum(1).mean())), 1e-9)


def reference_id(index: int) -> str:
    """The appearance-slot reference string of gallery face ``index``."""
    return f"{REFERENCE_PREFIX}{int(index)}"


def parse_reference(ref: str) -> int | None:
    """Gallery index of a ``gallery:<n>`` reference, None for a file path.

    Raises ValueError for a malformed gallery reference.
    """
    if not isinstance(ref, str) or not ref.startswith(REFERENCE_PREFIX):
        return None
    tail = ref[len(REFERENCE_PREFIX) :]
    if not tail.isdigit() or len(tail) > 6:
        raise ValueError(f"bad gallery reference {ref!r}: expected gallery:<face number>")
    return int(tail)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def drawn_features(pooled: dict[str, np.ndarray]) -> np.ndarray:
    """(5 * D,) float32: every component's pooled geometry latent (:func:`pool_latent`)
    in layout order, what the drawn-gender reader (``train.drawn_gender``) reads."""
    return np.concatenate([np.asarray(pooled[c], np.float32).reshape(-1) for c in COMPONENTS])


def write_gallery(folder: str | Path, arrays: dict[str, np.ndarray], manifest: dict) -> dict:
    """Write ``arrays`` (see :meth:`Gallery._read` for the names) and the manifest,
    adding its ``format_version`` and the arrays' ``sha256``; returns the manifest."""
    import io

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    (folder / ARRAYS_FILE).write_bytes(buf.getvalue())
    manifest = {
        "format_version": FORMAT_VERSION,
        "sha256": hashlib.sha256(buf.getvalue()).hexdigest(),
        **{k: v for k, v in manifest.items() if k not in ("format_version", "sha256")},
    }
    text = json.dumps(manifest, indent=1) + "\n"
    (folder / MANIFEST_FILE).write_text(text, encoding="utf-8")
    return manifest


@dataclass(frozen=True)
class Gallery:
    """The loaded gallery (read-only arrays; see the module docstring)."""

    folder: Path
    geometry: dict[str, np.ndarray]  # component -> (M, D) float32 pooled latents
    appearance: dict[str, np.ndarray]  # component -> (M, A) float32 E_app codes
    landmark_array: np.ndarray  # (M, 68, 2) float32, pixels of the 256 canvas
    jpeg: np.ndarray  # uint8 concatenated JPEG files
    offsets: np.ndarray  # (M + 1,) int64 into jpeg
    masks: np.ndarray  # (M, S, S/8) packed validity masks
    manifest: dict[str, Any]
    #: (M, 128) float32 dlib face descriptors of the photos (None in older galleries):
    #: who each face looks like, for :meth:`nearest_identity`
    descriptors: np.ndarray | None = None
    #: (128, 128) weight and (128,) bias of the render-to-photo identity map (None in
    #: galleries without one; see :meth:`as_photo_descriptor`)
    render_map: tuple[np.ndarray, np.ndarray] | None = None
    #: (5 * D,) weight and bias of the drawn-gender reader (None in galleries without
    #: one; see :meth:`drawn_gender`)
    gender_reader: tuple[np.ndarray, float] | None = None

    @property
    def size(self) -> int:
        """Number of faces."""
        return len(self.landmark_array)

    @property
    def digest(self) -> str:
        """Content hash of the arrays (part of render cache keys)."""
        return str(self.manifest["sha256"])

    @property
    def networks(self) -> dict[str, str]:
        """sha256 of each local network (``local/<component>``) the latents came from."""
        return dict(self.manifest.get("networks", {}))

    # -- loading ---------------------------------------------------------------------
    @classmethod
    def load(cls, folder: str | Path | None = None) -> Gallery:
        """The gallery in ``folder`` (default: the shipped one), loaded once per folder."""
        if folder is None:
            from facesketch.resources import gallery_dir

            folder = gallery_dir()
        key = str(Path(folder).resolve())
        with _lock:
            if key not in _cache:
                _cache[key] = cls._read(Path(folder))
            return _cache[key]

    @classmethod
    def _read(cls, folder: Path) -> Gallery:
        fix = "reinstall facesketch or rebuild it with `python -m train.gallery`"
        man_path, arr_path = folder / MANIFEST_FILE, folder / ARRAYS_FILE
        if not man_path.is_file() or not arr_path.is_file():
            raise GalleryError(f"{folder}: the face gallery is missing ({fix})")
        try:
            manifest = json.loads(man_path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise GalleryError(f"{man_path}: unreadable gallery manifest ({exc}); {fix}") from None
        if not isinstance(manifest, dict) or manifest.get("format_version") != FORMAT_VERSION:
            raise GalleryError(f"{man_path}: not a gallery manifest of format {FORMAT_VERSION}")
        digest = _sha256(arr_path)
        if digest != manifest.get("sha256"):
            raise GalleryError(
                f"{arr_path}: checksum mismatch (file {digest[:12]}…, manifest "
                f"{str(manifest.get('sha256'))[:12]}…): the gallery is corrupt; {fix}"
            )
        try:
            with np.load(arr_path, allow_pickle=False) as z:
                data = {k: z[k] for k in z.files}
        except (OSError, ValueError) as exc:
            raise GalleryError(f"{arr_path}: not a readable gallery ({exc}); {fix}") from None
        try:
            gal = cls(
                folder=folder,
                geometry={c: data[f"geometry_{c}"].astype(np.float32) for c in COMPONENTS},
                appearance={c: data[f"appearance_{c}"].astype(np.float32) for c in COMPONENTS},
                landmark_array=data["landmarks"].astype(np.float32),
                jpeg=data["jpeg"],
                offsets=data["offsets"].astype(np.int64),
                masks=data["masks"],
                manifest=manifest,
                descriptors=(
                    data["descriptors"].astype(np.float32) if "descriptors" in data else None
                ),
                render_map=(
                    (
                        data["render_map_weight"].astype(np.float32),
                        data["render_map_bias"].astype(np.float32),
                    )
                    if "render_map_weight" in data
                    else None
                ),
                gender_reader=(
                    (
                        data["gender_weight"].astype(np.float32),
                        float(np.asarray(data["gender_bias"], np.float64).reshape(-1)[0]),
                    )
                    if "gender_weight" in data and np.asarray(data["gender_bias"]).size == 1
                    else None
                ),
            )
        except KeyError as exc:
            raise GalleryError(f"{arr_path}: lacks array {exc}; {fix}") from None
        gal._check()
        return gal

    def _check(self) -> None:
        m = self.size
        faces = self.manifest.get("faces", [])
        ok = (
            m > 0
            and self.landmark_array.shape == (m, 68, 2)
            and self.offsets.shape == (m + 1,)
            and len(faces) == m
            and all(len(a) == m for a in (*self.geometry.values(), *self.appearance.values()))
            and len(self.masks) == m
            and all(
                np.isfinite(a).all() for a in (*self.geometry.values(), *self.appearance.values())
            )
            and (
                self.descriptors is None
                or (self.descriptors.shape == (m, 128) and np.isfinite(self.descriptors).all())
            )
            and (
                self.render_map is None
                or (
                    self.render_map[0].shape == (128, 128)
                    and self.render_map[1].shape == (128,)
                    and all(np.isfinite(a).all() for a in self.render_map)
                )
            )
            and (
                self.gender_reader is None
                or (
                    self.gender_reader[0].shape
                    == (sum(a.shape[1] for a in self.geometry.values()),)
                    and np.isfinite(self.gender_reader[0]).all()
                    and np.isfinite(self.gender_reader[1])
                )
            )
        )
        if not ok:
            raise GalleryError(f"{self.folder}: gallery arrays disagree in size or are not finite")

    # -- queries ---------------------------------------------------------------------
    def suggest(
        self, component: str, geometry_latent: Any, k: int = DEFAULT_K
    ) -> list[tuple[int, float]]:
        """The ``k`` nearest faces in ``component``'s geometry space with LLE weights.

        ``geometry_latent``: an (1, C, h, w) E_sketch output (torch) or an already
        pooled (D,) vector.  Returns ``[(index, weight), ...]`` nearest first, weights
        non-negative summing to 1 (faces with weight 0 are left out).
        """
        if component not in self.geometry:
            raise ValueError(f"unknown component {component!r}; expected one of {COMPONENTS}")
        x = (
            np.asarray(geometry_latent, np.float32)
            if isinstance(geometry_latent, np.ndarray)
            else pool_latent(geometry_latent)[0]
        )
        bank = self.geometry[component]
        if x.shape != bank.shape[1:]:
            raise ValueError(f"geometry latent has {x.size} values, the gallery {bank.shape[1]}")
        d2 = ((bank - x) ** 2).sum(1)
        k = max(1, min(int(k), self.size))
        near = np.argsort(d2, kind="stable")[:k]
        if d2[near[0]] <= 1e-10 * max(1.0, float((x**2).sum())):
            return [(int(near[0]), 1.0)]  # the query is a gallery face
        w = lle_weights(x, bank[near])
        return [(int(i), float(wi)) for i, wi in zip(near, w, strict=True) if wi > 0]

    def as_photo_descriptor(self, descriptor: np.ndarray) -> np.ndarray:
        """Where a *render's* dlib descriptor (128,) points among the photos' ones.

        A render is not a photo: its descriptor sits apart from the photos' (soft skin,
        no pores), so the photo nearest it is most often one of a few "hub" faces, not
        the one who looks most like the drawn person.  The map (fitted by
        ``train.render_map`` on renders of prepared sketches and their own photos, so
        that the photos near the mapped render are the ones near its true photo) puts it
        back; without one the descriptor is returned as it is."""
        d = np.asarray(descriptor, np.float32).reshape(-1)
        if self.render_map is None or d.shape != (128,):
            return d
        weight, bias = self.render_map
        return (weight @ d + bias).astype(np.float32)

    def drawn_gender(self, pooled: dict[str, np.ndarray]) -> float | None:
        """Probability that the drawing whose pooled geometry latents (component ->
        (D,), :func:`pool_latent`) are ``pooled`` is of a woman; None without a reader
        or with latents of other networks.

        The render cannot tell: the networks draw many men softly, and a soft face
        reads as a woman (33 of the 58 men among the 88 CUHK drawings), so its nearest
        photos are women's.  The drawing's own shapes (outline, hair, brows, jaw) tell
        better; the reader is a logistic regression on them (``train.drawn_gender``)."""
        if self.gender_reader is None or any(c not in pooled for c in COMPONENTS):
            return None
        x = drawn_features(pooled)
        weight, bias = self.gender_reader
        if x.shape != weight.shape:
            return None
        z = float(np.dot(x.astype(np.float64), weight.astype(np.float64))) + bias
        return float(1.0 / (1.0 + np.exp(-np.clip(z, -60.0, 60.0))))

    @cached_property
    def female(self) -> np.ndarray | None:
        """bool (M,): which faces are women's (the card's labels); None when any is
        unlabelled."""
        genders = [f.get("gender") for f in self.manifest.get("faces", [])]
        if len(genders) != self.size or not all(g in ("female", "male") for g in genders):
            return None
        return np.array([g == "female" for g in genders])

    def nearest_identity(
        self,
        descriptor: np.ndarray,
        landmarks: np.ndarray | None = None,
        k: int = 1,
        allowed: np.ndarray | None = None,
        prefer: int | None = None,
        keep_k: int | None = None,
    ) -> int | None:
        """The face whose dlib descriptor is nearest ``descriptor`` (128,): the gallery
        person who looks most like it; None for a gallery without descriptors.

        With ``landmarks`` (68, 2, any frame) and ``k`` > 1: of the ``k`` nearest by
        descriptor, the one whose landmark shape (position and scale removed) is
        nearest, so a warp onto those landmarks bends the photo least; nearest
        relative to how near that face's shape is to the gallery's typically
        (:attr:`shape_spread`), else a face of average shape, near every drawing, wins
        most picks (one served 27 of the 88 CUHK renders; with this, 21, and KID 247 ->
        234).  ``allowed`` (bool (M,)): the faces that may be picked (default: all).
        ``prefer``: a face
        returned as long as it is one of the ``keep_k`` (default ``k``) nearest allowed
        ones (the current pick of a drawing being edited: it does not jump between
        near-equal faces)."""
        if self.descriptors is None:
            return None
        d = np.asarray(descriptor, np.float32).reshape(-1)
        if d.shape != (128,):
            raise ValueError(f"a face descriptor has 128 values, got {d.size}")
        order = np.argsort(((self.descriptors - d) ** 2).sum(1), kind="stable")
        if allowed is not None:
            order = order[np.asarray(allowed, bool)[order]]
            if not len(order):
                return None
        near = order[: max(1, min(int(k), len(order)))]
        if prefer is not None and int(prefer) in order[: max(1, int(keep_k or k))]:
            return int(prefer)
        if landmarks is None or k <= 1:
            return int(order[0])
        target = landmark_shape(np.asarray(landmarks, np.float64))
        dist = [((landmark_shape(self.landmark_array[i]) - target) ** 2).sum() for i in near]
        return int(near[int(np.argmin(np.asarray(dist) / self.shape_spread[near]))])

    @cached_property
    def shape_spread(self) -> np.ndarray:
        """(M,) each face's median squared landmark-shape distance to the gallery's
        faces: how near its shape is to any face's (small for an average shape)."""
        shapes = np.stack([landmark_shape(p) for p in self.landmark_array]).reshape(self.size, -1)
        sq = (shapes**2).sum(1)
        d2 = np.maximum(sq[:, None] + sq[None] - 2 * shapes @ shapes.T, 0)
        return np.maximum(np.median(d2, axis=1), 1e-9)

    def blend(self, component: str, picks: list[tuple[int, float]]) -> np.ndarray:
        """(A,) appearance code: the weighted sum of the picked faces' codes."""
        codes = self.appearance[component]
        return sum(w * codes[i] for i, w in picks).astype(np.float32)

    def _index(self, index: int) -> int:
        if not 0 <= int(index) < self.size:
            raise IndexError(f"gallery face {index} does not exist (0..{self.size - 1})")
        return int(index)

    def image(self, index: int) -> np.ndarray:
        """Aligned RGB uint8 (256, 256, 3) of face ``index``."""
        import cv2

        i = self._index(index)
        buf = self.jpeg[self.offsets[i] : self.offsets[i + 1]]
        bgr = cv2.imdecode(buf, cv2.IMREAD_COLOR)
        if bgr is None:
            raise GalleryError(f"{self.folder}: gallery face {i} is not a readable JPEG")
        return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)

    def mask(self, index: int) -> np.ndarray:
        """Validity mask uint8 (256, 256), 255 where the pixel came from the photo."""
        i = self._index(index)
        side = self.masks.shape[1]
        return (np.unpackbits(self.masks[i], axis=1)[:, :side] * 255).astype(np.uint8)

    def landmarks(self, index: int) -> np.ndarray:
        """dlib 68 landmarks (68, 2) float32 of face ``index`` in its 256 canvas."""
        return self.landmark_array[self._index(index)].copy()

    def labels(self, index: int) -> dict[str, Any]:
        """Source file, gender, age, ethnicity of face ``index`` (from the card's data)."""
        return dict(self.manifest["faces"][self._index(index)])


_cache: dict[str, Gallery] = {}
_lock = threading.Lock()


def clear_cache() -> None:
    """Forget loaded galleries (tests; after a rebuild)."""
    with _lock:
        _cache.clear()
