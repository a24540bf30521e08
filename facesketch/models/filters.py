"""Fixed (untrained) filters applied to network outputs at inference."""

from __future__ import annotations

import torch
import torch.nn.functional as F

#: The lite fusion decoder's transposed convolutions leave a mesh repeating every 2 and
#: 4 pixels; a notch at that grid's harmonics removes it.
DEFAULT_PERIOD = 4


def _gaussian(sigma: float, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    radius = max(1, int(3 * sigma + 0.5))
    t = torch.arange(-radius, radius + 1, device=device, dtype=torch.float32)
    k = torch.exp(-(t**2) / (2 * sigma**2))
    return (k / k.sum()).to(dtype)


def _blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur with reflected borders (falls back to replicate on tiny maps)."""
    k = _gaussian(sigma, x.device, x.dtype)
    r, c = len(k) // 2, x.shape[1]
    mode = "reflect" if min(x.shape[-2:]) > r else "replicate"
    x = F.pad(x, (r, r, r, r), mode=mode)
    x = F.conv2d(x, k.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
    return F.conv2d(x, k.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)


def binomial_blur(x: torch.Tensor) -> torch.Tensor:
    """Separable [1, 2, 1] / 4 blur with reflected borders: zero response at the 2-px
    period and half at the 4-px one, so what a notch leaves of a transposed-conv grid
    is gone while features wider than a few pixels pass almost unchanged."""
    c = x.shape[1]
    k = torch.tensor([0.25, 0.5, 0.25], device=x.device, dtype=x.dtype)
    mode = "reflect" if min(x.shape[-2:]) > 1 else "replicate"
    x = F.pad(x, (1, 1, 1, 1), mode=mode)
    x = F.conv2d(x, k.view(1, 1, 1, 3).expand(c, 1, 1, 3), groups=c)
    return F.conv2d(x, k.view(1, 1, 3, 1).expand(c, 1, 3, 1), groups=c)


def remove_periodic_pattern(
    x: torch.Tensor, period: int = DEFAULT_PERIOD, sigma: float = 4.0
) -> torch.Tensor:
    """Remove the checkerboard that strided transposed convolutions leave, keep the image.

    The pattern repeats every ``period`` pixels with a slowly varying strength. Its
    estimate at a pixel is the local mean of the pixels in the same phase of the
    ``period``-grid (a Gaussian over that sub-lattice) minus the local mean of all
    pixels: together a narrow notch at the grid's harmonics only. On real photos it
    changes about 41 dB PSNR worth (invisible); on the lite fusion output it removes
    the mesh. ``x`` is (N, C, H, W); H and W are padded up to a multiple of ``period``.
    """
    if period < 2:
        return x
    h, w = x.shape[-2:]
    ph, pw = (-h) % period, (-w) % period
    y = F.pad(x, (0, pw, 0, ph), mode="replicate") if ph or pw else x
    phase_mean = F.pixel_shuffle(_blur(F.pixel_unshuffle(y, period), sigma / period), period)
    out = y - (phase_mean - _blur(y, sigma))
    return out[..., :h, :w]


def periodic_pattern(
    x: torch.Tensor, period: int = DEFAULT_PERIOD, sigma: float = 4.0, margin: int | None = None
) -> torch.Tensor:
    """What :func:`remove_periodic_pattern` takes away: the image's component on the
    ``period``-grid's harmonics.  Real photos have almost none (about 41 dB below the
    image), so its size measures an up-sampler's mesh, and as a loss it trains the mesh
    away at its cause instead of filtering it at inference.  ``margin`` pixels along the
    borders (default 3 sigma), where the estimate sees padding, are left out."""
    m = int(3 * sigma + 0.5) if margin is None else margin
    p = x - remove_periodic_pattern(x, period, sigma)
    h, w = p.shape[-2:]
    return p[..., m : h - m, m : w - m] if min(h, w) > 2 * m + period else p


#: The mesh measure's and loss's reach (px): a component of the grid's harmonics that
#: holds this far is a mesh; over a few px it is mostly a photo's own fine texture
#: (at 256: photos 0.68 levels with sigma 4, 0.17 with 16; a visible mesh 1.3).
MESH_SIGMA = 16.0


def mesh_level(x: torch.Tensor, period: int = DEFAULT_PERIOD, sigma: float = MESH_SIGMA) -> float:
    """RMS of the coherent periodic component of images in [-1, 1], 8-bit grey levels."""
    p = periodic_pattern(x.float(), period, sigma)
    return float(p.pow(2).mean().sqrt()) * 127.5
