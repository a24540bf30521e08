"""Kernel Inception Distance (Bińkowski et al., ICLR 2018) on EfficientNet-Lite0 features.

KID is the unbiased squared MMD between two image sets' features under the cubic
polynomial kernel k(x, y) = (x.y / d + 1)^3, averaged over random subsets.  Unlike
FID it is unbiased for small sets, which is what a few hundred held-out selfies
give.  Features: the globally pooled final (1280-d head) features of the ImageNet
EfficientNet-Lite0 on 224 px inputs (:class:`train.projected.EffNetFeatures`).
Reported x1000, lower = the sets look more alike to the network.

Torch only (numpy for the image lists); usable by any training or evaluation code.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

#: Input side of the feature network.
KID_SIZE = 224


def polynomial_kernel(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """The cubic kernel (x.y / d + 1)^3 between rows of ``x`` and ``y`` (float64)."""
    d = x.shape[1]
    return (x @ y.T / d + 1.0) ** 3


def mmd2_unbiased(x: torch.Tensor, y: torch.Tensor) -> float:
    """Unbiased squared MMD of two feature sets (diagonals left out)."""
    m, n = x.shape[0], y.shape[0]
    kxx, kyy, kxy = polynomial_kernel(x, x), polynomial_kernel(y, y), polynomial_kernel(x, y)
    sxx = (kxx.sum() - kxx.diagonal().sum()) / (m * (m - 1))
    syy = (kyy.sum() - kyy.diagonal().sum()) / (n * (n - 1))
    return float(sxx + syy - 2 * kxy.mean())


def kid(
    feats_a: torch.Tensor,
    feats_b: torch.Tensor,
    subsets: int = 100,
    subset_size: int = 1000,
    seed: int = 0,
) -> tuple[float, float]:
    """KID x1000 (mean, std over ``subsets`` random subsets) of two (N, D) feature sets.

    The subset size is capped by the smaller set, as in the usual implementations.
    """
    a, b = feats_a.double().cpu(), feats_b.double().cpu()
    size = min(subset_size, a.shape[0], b.shape[0])
    if size < 2:
        raise ValueError(f"KID needs at least 2 features per set, got {a.shape[0]}, {b.shape[0]}")
    g = torch.Generator().manual_seed(seed)
    vals = []
    for _ in range(subsets):
        ia = torch.randperm(a.shape[0], generator=g)[:size]
        ib = torch.randperm(b.shape[0], generator=g)[:size]
        vals.append(mmd2_unbiased(a[ia], b[ib]))
    v = np.array(vals) * 1000
    return float(v.mean()), float(v.std())


@torch.no_grad()
def pooled_features(
    images: Iterable[np.ndarray], net: nn.Module | None = None, batch: int = 16
) -> torch.Tensor:
    """(N, 1280) pooled EfficientNet-Lite0 features of uint8 RGB images (resized to 224)."""
    if net is None:
        from train.projected import EffNetFeatures

        net = EffNetFeatures()
    net.eval()
    dev = next(net.parameters()).device
    out, chunk = [], []

    def flush() -> None:
        out.append(net(torch.cat(chunk).to(dev), pooled=True)[-1].float().cpu())
        chunk.clear()

    for img in images:
        if img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] != 3:
            raise ValueError(
                f"pooled_features expects uint8 RGB images, got {img.dtype} {img.shape}"
            )
        x = torch.from_numpy(img).permute(2, 0, 1)[None].float().div(127.5).sub(1)
        size = (KID_SIZE, KID_SIZE)
        chunk.append(F.interpolate(x, size=size, mode="bilinear", antialias=True))
        if len(chunk) == batch:
            flush()
    if chunk:
        flush()
    if not out:
        raise ValueError("pooled_features: no images")
    return torch.cat(out)
