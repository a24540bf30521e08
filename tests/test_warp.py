"""The landmark-driven TPS warp: moves what was asked, keeps what was not, has gradients."""

from __future__ import annotations

import math

import pytest
import torch

from facesketch.models.warp import tps_backward_map, tps_warp


def _landmarks(n: int, k: int = 68, size: int = 128, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return size * (0.2 + 0.6 * torch.rand(n, k, 2, generator=g))


def _dot(size: int, x: int, y: int) -> torch.Tensor:
    img = torch.zeros(1, 1, size, size)
    img[0, 0, y - 1 : y + 2, x - 1 : x + 2] = torch.tensor(
        [[0.3, 0.6, 0.3], [0.6, 1.0, 0.6], [0.3, 0.6, 0.3]]
    )
    return img


def _centroid(img: torch.Tensor) -> tuple[float, float]:
    """Intensity centroid in pixel-centre (i + 0.5) coordinates."""
    m = img[0, 0].clamp_min(0)
    h, w = m.shape
    ys = torch.arange(h, dtype=m.dtype) + 0.5
    xs = torch.arange(w, dtype=m.dtype) + 0.5
    total = m.sum()
    return float((m.sum(0) * xs).sum() / total), float((m.sum(1) * ys).sum() / total)


def test_identity_when_points_do_not_move() -> None:
    img = torch.rand(2, 3, 64, 80)
    pts = _landmarks(2, 20, 64)
    out, valid = tps_warp(img, pts, pts.clone())
    assert torch.allclose(out, img, atol=1e-4)
    assert torch.all(valid == 1)


def test_known_affine_is_reproduced() -> None:
    size = 96
    angle, scale, tx, ty = math.radians(12), 0.8, 7.0, -5.0
    a = torch.tensor(
        [
            [scale * math.cos(angle), -scale * math.sin(angle)],
            [scale * math.sin(angle), scale * math.cos(angle)],
        ]
    )
    src = _landmarks(1, 30, size, seed=3)
    centre = torch.tensor([size / 2, size / 2])
    dst = (src - centre) @ a.T + centre + torch.tensor([tx, ty])
    where = tps_backward_map(src, dst, size, size)
    # The backward map must be the inverse affine at every output pixel centre.
    ys, xs = torch.meshgrid(torch.arange(size) + 0.5, torch.arange(size) + 0.5, indexing="ij")
    out_px = torch.stack([xs, ys], -1)
    expected = (out_px - centre - torch.tensor([tx, ty])) @ torch.linalg.inv(a).T + centre
    assert (where[0] - expected).abs().max() < 1e-2


@pytest.mark.parametrize("device", ["cpu", "cuda"])
def test_dot_lands_where_asked(device: str) -> None:
    if device == "cuda" and not torch.cuda.is_available():
        pytest.skip("no CUDA device on this machine")
    size = 128
    # Move a dot at one landmark; the other landmarks stay put.
    src = _landmarks(1, 12, size, seed=5)
    src[0, 0] = torch.tensor([40.5, 50.5])
    dst = src.clone()
    dst[0, 0] = torch.tensor([52.5, 61.5])
    img = _dot(size, 40, 50)
    out, valid = tps_warp(img.to(device), src.to(device), dst.to(device))
    x, y = _centroid(out.cpu())
    assert abs(x - 52.5) < 1.0 and abs(y - 61.5) < 1.0
    assert valid.shape == (1, 1, size, size)


def test_batched_items_warp_independently() -> None:
    size = 64
    img = torch.rand(3, 1, size, size)
    src = _landmarks(3, 10, size, seed=7)
    dst = src + torch.randn(3, 10, 2, generator=torch.Generator().manual_seed(1)) * 2
    batch, _ = tps_warp(img, src, dst)
    for i in range(3):
        single, _ = tps_warp(img[i : i + 1], src[i : i + 1], dst[i : i + 1])
        assert torch.allclose(batch[i : i + 1], single, atol=1e-5)


def test_gradients_reach_image_and_points() -> None:
    img = torch.rand(1, 1, 48, 48, requires_grad=True)
    src = _landmarks(1, 8, 48).requires_grad_(True)
    dst = (src.detach() + 3.0).requires_grad_(True)
    out, _ = tps_warp(img, src, dst)
    out.mean().backward()
    for t in (img, src, dst):
        assert t.grad is not None and torch.isfinite(t.grad).all() and t.grad.abs().sum() > 0


def test_valid_is_zero_where_the_source_ends() -> None:
    size = 64
    src = _landmarks(1, 6, size)
    dst = src + torch.tensor([20.0, 0.0])  # everything moves 20 px right
    out, valid = tps_warp(torch.rand(1, 3, size, size), src, dst)
    assert torch.all(valid[0, 0, :, :18] == 0)  # nothing came from left of the image
    assert torch.all(valid[0, 0, :, 22:] == 1)
    # src_valid is warped too: an invalid left half of the source moves right.
    src_valid = torch.ones(1, 1, size, size)
    src_valid[..., :32] = 0
    _, valid2 = tps_warp(torch.rand(1, 3, size, size), src, dst, src_valid=src_valid)
    assert valid2[0, 0, :, :50].max() < 0.5 and valid2[0, 0, :, 54:].min() > 0.99


def test_bad_shapes_are_refused_with_a_message() -> None:
    with pytest.raises(ValueError, match="src_pts and dst_pts"):
        tps_warp(torch.rand(1, 1, 8, 8), torch.rand(1, 4, 2), torch.rand(1, 5, 2))
