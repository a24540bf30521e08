"""White-box Cartoonization's three representations (Wang & Yu, CVPR 2020).

A cartoon is judged on three separated views instead of one raw image:

* **surface** -- :func:`surface`: an edge-preserving guided filter of the image by
  itself (r=5, eps=0.2 on [-1, 1] images as in the paper); a discriminator on it
  learns smooth shading regions without looking at textures or lines;
* **structure** -- :func:`structure`: superpixel (Felzenszwalb or SLIC) regions
  painted with their mean colour; the generator's output is pulled towards its own
  flattened copy through a feature loss, which gives flat cel-shaded regions;
* **texture** -- :func:`texture`: a greyscale image with randomly shifted channel
  weights, so a discriminator on it sees lines and high-frequency detail but
  cannot steer colours.

Also :func:`guided_filter` (torch, differentiable) and :func:`tv_loss`.
Torch + numpy + scikit-image (CPU); no Qt, no dlib.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F


def box_filter(x: torch.Tensor, r: int) -> torch.Tensor:
    """Mean over a (2r+1)^2 window, border windows averaged over the pixels inside."""
    return F.avg_pool2d(x, 2 * r + 1, stride=1, padding=r, count_include_pad=False)


def guided_filter(guide: torch.Tensor, src: torch.Tensor, r: int, eps: float) -> torch.Tensor:
    """He et al.'s guided filter of ``src`` by ``guide`` (same shape, per channel)."""
    mean_g, mean_s = box_filter(guide, r), box_filter(src, r)
    cov = box_filter(guide * src, r) - mean_g * mean_s
    var = box_filter(guide * guide, r) - mean_g * mean_g
    a = cov / (var + eps)
    b = mean_s - a * mean_g
    return box_filter(a, r) * guide + box_filter(b, r)


def surface(x: torch.Tensor, r: int = 5, eps: float = 2e-1) -> torch.Tensor:
    """Surface representation: the image guided-filtered by itself."""
    return guided_filter(x, x, r, eps)


#: Channel weight ranges of the paper's random colour shift (R, G, B).
SHIFT_RANGES = ((0.199, 0.399), (0.487, 0.687), (0.014, 0.214))


def texture(*images: torch.Tensor, gen: torch.Generator | None = None) -> list[torch.Tensor]:
    """Texture representation of each batch with one shared random channel weighting.

    Returns (N, 3, H, W) tensors (the grey image repeated) so the usual 3-channel
    patch discriminator takes them.
    """
    w = torch.tensor(
        [lo + (hi - lo) * torch.rand(1, generator=gen).item() for lo, hi in SHIFT_RANGES]
    )
    w = (w / w.sum()).view(1, 3, 1, 1)
    out = []
    for x in images:
        g = (x * w.to(x.device, x.dtype)).sum(dim=1, keepdim=True)
        out.append(g.expand(-1, 3, -1, -1))
    return out


def superpixel_mean(rgb: np.ndarray, method: str = "slic", segments: int = 120) -> np.ndarray:
    """Each superpixel of ``rgb`` (float (H, W, 3)) filled with its mean colour."""
    from skimage.segmentation import felzenszwalb, slic

    h, w = rgb.shape[:2]
    if method == "slic":
        labels = slic(rgb, n_segments=segments, compactness=10.0, start_label=0, channel_axis=-1)
    elif method == "felzenszwalb":
        # scale tuned so a 128 px crop gives roughly ``segments`` regions
        labels = felzenszwalb(
            rgb, scale=h * w / segments / 2, sigma=0.8, min_size=h * w // (4 * segments)
        )
    else:
        raise ValueError(f"unknown superpixel method {method!r}; use felzenszwalb or slic")
    flat = labels.reshape(-1)
    n = int(flat.max()) + 1
    counts = np.bincount(flat, minlength=n).astype(np.float64)[:, None]
    sums = np.stack([np.bincount(flat, rgb[..., c].reshape(-1), n) for c in range(3)], 1)
    return (sums / np.maximum(counts, 1))[flat].reshape(h, w, 3).astype(rgb.dtype)


@torch.no_grad()
def structure(x: torch.Tensor, method: str = "slic", segments: int = 120) -> torch.Tensor:
    """Structure representation of a batch in [-1, 1] (a detached target)."""
    imgs = ((x.detach().float().clamp(-1, 1) + 1) / 2).permute(0, 2, 3, 1).cpu().numpy()
    flat = np.stack([superpixel_mean(im, method, segments) for im in imgs])
    return (torch.from_numpy(flat).permute(0, 3, 1, 2) * 2 - 1).to(x.device, x.dtype)


def tv_loss(x: torch.Tensor) -> torch.Tensor:
    """Mean squared difference of neighbouring pixels (suppresses high-frequency noise)."""
    dx = x[..., :, 1:] - x[..., :, :-1]
    dy = x[..., 1:, :] - x[..., :-1, :]
    return dx.pow(2).mean() + dy.pow(2).mean()


def hog(x: torch.Tensor, cell: int = 8, bins: int = 9) -> torch.Tensor:
    """Differentiable HOG of RGB in [-1, 1]: (N, bins, H/cell, W/cell), unit length per cell.

    Sobel gradients of the grey image, unsigned orientations soft-assigned to ``bins``
    (linear between neighbouring bin centres), magnitude-weighted and averaged per cell,
    then each cell's histogram scaled to unit L2 norm (plus a floor, so flat cells stay
    near zero instead of amplifying noise)."""
    grey = (0.299 * x[:, 0:1] + 0.587 * x[:, 1:2] + 0.114 * x[:, 2:3]) * 0.5
    k = x.new_tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]]) / 8
    g = F.pad(grey, (1, 1, 1, 1), mode="replicate")
    gx = F.conv2d(g, k.view(1, 1, 3, 3))
    gy = F.conv2d(g, k.t().reshape(1, 1, 3, 3))
    mag = torch.sqrt(gx * gx + gy * gy + 1e-8)
    ang = torch.remainder(torch.atan2(gy, gx), np.pi) / np.pi * bins  # in [0, bins)
    centres = torch.arange(bins, device=x.device, dtype=x.dtype).view(1, bins, 1, 1) + 0.5
    d = (ang - centres).abs()
    d = torch.minimum(d, bins - d)  # orientations wrap around
    hist = F.avg_pool2d(mag * (1 - d).clamp_min(0), cell)
    return hist / (hist.norm(dim=1, keepdim=True) + 0.02)


def hog_loss(fake: torch.Tensor, photo: torch.Tensor) -> torch.Tensor:
    """L1 between the HOGs of output and photo.

    dlib's face detector is a HOG detector: keeping the photo's cell-wise gradient
    orientations keeps the face findable (runs that only had feature content losses
    lost faces in 12-20 % of cartoons) and, since added hatching changes them too,
    also favours flat shading over scribbled texture."""
    return F.l1_loss(hog(fake), hog(photo))
