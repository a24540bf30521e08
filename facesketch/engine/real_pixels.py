"""Real pixels on the rendered face: skin, eye and hair texture from a real photo.

The networks draw the face the sketch asks for, but soft (DESIGN.md, "Real pixels").
This stage, run after the fusion at the output size, gives it real texture:

1. **Who is it?**  dlib's face descriptor of the render (:func:`render_descriptor`),
   mapped to where it points among photos' descriptors
   (:meth:`Gallery.as_photo_descriptor`: a render's descriptor sits apart from photos',
   and the photo nearest it as it is was one of a few "hub" faces for most drawings),
   picks the gallery face that looks most like the drawn person
   (:meth:`Gallery.nearest_identity`, the best-shaped of the :data:`PICK_K` nearest).
   On the 88 CUHK artist sketches (issue 16) the picked photo is at descriptor distance
   0.589 from the sketched person's photo without the map and 0.541 with it (the best
   gallery face: 0.466; the face nearest by landmark shape: 0.826, since the shape of 68
   points does not tell ethnicity, age or sex).  Only faces whose mouth is about as open
   as the drawn one may be picked (:data:`MOUTH_TOLERANCE`; see :meth:`RealPixels.allowed`),
   of the drawn gender when the drawing tells it (:meth:`Gallery.drawn_gender`,
   :data:`GENDER_MARGIN`: the soft render of a man reads as a woman's, and took a
   woman's texture, with made-up eyes and lips, for 35 of the 58 CUHK men), and in
   colour (:data:`MIN_CHROMA`).
2. **Warp.**  That face (or the photo the user dropped on a slot) is warped by a
   landmark TPS from its dlib landmarks onto the sketch's (the landmark network's
   prediction): its eyes, nose and mouth land on the drawn ones.
3. **Transfer.**  The render keeps its edges and mid frequencies (the drawn geometry:
   eyes, brows, nose, mouth and outline stay where and as the network drew them) and
   takes from the reference its colour statistics (Lab mean and spread of the face,
   applied to the whole render), its broad skin shading (below a Gaussian of
   :data:`LOW_SIGMA_512` px, measured only where both faces show skin, so a fringe,
   glasses or the drawn lines do not come along) and its fine detail (above a Gaussian
   of ``sigma`` px at 512; of skin only away from the eyes, brows, nose and mouth, so no
   other person's glasses or fringe are drawn on; in the mouth only where the two look
   alike at that scale, :data:`DETAIL_AGREEMENT`, so a photo's teeth are not drawn into
   lips drawn closed), inside the face outlined by the
   landmarks (forehead included) where the photo is valid, feathered: a gallery photo's
   background never shows.

A dropped photo gives the texture of its own part (its window, feathered, less the
windows the networks paste over it: the nose over the mouth's top, the eyes over the
nose's), or of the whole face from the whole-face slot (else the rest-of-face slot);
parts without one take the gallery face's.

Identification costs a dlib ResNet pass (~0.1-0.2 s on one CPU core), so the pick is
sticky: it is renewed when the whole drawing changed (the background part or several
parts were re-rendered) or after :data:`MAX_STALE` renders, not on every one-part edit.
Everything here runs on the engine's worker thread.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np

from facesketch.layout import BACKGROUND, COMPONENTS, NOSE, PASTE_ORDER, FaceLayout

#: High-frequency cut-off (Gaussian sigma, px at a 512 render; scaled with the size).
#: Measured on the CUHK pairs: sigma 2 adds little texture (KID 307), 4 gives edge F1
#: 0.11 with identity and landmarks unchanged.  The reference's low frequencies are
#: taken too, over skin only: :data:`LOW_SIGMA_512`.
HF_SIGMA_512 = 4.0
#: Shading cut-off (Gaussian sigma, px at 512): below it the face takes the reference's
#: skin shading and tone, measured only where both faces show skin (the reference's
#: hair, a fringe or glasses, the drawn lines do not come along).  0 turns it off.
#: Chosen on the 88 CUHK pairs at 512 (descriptor distance / landmark error / edge F1;
#: the gallery face is the one nearest the render's descriptor, see the module doc):
#: off 0.610 / 0.0431 / 0.226; sigma 8 0.583 / 0.0446 / 0.240; 12 0.588 / 0.0440 /
#: 0.236; 16 0.595 / 0.0441 / 0.234.  Without the skin weights a fringe in the gallery
#: photo darkened the forehead in a band.
LOW_SIGMA_512 = 12.0
#: Lab distance from the reference's median face colour at which a pixel counts as half
#: skin (hair, brows, glasses and shadows are farther).
SKIN_TOLERANCE = 24.0
#: Fine detail of what is not skin in the reference (glasses' rims, a fringe's strands,
#: and the high-pass halo beside them) is copied only around the eyes, brows, nose and
#: mouth, where the face needs it (lashes, irises, nostrils, lips); elsewhere it drew
#: another person's glasses or hair onto the drawn face.  CUHK pairs at 512, shading on
#: (descriptor / landmarks / edge F1): all detail 0.588 / 0.0439 / 0.236, skin only
#: outside the features 0.586 / 0.0435 / 0.246.
SKIN_DETAIL_ONLY = True
#: Outside the eyes, brows, nose and mouth, detail this strong (grey levels: the local
#: RMS of the high-pass over a Gaussian of 3/8 sigma, its largest within sigma) is
#: mostly left behind (weight exp(-(rms / SPOT_LEVEL)^4)): a mole, a scar or a bindi
#: belongs to the person in the photo, not to skin texture; a gallery face's forehead
#: mark was copied between the drawn brows.  Skin's own grain is weaker: at 512 over
#: the gallery, 90 % of it under 5.5 and 99 % under 16.8 (weight 0.7); that bindi 27.7
#: (weight 0.08).  0: off.
SPOT_LEVEL = 22.0
#: In the mouth, detail is copied only where the reference's local colour (low-passed at
#: the detail scale) agrees with the render's after the colour match: at this Lab
#: distance half of it.  A mouth open in the photo and closed in the drawing (or the
#: reverse) is the one mismatch a landmark warp cannot undo: the photo's teeth drew
#: white "fangs" into lips drawn closed.  Only the mouth: over the whole face the same
#: gate also took the gallery eyes' lashes and iris detail wherever the warp was a
#: little off (CUHK pairs, gate on everywhere: descriptor 0.5943 -> 0.5960, eyes
#: visibly softer; in the mouth only: 0.5942, edge F1 0.240 -> 0.247).  0: off.
DETAIL_AGREEMENT = 60.0
#: Margin (px at 512) around the mouth's landmarks where :data:`DETAIL_AGREEMENT` applies.
MOUTH_MARGIN_512 = 10.0
#: Margin (px at 512) around the eyes, brows, nose and mouth where all detail is copied.
FEATURE_MARGIN_512 = 8.0
#: A photo read as wearing glasses (:func:`wears_glasses`) lends all its detail only
#: within this margin (px at 512) of the eyes themselves, and around the lower nose and
#: the mouth (:data:`FEATURE_MARGIN_512`); its brows and nose bridge take skin detail
#: only, as the cheeks do.  With the brows and bridge kept, sample-c's frame was drawn
#: along the drawn brows and across the nose; so it is gone.  Not for photos without
#: glasses: the same margins cost the CUHK renders a little (descriptor 0.5628 ->
#: 0.5637, edge F1 0.2125 -> 0.209 with brows at 3 px).
GLASSES_EYE_MARGIN_512 = 3.0
#: Landmark groups kept fully for a photo with glasses: the lower nose (30-35), the mouth.
GLASSES_GROUPS = ((30, 36), (48, 60))
#: The eyes (dlib 68 order).
EYE_GROUPS = ((36, 42), (42, 48))
#: The shading correction fades out over a Gaussian of this x :data:`LOW_SIGMA_512` of
#: the pixels that are skin in both faces, not over the reference's validity feather: a
#: UTKFace crop stops mid-forehead, and cut off there (6-px feather) a correction of
#: some 20 grey levels drew a straight horizontal edge across the forehead (the demo).
SHADING_FADE = 2.0
#: The shading is worked out at 1/this size (a few ms instead of tens at 512).
SHADING_SCALE = 4
#: Feather of the reference's validity edge (px at 512).
VALID_FEATHER_512 = 6.0
#: Feather of a part window whose texture comes from its own dropped photo (px at 512).
WINDOW_FEATHER_512 = 8.0
#: A part's own photo meets the face's colour at its window's border
#: (:func:`match_at_border`); off, a photo dropped on a part drew its window as a box of
#: that photo's skin.  The step in mean Lab colour across the window's sides against
#: the same drawing's default render (``train.face_metrics.box_step``; 24 CUHK
#: drawings, a gallery face dropped on the part, session 23's script): mouth 24.9 ->
#: 8.3 with one constant shift, 6.4 spread from the border with this Gaussian (sigma
#: 20: 5.9 at the border, but the window's middle kept the photo's tone; 80: 7.3);
#: left eye 24.2 -> 6.1, nose 26.7 -> 5.1; with dark pixels taking the face's colour
#: (no blue nostrils) and the windows pasted over a part left out, 4.4 / 6.0 / 2.1.
#: ``train.eval --issue``: 25.1 -> 5.1.
PART_BORDER_MATCH = True
PART_MATCH_SIGMA_512 = 40.0
#: Forehead above the brows, x the brow-to-chin height (the face region's top).
FOREHEAD_LIFT = 0.35
#: Feather of the colour statistics' region (px at 512): wide, so no seam shows.
COLOUR_FEATHER_512 = 40.0
#: A warp is reused while the sketch's landmarks moved less than this (mean px at 512).
KEEP_WARP_PX = 1.0
#: Descriptor neighbours among which the pick takes the one shaped most like the
#: sketch (CUHK pairs, 512: top-1 descriptor 0.611 / landmarks 0.0435 / edge F1 0.186;
#: the best-shaped of the top 5: 0.608 / 0.0427 / 0.199).
PICK_K = 5
#: While a drawing is edited its texture face is kept as long as it is one of this many
#: nearest allowed faces (:meth:`RealPixels.pick`): the same share of the gallery as
#: :data:`PICK_K` was of 300 faces.  With 1,000 faces and 5, the texture's face changed
#: on 25 of 150 strokes (10 CUHK drawings grown stroke by stroke); with 15, on 10.
KEEP_K = 15
#: Share of the gallery, the blurriest by the variance of the Laplacian over the face,
#: never picked for texture: a soft photo would smooth the face instead (UTKFace has
#: some; the blurriest was picked for the demo sketch before this gate).
BLURRY_SHARE = 0.25
#: Least colour a face's skin must have (the Lab chroma of its mean colour inside the
#: face) to lend texture: the render takes the donor's colour statistics, so a
#: black-and-white photo made a grey face (the first CUHK drawing took one once the
#: gallery grew).  35 of the 1,000 gallery faces are black and white (chroma 0) or
#: sepia (1-3): 12 of them were among the first 300; skin in colour photos measures 5
#: and up.
MIN_CHROMA = 4.0
#: Mouth openness (the inner lips' gap / the mouth's width, :func:`mouth_openness`) by
#: which a gallery face's mouth may differ from the drawn one's and still lend its
#: texture.  A landmark warp cannot close an open mouth: its teeth, copied as detail
#: onto lips drawn closed, drew a grin of teeth (120 of the 300 gallery faces smile
#: with their mouths open, the 88 CUHK drawings all have theirs closed).  The sketch's
#: openness comes from the landmark network, which reads it with correlation 0.74 to
#: the photos' on the gallery's own sketches.  A dropped photo (or a gallery face taken
#: when too few pass) whose mouth differs by more lends neither detail nor shading
#: within the mouth (:meth:`RealPixels._prepared`): a darker smiling face dropped on the
#: mouth drew its teeth across lips drawn closed.
MOUTH_TOLERANCE = 0.06
#: How sure the drawn-gender reader (:meth:`Gallery.drawn_gender`) must be, as distance
#: of its probability from 0.5, before only faces of that gender may lend texture.
#: The render's own descriptor is no guide: the networks draw men softly, and 37 of the
#: 88 CUHK renders took the texture of a face of the other gender (most of them men
#: given a woman's made-up eyes and lips); on the 1,000-face gallery 32 without this
#: rule, 22 with it.  The reader is right for 91-95 % of the drawings it is sure of
#: (CUHK, validation sketches), 87 % of rough ones (the gallery card).
GENDER_MARGIN = 0.3
#: Renders a pick may serve before it is renewed even when only parts changed.
MAX_STALE = 4


@dataclass
class PixelSource:
    """A real face aligned to the canonical layout: RGB, validity and dlib landmarks at
    its own canvas (the gallery's 256, or the engine's canvas for dropped photos)."""

    key: str
    image: np.ndarray
    valid: np.ndarray
    landmarks: np.ndarray
    #: a slot's second photo and how much of it (the slot's ``mix``): the texture is
    #: blended as the networks' codes are, so the mix slider moves it too
    second: PixelSource | None = None
    mix: float = 0.0


@dataclass
class RealPixelsState:
    """The sticky identity pick of one pipeline."""

    index: int | None = None
    renders_since: int = 0
    timings: dict[str, float] = field(default_factory=dict)


def warp_source(
    src: PixelSource, landmarks: np.ndarray, size: int
) -> tuple[np.ndarray, np.ndarray]:
    """``src`` TPS-warped so its landmarks land on ``landmarks`` (68, 2; pixels of a
    ``size`` canvas): (uint8 RGB, float32 validity in 0..1), both ``size`` square."""
    import torch

    from facesketch.imaging import image_to_tensor, tensor_to_image
    from facesketch.models.warp import tps_warp

    img, valid = src.image, src.valid
    f = size / img.shape[0]
    if img.shape[0] != size:
        img = cv2.resize(img, (size, size), interpolation=cv2.INTER_CUBIC)
        valid = cv2.resize(valid, (size, size), interpolation=cv2.INTER_LINEAR)
    s = torch.from_numpy((src.landmarks.astype(np.float32) + 0.5) * f)[None]
    d = torch.from_numpy(np.asarray(landmarks, np.float32) + 0.5)[None]
    v = torch.from_numpy(valid.astype(np.float32) / (255.0 if valid.dtype == np.uint8 else 1.0))
    with torch.inference_mode():
        w, m = tps_warp(image_to_tensor(img), s, d, reg=1.0, src_valid=v[None, None])
    return tensor_to_image(w[0]), m[0, 0].numpy().astype(np.float32)


def face_region(landmarks: np.ndarray, size: int, lift: float = FOREHEAD_LIFT) -> np.ndarray:
    """float32 (size, size) 0/1: the face the landmarks outline, with the forehead (the
    brows lifted by ``lift`` x the brow-to-chin height).  Texture and colour come from
    here only: a gallery photo's background (foliage, a wall) must not."""
    pts = np.asarray(landmarks, np.float64)
    jaw, brows = pts[0:17], pts[17:27]
    height = jaw[:, 1].max() - brows[:, 1].min()
    lifted = brows - np.array([0.0, lift * height])
    hull = cv2.convexHull(np.concatenate([jaw, brows, lifted]).astype(np.float32))
    m = np.zeros((size, size), np.uint8)
    cv2.fillConvexPoly(m, np.round(hull).astype(np.int32), 1)
    return m.astype(np.float32)


#: Landmark groups whose surroundings take all the reference's detail (dlib 68 order):
#: brows, nose, eyes, mouth.
FEATURE_GROUPS = ((17, 22), (22, 27), (27, 36), (36, 42), (42, 48), (48, 60))
#: The mouth's outer lip contour (dlib 68 order).
MOUTH_GROUP = ((48, 60),)


def feature_region(
    landmarks: np.ndarray,
    size: int,
    margin: float,
    groups: tuple[tuple[int, int], ...] = FEATURE_GROUPS,
) -> np.ndarray:
    """float32 (size, size) in [0, 1]: the brows, nose, eyes and mouth the landmarks
    outline (or the given ``groups``), grown by ``margin`` px and feathered (where
    non-skin detail belongs)."""
    pts = np.asarray(landmarks, np.float32)
    m = np.zeros((size, size), np.uint8)
    for a, b in groups:
        cv2.fillConvexPoly(m, np.round(cv2.convexHull(pts[a:b])).astype(np.int32), 1)
    r = max(1, round(margin))
    m = cv2.dilate(m, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1)))
    return cv2.GaussianBlur(m.astype(np.float32), (0, 0), max(0.5, margin / 2))


@dataclass
class PreparedReference:
    """What the per-render step needs of a warped reference (computed once per warp):
    where it applies (``inside``; ``alpha`` its feathered weight, ``beta`` the wide one
    of the colour match), its Lab statistics there and its high frequencies."""

    inside: np.ndarray
    alpha: np.ndarray
    beta: np.ndarray
    mean: np.ndarray
    std: np.ndarray
    high: np.ndarray
    #: skin shading (:data:`LOW_SIGMA_512`), at 1/:data:`SHADING_SCALE` size: the
    #: reference (float RGB), where it is skin (weight, feathered like ``alpha``), alpha
    #: and the sigma at that size; None when off
    rgb: np.ndarray | None = None
    skin: np.ndarray | None = None
    alpha_small: np.ndarray | None = None
    low_sigma: float = 0.0
    #: the reference low-passed at the detail scale, Lab, at 1/:data:`SHADING_SCALE`
    #: size (:data:`DETAIL_AGREEMENT`); None when the gate is off
    low_lab: np.ndarray | None = None
    detail_sigma: float = 0.0
    #: where the gate applies (the mouth), at 1/:data:`SHADING_SCALE` size
    gate_region: np.ndarray | None = None


def _wide_blur(mask: np.ndarray, sigma: float) -> np.ndarray:
    """A Gaussian of a large sigma, computed at 1/8 size (a 40-px blur at full size
    costs tens of ms; the result is smooth anyway)."""
    h, w = mask.shape
    small = cv2.resize(mask, (max(1, w // 8), max(1, h // 8)), interpolation=cv2.INTER_AREA)
    small = cv2.GaussianBlur(small, (0, 0), sigma / 8)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)


def skin_weight(lab: np.ndarray, inside: np.ndarray) -> np.ndarray:
    """(H, W) in [0, 1]: how much each pixel of a face (Lab, float) looks like its own
    skin, the median colour ``inside``: 0.5 at :data:`SKIN_TOLERANCE`, hair and shadows
    near 0.  Lightness counts half (shading is what is transferred)."""
    med = np.median(lab[inside], axis=0) if inside.any() else lab.reshape(-1, 3).mean(0)
    d = (lab - med) * np.array([0.5, 1.0, 1.0], np.float32)
    d2 = (d * d).sum(-1) / SKIN_TOLERANCE**2
    return np.exp(-np.log(2.0) * d2).astype(np.float32)


def _shrink(x: np.ndarray) -> np.ndarray:
    """1/:data:`SHADING_SCALE` size: the shading is smooth, so it is worked out small."""
    h, w = x.shape[:2]
    f = SHADING_SCALE
    return cv2.resize(x, (max(1, w // f), max(1, h // f)), interpolation=cv2.INTER_AREA)


def prepare_reference(
    ref: np.ndarray,
    valid: np.ndarray,
    sigma: float,
    feather: float,
    low_sigma: float = 0.0,
    keep: np.ndarray | None = None,
    gate: np.ndarray | None = None,
    block: np.ndarray | None = None,
) -> PreparedReference | None:
    """The reference's part of :func:`transfer` (None when too little of it is valid).
    With ``keep`` (weights, e.g. :func:`feature_region`) the detail is copied fully
    there and elsewhere only where the reference is skin; within ``gate`` (weights, the
    mouth) only where the two look alike (:data:`DETAIL_AGREEMENT`); within ``block``
    (weights) neither detail nor shading."""
    inside = valid > 0.5
    if inside.sum() < 64:
        return None
    m = inside.astype(np.float32)
    # the detail stops 2 sigma inside the photo's edge: the high-pass of the step from
    # real pixels to the aligner's fill would draw a line there (seen across foreheads)
    r = max(1, round(2 * sigma))
    core = cv2.erode(m, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1)))
    alpha = cv2.GaussianBlur(core, (0, 0), feather)[..., None]
    wide = COLOUR_FEATHER_512 * ref.shape[0] / 512
    beta = np.clip(1.5 * _wide_blur(m, wide), 0, 1)[..., None]
    fl = cv2.cvtColor(ref, cv2.COLOR_RGB2LAB).astype(np.float32)
    r = ref.astype(np.float32)
    high = r - cv2.GaussianBlur(r, (0, 0), sigma)
    skin = skin_weight(fl, inside) if keep is not None or low_sigma > 0 else None
    weight = alpha
    if keep is not None and skin is not None:
        # the high-pass of a dark rim spreads about 2 sigma onto the skin beside it
        rad = max(1, round(2 * sigma))
        near = cv2.erode(
            skin, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * rad + 1, 2 * rad + 1))
        )
        weight = alpha * np.maximum(near, keep)[..., None]
        if SPOT_LEVEL > 0:
            grey = high.mean(-1)
            rms = np.sqrt(cv2.GaussianBlur(grey * grey, (0, 0), 0.375 * sigma))
            near_r = max(1, round(sigma))
            strong = cv2.dilate(
                rms, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * near_r + 1,) * 2)
            )
            spot = np.exp(-((strong / SPOT_LEVEL) ** 4))
            weight = weight * np.maximum(spot, keep)[..., None]
    if block is not None:
        weight = weight * (1.0 - np.clip(block, 0.0, 1.0))[..., None]
    prep = PreparedReference(
        inside, alpha, beta, fl[inside].mean(0), fl[inside].std(0) + 1e-3, weight * high
    )
    if DETAIL_AGREEMENT > 0 and gate is not None and gate.max() > 0:
        prep.detail_sigma = sigma / SHADING_SCALE  # all at 1/SHADING_SCALE size
        prep.low_lab = cv2.GaussianBlur(_shrink(fl), (0, 0), max(prep.detail_sigma, 0.5))
        prep.gate_region = _shrink(gate.astype(np.float32))
    if low_sigma > 0 and skin is not None:  # all at 1/SHADING_SCALE size
        prep.rgb, prep.low_sigma = _shrink(r), low_sigma / SHADING_SCALE
        shaded = skin * alpha[..., 0]
        if block is not None:  # the blocked place lends no shading either (a smile's teeth)
            shaded = shaded * (1.0 - np.clip(block, 0.0, 1.0))
        prep.skin = _shrink(shaded)
        prep.alpha_small = _shrink(alpha[..., 0])
    return prep


def _shading(out: np.ndarray, rl: np.ndarray, prep: PreparedReference) -> np.ndarray:
    """``out`` (float RGB) with the reference's skin shading in place of its own: both
    low-passed over the pixels that are skin in both (the render's drawn hair and lines,
    the reference's fringe or glasses left out), swapped where most of the
    neighbourhood is such skin."""
    assert prep.rgb is not None and prep.skin is not None and prep.alpha_small is not None
    small, a = _shrink(out), prep.alpha_small
    w = prep.skin * skin_weight(_shrink(rl), a > 0.5)
    sigma = prep.low_sigma

    def blur(x: np.ndarray) -> np.ndarray:
        return cv2.GaussianBlur(x, (0, 0), sigma)

    den = np.maximum(blur(w), 1e-3)[..., None]
    diff = (blur(prep.rgb * w[..., None]) - blur(small * w[..., None])) / den
    fade = np.clip(1.5 * cv2.GaussianBlur(w, (0, 0), SHADING_FADE * sigma), 0, 1)
    corr = fade[..., None] * diff
    h, wd = out.shape[:2]
    return out + cv2.resize(corr, (wd, h), interpolation=cv2.INTER_LINEAR)


def _agreement(out: np.ndarray, prep: PreparedReference) -> np.ndarray:
    """(H, W) in [0, 1]: 1 outside the gate region; in it, how much the render (float
    RGB, colour-matched) and the reference look alike at the detail scale
    (:data:`DETAIL_AGREEMENT`), i.e. whether the reference's detail belongs to what the
    render shows there."""
    assert prep.low_lab is not None and prep.gate_region is not None
    small = np.clip(_shrink(out), 0, 255).astype(np.uint8)
    lab = cv2.cvtColor(small, cv2.COLOR_RGB2LAB).astype(np.float32)
    lab = cv2.GaussianBlur(lab, (0, 0), max(prep.detail_sigma, 0.5))
    d2 = ((lab - prep.low_lab) ** 2).sum(-1) / DETAIL_AGREEMENT**2
    g = np.exp(-np.log(2.0) * d2).astype(np.float32)
    g = 1.0 - prep.gate_region * (1.0 - g)
    h, w = out.shape[:2]
    return cv2.resize(g, (w, h), interpolation=cv2.INTER_LINEAR)


def apply_reference(render: np.ndarray, prep: PreparedReference | None) -> np.ndarray:
    """The render with the prepared reference's colour statistics (faded out over the
    wide feather, so no seam shows) and its high frequencies (feathered)."""
    if prep is None:
        return render
    rl = cv2.cvtColor(render, cv2.COLOR_RGB2LAB).astype(np.float32)
    mr, sr = rl[prep.inside].mean(0), rl[prep.inside].std(0) + 1e-3
    matched = (rl - mr) * np.clip(prep.std / sr, 0.5, 2.0) + prep.mean
    rgb = cv2.cvtColor(np.clip(matched, 0, 255).astype(np.uint8), cv2.COLOR_LAB2RGB)
    base = render.astype(np.float32)
    out = base + prep.beta * (rgb.astype(np.float32) - base)
    if prep.skin is not None:
        out = _shading(out, rl, prep)
    out += prep.high if prep.low_lab is None else _agreement(out, prep)[..., None] * prep.high
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def transfer(
    render: np.ndarray, ref: np.ndarray, valid: np.ndarray, sigma: float, feather: float
) -> np.ndarray:
    """The render with the reference's colour statistics (Lab mean and spread measured
    where ``valid``, faded out over a wide feather so no seam appears) and its high
    frequencies where ``valid`` (feathered by ``feather``).  All uint8 RGB, same size;
    ``valid`` is the reference's validity times the face region."""
    return apply_reference(render, prepare_reference(ref, valid, sigma, feather))


def window_weights(layout: FaceLayout, size: int, parts: list[str]) -> dict[str, np.ndarray]:
    """Feathered weights (size, size) of the given local parts' windows on a ``size``
    render (the layout is the engine's canvas layout; scaled here), each less the
    windows pasted over it (:data:`PASTE_ORDER`: the nose over the mouth, the eyes over
    the nose; the nose's cut bottom rows stay the mouth's).  Why: a photo dropped on the
    mouth lent its nostrils to the drawn nose, which the networks draw from the nose's
    own branch."""
    lay = layout.scaled(size)
    feather = WINDOW_FEATHER_512 * size / 512
    boxes = {}
    for name in PASTE_ORDER:
        w = lay.window(name)
        m = np.zeros((size, size), np.float32)
        bottom = w.y + w.size - (lay.nose_bottom_cut if name == NOSE else 0)
        m[max(0, w.y) : bottom, max(0, w.x) : w.x + w.size] = 1
        boxes[name] = cv2.GaussianBlur(m, (0, 0), feather)
    out = {}
    for name in parts:
        weight = boxes[name].copy()
        for later in PASTE_ORDER[PASTE_ORDER.index(name) + 1 :]:
            weight *= 1.0 - boxes[later]
        out[name] = weight
    return out


def match_at_border(part: np.ndarray, face: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """``part`` (uint8 RGB: the render given a part's own photo) moved in Lab to
    ``face``'s colour where ``weight`` (the part's feathered window) blends the two: the
    difference there, spread smoothly inwards (normalised convolution, Gaussian
    :data:`PART_MATCH_SIGMA_512`; far from the border it tends to its mean).  Why: a
    photo's colour statistics are its whole face's, so a darker or lighter photo dropped
    on the mouth drew the window as a box of its skin; moved, the part keeps its own
    colours relative to its skin, and its skin meets the face's."""
    ring = (weight > 0.05) & (weight < 0.95)
    if ring.sum() < 16:
        return part
    # worked out on the box where the window weighs at all (a quarter of a 512 render)
    rows, cols = np.nonzero(weight > 1e-3)
    box = (slice(rows.min(), rows.max() + 1), slice(cols.min(), cols.max() + 1))
    out = part.copy()
    sigma = PART_MATCH_SIGMA_512 * part.shape[0] / 512
    out[box] = _match_box(part[box], face[box], ring[box], sigma)
    return out


def _match_box(part: np.ndarray, face: np.ndarray, ring: np.ndarray, sigma: float) -> np.ndarray:
    """:func:`match_at_border` on the window's box (``ring``: its blend band)."""
    pl = cv2.cvtColor(part, cv2.COLOR_RGB2LAB).astype(np.float32)
    fl = cv2.cvtColor(face, cv2.COLOR_RGB2LAB).astype(np.float32)
    diff = (fl - pl) * ring[..., None]
    mean = diff[ring].mean(0)
    num = np.stack([_wide_blur(diff[..., c], sigma) for c in range(3)], -1)
    den = _wide_blur(ring.astype(np.float32), sigma)[..., None]
    shift = (num + 0.01 * mean) / (den + 0.01)
    out = pl + shift
    # what is darker than the skin around, in the part or in the face (nostrils, pupils,
    # the drawn mouth's corners), takes its colour (a*, b*) from the face instead:
    # shifted, a dark nostril turned blue, and so did the mouth's corners colour-matched
    # to a darker photo

    def darkness_share(lab: np.ndarray) -> np.ndarray:
        skin = (_wide_blur(lab[..., 0] * ring, sigma) + 0.01 * lab[ring, 0].mean()) / (
            den[..., 0] + 0.01
        )
        # lips (about 0.8 of the skin's lightness) keep theirs; a nostril (0.3) none
        return np.clip((lab[..., 0] / np.maximum(skin, 1.0) - 0.3) / 0.4, 0.0, 1.0)

    share = np.minimum(darkness_share(pl), darkness_share(fl))[..., None]
    out[..., 1:] = share * out[..., 1:] + (1.0 - share) * fl[..., 1:]
    return cv2.cvtColor(np.clip(np.rint(out), 0, 255).astype(np.uint8), cv2.COLOR_LAB2RGB)


def render_descriptor(render: np.ndarray) -> np.ndarray | None:
    """dlib's 128-d face descriptor of a render (or an aligned photo) at the canonical
    layout (RGB uint8), or None when dlib finds no face even in the layout's face box."""
    from facesketch.face.detect import face_identity

    side = render.shape[0]
    box = (0.22 * side, 0.3 * side, 0.78 * side, 0.86 * side)  # the layout's face
    ident = face_identity(render, box=box)
    return None if ident is None else ident.descriptor


_glasses_reader: dict[str, Any] = {}


def glasses_reader() -> tuple[np.ndarray, float, float] | None:
    """(weights, bias, threshold) of the shipped glasses reader (``glasses.json`` beside
    the gallery, fitted by ``train.glasses``), or None when it is missing or unreadable
    (then no photo is read as wearing glasses, as before the reader)."""
    if "reader" not in _glasses_reader:
        import json

        from facesketch.resources import gallery_dir

        reader = None
        try:
            data = json.loads((gallery_dir() / "glasses.json").read_text())
            w = np.asarray(data["weight"], np.float64)
            if w.shape == (128,) and np.isfinite(w).all():
                reader = (w, float(data["bias"]), float(data["threshold"]))
        except (OSError, ValueError, KeyError, TypeError):
            reader = None
        _glasses_reader["reader"] = reader
    return _glasses_reader["reader"]


def wears_glasses(face: np.ndarray) -> bool:
    """Whether an aligned face (RGB uint8, the canonical layout) wears glasses, by the
    shipped reader on its dlib descriptor; False when unknown."""
    reader = glasses_reader()
    if reader is None:
        return False
    d = render_descriptor(face)
    if d is None:
        return False
    w, b, threshold = reader
    return float(np.asarray(d, np.float64) @ w + b) > threshold


def glasses_keep(landmarks: np.ndarray, size: int) -> np.ndarray:
    """Where a photo with glasses lends all its detail (:data:`GLASSES_EYE_MARGIN_512`)."""
    eyes = feature_region(landmarks, size, GLASSES_EYE_MARGIN_512 * size / 512, EYE_GROUPS)
    rest = feature_region(landmarks, size, FEATURE_MARGIN_512 * size / 512, GLASSES_GROUPS)
    return np.maximum(eyes, rest)


def mouth_openness(landmarks: np.ndarray) -> np.ndarray:
    """How open the mouth(s) of dlib-68 ``landmarks`` ((68, 2) or (N, 68, 2)) are: the
    mean gap between the inner lips (points 61-63 and 67-65) over the mouth's width
    (48-54); about 0.02 closed, above 0.1 with the teeth showing."""
    pts = np.asarray(landmarks, np.float64)
    gap = np.linalg.norm(pts[..., [61, 62, 63], :] - pts[..., [67, 66, 65], :], axis=-1).mean(-1)
    width = np.linalg.norm(pts[..., 48, :] - pts[..., 54, :], axis=-1)
    return gap / np.maximum(width, 1e-6)


def sharp_faces(gallery: Any, share: float = BLURRY_SHARE) -> np.ndarray | None:
    """bool (M,): the gallery faces sharp enough to lend texture (the blurriest
    ``share`` left out), or None (all) for a gallery that cannot be measured."""
    try:
        sharpness = []
        for i in range(len(gallery.descriptors)):
            grey = cv2.cvtColor(gallery.image(i), cv2.COLOR_RGB2GRAY)
            inside = face_region(gallery.landmarks(i), grey.shape[0]) > 0
            sharpness.append(float(cv2.Laplacian(grey, cv2.CV_32F)[inside].var()))
    except (AttributeError, TypeError, ValueError, cv2.error):
        return None
    values = np.asarray(sharpness)
    return values >= np.quantile(values, share)


def colour_faces(gallery: Any, least: float = MIN_CHROMA) -> np.ndarray | None:
    """bool (M,): the gallery faces in colour (:data:`MIN_CHROMA`), or None (all) for a
    gallery that cannot be measured."""
    try:
        chroma = []
        for i in range(len(gallery.descriptors)):
            lab = cv2.cvtColor(gallery.image(i), cv2.COLOR_RGB2LAB).astype(np.float32)
            inside = face_region(gallery.landmarks(i), lab.shape[0]) > 0
            a, b = lab[..., 1][inside].mean() - 128.0, lab[..., 2][inside].mean() - 128.0
            chroma.append(float(np.hypot(a, b)))
    except (AttributeError, TypeError, ValueError, cv2.error):
        return None
    return np.asarray(chroma) >= least


class RealPixels:
    """The stage: ``apply(render, landmarks, layout, sources, recomputed)``.

    ``sources`` maps components (or ``"face"``) to a dropped photo's
    :class:`PixelSource`; components without one take the gallery pick.
    """

    def __init__(self, gallery: Any) -> None:
        if gallery is None or getattr(gallery, "descriptors", None) is None:
            raise ValueError("the real-pixels look needs a gallery with face descriptors")
        self.gallery = gallery
        self.state = RealPixelsState()
        sharp, colour = sharp_faces(gallery), colour_faces(gallery)
        #: the faces that may lend texture at all: sharp and in colour (None: all)
        self.sharp = sharp if colour is None else colour if sharp is None else sharp & colour
        marks = getattr(gallery, "landmark_array", None)
        #: each gallery face's mouth openness (:func:`mouth_openness`), None when unknown
        self.mouths = None if marks is None else mouth_openness(marks)
        self._gallery_sources: dict[int, PixelSource] = {}
        self._glasses: dict[str, bool] = {}
        self._warps: dict[tuple[str, int], tuple[np.ndarray, PreparedReference | None]] = {}

    def _prepared(
        self, src: PixelSource, landmarks: np.ndarray, size: int
    ) -> PreparedReference | None:
        """``src`` warped onto ``landmarks`` and prepared; reused while the landmarks
        stay within :data:`KEEP_WARP_PX` (one-part edits barely move them)."""
        key = (src.key, size)
        hit = self._warps.get(key)
        if hit is not None and np.abs(hit[0] - landmarks).mean() <= KEEP_WARP_PX * size / 512:
            return hit[1]
        ref, valid = warp_source(src, landmarks, size)
        region = face_region(landmarks, size)
        sigma, feather = HF_SIGMA_512 * size / 512, VALID_FEATHER_512 * size / 512
        keep = None
        if SKIN_DETAIL_ONLY:
            keep = (
                glasses_keep(landmarks, size)
                if self.glasses(src)
                else feature_region(landmarks, size, FEATURE_MARGIN_512 * size / 512)
            )
        mouth = feature_region(landmarks, size, MOUTH_MARGIN_512 * size / 512, MOUTH_GROUP)
        # a mouth open in the photo and closed in the drawing (or the reverse): the warp
        # cannot undo it, and the photo's teeth would be drawn across the lips
        drawn, own = mouth_openness(landmarks), mouth_openness(src.landmarks)
        shut = mouth if abs(float(drawn) - float(own)) > MOUTH_TOLERANCE else None
        prep = prepare_reference(
            ref, valid * region, sigma, feather, LOW_SIGMA_512 * size / 512, keep, mouth, shut
        )
        self._warps[key] = (np.array(landmarks, np.float32), prep)
        while len(self._warps) > 8:
            self._warps.pop(next(iter(self._warps)))
        return prep

    def _lend(
        self, render: np.ndarray, src: PixelSource, landmarks: np.ndarray, size: int
    ) -> np.ndarray:
        """The render with ``src``'s texture (and its second photo's, blended by mix)."""
        mix = float(np.clip(src.mix, 0.0, 1.0)) if src.second is not None else 0.0
        first = (
            None if mix >= 1.0 else apply_reference(render, self._prepared(src, landmarks, size))
        )
        if mix <= 0.0:
            assert first is not None
            return first
        assert src.second is not None
        second = apply_reference(render, self._prepared(src.second, landmarks, size))
        if first is None:
            return second
        blend = (1.0 - mix) * first.astype(np.float32) + mix * second.astype(np.float32)
        return np.clip(np.rint(blend), 0, 255).astype(np.uint8)

    def glasses(self, src: PixelSource) -> bool:
        """Whether ``src`` wears glasses (:func:`wears_glasses`), once per photo; gallery
        faces are screened for them, so never."""
        if src.key.startswith("gallery:"):
            return False
        if src.key not in self._glasses:
            self._glasses[src.key] = wears_glasses(src.image)
        return self._glasses[src.key]

    def gallery_source(self, index: int) -> PixelSource:
        """Gallery face ``index`` as a pixel source (decoded once)."""
        if index not in self._gallery_sources:
            g = self.gallery
            self._gallery_sources[index] = PixelSource(
                f"gallery:{index}", g.image(index), g.mask(index), g.landmarks(index)
            )
        return self._gallery_sources[index]

    def identify(
        self,
        render: np.ndarray,
        landmarks: np.ndarray | None = None,
        keep: int | None = None,
        female: float | None = None,
    ) -> int | None:
        """The gallery face nearest the render's dlib descriptor (mapped among the
        photos', :meth:`Gallery.as_photo_descriptor`), the best-shaped of the
        :data:`PICK_K` nearest when the sketch's ``landmarks`` are given, or ``keep``
        while it is one of the :data:`KEEP_K` nearest (None: no face); among :meth:`allowed` faces
        (``female``: the drawn-gender reader's probability, or None)."""
        desc = render_descriptor(render)
        if desc is None:
            return None
        to_photo = getattr(self.gallery, "as_photo_descriptor", None)
        if to_photo is not None:
            desc = to_photo(desc)
        allowed = self.allowed(landmarks, female)
        if keep is None:
            return self.gallery.nearest_identity(desc, landmarks, PICK_K, allowed)
        return self.gallery.nearest_identity(
            desc, landmarks, PICK_K, allowed, prefer=keep, keep_k=KEEP_K
        )

    def allowed(
        self, landmarks: np.ndarray | None, female: float | None = None
    ) -> np.ndarray | None:
        """bool (M,): the gallery faces that may lend their texture to a drawing with
        these landmarks: sharp ones whose mouth is about as open as the drawn one
        (:data:`MOUTH_TOLERANCE`) and, when the drawn-gender reader is sure
        (``female``, :data:`GENDER_MARGIN`), of that gender.  Each rule is dropped when
        it would leave fewer than :data:`PICK_K` faces.  None: all."""
        out = self.sharp
        if landmarks is not None and self.mouths is not None and MOUTH_TOLERANCE > 0:
            agree = np.abs(self.mouths - mouth_openness(landmarks)) <= MOUTH_TOLERANCE
            both = agree if out is None else agree & out
            out = both if both.sum() >= PICK_K else out
        women = getattr(self.gallery, "female", None)
        if female is not None and women is not None and abs(female - 0.5) >= GENDER_MARGIN:
            same = women if female > 0.5 else ~women
            both = same if out is None else same & out
            out = both if both.sum() >= PICK_K else out
        return out

    def pick(
        self,
        render: np.ndarray,
        recomputed: list[str],
        landmarks: np.ndarray | None = None,
        female: float | None = None,
    ) -> int | None:
        """The sticky pick: renewed when the drawing changed as a whole or went stale.
        While a drawing is edited (not every part re-rendered) the renewal keeps the
        current face if it is still one of the candidates: stroke by stroke, the face
        nearest the render changes often (10 CUHK drawings, from 60 % drawn, 15 more
        strokes each, one at a time: 46 of the 150 strokes changed the texture's face;
        18 with this),
        and each change swaps the skin's tone and texture under the user's pen.  With the
        1,000-face gallery a face is kept while it is one of the :data:`KEEP_K` nearest
        (25 changes of 150 with 5, 10 with 15)."""
        st = self.state
        st.renders_since += 1
        whole = BACKGROUND in recomputed or len(recomputed) >= 2
        if st.index is None or whole or st.renders_since >= MAX_STALE:
            t = time.perf_counter()
            fresh = st.index is None or set(COMPONENTS) <= set(recomputed)
            found = self.identify(render, landmarks, None if fresh else st.index, female)
            st.timings["identify"] = (time.perf_counter() - t) * 1000
            if found is not None:
                st.index = found
            st.renders_since = 0
        return st.index

    def apply(
        self,
        render: np.ndarray,
        landmarks: np.ndarray,
        layout: FaceLayout,
        sources: dict[str, PixelSource],
        recomputed: list[str],
        female: float | None = None,
    ) -> np.ndarray:
        """The render with real texture (see the module docstring); ``landmarks`` are
        the sketch's, in pixels of the render; ``female`` the drawn-gender reader's
        probability (:meth:`Gallery.drawn_gender`), None when unknown."""
        size = render.shape[0]
        st = self.state
        st.timings = {}
        # the whole face's photo, else the rest of the face's (its skin is most of what
        # the stage transfers: left to the gallery pick, a darker photo there changed
        # nothing once the texture was on), else the gallery pick
        parts = [c for c in COMPONENTS if c != BACKGROUND and c in sources]
        base: PixelSource | None = sources.get("face") or sources.get(BACKGROUND)
        if base is None:
            index = self.pick(render, recomputed, landmarks, female)
            base = self.gallery_source(index) if index is not None else None
        t = time.perf_counter()
        out = render
        if base is not None:
            out = self._lend(render, base, landmarks, size)
        if parts:
            parts = [n for n in PASTE_ORDER if n in parts]  # later windows over earlier
            weights = window_weights(layout, size, parts)
            acc = out.astype(np.float32)
            for name in parts:
                part = self._lend(render, sources[name], landmarks, size)
                if PART_BORDER_MATCH:
                    part = match_at_border(
                        part, np.clip(acc, 0, 255).astype(np.uint8), weights[name]
                    )
                w = weights[name][..., None]
                acc = w * part.astype(np.float32) + (1 - w) * acc
            out = np.clip(acc, 0, 255).astype(np.uint8)
        st.timings["transfer"] = (time.perf_counter() - t) * 1000
        return out
