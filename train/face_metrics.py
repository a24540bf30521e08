"""The measures of issue 16: does a render look like the sketched person, and like a photo?

On artist sketch / photo pairs (CUHK, both aligned by the photo's dlib landmarks):

* **descriptor distance** — Euclidean distance of dlib's 128-d face descriptors
  (``dlib_face_recognition_resnet_model_v1.dat`` of face_recognition_models) between
  the render and the sketched person's photo (same person < 0.6), and, as the bar, the
  same distance between two different people's photos of the set;
* **landmark error** — mean distance of dlib's 68 landmarks of render and photo over
  the photo's inter-ocular distance (eye centres);
* **edge F1** — :func:`canny_edges` on both images (grey, Gaussian blur 5x5 sigma 1.2,
  Canny with thresholds 0.66 and 1.33 x the blurred image's median), F1 with a 3-pixel
  tolerance (7x7 elliptical dilation), render vs the artist's sketch (a real photo
  scores about 0.34);
* **KID x1000** (:mod:`train.kid`) of the renders against validation photos, and of
  the set's real photos (another source) against the same validation photos;
* **seam excess** (:func:`seam_excess`) — how much a render with a dropped photo steps
  at the component windows' borders where the same drawing's default render does not;
* **box step** (:func:`box_step`) — how much a part's window differs in mean colour
  from its surroundings more than in the same drawing's default render.

dlib is imported lazily (only :class:`FaceMeter` needs it).
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np

from facesketch.engine.hair import hair_weight

#: The issue's edge operator.
BLUR_SIZE, BLUR_SIGMA = 5, 1.2
CANNY_LOW, CANNY_HIGH = 0.66, 1.33
#: Match tolerance of the edge F1: 3 px, a 7x7 ellipse.
EDGE_TOLERANCE = 3


def canny_edges(image: np.ndarray) -> np.ndarray:
    """Boolean edge map of a uint8 RGB or grey image with median-based Canny thresholds."""
    if image.dtype != np.uint8:
        raise ValueError(f"canny_edges expects uint8, got {image.dtype}")
    grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY) if image.ndim == 3 else image
    blurred = cv2.GaussianBlur(grey, (BLUR_SIZE, BLUR_SIZE), BLUR_SIGMA)
    med = float(np.median(blurred))
    return cv2.Canny(blurred, CANNY_LOW * med, CANNY_HIGH * med) > 0


def edge_f1_maps(a: np.ndarray, b: np.ndarray) -> float:
    """F1 of two boolean edge maps, an edge pixel matching within EDGE_TOLERANCE px.

    Both empty: 1 (they agree); one empty: 0."""
    if not a.any() and not b.any():
        return 1.0
    if not a.any() or not b.any():
        return 0.0
    k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * EDGE_TOLERANCE + 1,) * 2)
    near_a = cv2.dilate(a.astype(np.uint8), k) > 0
    near_b = cv2.dilate(b.astype(np.uint8), k) > 0
    precision = (a & near_b).sum() / a.sum()
    recall = (b & near_a).sum() / b.sum()
    return float(2 * precision * recall / max(precision + recall, 1e-12))


def canny_edge_f1(image: np.ndarray, reference: np.ndarray) -> float:
    """The issue's edge F1 of two uint8 images (e.g. a render and the artist's sketch)."""
    return edge_f1_maps(canny_edges(image), canny_edges(reference))


def landmark_error(points: np.ndarray, reference: np.ndarray) -> float:
    """Mean 68-landmark distance over the reference's inter-ocular distance (eye centres)."""
    iod = np.linalg.norm(reference[36:42].mean(0) - reference[42:48].mean(0))
    return float(np.linalg.norm(points - reference, axis=1).mean() / max(iod, 1e-6))


class FaceMeter:
    """dlib landmarks + 128-d face descriptors (models of face_recognition_models)."""

    def __init__(self) -> None:
        import dlib

        from facesketch.face.detect import landmark_model_path

        models = landmark_model_path().parent
        self.detector = dlib.get_frontal_face_detector()
        self.predictor = dlib.shape_predictor(str(models / "shape_predictor_68_face_landmarks.dat"))
        self.encoder = dlib.face_recognition_model_v1(
            str(models / "dlib_face_recognition_resnet_model_v1.dat")
        )

    def __call__(self, rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
        """(68 landmarks (68, 2), descriptor (128,)) of the most confident face, or None."""
        img = np.ascontiguousarray(rgb)
        rects, scores, _ = self.detector.run(img, 0, 0.0)
        if not rects:  # small faces: once more, up-sampled
            rects, scores, _ = self.detector.run(img, 1, 0.0)
        if not rects:
            return None
        rect = rects[int(np.argmax(scores))]
        shape = self.predictor(img, rect)
        pts = np.array([(p.x, p.y) for p in shape.parts()], np.float64)
        return pts, np.array(self.encoder.compute_face_descriptor(img, shape))


def _mesh(image: np.ndarray) -> float:
    """The up-sampling grid's component of a uint8 RGB image (RMS grey levels; real
    photos have almost none): :func:`facesketch.models.filters.mesh_level`."""
    import torch

    from facesketch.models.filters import mesh_level

    x = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)[None].float()
    return mesh_level(x / 127.5 - 1.0)


#: Rows (at 256) of the top edge whose colour :func:`top_tint` measures.
TINT_ROWS = 6


def top_tint(image: np.ndarray, mask: np.ndarray | None = None, rows: int = TINT_ROWS) -> float:
    """Mean Lab b* (blue < 0 < yellow) of the top ``rows`` (at 256) of a uint8 RGB image,
    over ``mask`` pixels (None = all); NaN when none count.  Why: a fusion with nothing
    holding its top rows can tint them (session 19's resize fusion: a blue strip over the
    hair), which the band and detail measures, both of fine detail, do not see."""
    rows = max(1, round(rows * image.shape[0] / 256))
    b = cv2.cvtColor(image, cv2.COLOR_RGB2LAB)[:rows, :, 2].astype(np.float32) - 128.0
    m = np.ones(b.shape, bool) if mask is None else mask[:rows] > 0
    return float(b[m].mean()) if m.any() else float("nan")


def hair_detail(image: np.ndarray, weight: np.ndarray) -> float | None:
    """Mean fine detail (|grey - its 1.5-px Gaussian|, grey levels) over ``weight`` (a
    hair weight, :func:`facesketch.engine.hair.hair_weight`), or None without hair."""
    if float(weight.sum()) < 200:
        return None
    grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY).astype(np.float32)
    high = np.abs(grey - cv2.GaussianBlur(grey, (0, 0), 1.5 * image.shape[0] / 512))
    return float((high * weight).sum() / weight.sum())


def face_measures(
    renders: list[np.ndarray],
    photos: list[np.ndarray],
    sketches: list[np.ndarray],
    meter: FaceMeter | None = None,
) -> dict[str, float | int | None]:
    """Descriptor distance, landmark error and edge F1 of renders vs their photos / sketches
    (all uint8, same size), with the bars: different-person photo distance and the real
    photo's edge F1; and the renders' mesh beside the photos'.  Renders in which dlib
    finds no face are counted, not scored."""
    meter = meter or FaceMeter()
    got = [meter(p) for p in photos]
    desc, lm, f1, f1_photo, missed = [], [], [], [], 0
    mesh, mesh_photo, hair, hair_photo, tint, tint_photo = [], [], [], [], [], []
    for render, photo_info, sketch, photo in zip(renders, got, sketches, photos, strict=True):
        f1.append(canny_edge_f1(render, sketch))
        f1_photo.append(canny_edge_f1(photo, sketch))
        mesh.append(_mesh(render))
        mesh_photo.append(_mesh(photo))
        tint.append(top_tint(render))
        tint_photo.append(top_tint(photo))
        if photo_info is None:
            continue
        # the same region of both: where the photo shows hair
        where = hair_weight(photo, photo_info[0])
        h_render, h_photo = hair_detail(render, where), hair_detail(photo, where)
        if h_render is not None and h_photo is not None:
            hair.append(h_render)
            hair_photo.append(h_photo)
        r = meter(render)
        if r is None:
            missed += 1
            continue
        desc.append(float(np.linalg.norm(r[1] - photo_info[1])))
        lm.append(landmark_error(r[0], photo_info[0]))
    people = [g[1] for g in got if g is not None]
    other = [
        float(np.linalg.norm(people[i] - people[(i + 1) % len(people)]))
        for i in range(len(people))
        if len(people) > 1
    ]

    def mean(v: list[float]) -> float | None:
        return round(float(np.mean(v)), 4) if v else None

    return {
        "descriptor_distance": mean(desc),
        "descriptor_distance_other_person": mean(other),
        "landmark_error": mean(lm),
        "edge_f1": mean(f1),
        "edge_f1_real_photo": mean(f1_photo),
        "mesh": mean(mesh),
        "mesh_real_photo": mean(mesh_photo),
        "top_tint": mean(tint),
        "top_tint_real_photo": mean(tint_photo),
        "hair_detail": mean(hair),
        "hair_detail_real_photo": mean(hair_photo),
        "hair_pairs": len(hair),
        "no_face_found": missed,
        "photos_with_face": len(people),
        "pairs": len(renders),
    }


#: Profiles across each window side reach this far outside / inside (px at 512), and
#: are scored over the band where the paste blends (outside 8 .. inside 20).
SEAM_REACH, SEAM_BAND = (-18, 33), (-8, 20)
#: Scale (px at 512) below which a profile's change counts as a step.
SEAM_SIGMA = 4.0


def _gauss1d(x: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian smoothing along axis 0 (reflected ends)."""
    r = int(4 * sigma + 0.5)
    k = np.exp(-0.5 * (np.arange(-r, r + 1) / sigma) ** 2)
    k /= k.sum()
    pad = np.pad(x, ((r, r),) + ((0, 0),) * (x.ndim - 1), mode="reflect")
    return np.stack([np.convolve(pad[:, j], k, mode="valid") for j in range(x.shape[1])], axis=1)


def _side_profiles(image: np.ndarray, layout: Any) -> list[np.ndarray]:
    """Lab profiles (T, 3) across every local window side, averaged along its middle 60 %,
    t counted inwards from the border (the nose's cut bottom has none)."""
    from facesketch.layout import LOCAL_COMPONENTS, NOSE

    lab = cv2.cvtColor(image, cv2.COLOR_RGB2LAB).astype(np.float32)
    lab[..., 0] *= 100.0 / 255.0
    lab[..., 1:] -= 128.0
    scale = image.shape[0] / 512
    t = np.round(np.arange(*SEAM_REACH) * scale).astype(int)
    out = []
    for name in LOCAL_COMPONENTS:
        w = layout.window(name)
        x0, y0, n = w.x, w.y, w.size
        a, b = n // 5, n - n // 5
        along_y, along_x = slice(y0 + a, y0 + b), slice(x0 + a, x0 + b)
        clip = lambda v: np.clip(v, 0, image.shape[0] - 1)  # noqa: E731
        out.append(lab[along_y, clip(x0 + t)].mean(0))
        out.append(lab[along_y, clip(x0 + n - 1 - t)].mean(0))
        out.append(lab[clip(y0 + t), along_x].mean(1))
        if name != NOSE:
            out.append(lab[clip(y0 + n - 1 - t), along_x].mean(1))
    return out


def seam_excess(image: np.ndarray, base: np.ndarray, layout: Any) -> float:
    """How much more ``image`` steps at the local windows' borders than ``base`` (uint8
    RGB, same size; ``layout`` at that size), in Lab units.

    Per window side: the Lab profile across the border, averaged along the side, minus
    the base's; its part finer than :data:`SEAM_SIGMA` over the blend band, RMS; the mean
    over sides.  Why: a dropped photo's codes can leave the windows as rectangles; the
    same drawing's default render has the same features in the same places, so what
    differs finely and straight along a border is the seam, while a photo's colour
    change is smooth.  (``train.eval.seam_ratio`` looks at a one-pixel step at the border
    and does not see a step spread over the paste's feather.)"""
    if image.shape != base.shape:
        raise ValueError(f"seam_excess needs images of one size, got {image.shape} / {base.shape}")
    t = np.arange(*SEAM_REACH)
    band = (t >= SEAM_BAND[0]) & (t <= SEAM_BAND[1])
    sigma = SEAM_SIGMA * image.shape[0] / 512
    vals = []
    for a, b in zip(_side_profiles(image, layout), _side_profiles(base, layout), strict=True):
        d = a - b
        fine = d - _gauss1d(d, sigma)
        vals.append(float(np.sqrt((fine[band] ** 2).sum(-1).mean())))
    return float(np.mean(vals))


#: Bands (px at 512 from a window side, inwards and outwards) whose mean colours
#: :func:`box_step` compares: beyond the texture stage's window feather.
BOX_BAND = (20, 36)


def _lab(image: np.ndarray) -> np.ndarray:
    lab = cv2.cvtColor(image, cv2.COLOR_RGB2LAB).astype(np.float32)
    lab[..., 0] *= 100.0 / 255.0
    lab[..., 1:] -= 128.0
    return lab


def box_step(image: np.ndarray, base: np.ndarray, window: Any) -> float:
    """Mean over the sides of ``window`` (a layout window at the images' size) of the
    Lab distance between ``image``'s and ``base``'s (inside band - outside band) mean
    colour differences.  Why: a part given another photo's colour as a whole shows as a
    box of that colour; its features differ from the default render's, its surroundings
    not, so only a step across the sides counts."""
    if image.shape != base.shape:
        raise ValueError(f"box_step needs images of one size, got {image.shape} / {base.shape}")
    a, b = _lab(image), _lab(base)
    size = image.shape[0]
    lo, hi = (round(v * size / 512) for v in BOX_BAND)
    x0, y0, n = window.x, window.y, window.size
    cut = n // 5
    along_y, along_x = slice(y0 + cut, y0 + n - cut), slice(x0 + cut, x0 + n - cut)
    sides = (
        ((along_y, slice(x0 + lo, x0 + hi)), (along_y, slice(max(0, x0 - hi), x0 - lo))),
        ((along_y, slice(x0 + n - hi, x0 + n - lo)), (along_y, slice(x0 + n + lo, x0 + n + hi))),
        ((slice(y0 + lo, y0 + hi), along_x), (slice(max(0, y0 - hi), y0 - lo), along_x)),
        ((slice(y0 + n - hi, y0 + n - lo), along_x), (slice(y0 + n + lo, y0 + n + hi), along_x)),
    )
    out = []
    for inside, outside in sides:
        if a[outside].size == 0 or a[inside].size == 0:
            continue
        da = a[inside].reshape(-1, 3).mean(0) - a[outside].reshape(-1, 3).mean(0)
        db = b[inside].reshape(-1, 3).mean(0) - b[outside].reshape(-1, 3).mean(0)
        out.append(float(np.linalg.norm(da - db)))
    return float(np.mean(out)) if out else float("nan")


def kid_measures(
    renders: list[np.ndarray], photos: list[np.ndarray], val_photos: list[np.ndarray]
) -> dict[str, float]:
    """KID x1000 of the renders and of the set's real photos against validation photos."""
    from train.kid import kid, pooled_features
    from train.projected import EffNetFeatures

    net = EffNetFeatures()
    f_val = pooled_features(val_photos, net)
    k_render, s_render = kid(pooled_features(renders, net), f_val)
    k_photo, s_photo = kid(pooled_features(photos, net), f_val)
    return {
        "kid_x1000": round(k_render, 1),
        "kid_x1000_std": round(s_render, 1),
        "kid_x1000_real_other_source": round(k_photo, 1),
        "kid_x1000_real_other_source_std": round(s_photo, 1),
        "kid_val_photos": len(val_photos),
    }
