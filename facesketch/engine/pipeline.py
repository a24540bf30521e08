"""Sketch -> face inference, incremental per component.

Everything runs on the internal canvas (256): the document's strokes are
rasterized directly at 256, split by the document's layout, and each component
branch (crop -> SCN blend -> E_sketch or E_image -> G_syn with its appearance code)
is cached under a content key.  A stroke inside the nose window changes only the
nose crop, so only the nose branch, the paste and the fusion re-run.

The stages are those of :class:`facesketch.models.face_model.FaceModel` (the same
code training and evaluation run); this module adds the cache and the cancel points.

Background isolation (the DeepFaceDrawing "remainder" component): the background
branch sees the whole sketch with every local window blanked to white paper
(:meth:`FaceModel.component_input`, which training uses too).  Its
input, and its cached map, depend only on strokes outside the local windows, so a
nose stroke does not re-run it; the local maps are pasted over those windows with
:meth:`FaceLayout.paste_all`, so the blanked area never shows.  The nose's bottom
rows are not blanked (the paste cuts them, the background shows there), so a stroke
there re-runs the background as well: the output does change there.

Why one ~560-line module: FacePipeline is one cache, and its content keys, cancel points
and stages must change together; the stateless parts already live in models.face_model.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from torch import nn

from facesketch.engine.appearance import AppearanceBank, slot_for
from facesketch.engine.bundle import NetworkBundle
from facesketch.engine.devices import DeviceSpec, select_device
from facesketch.engine.gallery import pool_latent
from facesketch.engine.hair import HairStage
from facesketch.imaging import image_to_tensor, sketch_to_tensor, tensor_to_image
from facesketch.layout import BACKGROUND, COMPONENTS, DEFAULT_FEATHER, LOCAL_COMPONENTS, FaceLayout
from facesketch.models.face_model import Branch, FaceModel, assemble_sketch


class RenderCancelled(Exception):
    """Raised at a network boundary when the caller cancelled the render."""


def prepare_sketch(sketch: np.ndarray, canvas: int) -> np.ndarray:
    """A gray uint8 sketch of any size as a ``canvas`` square (padded with paper, not stretched)."""
    if sketch.ndim == 3:
        sketch = cv2.cvtColor(sketch, cv2.COLOR_RGB2GRAY)
    if sketch.dtype != np.uint8:
        raise ValueError(f"sketch must be uint8, got {sketch.dtype}")
    if sketch.shape == (canvas, canvas):
        return sketch
    h, w = sketch.shape
    if h != w:  # pad with paper rather than distort the face
        side = max(h, w)
        top, left = (side - h) // 2, (side - w) // 2
        sketch = cv2.copyMakeBorder(
            sketch, top, side - h - top, left, side - w - left, cv2.BORDER_CONSTANT, value=255
        )
    interp = cv2.INTER_AREA if max(sketch.shape) > canvas else cv2.INTER_LINEAR
    return cv2.resize(sketch, (canvas, canvas), interpolation=interp)


def _digest(*parts: Any) -> str:
    h = hashlib.blake2b(digest_size=16)
    for p in parts:
        h.update(p.tobytes() if isinstance(p, np.ndarray) else repr(p).encode())
        h.update(b"\x00")
    return h.hexdigest()


@dataclass
class PipelineOutput:
    """One render: face RGB uint8 (size, size, 3), calibrated sketch uint8 (size, size)."""

    face: np.ndarray
    sketch: np.ndarray
    recomputed: list[str]
    timings: dict[str, float] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    fusion: str = "fusion"  # which fusion made the face: fusion, or fusion_ref (real pixels)
    #: where the real texture came from (``gallery:<n>``, photo paths), empty without it
    texture: list[str] = field(default_factory=list)
    #: (2, 3) affine, document canvas px: the layout's canonical place -> where the face
    #: was drawn, while "Follow my drawing" moved it (None: rendered as drawn)
    placement: np.ndarray | None = None


#: dlib-68 landmark ranges each part's shape covers (the layout's "left_eye" is the
#: image's left: the person's right eye and brow, 36-41 and 17-21).
SHAPE_LANDMARKS: dict[str, tuple[tuple[int, int], ...]] = {
    "left_eye": ((17, 22), (36, 42)),
    "right_eye": ((22, 27), (42, 48)),
    "nose": ((27, 36),),
    "mouth": ((48, 68),),
    BACKGROUND: ((0, 17),),
}


@dataclass
class _Branch:
    key: str
    feat: torch.Tensor
    calibrated: np.ndarray  # the crop the geometry encoder saw, uint8
    pooled: np.ndarray | None = None  # the geometry latent pooled as the gallery's
    #: drawn from the sketch with the default code (no photo's look or shape)
    plain: bool = True


class FacePipeline:
    """Renders sketches with a :class:`NetworkBundle` on one device, caching per component.

    Not thread-safe: one owner (the render service's worker) calls it.
    ``counters`` counts network evaluations (``branch:<name>``, ``scn:<name>``,
    ``fusion``, ``upsample``) so tests and benchmarks can see what re-ran.
    """

    def __init__(
        self,
        bundle: NetworkBundle,
        device: DeviceSpec | str = "cpu",
        feather: int | None = DEFAULT_FEATHER,
        pattern_period: int | None = None,
        reference_fusion: nn.Module | str | None = "auto",
        real_pixels: bool | None = None,
    ) -> None:
        self.spec = device if isinstance(device, DeviceSpec) else select_device(device)
        self.bundle = bundle.to(self.spec.module)
        self.canvas = bundle.canvas
        self.feather = feather
        # pattern_period None: the fusion's own (the notch only for transposed convs)
        self.model = FaceModel(
            {
                c: Branch(n.geometry, n.appearance, n.generator, n.image)
                for c, n in bundle.components.items()
            },
            bundle.fusion,
            bundle.scn,
            bundle.upsampler,
            feather,
            pattern_period,
        )
        self.pattern_period = self.model.pattern_period
        # the reference fusion (real pixels), used when its weights exist and a render
        # is given a warped reference; "auto": fusion_ref beside the bundle's weights
        if isinstance(reference_fusion, str):
            reference_fusion = load_reference_fusion(bundle.info.get("weights"))
        self.ref_model: FaceModel | None = None
        #: (sketch at the canvas, document) -> (warped reference RGB, validity) or None:
        #: where :meth:`render` gets a document's reference (the gallery / a dropped photo
        #: warped to the sketch's landmarks); only asked when a reference fusion is loaded
        self.reference_provider: (
            Callable[[np.ndarray, Any], tuple[np.ndarray, np.ndarray] | None] | None
        ) = None
        if reference_fusion is not None:
            self.spec.module(reference_fusion)
            self.ref_model = FaceModel(
                dict(self.model.branches.items()),
                reference_fusion,
                bundle.scn,
                bundle.upsampler,
                feather,
                pattern_period,
            )
        self.defaults = {k: self.spec.tensor(v) for k, v in bundle.default_codes.items()}
        missing = [c for c in COMPONENTS if c not in self.defaults]
        if missing:
            raise ValueError(
                f"network bundle has no default appearance code for {', '.join(missing)}"
            )
        self.appearance = AppearanceBank(self._encode_appearance, self.canvas)
        #: the real-texture stage (facesketch.engine.real_pixels), None when off or when
        #: the gallery descriptors or the landmark network are not installed
        self.real_pixels: Any = None
        #: why the real-texture stage is off (shown by the app and the CLI), or ""
        self.real_pixels_problem = ""
        #: hair strands along the drawn flow (facesketch.engine.hair), part of the texture
        self.hair = HairStage()
        self.set_real_pixels(real_pixels)
        self.counters: dict[str, int] = {}
        #: match a photo's parts to the background at the window borders (see _fuse)
        self.seam_match = True
        self._seam_expected: dict[str, torch.Tensor] | None = None
        self._branches: dict[str, _Branch] = {}
        self._last: tuple[str, PipelineOutput] | None = None

    # -- helpers -----------------------------------------------------------------------
    def _count(self, key: str) -> None:
        self.counters[key] = self.counters.get(key, 0) + 1

    def _encode_appearance(self, component: str, crop: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode():
            return self.bundle.components[component].appearance(self.spec.tensor(crop))

    def set_real_pixels(self, on: bool | None = None) -> None:
        """Turn the real-texture stage on (None: the default, on) or off.
        ``$FACESKETCH_TEXTURE=0`` keeps it off whatever is asked (a switch for a
        machine where dlib misbehaves, and for tests of the networks alone)."""
        import os

        self.texture_wanted = on = True if on is None else bool(on)
        if os.environ.get("FACESKETCH_TEXTURE", "1").strip().lower() in ("0", "off"):
            on = False
        self.real_pixels, self.real_pixels_problem = None, "" if on else "turned off"
        self._last = None
        if not on:
            return
        try:
            import importlib.util

            from facesketch.engine.gallery import Gallery
            from facesketch.engine.real_pixels import RealPixels
            from facesketch.engine.weights import read_manifest

            read_manifest("landmarks")  # the warp needs the sketch's landmarks
            if importlib.util.find_spec("dlib") is None:
                raise RuntimeError("dlib is not installed (pip install dlib-bin)")
            self.real_pixels = RealPixels(Gallery.load())
        except Exception as exc:  # noqa: BLE001 - the networks' face is still shown
            self.real_pixels_problem = f"real texture is off: {exc}"

    def clear_cache(self) -> None:
        """Forget cached branch maps (after weights change) and the hair strands."""
        self._branches.clear()
        self._last = None
        self._seam_expected = None
        self.hair = HairStage()

    # -- public ------------------------------------------------------------------------
    def render(
        self,
        doc: Any,
        size: int | None = None,
        scn_strength: float | None = None,
        geometry_photo: np.ndarray | None = None,
        photo_components: Collection[str] = (),
        cancel: Callable[[], bool] | None = None,
    ) -> PipelineOutput:
        """Render a document snapshot (strokes rasterized directly at the internal canvas)."""
        t0 = time.perf_counter()
        sketch = doc.rasterize(self.canvas)
        raster_ms = (time.perf_counter() - t0) * 1000
        strength = doc.scn_strength if scn_strength is None else scn_strength
        reference = None
        if self.ref_model is not None and self.reference_provider is not None:
            reference = self.reference_provider(sketch, doc)
        out = self.render_sketch(
            sketch,
            doc.layout,
            getattr(doc, "appearance", None),
            size=size,
            scn_strength=strength,
            geometry_photo=geometry_photo,
            photo_components=photo_components,
            cancel=cancel,
            reference=reference,
        )
        out.timings["rasterize"] = raster_ms
        out.timings["total"] += raster_ms
        return out

    def render_sketch(
        self,
        sketch: np.ndarray,
        layout: FaceLayout | None = None,
        appearance: Mapping[str, Any] | None = None,
        size: int | None = None,
        scn_strength: float = 0.0,
        geometry_photo: np.ndarray | None = None,
        photo_components: Collection[str] = (),
        cancel: Callable[[], bool] | None = None,
        reference: tuple[np.ndarray, np.ndarray] | None = None,
    ) -> PipelineOutput:
        """Render a gray uint8 sketch image (any size; resized to the internal canvas).

        ``size`` is the internal canvas or twice it (the 2x head; the default).

        ``appearance`` maps component names or ``"face"`` to slots (``paths``, ``mix``).
        ``geometry_photo`` (aligned RGB at the internal canvas) replaces the sketch as
        geometry source (through E_image) for ``photo_components``.
        ``reference``: a photo already warped onto this sketch (uint8 RGB at the internal
        canvas) and its validity (uint8 or float, 0 = no real pixel there); used by the
        reference fusion when one is installed (``PipelineOutput.fusion`` says which ran).
        Raises :class:`RenderCancelled` when ``cancel()`` turns true, AppearanceError
        for an unusable reference, ValueError for bad arguments.
        """
        if size is None:
            size = self.canvas * (2 if self.bundle.upsampler is not None else 1)
        if size not in (self.canvas, 2 * self.canvas):
            raise ValueError(
                f"render size must be {self.canvas} or {2 * self.canvas} for these networks, "
                f"got {size}"
            )
        if size != self.canvas and self.bundle.upsampler is None:
            raise ValueError(f"these networks have no 2x head: render at {self.canvas}")
        if not 0.0 <= float(scn_strength) <= 1.0:
            raise ValueError(f"SCN strength must be within 0..1, got {scn_strength}")
        t_start = time.perf_counter()
        timings: dict[str, float] = {}
        check = cancel or (lambda: False)
        lay = (layout or FaceLayout.default(self.canvas)).scaled(self.canvas)
        sk = prepare_sketch(np.asarray(sketch), self.canvas)
        photo = self._check_photo(geometry_photo, photo_components)
        shapes = self._shape_sources(appearance, photo, photo_components)

        t = time.perf_counter()
        codes = {}
        for name in COMPONENTS:
            slot = slot_for(appearance, name)
            codes[name] = self.appearance.slot_code(slot, name, self.defaults[name])
        timings["appearance"] = (time.perf_counter() - t) * 1000

        recomputed: list[str] = []
        t = time.perf_counter()
        sk_t = sketch_to_tensor(sk)
        # one tensor per distinct shape photo (a whole-face slot lends one to every part)
        shape_t = {id(img): image_to_tensor(img) for img in shapes.values()}
        with torch.inference_mode():
            for name in COMPONENTS:
                crop = self.model.component_input(sk_t, lay, name)
                shape = shapes.get(name)
                src = None
                if shape is not None:
                    src = self.model.component_input(shape_t[id(shape)], lay, name, photo=True)
                win = lay.window(name)
                key = _digest(
                    crop.numpy(),
                    (win.x, win.y, win.size),
                    round(float(scn_strength), 4),
                    codes[name][1],
                    src.numpy() if src is not None else "sketch",
                )
                cached = self._branches.get(name)
                if cached is not None and cached.key == key:
                    continue
                if check():
                    raise RenderCancelled
                self._branches[name] = self._run_branch(
                    name, key, crop, scn_strength, codes[name][0], src, check
                )
                recomputed.append(name)
        timings["branches"] = (time.perf_counter() - t) * 1000

        ref = self._check_reference(reference) if self.ref_model is not None else None
        final_key = _digest(
            *(self._branches[n].key for n in COMPONENTS),
            size,
            self.feather,
            *(ref if ref is not None else ("no reference",)),
        )
        if self._last is not None and self._last[0] == final_key:
            prev = self._last[1]
            timings["total"] = (time.perf_counter() - t_start) * 1000
            return PipelineOutput(
                prev.face, prev.sketch, [], timings, list(prev.warnings), prev.fusion
            )
        if check():
            raise RenderCancelled
        face = self._fuse(lay, size, timings, check, ref)
        texture: list[str] = []
        if self.real_pixels is not None and ref is None:
            t = time.perf_counter()
            face, texture = self._real_pixels(face, sk, lay, appearance, recomputed, shapes)
            stage = self.real_pixels.state.timings
            timings.update({f"real_pixels_{k}": v for k, v in stage.items()})
            timings["real_pixels"] = (time.perf_counter() - t) * 1000
        out = PipelineOutput(face, self._calibrated_sketch(lay, size), recomputed, timings)
        out.texture = texture
        out.fusion = "fusion_ref" if ref is not None else "fusion"
        if scn_strength > 0 and self.bundle.scn is None:
            out.warnings.append(
                "no stroke calibration network (scn) is installed: strokes are used as drawn"
            )
        timings["total"] = (time.perf_counter() - t_start) * 1000
        self._last = (final_key, out)
        return out

    # -- stages --------------------------------------------------------------------------
    def _check_photo(
        self, photo: np.ndarray | None, components: Collection[str]
    ) -> np.ndarray | None:
        if photo is None:
            if components:
                raise ValueError("photo_components given without a geometry photo")
            return None
        if photo.shape != (self.canvas, self.canvas, 3) or photo.dtype != np.uint8:
            raise ValueError(
                f"geometry photo must be an aligned uint8 RGB {self.canvas}x{self.canvas} face, "
                f"got {photo.dtype} {photo.shape}"
            )
        unknown = set(components) - set(COMPONENTS)
        if unknown:
            raise ValueError(f"unknown components {sorted(unknown)}; expected some of {COMPONENTS}")
        for name in components:
            if self.bundle.components[name].image is None:
                raise ValueError(f"the {name} networks have no photo geometry encoder (E_image)")
        return photo

    def _shape_sources(
        self, appearance: Mapping[str, Any] | None, photo: np.ndarray | None, parts: Collection[str]
    ) -> dict[str, np.ndarray]:
        """Aligned photo whose shape each part takes instead of the strokes' (if any).

        An explicit geometry photo wins; otherwise a slot with ``shape`` set lends its
        first photo to the parts it applies to.
        """
        out = {name: photo for name in parts} if photo is not None else {}
        for name in COMPONENTS:
            slot = slot_for(appearance, name)
            if name in out or slot is None or not getattr(slot, "shape", False):
                continue
            paths = tuple(getattr(slot, "paths", ()) or ())
            if not paths:
                continue
            if self.bundle.components[name].image is None:
                raise ValueError(f"the {name} networks have no photo geometry encoder (E_image)")
            out[name] = self.appearance.reference(paths[0]).image
        return out

    def _run_branch(
        self,
        name: str,
        key: str,
        crop: torch.Tensor,
        strength: float,
        code: torch.Tensor,
        photo_crop: torch.Tensor | None,
        check: Callable[[], bool],
    ) -> _Branch:
        model = self.model
        x = self.spec.tensor(crop)
        if photo_crop is not None:
            geom = model.photo_geometry(name, self.spec.tensor(photo_crop))
        else:
            if strength > 0 and model.scn is not None:
                # SCN on the sketch image, before E_sketch: the blend is a sketch the
                # geometry encoder was trained on (clean at 1, the raw strokes at 0).
                x = model.calibrate(x, strength)
                self._count(f"scn:{name}")
                if check():
                    raise RenderCancelled
            geom = model.geometry(name, x)
        calibrated = tensor_to_image(x[0])
        if check():
            raise RenderCancelled
        code = self.appearance.resolve(name, geom, code)  # gallery default look (G)
        feat = model.generate(name, geom, code)
        self._count(f"branch:{name}")
        default = self.defaults[name]
        plain = photo_crop is None and code.shape == default.shape and torch.equal(code, default)
        return _Branch(key, feat, calibrated, pool_latent(geom)[0], plain)

    def _check_reference(
        self, reference: tuple[np.ndarray, np.ndarray] | None
    ) -> tuple[np.ndarray, np.ndarray] | None:
        if reference is None:
            return None
        rgb, valid = (np.asarray(a) for a in reference)
        side = (self.canvas, self.canvas)
        if rgb.shape != (*side, 3) or rgb.dtype != np.uint8 or valid.shape[:2] != side:
            raise ValueError(
                f"reference must be a warped uint8 RGB {self.canvas}x{self.canvas} image and "
                f"its validity, got {rgb.dtype} {rgb.shape} and {valid.shape}"
            )
        v = valid.astype(np.float32) / (255.0 if valid.dtype == np.uint8 else 1.0)
        return rgb, (v.reshape(side) > 0.5).astype(np.float32)

    def _fuse(
        self,
        lay: FaceLayout,
        size: int,
        timings: dict[str, float],
        check: Callable[[], bool],
        ref: tuple[np.ndarray, np.ndarray] | None = None,
    ) -> np.ndarray:
        t = time.perf_counter()
        model = self.model if ref is None or self.ref_model is None else self.ref_model
        with torch.inference_mode():
            maps = {n: self._branches[n].feat for n in COMPONENTS}
            pasted = model.paste(maps, lay, self._seam_targets())
            sketch = None
            if self.bundle.fusion.cfg.sketch_ch:  # the skip: the sketch the encoders saw
                sketch = self.spec.tensor(
                    sketch_to_tensor(self._calibrated_sketch(lay, self.canvas))
                )
            if ref is None:
                rgb = model.fuse(pasted, sketch)
            else:
                ref_t = self.spec.tensor(image_to_tensor(ref[0]))
                valid_t = self.spec.tensor(torch.from_numpy(ref[1])[None, None])
                rgb = model.fuse(pasted, sketch, ref_t, valid_t)
            self._count("fusion")
            timings["fusion"] = (time.perf_counter() - t) * 1000
            if size != self.canvas:
                if check():
                    raise RenderCancelled
                t = time.perf_counter()
                # the 2x head doubles what mesh the fusion left (a transposed decoder's):
                # then the same notch again at the output size
                rgb = model.upsample(rgb)
                self._count("upsample")
                timings["upsample"] = (time.perf_counter() - t) * 1000
            return tensor_to_image(rgb[0])

    def _seam_targets(self) -> dict[str, torch.Tensor] | None:
        """What :meth:`FaceModel.paste` should match each local map's border step to.

        Only parts that, or whose background, have a photo's look or shape: their codes
        move the step between the window and the background, which the fusion shows as
        the window's rectangle.  The target is the step of the default look, measured
        once on a blank canvas (it moves by about 5 % of its size between drawings,
        while a photo moves it by more than its size)."""
        if not self.seam_match:
            return None
        bg_plain = self._branches[BACKGROUND].plain
        parts = [n for n in LOCAL_COMPONENTS if not (bg_plain and self._branches[n].plain)]
        if not parts:
            return None
        if self._seam_expected is None:
            lay = FaceLayout.default(self.canvas)
            blank = self.spec.tensor(sketch_to_tensor(np.full((self.canvas,) * 2, 255, np.uint8)))
            maps, _ = self.model.component_maps(blank, self.defaults, lay)
            self._seam_expected = {n: v[0] for n, v in self.model.seam_offsets(maps, lay).items()}
        return {n: self._seam_expected[n] for n in parts}

    def _real_pixels(
        self,
        face: np.ndarray,
        sketch: np.ndarray,
        lay: FaceLayout,
        appearance: Mapping[str, Any] | None,
        recomputed: list[str],
        shapes: Mapping[str, np.ndarray] | None = None,
    ) -> tuple[np.ndarray, list[str]]:
        """Real texture on the rendered face (facesketch.engine.real_pixels): a dropped
        photo's for its part or the whole face, else the gallery face nearest the render.
        ``shapes``: the parts drawn with a photo's shape (:meth:`_shape_sources`)."""
        from facesketch.engine.landmarks import has_ink, predict_landmarks
        from facesketch.engine.real_pixels import PixelSource
        from facesketch.sketch.document import FACE

        if not has_ink(sketch):
            return face, []
        size = face.shape[0]
        pts = (predict_landmarks(sketch, self.spec) + 0.5) * (size / self.canvas) - 0.5
        pts = self._shaped_landmarks(pts, size, appearance, shapes or {})
        sources: dict[str, PixelSource] = {}
        for name in (FACE, *COMPONENTS):
            slot = (appearance or {}).get(name)
            paths = tuple(getattr(slot, "paths", ()) or ()) if slot is not None else ()
            if not paths:
                continue
            found = []
            for path in paths[:2]:
                ref = self.appearance.reference(path)
                if ref.landmarks is None:
                    continue
                valid = ref.mask if ref.mask is not None else np.full(ref.image.shape[:2], 255)
                found.append(
                    PixelSource(ref.digest, ref.image, valid.astype(np.uint8), ref.landmarks)
                )
            if not found:
                continue
            sources[name] = found[0]
            if len(found) == 2:  # two photos mixed: the texture is blended like the codes
                found[0].second, found[0].mix = found[1], float(getattr(slot, "mix", 0.5))
        rp = self.real_pixels
        pooled = {n: self._branches[n].pooled for n in COMPONENTS}
        female = None
        picked = FACE not in sources and BACKGROUND not in sources  # the gallery lends
        if picked and all(v is not None for v in pooled.values()):
            female = rp.gallery.drawn_gender(pooled)
        try:
            out = rp.apply(face, pts, lay, sources, recomputed, female)
        except (RuntimeError, OSError) as exc:  # dlib's models unreadable: the plain face
            self.real_pixels_problem = f"real texture skipped: {exc}"
            return face, []
        t = time.perf_counter()
        out = self.hair.apply(out, sketch, pts, lay)
        rp.state.timings["hair"] = (time.perf_counter() - t) * 1000
        used = [str(p) for n in sources for p in appearance[n].paths[:2]]
        if picked and rp.state.index is not None:
            used.insert(0, f"gallery:{rp.state.index}")
        return out, used

    def _shaped_landmarks(
        self,
        pts: np.ndarray,
        size: int,
        appearance: Mapping[str, Any] | None,
        shapes: Mapping[str, np.ndarray],
    ) -> np.ndarray:
        """The sketch's landmarks, with those of each part drawn in a photo's shape
        taken from that photo (aligned to the same layout, its part is rendered where its
        landmarks are).  Why: the texture was warped onto the strokes' landmarks while
        the networks drew the photo's part, so a photo's smile got no teeth of its own
        (the mouth gate saw a closed drawn mouth) and its eyes a misplaced texture."""
        out = np.array(pts, np.float64)
        for name in shapes:
            slot = slot_for(appearance, name)
            paths = tuple(getattr(slot, "paths", ()) or ()) if slot is not None else ()
            if not paths or not getattr(slot, "shape", False):
                continue  # a geometry photo given as pixels: no landmarks known
            ref = self.appearance.reference(paths[0])
            if ref.landmarks is None:
                continue
            scale = size / ref.image.shape[0]
            own = (np.asarray(ref.landmarks, np.float64) + 0.5) * scale - 0.5
            for a, b in SHAPE_LANDMARKS[name]:
                out[a:b] = own[a:b]
        return out

    def _calibrated_sketch(self, lay: FaceLayout, size: int) -> np.ndarray:
        """The sketch the encoders saw, assembled like the feature maps (eyes on top)."""
        canvas = assemble_sketch({n: self._branches[n].calibrated for n in COMPONENTS}, lay)
        if size != self.canvas:
            canvas = cv2.resize(canvas, (size, size), interpolation=cv2.INTER_LINEAR)
        return canvas


def load_reference_fusion(weights_dir: str | Path | None) -> nn.Module | None:
    """The reference fusion (``fusion_ref``) in a weights folder, or None when absent.

    A damaged or mismatched file raises WeightsError like every other network."""
    if not weights_dir or not Path(weights_dir).is_dir():
        return None
    from facesketch.engine.weights import list_weights, load_into
    from facesketch.models.config import FusionConfig
    from facesketch.models.fusion import GlobalFusion

    for e in list_weights(Path(weights_dir)):
        if e.get("network") == "fusion_ref":
            conf = e["config"]
            module = GlobalFusion(FusionConfig.from_dict(conf))
            load_into(module, e["path"], "fusion_ref", conf)
            return module.eval()
    return None


def render_face(
    bundle: NetworkBundle,
    sketch: np.ndarray,
    size: int | None = None,
    device: DeviceSpec | str = "cpu",
    **kwargs: Any,
) -> np.ndarray:
    """One-shot convenience: a face RGB uint8 from a sketch image (no caching kept)."""
    return FacePipeline(bundle, device).render_sketch(sketch, size=size, **kwargs).face
