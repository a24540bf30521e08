"""Image-level sketch operations: ridge thinning, cleaning, Canny details, line drawing.

Pure numpy/OpenCV (``cv2.ximgproc`` is not in the headless wheel, so thinning is
done here).  ``compose_sketch`` turns an HED edge-probability map and the photo
into the project's clean line drawing: HED global contours (non-maximum
suppressed, hysteresis-thresholded, thinned to a 1-px skeleton) plus Canny local
details inside the face, small fragments removed, then drawn at one consistent,
anti-aliased line width on white paper.  The same drawing is used for training
targets and for the app's photo sketches, so it lives in one place.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import cv2
import numpy as np

from facesketch.layout import LOCAL_COMPONENTS, FaceLayout

#: Canvas side the pixel-sized parameters below are tuned for; other sizes scale them.
PARAM_CANVAS = 256
#: Default line width of synthesized sketches on a 512 canvas (the pen width people draw with).
SKETCH_LINE_WIDTH_512 = 2.5

# 8-neighbour offsets (dy, dx) clockwise from north: P2..P9 in Zhang-Suen's naming.
_NEIGHBOURS: tuple[tuple[int, int], ...] = (
    (-1, 0),
    (-1, 1),
    (0, 1),
    (1, 1),
    (1, 0),
    (1, -1),
    (0, -1),
    (-1, -1),
)


@dataclass(frozen=True)
class SketchParams:
    """Knobs of :func:`compose_sketch`, in pixels of a 256 canvas (scaled for others).

    Thresholds on the HED probability decide which contours count as "drawn";
    ``detail_*`` control the Canny details that add eyes, nostrils and lip lines.
    """

    hed_low: float = 0.30
    hed_high: float = 0.55
    min_contour_px: int = 12
    detail_sigma: float = 1.0
    detail_quantile: float = 0.88
    detail_low_ratio: float = 0.5
    min_detail_px: int = 10
    detail_clearance: float = 2.5
    mask_margin: float = 3.0
    line_width_512: float = SKETCH_LINE_WIDTH_512

    def scaled(self, canvas: int) -> SketchParams:
        """Pixel parameters for a canvas of side ``canvas``."""
        f = canvas / PARAM_CANVAS
        return replace(
            self,
            min_contour_px=max(2, round(self.min_contour_px * f)),
            min_detail_px=max(2, round(self.min_detail_px * f)),
            detail_sigma=self.detail_sigma * f,
            detail_clearance=self.detail_clearance * f,
            mask_margin=self.mask_margin * f,
        )


# -- neighbourhood codes and thinning ------------------------------------------------
def neighbour_code(binary: np.ndarray) -> np.ndarray:
    """8-bit code of each pixel's 8 neighbours (bit i = neighbour i of ``_NEIGHBOURS``)."""
    b = np.pad(binary.astype(np.uint8), 1)
    h, w = binary.shape
    code = np.zeros((h, w), np.uint8)
    for bit, (dy, dx) in enumerate(_NEIGHBOURS):
        code |= b[1 + dy : 1 + dy + h, 1 + dx : 1 + dx + w] << np.uint8(bit)
    return code


def _removable_lut() -> np.ndarray:
    """For each neighbour code: may the centre go without changing the line's shape?

    Yes when it has at least two neighbours (not a line end), they stay one
    8-connected group without it (no break), and a 4-neighbour is background (a
    border pixel, so no hole appears).
    """
    lut = np.zeros(256, bool)
    for code in range(256):
        on = [i for i in range(8) if code >> i & 1]
        if len(on) < 2 or all(code >> i & 1 for i in (0, 2, 4, 6)):
            continue
        seen, todo = {on[0]}, [on[0]]
        while todo:
            i = todo.pop()
            yi, xi = _NEIGHBOURS[i]
            for j in on:
                yj, xj = _NEIGHBOURS[j]
                if j not in seen and max(abs(yi - yj), abs(xi - xj)) == 1:
                    seen.add(j)
                    todo.append(j)
        lut[code] = len(seen) == len(on)
    return lut


_REMOVABLE = _removable_lut()


def thin(binary: np.ndarray, max_iter: int = 100) -> np.ndarray:
    """Thin a binary mask to 8-connected, 1-px wide lines, keeping ends and connectivity.

    Removes removable border pixels in four interleaved 2x2 sub-fields, so no two
    neighbours ever go in the same step (parallel, vectorised, topology-safe).
    """
    img = np.ascontiguousarray(binary, dtype=bool).copy()
    h, w = img.shape
    fields = [(r, c) for r in (0, 1) for c in (0, 1)]
    for _ in range(max_iter):
        changed = False
        for r, c in fields:
            sub = img[r::2, c::2]
            if not sub.any():
                continue
            code = neighbour_code(img)[r::2, c::2]
            drop = sub & _REMOVABLE[code]
            if drop.any():
                sub[drop] = False  # view into img
                changed = True
        if not changed:
            break
    return img


def remove_small_components(binary: np.ndarray, min_size: int) -> np.ndarray:
    """Drop 8-connected components with fewer than ``min_size`` pixels."""
    mask = binary.astype(np.uint8)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    if n <= 1:
        return binary.astype(bool)
    keep = stats[:, cv2.CC_STAT_AREA] >= min_size
    keep[0] = False
    return keep[labels]


# -- HED ridges --------------------------------------------------------------------
def ridge_nms(prob: np.ndarray, sigma: float = 1.0) -> np.ndarray:
    """Keep only the crest of each edge ridge of an edge-probability map (else 0).

    The ridge normal comes from the Hessian of the smoothed map (as in Dollar's
    edgesNms); a pixel survives if it is not below its two neighbours along it.
    """
    e = prob.astype(np.float32)
    s = cv2.GaussianBlur(e, (0, 0), sigma) if sigma > 0 else e
    oy, ox = np.gradient(s)
    _, oxx = np.gradient(ox)
    oyy, oxy = np.gradient(oy)
    theta = np.arctan(oyy * np.sign(-oxy) / (oxx + 1e-5))
    c, si = np.cos(theta).astype(np.float32), np.sin(theta).astype(np.float32)
    h, w = e.shape
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    keep = np.ones_like(e, bool)
    for d in (1.0, -1.0):
        nb = cv2.remap(
            e, xx + d * c, yy + d * si, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
        )
        keep &= e >= nb - 1e-6
    return np.where(keep, e, 0.0).astype(np.float32)


def hysteresis(strength: np.ndarray, low: float, high: float) -> np.ndarray:
    """Pixels above ``low`` that are 8-connected to a pixel above ``high``."""
    weak = strength > low
    n, labels = cv2.connectedComponents(weak.astype(np.uint8), connectivity=8)
    if n <= 1:
        return weak
    strong_labels = np.zeros(n, bool)
    strong_labels[np.unique(labels[strength > high])] = True
    strong_labels[0] = False
    return strong_labels[labels]


def hed_contours(prob: np.ndarray, params: SketchParams) -> np.ndarray:
    """1-px skeleton (bool) of the clear HED contours."""
    crest = ridge_nms(prob, sigma=max(0.5, prob.shape[0] / PARAM_CANVAS))
    lines = hysteresis(crest, params.hed_low, params.hed_high)
    # NMS crests are broken by a pixel here and there; close before thinning
    lines = cv2.morphologyEx(lines.astype(np.uint8), cv2.MORPH_CLOSE, np.ones((2, 2), np.uint8))
    return remove_small_components(thin(lines > 0), params.min_contour_px)


# -- Canny details -----------------------------------------------------------------
def face_detail_region(canvas: int, layout: FaceLayout | None = None) -> np.ndarray:
    """Where local details belong on an aligned face: an ellipse around eyes, nose, mouth."""
    layout = layout or FaceLayout.default(canvas)
    if layout.canvas != canvas:
        layout = layout.scaled(canvas)
    wins = [layout.window(n) for n in LOCAL_COMPONENTS]
    x0, y0 = min(w.x for w in wins), min(w.y for w in wins)
    x1, y1 = max(w.x + w.size for w in wins), max(w.y + w.size for w in wins)
    region = np.zeros((canvas, canvas), np.uint8)
    center = (round((x0 + x1) / 2), round((y0 + y1) / 2))
    axes = (round((x1 - x0) / 2), round((y1 - y0) / 2))
    cv2.ellipse(region, center, axes, 0, 0, 360, 1, thickness=-1)
    return region.astype(bool)


def canny_details(gray: np.ndarray, region: np.ndarray, params: SketchParams) -> np.ndarray:
    """The stronger Canny edges inside ``region`` (bool, 1 px), short fragments removed.

    Thresholds adapt to the photo: the high one is a quantile of the gradient
    magnitude inside the region, so a low-contrast photo still gets its features.
    """
    g = gray.astype(np.float32)
    if params.detail_sigma > 0:
        g = cv2.GaussianBlur(g, (0, 0), params.detail_sigma)
    gx = cv2.Sobel(g, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(g, cv2.CV_32F, 0, 1, ksize=3)
    mag = np.hypot(gx, gy)
    if not region.any():
        return np.zeros_like(region)
    high = max(float(np.quantile(mag[region], params.detail_quantile)), 1.0)
    edges = cv2.Canny(
        gx.astype(np.int16),
        gy.astype(np.int16),
        high * params.detail_low_ratio,
        high,
        L2gradient=True,
    )
    edges = (edges > 0) & region
    return remove_small_components(edges, params.min_detail_px)


# -- drawing -----------------------------------------------------------------------
# links from a skeleton pixel to the neighbours after it (each link drawn once)
_FORWARD: tuple[tuple[int, int], ...] = ((0, 1), (1, -1), (1, 0), (1, 1))


def _segment_distance(oy: float, ox: float, dy: float, dx: float) -> float:
    """Distance from point (oy, ox) to the segment from (0, 0) to (dy, dx)."""
    t = 0.0 if dy == dx == 0 else max(0.0, min(1.0, (oy * dy + ox * dx) / (dy * dy + dx * dx)))
    return float(np.hypot(oy - t * dy, ox - t * dx))


def draw_lines(skeleton: np.ndarray, width: float) -> np.ndarray:
    """Draw a 1-px skeleton as anti-aliased lines ``width`` px wide: uint8, white paper.

    The skeleton is read as segments joining 8-neighbouring pixel centres; a pixel's
    ink is its approximate coverage by the pen, ``clip(width/2 + 1/2 - distance)``,
    so straight and diagonal lines carry the same ink per length (~``width``), as
    the stroke rasterizer draws them.  Vectorised as a max over shifted link maps.
    """
    skel = np.asarray(skeleton, bool)
    h, w = skel.shape
    if not skel.any():
        return np.full((h, w), 255, np.uint8)
    reach = width / 2.0 + 0.5
    r = int(np.ceil(reach)) + 1
    pad = np.pad(skel, r + 1)
    links = [((0, 0), skel)]
    for dy, dx in _FORWARD:
        nb = pad[r + 1 + dy : r + 1 + dy + h, r + 1 + dx : r + 1 + dx + w]
        links.append(((dy, dx), skel & nb))
    ink = np.zeros((h + 2 * r, w + 2 * r), np.float32)
    for (dy, dx), present in links:
        if not present.any():
            continue
        for oy in range(-r, r + 1):
            for ox in range(-r, r + 1):
                v = reach - _segment_distance(oy, ox, dy, dx)
                if v <= 0:
                    continue
                view = ink[r + oy : r + oy + h, r + ox : r + ox + w]
                np.maximum(view, present * np.float32(min(1.0, v)), out=view)
    return (255.0 - 255.0 * ink[r : r + h, r : r + w] + 0.5).astype(np.uint8)


def line_width_for(canvas: int, width_512: float = SKETCH_LINE_WIDTH_512) -> float:
    """Line width in pixels on a canvas of side ``canvas``, never under one pixel."""
    return max(1.0, width_512 * canvas / 512.0)


def compose_sketch(
    prob: np.ndarray,
    rgb: np.ndarray,
    mask: np.ndarray | None = None,
    params: SketchParams | None = None,
    layout: FaceLayout | None = None,
) -> np.ndarray:
    """Clean line drawing (uint8 (H, W), white paper, black lines) of an aligned face.

    ``prob`` is HED's edge probability (H, W) in [0, 1] for ``rgb`` (H, W, 3).
    ``mask`` (255/nonzero = real photo pixel) removes everything outside the photo
    and the false edge along its border.
    """
    h, w = prob.shape
    if rgb.shape[:2] != (h, w):
        raise ValueError(f"edge map {prob.shape} and photo {rgb.shape[:2]} differ in size")
    if h != w:
        raise ValueError(f"aligned faces are square; got {w}x{h}")
    p = (params or SketchParams()).scaled(h)
    valid = np.ones((h, w), bool) if mask is None else np.asarray(mask) > 0
    if valid.shape != (h, w):
        raise ValueError(f"mask {valid.shape} does not match the photo {(h, w)}")
    # inner area: away from the mask border and the frame, where edges are artefacts
    margin = max(1, round(p.mask_margin))
    inner = np.pad(valid, 1, constant_values=False)
    inner = cv2.erode(inner.astype(np.uint8), np.ones((2 * margin + 1,) * 2, np.uint8))[1:-1, 1:-1]
    inner = inner > 0

    contours = hed_contours(prob, p) & inner
    gray = cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2GRAY)
    details = canny_details(gray, face_detail_region(h, layout) & inner, p)
    near = cv2.distanceTransform((~contours).astype(np.uint8), cv2.DIST_L2, 3) <= p.detail_clearance
    details = remove_small_components(details & ~near, p.min_detail_px)

    skeleton = remove_small_components(contours | details, p.min_detail_px)
    out = draw_lines(skeleton, line_width_for(h, p.line_width_512))
    out[~valid] = 255
    return out
