"""Edge smoothing of cartoon images (CartoonGAN's extra negatives)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from facesketch.imaging import read_image, write_image
from train.edge_smooth import edge_mask, edge_smooth, main


def _cartoon(size: int = 48) -> np.ndarray:
    """Flat colour regions with hard edges, like a cel-shaded drawing."""
    img = np.full((size, size, 3), (230, 200, 160), np.uint8)
    cv2.circle(img, (size // 2, size // 2), size // 4, (40, 60, 200), -1)
    cv2.rectangle(img, (2, 2), (size // 5, size - 3), (10, 120, 30), -1)
    return img


def _reference_loop(rgb: np.ndarray, k: int = 5) -> np.ndarray:
    """The public PyTorch port's per-pixel loop (rounded instead of truncated)."""
    g = cv2.getGaussianKernel(k, 0)
    gauss = g * g.T
    pad = np.pad(rgb, ((k // 2, k // 2), (k // 2, k // 2), (0, 0)), mode="reflect")
    out = rgb.copy()
    ys, xs = np.nonzero(edge_mask(rgb, k))
    for y, x in zip(ys, xs, strict=True):
        for c in range(3):
            out[y, x, c] = np.rint(np.sum(pad[y : y + k, x : x + k, c] * gauss))
    return out


def test_flat_image_unchanged() -> None:
    flat = np.full((32, 40, 3), 123, np.uint8)
    assert np.array_equal(edge_smooth(flat), flat)


def test_edges_blurred_rest_identical() -> None:
    img = _cartoon()
    out = edge_smooth(img)
    mask = edge_mask(img)
    assert mask.any() and not mask.all()
    assert np.array_equal(out[~mask], img[~mask])
    assert np.abs(out[mask].astype(int) - img[mask].astype(int)).sum() > 0
    # blurring lowers the local contrast across edges
    gx = lambda a: np.abs(np.diff(a.astype(int), axis=1)).max()  # noqa: E731
    assert gx(out) < gx(img)


def test_matches_reference_loop() -> None:
    img = _cartoon(40)
    ref = _reference_loop(img)
    assert np.abs(edge_smooth(img).astype(int) - ref.astype(int)).max() <= 1


def test_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="uint8 RGB"):
        edge_smooth(np.zeros((8, 8), np.uint8))
    with pytest.raises(ValueError, match="odd"):
        edge_smooth(_cartoon(), kernel_size=4)


def test_folder_cli(tmp_path) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    write_image(src / "a.png", _cartoon())
    (src / "broken.jpg").write_bytes(b"not an image")
    assert main([str(src), str(dst)]) == 1  # one unreadable file is reported
    out = read_image(dst / "a.png")
    assert np.array_equal(out, edge_smooth(_cartoon()))
    assert main([str(tmp_path / "missing"), str(dst)]) == 2
