"""Face detection and alignment on real photos, and the bad-input paths."""

from __future__ import annotations

import numpy as np
import pytest

from facesketch.face import NoFaceError, align_face, detect_faces
from facesketch.face.align import landmark_centres
from facesketch.imaging import ImageError, read_image, write_image
from facesketch.layout import LEFT_EYE, RIGHT_EYE, FaceLayout

skdata = pytest.importorskip("skimage.data", reason="scikit-image (dev extra) provides a photo")


@pytest.fixture(scope="module")
def astronaut() -> np.ndarray:
    return skdata.astronaut()


def _eye_error(aligned, size: int) -> float:
    centres = landmark_centres(aligned.landmarks)
    targets = FaceLayout.default(size).alignment_targets()
    return max(float(np.hypot(*(centres[n] - np.array(targets[n])))) for n in (LEFT_EYE, RIGHT_EYE))


def test_alignment_puts_eyes_in_their_windows(astronaut):
    aligned = align_face(astronaut, size=512)
    assert aligned.image.shape == (512, 512, 3) and aligned.image.dtype == np.uint8
    assert aligned.mask.shape == (512, 512)
    assert _eye_error(aligned, 512) < 6.0


def test_alignment_on_shared_references(shared_data):
    refs = sorted((shared_data / "references").glob("*.jpg"))[:4]
    errors = []
    for p in refs:
        try:
            errors.append(_eye_error(align_face(read_image(p), size=512), 512))
        except NoFaceError:
            continue
    assert errors, "no face found in any of the first reference photos"
    assert np.median(errors) < 8.0


def test_no_face_gives_clear_error():
    flat = np.full((300, 300, 3), 128, np.uint8)
    with pytest.raises(NoFaceError, match="no face"):
        align_face(flat, size=256, source="flat.png")


def test_corrupt_file_gives_image_error(tmp_path):
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    with pytest.raises(ImageError, match="broken.jpg"):
        read_image(bad)


@pytest.mark.parametrize("kind", ["gray", "rgba", "16bit"])
def test_unusual_formats_still_align(tmp_path, astronaut, kind):
    if kind == "gray":
        img = astronaut.mean(axis=2).astype(np.uint8)
    elif kind == "rgba":
        img = np.dstack([astronaut, np.full(astronaut.shape[:2], 255, np.uint8)])
    else:
        img = astronaut.astype(np.uint16) * 257
    path = tmp_path / f"{kind}.png"
    import cv2

    arr = (
        img
        if img.ndim == 2
        else cv2.cvtColor(img, cv2.COLOR_RGBA2BGRA if kind == "rgba" else cv2.COLOR_RGB2BGR)
    )
    cv2.imwrite(str(path), arr)
    rgb = read_image(path)
    assert rgb.dtype == np.uint8 and rgb.shape[2] == 3
    assert align_face(rgb, size=256).image.shape == (256, 256, 3)


def test_huge_image_is_downscaled(tmp_path, astronaut):
    import cv2

    big = cv2.resize(astronaut, (4096, 4096))
    path = write_image(tmp_path / "big.jpg", big)
    rgb = read_image(path)
    assert max(rgb.shape[:2]) <= 2048
    assert align_face(rgb, size=256).image.shape == (256, 256, 3)


def test_several_faces_sorted_and_selectable(astronaut):
    pair = np.hstack([astronaut, astronaut[:, :, ::-1].copy()])
    faces = detect_faces(pair)
    assert len(faces) >= 2
    assert faces[0].score >= faces[1].score
    a0 = align_face(pair, size=256, face_index=0)
    a1 = align_face(pair, size=256, face_index=1)
    assert not np.array_equal(a0.image, a1.image)
    with pytest.raises(NoFaceError):
        align_face(pair, size=256, face_index=5)
