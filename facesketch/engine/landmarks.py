"""Sketch landmarks in the engine, and rendering a face where it was drawn.

- :class:`LandmarkPredictor`: the shipped :class:`~facesketch.models.landmarks.LandmarkNet`
  on the engine's device, results cached by a digest of the sketch (a render and the
  canvas overlay ask about the same drawing).
- :func:`fit_drawing`: the similarity that takes the drawn face onto the layout
  (:func:`facesketch.face.align.similarity_transform`, the alignment training faces got),
  or None when the drawing does not look like a face yet.
- :func:`fitted_layout`: windows moved onto the drawn eyes, nose and mouth ("Fit
  windows to drawing").
- :func:`render_following`: "Follow my drawing".  The strokes are moved by that
  similarity (points and pen widths, so lines stay crisp) onto the layout, the
  pipeline renders the canonical face, and the face is warped back to where, and as
  large as, it was drawn; outside it the canvas shows a neutral colour (the render's
  own border).  Drawings already in place (the similarity is ~identity) render
  exactly as without the setting.

Everything here runs on the render service's worker thread (never the GUI thread).
"""

from __future__ import annotations

import hashlib
import math
import threading
import time
import weakref
from collections import OrderedDict
from dataclasses import dataclass, replace
from typing import Any

import cv2
import numpy as np

from facesketch.layout import LOCAL_COMPONENTS, FaceLayout

#: Registry name of the shipped weights.
WEIGHTS_NAME = "landmarks"
#: Sketches remembered per predictor (a render and an overlay request share one).
CACHE_SIZE = 8
#: Face scales (drawn / layout) accepted as a face; beyond them the drawing is rendered as is.
MIN_SCALE, MAX_SCALE = 0.3, 3.0
#: Least ink (share of canvas pixels darker than mid grey) before landmarks mean anything.
MIN_INK = 0.002
#: Share of the inner landmarks (brows, eyes, nose, mouth) that must lie on drawn ink
#: before "Follow my drawing" moves a drawing: a face still being drawn (hair and brows
#: so far) gets landmarks on blank paper, and its render must not jump about.
MIN_SUPPORT = 0.8
#: How near ink (share of the canvas side) a landmark must be to count as drawn.
SUPPORT_RADIUS = 0.04
#: A fit this close to the identity leaves the drawing alone (no resampling at all).
#: Sized to the network's own jitter: on the 88 CUHK sketches, aligned by their photos,
#: the fit's shift is 1.4 px median / 2.9 px p90 (at 512), its scale within 2 % and its
#: angle within 1 degree (p90); 4 px is under 1 % of the canvas, too little to see.
IDENTITY_SCALE, IDENTITY_DEG, IDENTITY_PX = 0.03, 2.0, 4.0
#: Feather (output pixels) of the warped-back face's edge.
EDGE_FEATHER = 3.0
#: A new fit closer than this to the last one keeps the last (scale ratio, degrees,
#: document px): strokes then stay where they were moved, so an edit re-runs only the
#: component it touched instead of every branch.
STICKY_SCALE, STICKY_DEG, STICKY_PX = 0.02, 1.0, 1.5


def sketch_digest(sketch: np.ndarray) -> str:
    """Content key of a sketch image."""
    a = np.ascontiguousarray(sketch)
    return hashlib.blake2b(a.tobytes() + repr(a.shape).encode(), digest_size=16).hexdigest()


def _square(sketch: np.ndarray) -> tuple[np.ndarray, int, int]:
    """Gray uint8, padded with paper to a square; returns (square, left, top) padding."""
    s = np.asarray(sketch)
    if s.ndim == 3:
        s = cv2.cvtColor(s, cv2.COLOR_RGB2GRAY)
    if s.dtype != np.uint8 or s.ndim != 2 or s.size == 0:
        raise ValueError(f"a sketch must be a uint8 grayscale image, got {s.dtype} {s.shape}")
    h, w = s.shape
    side = max(h, w)
    top, left = (side - h) // 2, (side - w) // 2
    if h != w:
        s = cv2.copyMakeBorder(
            s, top, side - h - top, left, side - w - left, cv2.BORDER_CONSTANT, value=255
        )
    return s, left, top


class LandmarkPredictor:
    """The landmark network on one device (one owner thread: the render worker)."""

    def __init__(self, device: Any = "cpu", weights: str = WEIGHTS_NAME) -> None:
        import torch

        from facesketch.engine.devices import DeviceSpec, select_device
        from facesketch.engine.weights import load_into, read_manifest
        from facesketch.models.config import LandmarkConfig
        from facesketch.models.landmarks import LandmarkNet

        spec = device if isinstance(device, DeviceSpec) else select_device(device)
        self.device = spec.device
        cfg = LandmarkConfig.from_dict(read_manifest(weights)["config"])
        net = LandmarkNet(cfg)
        self.manifest = load_into(net, weights, "landmarks", cfg.to_dict())
        self.net = net.to(self.device, dtype=torch.float32).eval()  # fp32: tiny, exact
        self.size = cfg.input_size
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()

    def predict(self, sketch: np.ndarray) -> np.ndarray:
        """68 landmarks (x, y) float32 in ``sketch``'s pixels (integer pixel centres)."""
        key = sketch_digest(np.asarray(sketch))
        hit = self._cache.get(key)
        if hit is not None:
            self._cache.move_to_end(key)
            return hit.copy()
        import torch

        from facesketch.imaging import sketch_to_tensor

        sq, left, top = _square(sketch)
        side = sq.shape[0]
        interp = cv2.INTER_AREA if side > self.size else cv2.INTER_LINEAR
        small = cv2.resize(sq, (self.size, self.size), interpolation=interp)
        with torch.inference_mode():
            pts = self.net(sketch_to_tensor(small).to(self.device))[0].float().cpu().numpy()
        f = side / self.size
        out = ((pts + 0.5) * f - 0.5 - np.array([left, top], np.float32)).astype(np.float32)
        self._cache[key] = out
        while len(self._cache) > CACHE_SIZE:
            self._cache.popitem(last=False)
        return out.copy()


_PREDICTORS: dict[str, LandmarkPredictor] = {}
_LOCK = threading.Lock()


def predictor_for(device: Any = "cpu") -> LandmarkPredictor:
    """The process's predictor for ``device`` (a DeviceSpec, torch device or name)."""
    name = str(getattr(device, "device", device))
    with _LOCK:
        if name not in _PREDICTORS:
            _PREDICTORS[name] = LandmarkPredictor(device)
        return _PREDICTORS[name]


def predict_landmarks(sketch: np.ndarray, device: Any = "cpu") -> np.ndarray:
    """68 landmarks (68, 2) float32 of a uint8 sketch, in its pixels (worker thread only)."""
    if isinstance(device, str):
        from facesketch.engine.devices import select_device

        device = select_device(device)
    return predictor_for(device).predict(sketch)


@dataclass(frozen=True)
class DocumentLandmarks:
    """What the canvas needs: landmarks in document canvas pixels (None: no face drawn
    yet) and the layout with the windows fitted to them ("Fit windows to drawing")."""

    landmarks: np.ndarray | None
    fitted: FaceLayout | None


def document_landmarks(doc: Any, canvas: int = 256, device: Any = "auto") -> DocumentLandmarks:
    """Landmarks of a document snapshot's drawing (rasterized at ``canvas``, the render's
    internal size, so a render of the same drawing reuses the cached prediction)."""
    sketch = doc.rasterize(canvas)
    if not has_ink(sketch):
        return DocumentLandmarks(None, None)
    lm = predict_landmarks(sketch, device)
    f = doc.canvas / canvas
    lm_doc = ((lm + 0.5) * f - 0.5).astype(np.float32)
    return DocumentLandmarks(lm_doc, fitted_layout(lm_doc, doc.layout))


# -- where the drawn face is --------------------------------------------------------------
@dataclass(frozen=True)
class DrawingFit:
    """The similarity ``matrix`` (2x3, document canvas pixels) taking the drawn face onto
    the layout; ``scale`` > 1 means the face was drawn smaller than the layout's."""

    matrix: np.ndarray
    scale: float
    angle_deg: float
    shift_px: float

    @property
    def is_identity(self) -> bool:
        """Whether the drawing already sits on the layout (nothing to move)."""
        return (
            abs(self.scale - 1) < IDENTITY_SCALE
            and abs(self.angle_deg) < IDENTITY_DEG
            and self.shift_px < IDENTITY_PX
        )


def has_ink(sketch: np.ndarray) -> bool:
    """Whether a sketch has enough ink for landmarks to mean anything."""
    return float((np.asarray(sketch) < 128).mean()) >= MIN_INK


def ink_support(sketch: np.ndarray, landmarks: np.ndarray) -> float:
    """Share of the inner landmarks (17-67) within :data:`SUPPORT_RADIUS` of ink in
    ``sketch`` (points in its pixels): about 1 for a finished face, low while parts of
    it are not drawn yet (the network still places them, on blank paper)."""
    ink = (np.asarray(sketch) < 128).astype(np.uint8)
    if not ink.any():
        return 0.0
    dist = cv2.distanceTransform(1 - ink, cv2.DIST_L2, 3)
    h, w = ink.shape
    pts = np.round(np.asarray(landmarks, np.float64)[17:]).astype(int)
    inside = (pts[:, 0] >= 0) & (pts[:, 0] < w) & (pts[:, 1] >= 0) & (pts[:, 1] < h)
    near = np.zeros(len(pts), bool)
    near[inside] = dist[pts[inside, 1], pts[inside, 0]] <= SUPPORT_RADIUS * max(h, w)
    return float(near.mean())


def fit_drawing(landmarks: np.ndarray, layout: FaceLayout) -> DrawingFit | None:
    """The drawn face -> layout similarity, or None when it is no plausible face
    (a scale beyond :data:`MIN_SCALE`..:data:`MAX_SCALE`, or rotated past 45 degrees)."""
    from facesketch.face.align import similarity_transform

    m = similarity_transform(np.asarray(landmarks, np.float64), layout)
    scale = float(math.hypot(m[0, 0], m[1, 0]))
    angle = math.degrees(math.atan2(m[1, 0], m[0, 0]))
    if not (MIN_SCALE <= scale <= MAX_SCALE) or abs(angle) > 45 or not np.isfinite(m).all():
        return None
    # how far the layout's centre moves: the shift a user would notice
    c = np.array([layout.canvas / 2.0, layout.canvas / 2.0])
    shift = float(np.linalg.norm(m[:, :2] @ c + m[:, 2] - c))
    return DrawingFit(m, scale, angle, shift)


def fitted_layout(landmarks: np.ndarray, layout: FaceLayout) -> FaceLayout:
    """``layout`` with every local window centred on the drawn component (landmark
    centres); nose and mouth keep the layout's sideways offset from the eyes' midline,
    scaled with the face.  Window sizes stay (the networks' crop sizes)."""
    from facesketch.face.align import landmark_centres

    centres = landmark_centres(np.asarray(landmarks, np.float64))
    fit = fit_drawing(landmarks, layout)
    scale = 1.0 / fit.scale if fit is not None else 1.0
    eyes = [layout.window(n).center for n in ("left_eye", "right_eye")]
    mid_x = (eyes[0][0] + eyes[1][0]) / 2.0
    drawn_mid = (centres["left_eye"][0] + centres["right_eye"][0]) / 2.0
    out = layout
    for name in LOCAL_COMPONENTS:
        cx, cy = centres[name]
        if name in ("nose", "mouth"):
            cx = drawn_mid + (layout.window(name).center[0] - mid_x) * scale
        size = layout.window(name).size
        out = out.moved(name, round(cx - size / 2.0), round(cy - size / 2.0))
    return out


# -- rendering where it was drawn ------------------------------------------------------------
def _full(m: np.ndarray) -> np.ndarray:
    return np.vstack([np.asarray(m, np.float64), [0.0, 0.0, 1.0]])


def _rescaled(m: np.ndarray, src: int, dst: int) -> np.ndarray:
    """A 2x3 matrix in ``src``-canvas pixels expressed in ``dst``-canvas pixels."""
    f = dst / src
    s = np.array([[f, 0, 0.5 * f - 0.5], [0, f, 0.5 * f - 0.5], [0, 0, 1]])
    return (s @ _full(m) @ np.linalg.inv(s))[:2]


def move_document(doc: Any, fit: DrawingFit) -> Any:
    """A snapshot with strokes (points, pen widths) and background layer moved by ``fit``."""
    from facesketch.sketch.document import Stroke

    m = fit.matrix
    strokes = tuple(
        Stroke(
            (s.points.astype(np.float64) @ m[:, :2].T + m[:, 2]).astype(np.float32),
            min(s.width * fit.scale, 256.0),
            s.eraser,
            s.id,
        )
        for s in doc.strokes
    )
    bg = doc.background_image
    if bg is not None:
        h, w = bg.shape
        side = max(h, w)
        mb = _rescaled(m, doc.canvas, side)
        bg = cv2.warpAffine(bg, mb, (w, h), flags=cv2.INTER_LINEAR, borderValue=255)
    return replace(doc, strokes=strokes, background_image=bg)


def _warp_back(img: np.ndarray, inv: np.ndarray, fill: np.ndarray | float) -> np.ndarray:
    """``img`` warped by ``inv``, composited over ``fill`` with a feathered edge."""
    size = img.shape[0]
    warped = cv2.warpAffine(
        img, inv, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
    )
    cover = cv2.warpAffine(
        np.ones((size, size), np.float32), inv, (size, size), flags=cv2.INTER_LINEAR
    )
    cover = cv2.erode(cover, np.ones((3, 3), np.uint8))
    cover = cv2.GaussianBlur(cover, (0, 0), EDGE_FEATHER / 2)
    if img.ndim == 3:
        cover = cover[..., None]
    out = warped.astype(np.float32) * cover + np.asarray(fill, np.float32) * (1 - cover)
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


def neutral_colour(face: np.ndarray, ring: int = 4) -> np.ndarray:
    """The median colour of the render's outer ring: a backdrop that matches it."""
    border = np.concatenate(
        [
            face[:ring].reshape(-1, 3),
            face[-ring:].reshape(-1, 3),
            face[:, :ring].reshape(-1, 3),
            face[:, -ring:].reshape(-1, 3),
        ]
    )
    return np.median(border, axis=0)


_LAST_FIT: weakref.WeakKeyDictionary[Any, DrawingFit] = weakref.WeakKeyDictionary()


def _sticky(pipe: Any, fit: DrawingFit, canvas: int) -> DrawingFit:
    """``fit``, or the pipeline's previous fit when the two barely differ."""
    prev = _LAST_FIT.get(pipe)
    if prev is not None:
        c = np.array([canvas / 2.0, canvas / 2.0])
        moved = np.linalg.norm(
            (prev.matrix[:, :2] - fit.matrix[:, :2]) @ c + prev.matrix[:, 2] - fit.matrix[:, 2]
        )
        if (
            abs(prev.scale / fit.scale - 1) < STICKY_SCALE
            and abs(prev.angle_deg - fit.angle_deg) < STICKY_DEG
            and moved < STICKY_PX
        ):
            return prev
    _LAST_FIT[pipe] = fit
    return fit


def render_following(
    pipe: Any, doc: Any, predictor: LandmarkPredictor | None = None, **kwargs: Any
) -> Any:
    """``pipe.render(doc, **kwargs)`` with the face rendered where it was drawn.

    ``pipe`` is a :class:`~facesketch.engine.pipeline.FacePipeline`; the output's
    timings gain ``landmarks`` and ``follow`` (ms) and, when the drawing is moved,
    ``warnings`` say nothing: a drawing that is not yet a face renders as drawn (so
    does one whose inner landmarks mostly miss its ink, :func:`ink_support`: a face
    still being drawn stays put instead of jumping about with every stroke)."""
    t0 = time.perf_counter()
    canvas = pipe.canvas
    sketch = doc.rasterize(canvas)
    fit, problem = None, None
    if has_ink(sketch):
        from facesketch.engine.weights import WeightsError

        try:
            pred = predictor or predictor_for(pipe.spec)
        except WeightsError as exc:  # render as drawn, and say why
            problem = f"Follow my drawing is off for now: {exc}"
        else:
            lm = pred.predict(sketch)
            if ink_support(sketch, lm) >= MIN_SUPPORT:  # else not a whole face yet
                f = doc.canvas / canvas
                fit = fit_drawing((lm + 0.5) * f - 0.5, doc.layout)
    t_lm = (time.perf_counter() - t0) * 1000
    if fit is None or fit.is_identity:
        out = pipe.render(doc, **kwargs)
        out.timings["landmarks"] = t_lm
        if problem:
            out = replace(out, warnings=[*out.warnings, problem])
        return out
    fit = _sticky(pipe, fit, doc.canvas)
    canon = pipe.render(move_document(doc, fit), **kwargs)
    t1 = time.perf_counter()
    size = canon.face.shape[0]
    inv = cv2.invertAffineTransform(_rescaled(fit.matrix, doc.canvas, size))
    # a new output: the pipeline keeps (and may hand out again) the canonical one
    out = replace(
        canon,
        face=_warp_back(canon.face, inv, neutral_colour(canon.face)),
        timings=dict(canon.timings),
        warnings=list(canon.warnings),
        placement=cv2.invertAffineTransform(np.asarray(fit.matrix, np.float64)),
    )
    if canon.sketch is not None:
        s_side = canon.sketch.shape[0]
        s_inv = cv2.invertAffineTransform(_rescaled(fit.matrix, doc.canvas, s_side))
        out.sketch = _warp_back(canon.sketch, s_inv, 255.0)
    out.timings["landmarks"] = t_lm
    out.timings["follow"] = (time.perf_counter() - t1) * 1000
    out.timings["total"] = out.timings.get("total", 0.0) + t_lm + out.timings["follow"]
    return out


__all__ = [
    "DocumentLandmarks",
    "DrawingFit",
    "LandmarkPredictor",
    "document_landmarks",
    "fit_drawing",
    "fitted_layout",
    "ink_support",
    "move_document",
    "predict_landmarks",
    "predictor_for",
    "render_following",
    "sketch_digest",
]
