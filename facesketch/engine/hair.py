"""Hair texture: strands along the drawn hair flow, where the render shows hair.

The networks paint hair as a smooth dark mass, and the real-texture stage
(:mod:`facesketch.engine.real_pixels`) cannot lend it any: the gallery's UTKFace crops
stop at the forehead, and the only whole-head photos at 512 are of celebrities (issue
16).  So the strands are synthesised, not copied: white noise with sparse bright
strands is smeared along the hair's flow (line-integral convolution), high-passed and
added to the render's lightness where it shows hair.

- **Flow.**  The orientation of the drawn strokes (the sketch's structure tensor,
  smoothed over :data:`FLOW_SIGMA_512` px, local windows blanked so only hair and
  outline strokes count), with a weak default where nothing is drawn: strands falling
  from the crown.
- **Where.**  Pixels darker than the face's skin by :data:`DARKER_THAN_SKIN` Lab
  lightness, not skin-coloured, outside the eyes, brows, nose and mouth, inside an
  ellipse around the head, connected to the hair above the brows, and near the colour
  of that hair (so a dark background beside the neck takes none).  Blond or grey hair
  lighter than that is left as it is.
- **How much.**  :data:`HAIR_AMPLITUDE` grey levels (x lightness).  On the 88 CUHK
  pairs at 512 (``train.eval --issue``; ``hair_detail``, fine detail over the photo's
  hair) the renders' hair detail goes 0.65 -> 1.32 (the photos: 1.74, soft scans;
  whole-head photos at 512: 3.2), and KID 220 -> 240, under its bar (real photos of
  another source: 248).  KID is what limits it: amplitude 7 gave 2.26 but KID 266.

The strands depend on the sketch and its landmarks only, so they are cached and a
one-part edit (which leaves the hair strokes and barely moves the landmarks) reuses
them; the weight follows every render's colours (a few ms).  The noise has a fixed
seed: the same drawing always gets the same strands, and they do not flicker as the
user draws.  Everything here runs on the engine's worker thread.
"""

from __future__ import annotations

import hashlib

import cv2
import numpy as np

from facesketch.layout import LOCAL_COMPONENTS, FaceLayout

#: Strand contrast (grey levels per unit of the normalised texture, x 0.4 + L/160).
HAIR_AMPLITUDE = 4.0
#: Smoothing of the strokes' orientation (Gaussian sigma, px at 512): how far a drawn
#: strand steers its neighbourhood.
FLOW_SIGMA_512 = 25.0
#: Weight of the default flow (strands falling from the crown), x the strokes'
#: 90th-percentile orientation energy: it decides only where little is drawn.
DEFAULT_FLOW = 0.15
#: The default strands fall from a point this far (x the brow-to-chin height) above the
#: top of the forehead: the top of the head, seen from the front.
CROWN_ABOVE = 0.2
#: Strand half-length (integration steps of 1 px at 512).
STRAND_STEPS_512 = 15
#: Strand width (Gaussian sigma of the noise, px at 512).
STRAND_WIDTH_512 = 0.7
#: Share of noise pixels that start a bright strand (a highlight).
HIGHLIGHT_SHARE = 0.015
#: The texture keeps what a Gaussian of this many px (at 512) does not.
DETAIL_SIGMA_512 = 3.0
#: Hair is at least this much darker (Lab L, 0..255) than the face's median skin.
DARKER_THAN_SKIN = 25.0
#: Lab distance (lightness counting :data:`LIGHTNESS_WEIGHT`) to the crown's hair colour
#: at which a pixel is half hair.
HAIR_COLOUR_TOLERANCE = 22.0
LIGHTNESS_WEIGHT = 0.35
#: The strands are reused while the landmarks moved less than this (mean px at 512).
KEEP_PX = 2.0
#: The hair weight is worked out at most at this size.
WEIGHT_SIZE = 256
#: Fixed seed of the strand noise.
SEED = 1729


def _geometry(landmarks: np.ndarray) -> tuple[float, float, float, float, float, float]:
    """(centre x, top of the forehead, brow-to-chin height, jaw width, chin y, brow y)."""
    pts = np.asarray(landmarks, np.float64)
    jaw, brows = pts[:17], pts[17:27]
    brow, chin = float(brows[:, 1].min()), float(jaw[:, 1].max())
    height = chin - brow
    return (
        float(pts[:, 0].mean()),
        brow - 0.35 * height,
        height,
        float(np.ptp(jaw[:, 0])),
        chin,
        brow,
    )


def blank_windows(sketch: np.ndarray, layout: FaceLayout) -> np.ndarray:
    """The grey sketch with the local windows (eyes, nose, mouth) turned to paper: the
    hair flow follows hair and outline strokes, and an edit in a window keeps it."""
    out = sketch.copy()
    lay = layout.scaled(sketch.shape[0])
    for name in LOCAL_COMPONENTS:
        w = lay.window(name)
        out[max(0, w.y) : w.y + w.size, max(0, w.x) : w.x + w.size] = 255
    return out


def flow_field(
    sketch: np.ndarray, landmarks: np.ndarray, size: int
) -> tuple[np.ndarray, np.ndarray]:
    """Unit strand directions (vx, vy), float32 (size, size): along the drawn strokes,
    falling from the crown where nothing is drawn.  ``sketch`` grey uint8 of any size,
    ``landmarks`` (68, 2) in pixels of ``size``."""
    n = sketch.shape[0]
    ink = 255.0 - sketch.astype(np.float32)
    gx = cv2.Sobel(ink, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(ink, cv2.CV_32F, 0, 1, ksize=3)
    sigma = FLOW_SIGMA_512 * n / 512
    jxx = cv2.GaussianBlur(gx * gx, (0, 0), sigma)
    jyy = cv2.GaussianBlur(gy * gy, (0, 0), sigma)
    jxy = cv2.GaussianBlur(gx * gy, (0, 0), sigma)
    cx, top, height, _, _, _ = _geometry(np.asarray(landmarks, np.float64) * (n / size))
    ys, xs = np.mgrid[0:n, 0:n].astype(np.float32)
    tx, ty = xs - cx, ys - (top - CROWN_ABOVE * height)
    norm = np.sqrt(tx * tx + ty * ty) + 1e-3
    ax, ay = -ty / norm, tx / norm  # across the default strands
    w0 = DEFAULT_FLOW * max(float(np.percentile(jxx + jyy, 90)), 1e-3)
    jxx, jyy, jxy = jxx + w0 * ax * ax, jyy + w0 * ay * ay, jxy + w0 * ax * ay
    theta = 0.5 * np.arctan2(2 * jxy, jxx - jyy) + np.pi / 2  # across the gradient
    vx, vy = np.cos(theta).astype(np.float32), np.sin(theta).astype(np.float32)
    if n != size:  # orientation is smooth: resize the doubled-angle vector, renormalise
        c2 = cv2.resize(vx * vx - vy * vy, (size, size), interpolation=cv2.INTER_LINEAR)
        s2 = cv2.resize(2 * vx * vy, (size, size), interpolation=cv2.INTER_LINEAR)
        half = 0.5 * np.arctan2(s2, c2)
        vx, vy = np.cos(half).astype(np.float32), np.sin(half).astype(np.float32)
    return vx, vy


def line_integral(noise: np.ndarray, vx: np.ndarray, vy: np.ndarray, steps: int) -> np.ndarray:
    """``noise`` averaged along the streamlines of the orientation field (both ways,
    ``steps`` 1-px steps each, tapering): the classic line-integral convolution, with
    the sign of the field kept consistent along a streamline."""
    h, w = noise.shape
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    acc, total = noise.astype(np.float32).copy(), 1.0
    for sign in (1.0, -1.0):
        px, py = xs.copy(), ys.copy()
        dx, dy = vx * sign, vy * sign
        for k in range(steps):
            ux = cv2.remap(vx, px, py, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
            uy = cv2.remap(vy, px, py, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
            flip = np.where(ux * dx + uy * dy < 0, -1.0, 1.0).astype(np.float32)
            dx, dy = ux * flip, uy * flip
            px += dx
            py += dy
            weight = 1.0 - k / steps
            acc += weight * cv2.remap(
                noise, px, py, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT
            )
            total += weight
    return acc / total


def strand_texture(sketch: np.ndarray, landmarks: np.ndarray, size: int) -> np.ndarray:
    """float32 (size, size), zero mean, unit spread: strands along the drawn hair flow,
    in clumps (the noise is seeded: the same drawing gets the same strands)."""
    vx, vy = flow_field(sketch, landmarks, size)
    rng = np.random.default_rng(SEED)
    noise = rng.standard_normal((size, size)).astype(np.float32)
    noise += 4.0 * (rng.random((size, size)) < HIGHLIGHT_SHARE)
    f = size / 512
    noise = cv2.GaussianBlur(noise, (0, 0), max(0.3, STRAND_WIDTH_512 * f))
    t = line_integral(noise, vx, vy, max(2, round(STRAND_STEPS_512 * f)))
    t -= cv2.GaussianBlur(t, (0, 0), DETAIL_SIGMA_512 * f)
    t /= float(t.std()) + 1e-6
    clumps = cv2.GaussianBlur(rng.standard_normal((size, size)).astype(np.float32), (0, 0), 5 * f)
    clumps /= float(clumps.std()) + 1e-6
    return (t * np.clip(1 + 0.4 * clumps, 0.2, 2.0)).astype(np.float32)


def hair_weight(render: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """float32 (H, W) in [0, 1]: where the render (uint8 RGB) shows hair (module doc)."""
    from facesketch.engine.real_pixels import face_region, feature_region, skin_weight

    full = render.shape[0]
    if full > WEIGHT_SIZE:  # the weight is smooth: worked out small (ms instead of tens)
        small = cv2.resize(render, (WEIGHT_SIZE, WEIGHT_SIZE), interpolation=cv2.INTER_AREA)
        f = WEIGHT_SIZE / full
        w = hair_weight(small, (np.asarray(landmarks, np.float64) + 0.5) * f - 0.5)
        return cv2.resize(w, (full, full), interpolation=cv2.INTER_LINEAR)
    size = full
    lab = cv2.cvtColor(cv2.GaussianBlur(render, (0, 0), 2 * size / 512), cv2.COLOR_RGB2LAB)
    lab = lab.astype(np.float32)
    face = face_region(landmarks, size, 0.2) > 0
    if face.sum() < 64:
        return np.zeros((size, size), np.float32)
    cx, top, height, width, chin, brow = _geometry(landmarks)
    skin = skin_weight(lab, face)
    l_skin = float(np.median(lab[face][:, 0]))
    dark = 1.0 / (1.0 + np.exp(-((l_skin - DARKER_THAN_SKIN) - lab[..., 0]) / 6.0))
    zone = np.zeros((size, size), np.float32)
    centre = (round(cx), round((top + chin) / 2))
    cv2.ellipse(zone, centre, (round(0.85 * width), round(0.8 * height)), 0, 0, 360, 1, -1)
    zone = cv2.GaussianBlur(zone, (0, 0), 0.04 * size)
    features = feature_region(landmarks, size, 0.03 * size)
    m = dark * zone * (1.0 - skin) * (1.0 - features)
    # what is connected to the hair above the brows (the crown and what hangs from it)
    binary = (m > 0.3).astype(np.uint8)
    count, labels = cv2.connectedComponents(binary, connectivity=8)
    crown = np.zeros((size, size), bool)
    crown[: max(0, int(brow))] = True
    keep = np.zeros(count, bool)
    keep[np.unique(labels[(binary > 0) & crown])] = True
    keep[0] = False
    near = cv2.dilate(keep[labels].astype(np.float32), np.ones((7, 7), np.uint8))
    m = m * cv2.GaussianBlur(near, (0, 0), 3 * size / 512)
    top_hair = (m > 0.5) & crown & (dark > 0.5)
    if top_hair.sum() < 50:
        return np.zeros((size, size), np.float32)
    d = (lab - np.median(lab[top_hair], axis=0)) * np.array([LIGHTNESS_WEIGHT, 1, 1], np.float32)
    like = np.exp(-np.log(2.0) * (d * d).sum(-1) / HAIR_COLOUR_TOLERANCE**2)
    return np.clip(m * like, 0, 1).astype(np.float32)


def add_strands(render: np.ndarray, texture: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """The render (uint8 RGB) with the strands added to its lightness where ``weight``;
    brighter hair shows stronger strands, as in photos."""
    lightness = cv2.cvtColor(render, cv2.COLOR_RGB2LAB)[..., 0].astype(np.float32)
    gain = HAIR_AMPLITUDE * (0.4 + lightness / 160.0)
    out = render.astype(np.float32) + (weight * gain * texture)[..., None]
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


class HairStage:
    """The stage with its cache: ``apply(render, sketch, landmarks, layout)``."""

    def __init__(self) -> None:
        self._key: tuple[str, int] | None = None
        self._landmarks: np.ndarray | None = None
        self._texture: np.ndarray | None = None
        #: "hit" or "miss" of the last call, for the benchmark and the tests
        self.last = ""

    def texture(
        self, sketch: np.ndarray, landmarks: np.ndarray, layout: FaceLayout, size: int
    ) -> np.ndarray:
        """The strands for this drawing, cached while the strokes outside the local
        windows are the same and the landmarks moved less than :data:`KEEP_PX`."""
        flow_sketch = blank_windows(sketch, layout)
        key = (hashlib.blake2b(flow_sketch.tobytes(), digest_size=16).hexdigest(), size)
        pts = np.asarray(landmarks, np.float32)
        if (
            self._texture is not None
            and self._key == key
            and self._landmarks is not None
            and float(np.abs(self._landmarks - pts).mean()) <= KEEP_PX * size / 512
        ):
            self.last = "hit"
            return self._texture
        self.last = "miss"
        self._texture = strand_texture(flow_sketch, pts, size)
        self._key, self._landmarks = key, pts.copy()
        return self._texture

    def apply(
        self, render: np.ndarray, sketch: np.ndarray, landmarks: np.ndarray, layout: FaceLayout
    ) -> np.ndarray:
        """``render`` (uint8 RGB) with hair strands; ``sketch`` grey uint8 (any square
        size), ``landmarks`` the sketch's, in pixels of the render."""
        size = render.shape[0]
        weight = hair_weight(render, landmarks)
        if float(weight.max()) < 0.05:
            self.last = "none"
            return render
        return add_strands(render, self.texture(sketch, landmarks, layout, size), weight)
