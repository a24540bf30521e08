"""Photo to sketch: thin clean lines on white paper, nothing outside the photo."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from facesketch.sketch import edges


def _cartoon_face(size: int = 128) -> np.ndarray:
    """A drawn face: skin ellipse, dark hair cap, eyes, nose shadow, mouth."""
    img = np.full((size, size, 3), (170, 190, 210), np.uint8)
    s = size / 128
    c = (round(64 * s), round(70 * s))
    cv2.ellipse(img, c, (round(40 * s), round(52 * s)), 0, 0, 360, (225, 180, 150), -1)
    cv2.ellipse(
        img, (c[0], round(30 * s)), (round(42 * s), round(20 * s)), 0, 180, 360, (50, 35, 30), -1
    )
    for ex in (46, 82):
        cv2.ellipse(
            img,
            (round(ex * s), round(62 * s)),
            (round(8 * s), round(4 * s)),
            0,
            0,
            360,
            (255, 255, 255),
            -1,
        )
        cv2.circle(img, (round(ex * s), round(62 * s)), round(3 * s), (40, 30, 30), -1)
    cv2.line(
        img,
        (c[0], round(66 * s)),
        (c[0] - round(4 * s), round(84 * s)),
        (150, 110, 90),
        max(1, round(2 * s)),
    )
    cv2.ellipse(
        img, (c[0], round(98 * s)), (round(13 * s), round(5 * s)), 0, 0, 360, (170, 60, 70), -1
    )
    return img


def _line_width(sketch: np.ndarray) -> float:
    """Ink area over skeleton length: the mean drawn width in pixels."""
    ink = (255 - sketch.astype(np.float64)) / 255.0
    skeleton = edges.thin(sketch < 128)
    return float(ink.sum() / max(1, skeleton.sum()))


# -- pure numpy parts ----------------------------------------------------------------
def test_thin_reduces_a_thick_band_to_a_one_pixel_connected_line() -> None:
    band = np.zeros((40, 60), bool)
    band[15:22, 5:55] = True
    skel = edges.thin(band)
    assert skel.any() and skel.sum() < band.sum() / 4
    cols = skel[:, 12:48]  # away from the ends (a medial axis forks into the corners)
    assert (cols.sum(axis=0) == 1).all()  # one pixel per column: 1 px wide, unbroken
    assert set(np.nonzero(cols)[0]) <= {17, 18, 19}  # along the band's middle
    n, _ = cv2.connectedComponents(skel.astype(np.uint8), connectivity=8)
    assert n == 2


def test_thin_keeps_a_thin_line_intact() -> None:
    img = np.zeros((30, 30), np.uint8)
    cv2.line(img, (3, 4), (26, 22), 1, 1)
    assert np.array_equal(edges.thin(img > 0), img > 0)


def test_remove_small_components_keeps_only_long_fragments() -> None:
    img = np.zeros((20, 20), bool)
    img[2, 2:4] = True
    img[10, 2:18] = True
    out = edges.remove_small_components(img, 5)
    assert not out[2].any() and out[10, 2:18].all()


def test_draw_lines_width_matches_the_requested_pen_width() -> None:
    skel = np.zeros((64, 64), bool)
    skel[10:54, 32] = True
    for width in (1.25, 2.5):
        drawn = edges.draw_lines(skel, width)
        ink = (255 - drawn[20:40].astype(np.float64)) / 255.0
        assert ink.sum(axis=1).mean() == pytest.approx(width, abs=0.15)


def test_compose_rejects_mismatched_inputs() -> None:
    with pytest.raises(ValueError, match="differ in size"):
        edges.compose_sketch(np.zeros((32, 32), np.float32), np.zeros((16, 16, 3), np.uint8))
    with pytest.raises(ValueError, match="mask"):
        edges.compose_sketch(
            np.zeros((32, 32), np.float32), np.zeros((32, 32, 3), np.uint8), np.zeros((8, 8))
        )


# -- with the HED network ------------------------------------------------------------
def test_photo_to_sketch_is_white_paper_with_thin_lines_only_inside_the_mask() -> None:
    from facesketch.engine.sketchify import photo_to_sketch

    img = _cartoon_face(128)
    mask = np.zeros((128, 128), np.uint8)
    mask[:, 16:112] = 255  # the photo covered only the middle; the sides were padding
    sketch = photo_to_sketch(img, mask)
    assert sketch.dtype == np.uint8 and sketch.shape == (128, 128)
    assert (sketch > 200).mean() > 0.85
    assert (sketch < 128).sum() > 100  # the face was drawn
    assert (sketch[mask == 0] == 255).all()
    assert _line_width(sketch) < 2.2
    # eyes are drawn: dark pixels near both eye centres
    for ex in (46, 82):
        assert (sketch[54:71, ex - 12 : ex + 13] < 128).any()


def test_extractor_batches_match_single_images_and_reject_bad_input() -> None:
    from facesketch.engine.sketchify import SketchExtractor

    faces = [_cartoon_face(96), np.ascontiguousarray(_cartoon_face(96)[:, ::-1]), _cartoon_face(64)]
    ex = SketchExtractor(batch_size=2, precision="fp32")
    batched = ex(faces)
    single = [ex([f])[0] for f in faces]
    assert [b.shape for b in batched] == [(96, 96), (96, 96), (64, 64)]
    for b, s in zip(batched, single, strict=True):
        assert np.mean(b != s) < 0.01
    with pytest.raises(ValueError, match="uint8 RGB"):
        ex([np.zeros((32, 32), np.uint8)])
    with pytest.raises(ValueError, match="square"):
        ex([np.zeros((32, 48, 3), np.uint8)])
    with pytest.raises(ValueError, match="masks"):
        ex(faces, [None])


def test_cli_sketchifies_an_aligned_photo_and_reports_bad_files(tmp_path, capsys) -> None:
    from facesketch.cli import main
    from facesketch.imaging import read_sketch, write_image

    photo = write_image(tmp_path / "face.png", _cartoon_face(100))
    out = tmp_path / "sketch.png"
    assert main(["sketchify", str(photo), "-o", str(out), "--aligned", "--size", "96"]) == 0
    sketch = read_sketch(out)
    assert sketch.shape == (96, 96) and (sketch < 128).any() and (sketch > 200).mean() > 0.85

    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not an image")
    assert main(["sketchify", str(bad), "-o", str(out), "--aligned"]) == 1
    assert "bad.png" in capsys.readouterr().err
    wide = write_image(tmp_path / "wide.png", np.zeros((40, 80, 3), np.uint8))
    assert main(["sketchify", str(wide), "-o", str(out), "--aligned"]) == 1
    assert "square" in capsys.readouterr().err


def _pencil_drawing(size: int = 128) -> np.ndarray:
    """A shaded 'pencil drawing': grey hair mass and cheek shading with dark contours."""
    g = np.full((size, size), 250, np.uint8)
    cv2.ellipse(g, (64, 30), (46, 26), 0, 180, 360, 110, -1)  # shaded hair
    cv2.rectangle(g, (20, 30), (40, 110), 150, -1)
    cv2.rectangle(g, (88, 30), (108, 110), 150, -1)
    cv2.ellipse(g, (64, 70), (38, 50), 0, 0, 360, 30, 2)  # face contour
    for ex in (48, 80):
        cv2.ellipse(g, (ex, 62), (8, 4), 0, 0, 360, 20, 2)
    cv2.line(g, (52, 100), (76, 100), 20, 2)
    return g


def test_shaded_drawings_are_told_from_line_sketches() -> None:
    from facesketch.engine.sketchify import is_shaded_drawing

    lines = np.full((128, 128), 255, np.uint8)
    cv2.ellipse(lines, (64, 70), (38, 50), 0, 0, 360, 0, 2, cv2.LINE_AA)
    cv2.line(lines, (52, 100), (76, 100), 0, 2, cv2.LINE_AA)
    assert not is_shaded_drawing(lines)
    assert is_shaded_drawing(_pencil_drawing())
    assert is_shaded_drawing(cv2.cvtColor(_pencil_drawing(), cv2.COLOR_GRAY2RGB))


def test_drawing_to_lines_keeps_contours_drops_tone() -> None:
    from facesketch.engine.sketchify import drawing_to_lines, is_shaded_drawing

    drawing = _pencil_drawing()
    lines = drawing_to_lines(drawing)
    assert lines.shape == drawing.shape and lines.dtype == np.uint8
    assert not is_shaded_drawing(lines)
    dark = lines < 128
    assert dark[40:100, 20:108].any()  # the contours are still there
    assert dark.mean() < (drawing < 200).mean() / 2  # the shaded areas are not
