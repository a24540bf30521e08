"""Landmark-driven thin-plate-spline warp (pure torch, differentiable, batched).

Used to move real pixels (a reference photo) onto a sketch's geometry and to
canonicalise a sketch drawn off-centre: the feature at ``src_pts`` in the input
lands at ``dst_pts`` in the output.  The spline is fitted from output to input
(a backward map) and evaluated with ``grid_sample``, so gradients reach the
image and both point sets and it runs on whatever device the tensors are on.

Coordinate convention: pixel ``i`` covers ``[i, i + 1)`` and its centre is
``i + 0.5`` (``grid_sample`` with ``align_corners=False``).  dlib / OpenCV points
put the centre at ``i``; for a warp within one image size the half-pixel offset
is a shift of both point sets, which changes the result by at most
``0.5 * |1 - scale|`` pixels.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

#: Output side above which the backward map is evaluated on a coarser lattice and
#: interpolated (a TPS is smooth; this keeps a 512 warp to a few milliseconds).
MAX_MAP_SIDE = 128
#: Anchor points per border edge (corners included) that keep the frame from folding.
ANCHORS_PER_EDGE = 5
#: Ridge on the affine fit's linear part: pulls degenerate point sets (one point,
#: collinear points) towards a pure translation instead of failing.
_AFFINE_RIDGE = 1e-6


def _tps_kernel(d2: torch.Tensor) -> torch.Tensor:
    """U(r) = r^2 log r^2 of squared distances (0 at r = 0)."""
    return d2 * torch.log(d2.clamp_min(1e-12))


def _fit_affine(src: torch.Tensor, dst: torch.Tensor) -> torch.Tensor:
    """Least-squares affine (N, 3, 2) with ``[x, y, 1] @ A ~= dst`` for points ``src``."""
    n, k, _ = src.shape
    p = torch.cat([src, src.new_ones(n, k, 1)], dim=2)  # (N, K, 3)
    ridge = torch.diag(src.new_tensor([_AFFINE_RIDGE, _AFFINE_RIDGE, 0.0]))
    eye = src.new_zeros(3, 2)
    eye[0, 0] = eye[1, 1] = 1.0
    lhs = p.transpose(1, 2) @ p + ridge
    # A tiny ridge on the translation too, only so the solve is never singular.
    lhs = lhs + 1e-9 * torch.eye(3, dtype=src.dtype, device=src.device)
    rhs = p.transpose(1, 2) @ dst + ridge @ eye
    return torch.linalg.solve(lhs, rhs)


def _border_anchors(h: int, w: int, unit: float, like: torch.Tensor) -> torch.Tensor:
    """Points on the output frame's border (normalised units), (A, 2)."""
    t = torch.linspace(0.0, 1.0, ANCHORS_PER_EDGE, dtype=like.dtype, device=like.device)
    xs, ys = t * w / unit, t * h / unit
    zero_x, zero_y = torch.zeros_like(xs), torch.zeros_like(ys)
    top = torch.stack([xs, zero_x], 1)
    bottom = torch.stack([xs, zero_x + h / unit], 1)
    left = torch.stack([zero_y, ys], 1)[1:-1]
    right = torch.stack([zero_y + w / unit, ys], 1)[1:-1]
    return torch.cat([top, bottom, left, right], 0)


def fit_tps(ctrl: torch.Tensor, target: torch.Tensor, reg: float = 0.0) -> torch.Tensor:
    """TPS coefficients (N, K + 3, 2) mapping ``ctrl`` (N, K, 2) onto ``target``.

    ``reg`` > 0 relaxes interpolation into smoothing (useful with noisy landmarks).
    """
    n, k, _ = ctrl.shape
    d2 = (ctrl[:, :, None, :] - ctrl[:, None, :, :]).pow(2).sum(-1)
    kmat = _tps_kernel(d2) + reg * torch.eye(k, dtype=ctrl.dtype, device=ctrl.device)
    p = torch.cat([ctrl, ctrl.new_ones(n, k, 1)], dim=2)
    top = torch.cat([kmat, p], dim=2)
    bottom = torch.cat([p.transpose(1, 2), ctrl.new_zeros(n, 3, 3)], dim=2)
    system = torch.cat([top, bottom], dim=1)
    rhs = torch.cat([target, target.new_zeros(n, 3, 2)], dim=1)
    return torch.linalg.solve(system, rhs)


def eval_tps(coef: torch.Tensor, ctrl: torch.Tensor, pts: torch.Tensor) -> torch.Tensor:
    """Evaluate the spline ``coef`` (from :func:`fit_tps` on ``ctrl``) at ``pts`` (N, M, 2)."""
    n, m, _ = pts.shape
    # |p - c|^2 by expansion: one matmul instead of an (N, M, K, 2) difference tensor.
    d2 = (
        pts.pow(2).sum(-1, keepdim=True)
        + ctrl.pow(2).sum(-1)[:, None, :]
        - 2 * pts @ ctrl.transpose(1, 2)
    ).clamp_min(0)
    basis = torch.cat([_tps_kernel(d2), pts, pts.new_ones(n, m, 1)], dim=2)
    return basis @ coef


def tps_backward_map(
    src_pts: torch.Tensor,
    dst_pts: torch.Tensor,
    h: int,
    w: int,
    reg: float = 0.0,
    map_side: int = MAX_MAP_SIDE,
) -> torch.Tensor:
    """For each output pixel centre, where to sample the input: (N, H, W, 2) pixels.

    Fitted on the control points (dst -> src) plus border anchors of the output
    frame, which follow the best affine fit of the control points (so an affine
    motion is reproduced exactly and the border never folds over the face).
    The map is evaluated on at most ``map_side`` x ``map_side`` pixel centres and
    interpolated; use a larger ``map_side`` (or ``reg`` > 0) for sharp local warps.
    """
    if src_pts.shape != dst_pts.shape or src_pts.dim() != 3 or src_pts.shape[-1] != 2:
        raise ValueError(
            f"src_pts and dst_pts must both be (N, K, 2); got {tuple(src_pts.shape)} "
            f"and {tuple(dst_pts.shape)}"
        )
    n = src_pts.shape[0]
    out_dtype = torch.float64 if src_pts.dtype == torch.float64 else torch.float32
    # The TPS system is small (K + anchors) but ill-conditioned for clustered points:
    # solve and evaluate in float64 (the lattice is at most MAX_MAP_SIDE^2 points).
    dtype = torch.float32 if src_pts.device.type == "mps" else torch.float64
    unit = float(max(h, w))  # normalise so the kernel is well conditioned
    src = src_pts.to(dtype) / unit
    dst = dst_pts.to(dtype) / unit
    affine = _fit_affine(dst, src)  # (N, 3, 2), dst -> src
    anchors = _border_anchors(h, w, unit, dst).expand(n, -1, -1)
    anchors_src = torch.cat([anchors, anchors.new_ones(n, anchors.shape[1], 1)], 2) @ affine
    ctrl = torch.cat([dst, anchors], 1)
    target = torch.cat([src, anchors_src], 1)
    coef = fit_tps(ctrl, target, reg)

    mh, mw = min(h, map_side), min(w, map_side)
    ys = torch.linspace(0.5, h - 0.5, mh, dtype=dtype, device=src.device) / unit
    xs = torch.linspace(0.5, w - 0.5, mw, dtype=dtype, device=src.device) / unit
    gy, gx = torch.meshgrid(ys, xs, indexing="ij")
    lattice = torch.stack([gx, gy], -1).reshape(1, -1, 2).expand(n, -1, -1)
    # Evaluate in the output precision (the expensive part); coefficients stay float64-fitted.
    mapped = eval_tps(coef.to(out_dtype), ctrl.to(out_dtype), lattice.to(out_dtype))
    mapped = mapped.reshape(n, mh, mw, 2) * unit
    if (mh, mw) != (h, w):
        # Lattice points sit exactly on the first/last pixel centres, so
        # align_corners=True interpolation lands on every pixel centre.
        mapped = F.interpolate(
            mapped.permute(0, 3, 1, 2), size=(h, w), mode="bilinear", align_corners=True
        ).permute(0, 2, 3, 1)
    return mapped


def tps_warp(
    image: torch.Tensor,
    src_pts: torch.Tensor,
    dst_pts: torch.Tensor,
    reg: float = 0.0,
    src_valid: torch.Tensor | None = None,
    padding_mode: str = "border",
    map_side: int = MAX_MAP_SIDE,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Warp ``image`` (N, C, H, W) so content at ``src_pts`` lands at ``dst_pts``.

    Points are (N, K, 2) (x, y) pixels of the image (see the module docstring for
    the pixel convention).  Returns ``(warped, valid)``: ``valid`` (N, 1, H, W) is
    ~1 where the sample fell inside the source image (and inside ``src_valid``,
    when given) and ~0 elsewhere; outside, ``warped`` follows ``padding_mode``.
    """
    if image.dim() != 4:
        raise ValueError(f"image must be (N, C, H, W); got {tuple(image.shape)}")
    n, _, h, w = image.shape
    if src_pts.shape[0] != n:
        raise ValueError(f"{n} images but {src_pts.shape[0]} point sets")
    where = tps_backward_map(src_pts, dst_pts, h, w, reg, map_side)
    grid = torch.stack([where[..., 0] / w * 2 - 1, where[..., 1] / h * 2 - 1], -1)
    grid = grid.to(image.dtype)
    warped = F.grid_sample(
        image, grid, mode="bilinear", padding_mode=padding_mode, align_corners=False
    )
    ones = image.new_ones(n, 1, h, w) if src_valid is None else src_valid.to(image.dtype)
    valid = F.grid_sample(ones, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    if src_valid is None:
        # Inside the frame bilinear weights of a ones image sum to 1 exactly; the
        # fall-off spans the last half pixel, so threshold it to a clean mask.
        valid = (valid > 0.5).to(image.dtype)
    return warped, valid


def random_smooth_flow(
    n: int,
    h: int,
    w: int,
    magnitude_px: float,
    generator: torch.Generator | None = None,
    cells: int = 4,
) -> torch.Tensor:
    """Random smooth displacements (N, H, W, 2), (dx, dy) in pixels, |d| <~ magnitude_px.

    Uniform random offsets on a (cells + 1)^2 lattice, bicubic-interpolated to the
    image: a deformation like a wrong landmark fit (features a few pixels off, no
    folds for magnitudes below a lattice cell).  CPU tensor; move it where needed.
    """
    coarse = (torch.rand(n, 2, cells + 1, cells + 1, generator=generator) * 2 - 1) * magnitude_px
    dense = F.interpolate(coarse, size=(h, w), mode="bicubic", align_corners=True)
    return dense.permute(0, 2, 3, 1).contiguous()


def apply_flow(
    image: torch.Tensor, flow_px: torch.Tensor, padding_mode: str = "border"
) -> torch.Tensor:
    """``image`` (N, C, H, W) sampled at each pixel centre + ``flow_px`` (N, H, W, 2)."""
    n, _, h, w = image.shape
    ys = (torch.arange(h, device=image.device, dtype=image.dtype) + 0.5) / h * 2 - 1
    xs = (torch.arange(w, device=image.device, dtype=image.dtype) + 0.5) / w * 2 - 1
    gy, gx = torch.meshgrid(ys, xs, indexing="ij")
    f = flow_px.to(image)
    grid = torch.stack([gx + f[..., 0] * 2 / w, gy + f[..., 1] * 2 / h], dim=-1)
    return F.grid_sample(
        image, grid, mode="bilinear", padding_mode=padding_mode, align_corners=False
    )


__all__ = [
    "apply_flow",
    "eval_tps",
    "fit_tps",
    "random_smooth_flow",
    "tps_backward_map",
    "tps_warp",
]
