"""Real texture on rendered faces (facesketch.engine.real_pixels).

The transfer and the warp are checked on synthetic images; the sticky identity pick
with a stand-in identifier; the pipeline with the shipped networks, gallery and dlib
(the product path: the gallery pick, a dropped photo's part, on/off).
"""

from __future__ import annotations

import os
from types import SimpleNamespace

import cv2
import numpy as np
import pytest
from gallery_fixtures import lent_detail

from facesketch.engine import real_pixels as rp
from facesketch.engine.gallery import Gallery
from facesketch.engine.real_pixels import PixelSource, RealPixels, transfer, warp_source
from facesketch.layout import COMPONENTS, FaceLayout


def _smooth(side: int = 128, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    small = rng.integers(60, 200, (4, 4, 3)).astype(np.uint8)
    return cv2.resize(small, (side, side), interpolation=cv2.INTER_CUBIC)


def test_transfer_leaves_the_render_alone_where_the_reference_is_not_valid():
    render = _smooth()
    ref = np.random.default_rng(1).integers(0, 255, render.shape).astype(np.uint8)
    valid = np.zeros(render.shape[:2], np.float32)
    valid[:, :48] = 1
    out = transfer(render, ref, valid, sigma=2.0, feather=3.0)
    assert np.array_equal(out[:, 80:], render[:, 80:])  # beyond the feather: untouched
    assert np.abs(out[:, :40].astype(int) - render[:, :40]).mean() > 5  # texture inside


def test_transfer_takes_the_references_fine_detail_not_its_shape():
    render = _smooth()
    yy, xx = np.mgrid[:128, :128]
    stripes = (40 * np.sin(xx * np.pi / 2))[..., None]  # a 4-px texture
    ref = np.clip(render.astype(np.float32) + stripes, 0, 255).astype(np.uint8)
    out = transfer(render, ref, np.ones((128, 128), np.float32), sigma=4.0, feather=2.0)
    detail = out.astype(np.float32) - cv2.GaussianBlur(out.astype(np.float32), (0, 0), 4)
    corr = np.corrcoef(detail[16:-16, 16:-16, 1].ravel(), stripes[16:-16, 16:-16, 0].ravel())
    assert corr[0, 1] > 0.8
    # the broad shading keeps the render's shape (its colour statistics are the ref's)
    lo = cv2.GaussianBlur(out, (0, 0), 8).astype(float)[16:-16, 16:-16, 1].ravel()
    lo_render = cv2.GaussianBlur(render, (0, 0), 8).astype(float)[16:-16, 16:-16, 1].ravel()
    assert np.corrcoef(lo, lo_render)[0, 1] > 0.95


def test_warp_source_puts_the_sources_landmarks_on_the_targets():
    side = 128
    rng = np.random.default_rng(0)
    src_pts = rng.uniform(30, 98, (68, 2)).astype(np.float32)
    img = np.zeros((side, side, 3), np.uint8)
    x, y = np.round(src_pts[30]).astype(int)
    img[y - 2 : y + 3, x - 2 : x + 3] = 255  # a bright dot on landmark 30
    dst = src_pts + np.array([6.0, -4.0], np.float32)  # the drawing is moved
    src = PixelSource("t", img, np.full((side, side), 255, np.uint8), src_pts)
    warped, valid = warp_source(src, dst, side)
    w = warped[..., 0].astype(float)
    ys, xs = np.mgrid[:side, :side]
    cx, cy = (w * xs).sum() / w.sum(), (w * ys).sum() / w.sum()  # the dot's centre
    x0, y0 = np.round(src_pts[30]) - src_pts[30] + dst[30]  # where its centre should go
    assert abs(cx - x0) <= 1.5 and abs(cy - y0) <= 1.5
    assert valid.shape == (side, side) and valid.max() <= 1.0


class _StubGallery:
    def __init__(self) -> None:
        self.descriptors = np.eye(3, 128, dtype=np.float32)

    def nearest_identity(self, d):
        return int(np.argmin(((self.descriptors - d) ** 2).sum(1)))

    def image(self, i):
        return np.full((64, 64, 3), 40 * (i + 1), np.uint8)

    def mask(self, i):
        return np.full((64, 64), 255, np.uint8)

    def landmarks(self, i):
        return np.random.default_rng(i).uniform(10, 54, (68, 2))


def test_the_pick_is_renewed_on_whole_changes_and_when_stale(monkeypatch):
    stage = RealPixels(_StubGallery())
    calls = []
    monkeypatch.setattr(
        stage,
        "identify",
        lambda r, lm=None, keep=None, female=None: calls.append(1) or len(calls) % 3,
    )
    render = _smooth(64)
    stage.pick(render, ["background", "nose"])  # first render: identify
    for _ in range(rp.MAX_STALE - 1):
        stage.pick(render, ["nose"])  # one-part edits: keep the pick
    assert len(calls) == 1
    stage.pick(render, ["nose"])  # stale now
    assert len(calls) == 2
    stage.pick(render, ["mouth", "nose"])  # several parts: the drawing changed
    assert len(calls) == 3


def test_a_gallery_without_descriptors_is_refused_with_a_reason():
    with pytest.raises(ValueError, match="descriptors"):
        RealPixels(SimpleNamespace(descriptors=None))


def test_the_shipped_gallery_has_a_descriptor_per_face():
    g = Gallery.load()
    assert g.descriptors is not None and g.descriptors.shape == (g.size, 128)
    assert g.nearest_identity(g.descriptors[17]) == 17
    with pytest.raises(ValueError, match="128"):
        g.nearest_identity(np.zeros(5))
    # among the k nearest by descriptor, the one shaped like the sketch: a gallery face's
    # own landmarks, moved and scaled, pick it back from its 5 nearest
    d = g.descriptors[17]
    near = np.argsort(((g.descriptors - d) ** 2).sum(1))[:5]
    other = int(near[3])
    assert g.nearest_identity(d, g.landmarks(other) * 1.7 + 30, k=5) == other


@pytest.fixture(scope="module")
def shipped_pipeline():
    """The shipped networks with the stage on (conftest's kill switch lifted here)."""
    pytest.importorskip("dlib")
    from facesketch.engine.bundle import load_bundle
    from facesketch.engine.pipeline import FacePipeline

    saved = os.environ.pop("FACESKETCH_TEXTURE", None)
    try:
        pipe = FacePipeline(load_bundle(), "cpu", real_pixels=True)
        assert pipe.real_pixels is not None, pipe.real_pixels_problem
        yield pipe
    finally:
        if saved is not None:
            os.environ["FACESKETCH_TEXTURE"] = saved


def test_the_kill_switch_keeps_the_stage_off(monkeypatch):
    from facesketch.engine.bundle import random_bundle
    from facesketch.engine.pipeline import FacePipeline
    from facesketch.models import preset

    monkeypatch.setenv("FACESKETCH_TEXTURE", "0")
    pipe = FacePipeline(random_bundle(preset("tiny"), seed=0), "cpu", real_pixels=True)
    assert pipe.real_pixels is None and pipe.texture_wanted
    assert pipe.real_pixels_problem == "turned off"


def _samples():
    from facesketch.resources import samples_dir

    return samples_dir()


def _demo_sketch() -> np.ndarray:
    from facesketch.sketch.project import load_project

    return load_project(_samples() / "demo.json").rasterize(256)


def test_the_default_look_gets_a_gallery_faces_texture(shipped_pipeline):
    pipe = shipped_pipeline
    sketch = _demo_sketch()
    on = pipe.render_sketch(sketch)
    assert on.texture and on.texture[0].startswith("gallery:")
    pipe.set_real_pixels(False)
    try:
        off = pipe.render_sketch(sketch)
    finally:
        pipe.set_real_pixels(True)
    assert off.texture == []

    # texture: more fine detail on the face (demo: 1.29 -> 1.49 with its gallery face,
    # a soft UTKFace photo; 2.08 with the project's sharper photo), same broad picture
    def detail(img):
        g = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY).astype(np.float32)[150:420, 130:380]
        return np.abs(g - cv2.GaussianBlur(g, (0, 0), 2)).mean()

    assert detail(on.face) > 1.1 * detail(off.face)
    photo = SimpleNamespace(paths=[str(_samples() / "sample-a.jpg")], mix=0.5)
    dropped = pipe.render_sketch(sketch, appearance={"face": photo})
    assert dropped.texture == photo.paths
    assert detail(dropped.face) > 1.3 * detail(off.face)
    broad = np.abs(
        cv2.GaussianBlur(on.face, (0, 0), 12).astype(float) - cv2.GaussianBlur(off.face, (0, 0), 12)
    )
    assert broad.mean() < 25


def test_a_photo_dropped_on_a_part_gives_that_part_its_texture(shipped_pipeline):
    pipe = shipped_pipeline
    sketch = _demo_sketch()
    photo = str(_samples() / "sample-b.jpg")
    slot = SimpleNamespace(paths=[photo], mix=0.5)
    out = pipe.render_sketch(sketch, appearance={"mouth": slot})
    assert photo in out.texture
    base = pipe.render_sketch(sketch)
    lay = FaceLayout.default(512)
    m, le = lay.window("mouth"), lay.window("left_eye")

    def diff(w):
        a = out.face[w.y : w.y + w.size, w.x : w.x + w.size].astype(float)
        return np.abs(a - base.face[w.y : w.y + w.size, w.x : w.x + w.size]).mean()

    assert diff(m) > 3 * max(diff(le), 0.5)


def test_a_parts_photo_meets_the_faces_colour_at_its_windows_border():
    """A part rendered in another skin's colour is moved to the face's where its window
    blends in; what it shows inside keeps its contrast to that skin."""
    size = 256
    lay = FaceLayout.default(256)
    face = _smooth(size, seed=4)
    w = rp.window_weights(lay, size, ["mouth"])["mouth"]
    lab = cv2.cvtColor(face, cv2.COLOR_RGB2LAB).astype(np.float32)
    darker = lab + np.array([-40.0, 6.0, 10.0], np.float32)  # another, darker skin
    win = lay.window("mouth")
    cy, cx = win.y + win.size // 2, win.x + win.size // 2
    darker[cy - 6 : cy + 6, cx - 24 : cx + 24] += np.array([-25.0, 30.0, 0.0])  # its lips
    part = cv2.cvtColor(np.clip(darker, 0, 255).astype(np.uint8), cv2.COLOR_LAB2RGB)
    out = rp.match_at_border(part, face, w)
    got = cv2.cvtColor(out, cv2.COLOR_RGB2LAB).astype(np.float32)
    ring = (w > 0.05) & (w < 0.95)
    assert np.abs(got[ring] - lab[ring]).mean() < 2.5  # the skin meets the face's
    before = np.abs(cv2.cvtColor(part, cv2.COLOR_RGB2LAB).astype(np.float32)[ring] - lab[ring])
    assert before.mean() > 15
    lips = got[cy - 4 : cy + 4, cx - 20 : cx + 20].reshape(-1, 3).mean(0)
    skin = got[cy + 14 : cy + 22, cx - 20 : cx + 20].reshape(-1, 3).mean(0)
    want = lab[cy - 4 : cy + 4, cx - 20 : cx + 20].reshape(-1, 3).mean(0) + [-25, 30, 0]
    want_skin = lab[cy + 14 : cy + 22, cx - 20 : cx + 20].reshape(-1, 3).mean(0)
    assert np.abs((lips - skin) - (want - want_skin)).max() < 4  # the lips stay the lips


def test_a_darker_photo_dropped_on_a_part_draws_no_box(shipped_pipeline, monkeypatch):
    """Gallery face 65 (darker skin than the demo's look) on the mouth: before, the
    window showed as a box of its skin (a step of 47 Lab units here, 25 over 24 CUHK
    drawings); now the mouth meets the face's colour (8 here, 7 there)."""
    from train.face_metrics import box_step

    pipe = shipped_pipeline
    sketch = _demo_sketch()
    base = pipe.render_sketch(sketch).face
    slot = SimpleNamespace(paths=["gallery:65"], mix=0.5)
    window = FaceLayout.default(512).window("mouth")
    steps = {}
    for match in (False, True):
        monkeypatch.setattr(rp, "PART_BORDER_MATCH", match)
        pipe._last = None
        out = pipe.render_sketch(sketch, appearance={"mouth": slot})
        assert "gallery:65" in out.texture
        steps[match] = box_step(out.face, base, window)
    assert steps[True] < 12 and steps[False] > 2 * steps[True], steps


def test_a_photo_on_the_rest_of_the_face_lends_the_texture(shipped_pipeline):
    """The rest-of-face slot's photo is the texture's source, as the whole face's is:
    left to the gallery pick, a darker face there changed the skin only as far as the
    networks did, and the stage's colour match to the pick took even that back."""
    pipe = shipped_pipeline
    sketch = _demo_sketch()
    base = pipe.render_sketch(sketch)
    slot = SimpleNamespace(paths=["gallery:65"], mix=0.5)
    out = pipe.render_sketch(sketch, appearance={"background": slot})
    assert out.texture == ["gallery:65"]  # no gallery pick besides
    lay = FaceLayout.default(512)
    cheek = (slice(330, 380), slice(140, 180))  # left of the mouth, outside every window
    for name in ("mouth", "nose", "left_eye"):
        assert not lay.window(name).contains(160, 355)

    def lightness(img: np.ndarray) -> float:
        return float(cv2.cvtColor(img, cv2.COLOR_RGB2LAB)[cheek][..., 0].mean())

    assert lightness(out.face) < lightness(base.face) - 25  # a darker skin (L* x 2.55)


def test_two_mixed_photos_blend_their_textures_as_the_mix_says(shipped_pipeline):
    """The mix slider blends the networks' codes; the texture followed only the first
    photo, so at mix 1 the face had the second photo's look and the first's skin."""
    pipe = shipped_pipeline
    sketch = _demo_sketch()
    dark, light = "gallery:65", str(_samples() / "sample-a.jpg")

    def render(paths: list[str], mix: float = 0.5) -> np.ndarray:
        slot = SimpleNamespace(paths=paths, mix=mix)
        return pipe.render_sketch(sketch, appearance={"face": slot}).face

    def lightness(img: np.ndarray) -> float:
        return float(cv2.cvtColor(img, cv2.COLOR_RGB2LAB)[300:360, 150:200][..., 0].mean())

    only_dark, only_light = render([dark]), render([light])
    assert np.array_equal(render([dark, light], 0.0), only_dark)
    assert np.array_equal(render([dark, light], 1.0), only_light)
    half = lightness(render([dark, light], 0.5))
    assert lightness(only_dark) + 10 < half < lightness(only_light) - 10


def test_a_part_drawn_in_a_photos_shape_takes_that_photos_texture_in_place(
    shipped_pipeline, monkeypatch
):
    """With "shape" on, the networks draw the photo's part (sample-c's smile), so its
    texture is warped onto the photo's own landmarks there, not the strokes': before,
    the smile's teeth came out as a flat white blob (no detail: the mouth gate saw the
    closed drawn mouth): the detail in the mouth 6.2 -> 9.4 on the demo."""
    from facesketch.engine.pipeline import FacePipeline

    pipe = shipped_pipeline
    sketch = _demo_sketch()
    slot = SimpleNamespace(paths=[str(_samples() / "sample-c.jpg")], mix=0.5, shape=True)
    lay = FaceLayout.default(512)
    m = lay.window("mouth")
    q = m.size // 4  # the window's middle: the lips and teeth
    mouth = (slice(m.y + q, m.y + m.size - q), slice(m.x + q, m.x + m.size - q))

    def mouth_detail() -> float:
        pipe._last = None
        face = pipe.render_sketch(sketch, appearance={"mouth": slot}).face
        return float(_detail(face)[mouth].mean())

    shaped = mouth_detail()
    monkeypatch.setattr(FacePipeline, "_shaped_landmarks", lambda self, pts, *a: pts)
    pipe.real_pixels._warps.clear()
    stroked = mouth_detail()
    assert shaped > 1.3 * stroked, (shaped, stroked)


def test_a_broken_descriptor_model_leaves_the_networks_face(shipped_pipeline, monkeypatch):
    """dlib's models unreadable mid-session: the plain face is shown, and why is kept."""
    pipe = shipped_pipeline
    sketch = _demo_sketch()
    pipe.set_real_pixels(False)
    plain = pipe.render_sketch(sketch).face
    pipe.set_real_pixels(True)

    def broken(*_a, **_k):
        raise RuntimeError("dlib_face_recognition_resnet_model_v1.dat: missing")

    monkeypatch.setattr(pipe.real_pixels, "identify", broken)
    out = pipe.render_sketch(sketch)
    assert out.texture == [] and np.array_equal(out.face, plain)
    assert "resnet_model" in pipe.real_pixels_problem
    pipe.set_real_pixels(True)


def test_the_blurriest_gallery_faces_never_lend_texture():
    """A soft photo would smooth the face: the blurriest quarter is left out of picks."""
    rng = np.random.default_rng(0)
    pts = np.stack([np.linspace(8, 56, 68), np.linspace(20, 60, 68)], 1)
    pts[17:27, 1] = 18  # brows above the jaw
    noise = [rng.normal(0, 1, (64, 64)) for _ in range(4)]

    class Gal(_StubGallery):
        def __init__(self):
            self.descriptors = np.zeros((4, 128), np.float32)
            self.descriptors[:, 0] = [0.0, 0.1, 0.2, 0.3]

        def image(self, i):  # face 0 is the softest
            g = np.clip(128 + (5 + 20 * i) * noise[i], 0, 255).astype(np.uint8)
            return np.repeat(g[..., None], 3, 2)

        def landmarks(self, i):
            return pts

    gal = Gal()
    sharp = rp.sharp_faces(gal)
    assert sharp.tolist() == [False, True, True, True]
    assert Gallery.nearest_identity(gal, np.zeros(128)) == 0  # plain nearest
    assert Gallery.nearest_identity(gal, np.zeros(128), allowed=sharp) == 1


def test_skin_shading_comes_from_the_references_skin_not_its_hair():
    """With a shading sigma the face takes the reference's broad skin shading and tone;
    the reference's fringe (not skin) does not darken the render's forehead."""
    from facesketch.engine.real_pixels import apply_reference, prepare_reference, skin_weight

    side = 256
    _, xx = np.mgrid[:side, :side]
    render = np.empty((side, side, 3), np.float32)
    render[:] = (200, 160, 140)
    render[150:153, 60:200] = 40  # a drawn line: not skin, not shaded
    gradient = (40 * (xx / side - 0.5))[..., None]  # light from the right
    ref = np.clip(np.array([175, 125, 105], np.float32) + gradient, 0, 255)
    ref[:60] = (45, 35, 30)  # a dark fringe
    ref, render = ref.astype(np.uint8), render.astype(np.uint8)
    lab = cv2.cvtColor(ref, cv2.COLOR_RGB2LAB).astype(np.float32)
    skin = skin_weight(lab, np.ones((side, side), bool))
    assert skin[100:].min() > 0.5 and skin[:50].max() < 0.05
    valid = np.ones((side, side), np.float32)
    plain = apply_reference(render, prepare_reference(ref, valid, 4.0, 4.0))
    shaded = apply_reference(render, prepare_reference(ref, valid, 4.0, 4.0, low_sigma=16.0))
    rows = slice(170, 230)
    lo = cv2.GaussianBlur(shaded.astype(np.float32), (0, 0), 8)[rows, 40:-40, 1].mean(0)
    assert np.corrcoef(lo, gradient[0, 40:-40, 0])[0, 1] > 0.9  # the reference's shading
    assert lo[-1] - lo[0] > 15
    flat = cv2.GaussianBlur(plain.astype(np.float32), (0, 0), 8)[rows, 40:-40, 1].mean(0)
    assert abs(flat[-1] - flat[0]) < 5  # without it the render keeps its own (flat)
    # the forehead under the reference's fringe is not darkened by it
    assert shaded[10:50, 40:-40].mean() > plain[10:50, 40:-40].mean() - 8
    # the drawn line stays a dark line
    assert shaded[151, 80:180].mean() < shaded[140, 80:180].mean() - 40


def _detail(out: np.ndarray) -> np.ndarray:
    """Per-pixel size of the fine detail (above a 4-px Gaussian) of a uint8 RGB image."""
    g = out.astype(np.float32).mean(-1)
    return np.abs(g - cv2.GaussianBlur(g, (0, 0), 4))


def _skin_scene(grain: float, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A flat skin-coloured render, a reference of skin with grain of std ``grain``
    (uint8 RGB, 256) and its validity."""
    side = 256
    rng = np.random.default_rng(seed)
    render = np.full((side, side, 3), (200, 160, 140), np.uint8)
    ref = np.clip(np.array([190, 150, 130]) + rng.normal(0, grain, (side, side, 1)), 0, 255)
    return render, ref.astype(np.uint8), np.ones((side, side), np.float32)


def test_another_persons_glasses_are_not_drawn_on_the_face(monkeypatch):
    """Outside the eyes, brows, nose and mouth only the reference's skin detail is
    copied: a dark rim (glasses) and its high-pass halo stay out; skin grain comes in."""
    from facesketch.engine import real_pixels
    from facesketch.engine.real_pixels import apply_reference, prepare_reference

    monkeypatch.setattr(real_pixels, "DETAIL_AGREEMENT", 0.0)  # this mechanism alone

    side = 256
    render, ref, valid = _skin_scene(6.0, 0)
    cv2.circle(ref, (128, 128), 40, (30, 30, 30), 3)  # a rim
    ring = np.zeros((side, side), np.uint8)
    cv2.circle(ring, (128, 128), 40, 1, 9)
    ring = ring > 0
    skin_area = np.zeros((side, side), bool)
    skin_area[200:240, 40:216] = True

    everything = apply_reference(render, prepare_reference(ref, valid, 4.0, 2.0, 0.0))
    nothing = np.zeros((side, side), np.float32)
    skin_only = apply_reference(render, prepare_reference(ref, valid, 4.0, 2.0, 0.0, nothing))
    features = np.ones((side, side), np.float32)
    kept = apply_reference(render, prepare_reference(ref, valid, 4.0, 2.0, 0.0, features))
    assert _detail(everything)[ring].mean() > 20
    assert _detail(skin_only)[ring].mean() < 0.2 * _detail(everything)[ring].mean()
    assert _detail(kept)[ring].mean() > 0.9 * _detail(everything)[ring].mean()
    # the skin grain away from the rim still comes in
    assert _detail(skin_only)[skin_area].mean() > 0.8 * _detail(everything)[skin_area].mean()
    assert _detail(skin_only)[skin_area].mean() > 2.0


def test_another_persons_bindi_or_mole_is_not_drawn_on_the_skin(monkeypatch):
    """Outside the features, strong compact detail (a forehead mark, a mole) stays in the
    photo while skin grain comes in; inside them (lashes, irises) it is copied."""
    from facesketch.engine import real_pixels
    from facesketch.engine.real_pixels import apply_reference, prepare_reference

    monkeypatch.setattr(real_pixels, "DETAIL_AGREEMENT", 0.0)  # this mechanism alone
    side = 256
    render, ref, valid = _skin_scene(4.0, 1)
    cv2.circle(ref, (128, 80), 3, (130, 90, 80), -1)  # a dark red mark, near skin
    mark = np.zeros((side, side), np.uint8)
    cv2.circle(mark, (128, 80), 3, 1, -1)
    mark = mark > 0
    grain = np.zeros((side, side), bool)
    grain[180:240, 40:216] = True
    nothing = np.zeros((side, side), np.float32)

    def shown(level: float, keep: np.ndarray) -> np.ndarray:
        monkeypatch.setattr(real_pixels, "SPOT_LEVEL", level)
        return _detail(apply_reference(render, prepare_reference(ref, valid, 4.0, 2.0, 0.0, keep)))

    before, after = shown(0.0, nothing), shown(22.0, nothing)
    assert before[mark].mean() > 8  # the skin test alone lets it through
    assert after[mark].mean() < 0.25 * before[mark].mean()
    assert after[grain].mean() > 0.9 * before[grain].mean() > 1.0
    assert shown(22.0, np.ones((side, side), np.float32))[mark].mean() > 0.9 * before[mark].mean()


def test_teeth_in_the_reference_are_not_drawn_into_a_mouth_drawn_closed(monkeypatch):
    """In the mouth, detail is copied only where the reference looks like the render at
    the detail scale: a photo's teeth (white, sharp gaps) inside lips the render shows
    closed drew "fangs"; its skin grain elsewhere still comes in."""
    from facesketch.engine import real_pixels
    from facesketch.engine.real_pixels import apply_reference, prepare_reference

    side = 256
    rng = np.random.default_rng(1)
    render = np.full((side, side, 3), (200, 160, 140), np.uint8)
    cv2.ellipse(render, (128, 170), (50, 14), 0, 0, 360, (170, 80, 80), -1)  # closed lips
    ref = np.clip(np.array([195, 155, 135]) + rng.normal(0, 6, (side, side, 1)), 0, 255)
    ref = ref.astype(np.uint8)
    cv2.ellipse(ref, (128, 170), (50, 14), 0, 0, 360, (240, 240, 235), -1)  # teeth
    for x in range(88, 170, 12):  # the gaps between them
        cv2.line(ref, (x, 158), (x, 182), (60, 40, 40), 2)
    valid = np.ones((side, side), np.float32)
    mouth = np.zeros((side, side), np.uint8)
    cv2.ellipse(mouth, (128, 170), (40, 8), 0, 0, 360, 1, -1)
    mouth = mouth > 0
    skin_area = np.zeros((side, side), bool)
    skin_area[30:90, 40:216] = True

    gate = np.zeros((side, side), np.float32)
    gate[130:210, 60:196] = 1.0  # the mouth (the engine: feature_region of MOUTH_GROUP)

    def run() -> np.ndarray:
        features = np.ones((side, side), np.float32)  # all detail allowed by the region
        prep = prepare_reference(ref, valid, 4.0, 2.0, 0.0, features, gate)
        return apply_reference(render, prep)

    gated = run()
    monkeypatch.setattr(real_pixels, "DETAIL_AGREEMENT", 0.0)
    ungated = run()
    assert _detail(ungated)[mouth].mean() > 15
    assert _detail(gated)[mouth].mean() < 0.35 * _detail(ungated)[mouth].mean()
    assert _detail(gated)[skin_area].mean() > 0.8 * _detail(ungated)[skin_area].mean() > 2.0


def test_a_photos_open_mouth_lends_no_detail_to_a_mouth_drawn_closed():
    """A dropped photo is not chosen by its mouth as the gallery pick is: gallery face 65
    smiles with its teeth showing (openness 0.17); onto a mouth drawn closed its teeth
    came in as detail across the lips (and lightened them as shading).  Within the
    mouth, such a photo now lends neither; drawn as open as its own, it lends both."""
    from facesketch.engine.real_pixels import MOUTH_GROUP, feature_region, mouth_openness

    stage = RealPixels(Gallery.load())
    src = stage.gallery_source(65)
    assert mouth_openness(src.landmarks) > 0.15
    open_pts = np.asarray(src.landmarks, np.float32)
    closed = open_pts.copy()
    for up, down in ((61, 67), (62, 66), (63, 65)):
        closed[[up, down]] = open_pts[[up, down]].mean(0)
    assert mouth_openness(closed) < 0.01
    size = 256
    lips = feature_region(open_pts, size, 2.0, MOUTH_GROUP) > 0.5

    def mouth_detail(points: np.ndarray) -> float:
        return lent_detail(stage, src, points, size, lips)

    assert mouth_detail(open_pts) > 3.0
    assert mouth_detail(closed) < 0.05 * mouth_detail(open_pts)


def test_the_shading_fades_out_smoothly_where_the_reference_photo_stops():
    """A UTKFace crop stops mid-forehead.  The skin shading it lends (here a shadow just
    below that edge) fades out over the skin's wide Gaussian (``SHADING_FADE``), not
    over the validity feather: cut off there, the correction drew a straight edge
    across the forehead (about 3.7 grey levels per row here; now about 1)."""
    from facesketch.engine.real_pixels import apply_reference, prepare_reference

    side = 256
    rows = np.arange(side, dtype=np.float32)[:, None, None]
    render = np.empty((side, side, 3), np.uint8)
    render[:] = (200, 165, 145)
    shadow = 40 * np.exp(-(((rows - 120) / 20) ** 2))
    ref = np.clip(render.astype(np.float32) - shadow, 0, 255).astype(np.uint8)
    valid = np.zeros((side, side), np.float32)
    valid[100:] = 1  # the photo stops at row 100
    prep = prepare_reference(ref, valid, 2.0, 3.0, low_sigma=12.0, keep=np.ones_like(valid))
    out = apply_reference(render, prep).astype(np.float32).mean(-1)[:, 60:-60].mean(1)
    total = out[40] - out[120]
    assert total > 20  # the face did take the shadow
    steepest = np.abs(np.diff(out[40:112])).max()  # above and across the photo's edge
    assert steepest < 0.06 * total, (steepest, total)  # a ramp, not an edge


def _mouth(open_px: float) -> np.ndarray:
    """dlib-68 points with a 50-px wide mouth whose inner lips are ``open_px`` apart."""
    pts = np.zeros((68, 2), np.float32)
    pts[48], pts[54] = (100, 200), (150, 200)
    for up, low, x in ((61, 67, 115), (62, 66, 125), (63, 65, 135)):
        pts[up], pts[low] = (x, 200 - open_px / 2), (x, 200 + open_px / 2)
    return pts


def test_a_gallery_face_lends_its_texture_only_to_a_mouth_as_open_as_its_own():
    assert rp.mouth_openness(_mouth(0)) == 0
    assert rp.mouth_openness(_mouth(10)) == pytest.approx(0.2)
    assert rp.mouth_openness(np.stack([_mouth(0), _mouth(5)])) == pytest.approx([0, 0.1])
    gallery = _StubGallery()
    gallery.descriptors = np.eye(8, 128, dtype=np.float32)
    gallery.landmark_array = np.stack([_mouth(10)] * 3 + [_mouth(1)] * 5)  # 3 smile, 5 not
    gallery.image = lambda i: np.full((64, 64, 3), 20 * (i + 1), np.uint8)
    stage = RealPixels(gallery)
    stage.sharp = np.array([False] + [True] * 7)
    closed = stage.allowed(_mouth(0))
    assert closed.tolist() == [False] * 3 + [True] * 5  # the closed ones (all sharp)
    # an open drawn mouth: only 2 sharp faces agree, fewer than the pick looks through,
    # so the mouth is not asked (the sharp ones may all lend)
    assert stage.allowed(_mouth(9)).tolist() == stage.sharp.tolist()
    assert stage.allowed(None) is stage.sharp


def test_a_drawing_being_edited_keeps_its_texture_face_while_it_is_still_a_candidate(
    monkeypatch,
):
    stage = RealPixels(_StubGallery())
    kept = []
    monkeypatch.setattr(
        stage,
        "identify",
        lambda r, lm=None, keep=None, female=None: kept.append(keep) or 1 + len(kept) % 2,
    )
    render = _smooth(64)
    stage.pick(render, list(COMPONENTS))  # a new drawing: a fresh pick
    stage.pick(render, ["background"])  # a stroke in the hair: keep it if still a candidate
    stage.pick(render, list(COMPONENTS))  # every part changed: another drawing, fresh
    assert kept == [None, 2, None]
    # the gallery keeps the preferred face only among its k nearest allowed faces
    g = Gallery.load()
    d = g.descriptors[17]
    near = np.argsort(((g.descriptors - d) ** 2).sum(1))
    assert g.nearest_identity(d, None, k=5, prefer=int(near[4])) == near[4]
    assert g.nearest_identity(d, None, k=5, prefer=int(near[5])) == 17
    # a wider keep: the current face holds while it is one of the keep_k nearest
    assert g.nearest_identity(d, None, k=5, prefer=int(near[12]), keep_k=15) == near[12]
    assert g.nearest_identity(d, None, k=5, prefer=int(near[16]), keep_k=15) == 17
    allowed = np.ones(g.size, bool)
    allowed[near[4]] = False
    assert g.nearest_identity(d, None, k=5, allowed=allowed, prefer=int(near[4])) == 17
