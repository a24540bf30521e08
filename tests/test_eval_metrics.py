"""Issue 16's measures (train.face_metrics): the edge F1 operator, landmark error, KID
plumbing, and the issue evaluation's reference bank."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from train.face_metrics import (
    canny_edge_f1,
    canny_edges,
    edge_f1_maps,
    hair_detail,
    landmark_error,
)


def lines(shift: int = 0, size: int = 128) -> np.ndarray:
    img = np.full((size, size, 3), 200, np.uint8)
    cv2.circle(img, (64 + shift, 64 + shift), 30, (40, 40, 40), 2)
    cv2.line(img, (20 + shift, 100 + shift), (108 + shift, 90 + shift), (30, 30, 30), 2)
    return img


def test_edge_f1_of_an_image_with_itself_is_one():
    img = lines()
    assert canny_edges(img).any()
    assert canny_edge_f1(img, img) == pytest.approx(1.0)


def test_edge_f1_of_blank_against_lines_is_zero():
    blank = np.full((128, 128, 3), 200, np.uint8)
    assert not canny_edges(blank).any()
    assert canny_edge_f1(blank, lines()) == 0.0
    assert canny_edge_f1(lines(), blank) == 0.0


def test_edge_f1_tolerates_two_pixels_not_ten():
    assert canny_edge_f1(lines(2), lines()) > 0.9
    assert canny_edge_f1(lines(10), lines()) < 0.5


def test_edge_f1_maps_counts_precision_and_recall():
    a = np.zeros((50, 50), bool)
    b = np.zeros((50, 50), bool)
    a[10, 5:45] = True
    b[10, 5:45] = True
    b[40, 5:45] = True  # half of b has no match in a: recall 0.5, precision 1
    assert edge_f1_maps(a, b) == pytest.approx(2 * 0.5 / 1.5, abs=0.02)


def test_edge_operator_is_the_issues():
    """Grey, Gaussian 5x5 sigma 1.2, Canny 0.66 / 1.33 x the blurred median."""
    img = lines()
    grey = cv2.GaussianBlur(cv2.cvtColor(img, cv2.COLOR_RGB2GRAY), (5, 5), 1.2)
    med = float(np.median(grey))
    assert np.array_equal(canny_edges(img), cv2.Canny(grey, 0.66 * med, 1.33 * med) > 0)


def test_landmark_error_is_relative_to_the_inter_ocular_distance():
    ref = np.zeros((68, 2))
    ref[36:42] = (0.0, 0.0)
    ref[42:48] = (40.0, 0.0)
    assert landmark_error(ref, ref) == 0.0
    assert landmark_error(ref + (4.0, 0.0), ref) == pytest.approx(0.1)
    assert landmark_error(2 * ref + (4.0, 0.0), 2 * ref) == pytest.approx(0.05)


def test_kid_of_a_set_with_itself_is_near_zero_and_apart_is_larger():
    import torch

    from train.kid import kid

    g = torch.Generator().manual_seed(0)
    a = torch.randn(200, 16, generator=g)
    b = torch.randn(200, 16, generator=g)
    far = torch.randn(200, 16, generator=g) + 1.5
    same, _ = kid(a, b, subsets=20, subset_size=100)
    apart, _ = kid(a, far, subsets=20, subset_size=100)
    assert abs(same) < 0.2 * apart


def test_reference_bank_picks_the_face_of_the_nearest_shape():
    from train.eval_pairs import ReferenceBank
    from train.fusion_ref import template_landmarks

    base = template_landmarks(256)
    wide = base.copy()
    wide[:, 0] = (wide[:, 0] - 128) * 1.3 + 128
    img = np.full((256, 256, 3), 90, np.uint8)
    mask = np.full((256, 256), 255, np.uint8)
    bank = ReferenceBank(np.stack([base, wide]), lambda i: img, lambda i: mask, "test")
    # position and size do not matter, shape does
    assert bank.nearest(base * 0.8 + 20) == 0
    assert bank.nearest(wide + 5) == 1
    rgb, valid = bank.warped(0, base + 3)
    assert rgb.shape == (256, 256, 3) and valid.dtype == np.uint8 and valid.mean() > 200


def test_chroma_noise_tells_a_noise_band_from_hair():
    from train.eval import chroma_noise

    rng = np.random.default_rng(0)
    smooth = np.full((256, 256, 3), (90, 60, 40), np.uint8)  # dark brown hair
    noisy = smooth.copy()
    noisy[:32] = rng.integers(0, 256, (32, 256, 3), dtype=np.uint8)
    assert chroma_noise(smooth) < 0.5
    assert chroma_noise(noisy) > 20 * max(chroma_noise(smooth), 0.5)
    noisy[32:] = rng.integers(0, 256, (224, 256, 3), dtype=np.uint8)  # below: not counted
    assert chroma_noise(smooth[::2, ::2]) < 0.5  # other sizes scale the band
    mask = np.zeros((256, 256), np.uint8)
    assert np.isnan(chroma_noise(noisy, mask))


def test_top_detail_sees_a_grey_mesh_along_the_top_edge_that_chroma_noise_misses():
    from train.eval import chroma_noise, top_detail

    yy, xx = np.mgrid[:256, :256]
    face = np.clip(120 + 40 * np.sin(xx / 30.0) + 20 * np.cos(yy / 25.0), 0, 255)
    face = np.repeat(face[..., None], 3, 2).astype(np.uint8)
    meshed = face.copy()
    cells = ((xx[:8] // 4 + yy[:8] // 4) % 2 * 60 - 30)[..., None]  # period 8, grey
    meshed[:8] = np.clip(face[:8].astype(int) + cells, 0, 255).astype(np.uint8)
    assert top_detail(face) < 0.5 < 10.0 < top_detail(meshed)
    assert chroma_noise(meshed) < 0.5  # colourless: the band measure misses it
    mask = np.zeros((256, 256), np.uint8)
    assert np.isnan(top_detail(meshed, mask))
    assert top_detail(meshed[::2, ::2]) > 10.0  # other sizes scale the rows


def test_seam_ratio_sees_a_pasted_window_and_not_a_smooth_face():
    from facesketch.layout import FaceLayout
    from train.eval import seam_ratio

    lay = FaceLayout.default(256)
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:256, 0:256].astype(np.float32)
    base = 120 + 40 * np.sin(xx / 37) * np.cos(yy / 29) + rng.normal(0, 3, (256, 256))
    img = np.repeat(np.clip(base, 0, 255)[..., None], 3, -1).astype(np.uint8)
    assert 0.8 < seam_ratio(img, lay) < 1.2
    pasted = img.astype(np.int16)
    w = lay.window("nose")
    pasted[w.y : w.y + w.size, w.x : w.x + w.size] += 12  # a window a shade lighter
    assert seam_ratio(np.clip(pasted, 0, 255).astype(np.uint8), lay) > 1.5


def test_hair_detail_measures_fine_detail_inside_the_hair_weight_only():
    rng = np.random.default_rng(0)
    smooth = np.full((512, 512, 3), 60, np.uint8)
    strands = smooth.copy()
    strands[:, :256] = np.clip(60 + rng.normal(0, 12, (512, 256, 1)), 0, 255).astype(np.uint8)
    weight = np.zeros((512, 512), np.float32)
    weight[:, :256] = 1
    assert hair_detail(smooth, weight) == pytest.approx(0.0, abs=1e-3)
    assert hair_detail(strands, weight) > 5.0
    assert hair_detail(strands, weight[:, ::-1].copy()) == pytest.approx(0.0, abs=0.5)
    assert hair_detail(strands, np.zeros_like(weight)) is None  # no hair: not scored


def test_top_tint_sees_a_blue_strip_along_the_top_edge_that_the_detail_measures_miss():
    from train.eval import chroma_noise, top_detail
    from train.face_metrics import top_tint

    hair = np.full((256, 256, 3), (70, 55, 40), np.uint8)  # smooth brown hair: yellowish
    fade = (0.5 + 0.5 * np.cos(np.clip(np.arange(256) / 16.0, 0, 1) * np.pi))[:, None, None]
    blue = np.array((50, 60, 95), np.float32)  # a blue strip fading out over 16 rows
    tinted = np.round(hair * (1 - fade) + blue * fade).astype(np.uint8)
    assert top_tint(hair) > 3.0 and top_tint(tinted) < -10.0
    # smooth: both score it below real photos (band 1.12, top detail 3.63 on val)
    assert chroma_noise(tinted) < 1.0 and top_detail(tinted) < 1.0
    assert top_tint(np.repeat(np.repeat(tinted, 2, 0), 2, 1)) < -10.0  # rows scale with size
    assert np.isnan(top_tint(tinted, np.zeros((256, 256), np.uint8)))


def test_the_issue_eval_says_which_faces_lent_the_texture():
    from train.eval_pairs import texture_donors

    got = texture_donors([["gallery:3"], ["gallery:3", "x.jpg"], [], ["gallery:7"]])
    assert got == {"textured": 3, "texture_donors": 2, "texture_top_donor_serves": 2}
    assert texture_donors([[], []])["texture_top_donor_serves"] == 0


def test_the_issue_eval_counts_renders_that_lose_the_drawn_persons_gender(monkeypatch):
    from types import SimpleNamespace

    from train import eval_pairs

    # descriptors whose first value says the gender (1 = woman); the images carry it
    weight = np.zeros(129)
    weight[0] = 1.0
    gallery = SimpleNamespace(size=4, female=np.array([True, False, True, False]))
    monkeypatch.setattr(eval_pairs, "gender_reader", lambda: (weight, gallery))

    def meter(img):
        v = float(img[0, 0, 0])
        return None if v < 0 else (np.zeros((68, 2)), np.r_[v, np.zeros(127)])

    def face(woman: float) -> np.ndarray:
        return np.full((2, 2, 3), woman, np.float32)

    photos = [face(0), face(0), face(1), face(0)]
    renders = [face(1), face(0), face(1), face(-1)]  # a man as a woman; one render unread
    textures = [["gallery:0"], ["gallery:1"], ["x.jpg"], ["gallery:2"]]
    got = eval_pairs.gender_measures(renders, photos, meter, textures)
    assert got == {
        "men_rendered_as_women": "1/2",
        "women_rendered_as_men": "0/1",
        "texture_of_other_gender": "2/3",  # men 0 and 3 got women's texture; x.jpg no face
    }
    monkeypatch.setattr(eval_pairs, "gender_reader", lambda: None)
    assert eval_pairs.gender_measures(renders, photos, meter, textures) == {}
