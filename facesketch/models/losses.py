"""Losses of the sketch-to-face chain (pure torch; the feature network is plugged in).

Discriminator outputs are lists of feature maps whose last entry is the logit map
(:class:`PatchDiscriminator`) or lists of such lists (:class:`MultiScaleDiscriminator`);
every function here accepts both.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

Features = list[torch.Tensor]


def _scales(out: Sequence) -> list[Features]:
    """Normalise a single-scale feature list to a list of scales."""
    return [list(out)] if isinstance(out[0], torch.Tensor) else [list(s) for s in out]


def lsgan_d(real_out: Sequence, fake_out: Sequence) -> torch.Tensor:
    """LSGAN discriminator loss (Mao et al. 2017): real -> 1, fake -> 0, averaged over scales."""
    real, fake = _scales(real_out), _scales(fake_out)
    loss = sum(
        0.5
        * (F.mse_loss(r[-1], torch.ones_like(r[-1])) + F.mse_loss(f[-1], torch.zeros_like(f[-1])))
        for r, f in zip(real, fake, strict=True)
    )
    return loss / len(real)


def lsgan_g(fake_out: Sequence) -> torch.Tensor:
    """LSGAN generator loss: fake -> 1, averaged over scales."""
    fake = _scales(fake_out)
    return sum(F.mse_loss(f[-1], torch.ones_like(f[-1])) for f in fake) / len(fake)


def feature_matching(real_out: Sequence, fake_out: Sequence) -> torch.Tensor:
    """L1 between D's intermediate features of target and output (logits excluded).

    Cali-Sketch's calibration loss and pix2pixHD's feature-matching loss (eq. 4);
    targets are detached, so only the generator gets the gradient.
    """
    real, fake = _scales(real_out), _scales(fake_out)
    total, n = 0.0, 0
    for r, f in zip(real, fake, strict=True):
        for a, b in zip(r[:-1], f[:-1], strict=True):
            total = total + F.l1_loss(b, a.detach())
            n += 1
    return total / max(n, 1)  # type: ignore[return-value]


def mesh_loss(
    out: torch.Tensor,
    period: int = 4,
    sigma: float | None = None,
    target: torch.Tensor | None = None,
) -> torch.Tensor:
    """Mean size of the output's component on the ``period``-grid's harmonics that holds
    over ``sigma`` px (the coherent mesh an up-sampling decoder draws; real photos have
    almost none): trains the mesh away so no notch filter is needed at inference.  A
    small ``sigma`` also counts the photos' own fine texture at those frequencies
    (default: :data:`facesketch.models.filters.MESH_SIGMA`, what ``mesh_level`` uses).

    A sharp line is also coherent on the grid along its length (one 1-px line scores
    more than a visible mesh), so against zero the loss softens edges too.  With
    ``target`` (the photo) it asks for the target's own component instead: the photo's
    edges are kept, a mesh the photo does not have is not."""
    from facesketch.models.filters import MESH_SIGMA, periodic_pattern

    s = MESH_SIGMA if sigma is None else sigma
    pattern = periodic_pattern(out, period, s)
    if target is not None:
        with torch.no_grad():
            wanted = periodic_pattern(target.to(out.dtype), period, s)
        pattern = pattern - wanted
    return pattern.abs().mean()


def chroma_detail(x: torch.Tensor, sigma: float = 2.0) -> torch.Tensor:
    """(N, 2, H, W): the fine detail (above a Gaussian of ``sigma`` px) of an RGB
    image's two opponent-colour channels (R - G, (R + G) / 2 - B)."""
    from facesketch.models.filters import _blur

    r, g, b = x[:, 0:1], x[:, 1:2], x[:, 2:3]
    chroma = torch.cat([r - g, (r + g) / 2 - b], 1)
    return chroma - _blur(chroma, sigma)


def chroma_detail_loss(out: torch.Tensor, target: torch.Tensor, sigma: float = 2.0) -> torch.Tensor:
    """Mean |fine colour detail of ``out`` - that of ``target``|.  Real faces and hair
    carry their fine texture in lightness, hardly in colour; the fusion's band along
    the top edge is fine *coloured* speckle, which neither the mesh loss (not periodic)
    nor L1 (small next to the colour error) removes.  Where the target is the aligner's
    blurred fill, its detail is zero."""
    with torch.no_grad():
        wanted = chroma_detail(target.to(out.dtype), sigma)
    return (chroma_detail(out, sigma) - wanted).abs().mean()


def low_pass_l1(
    out: torch.Tensor, target: torch.Tensor, mask: torch.Tensor, sigma: float
) -> torch.Tensor:
    """:func:`masked_l1` of the two images below a Gaussian of ``sigma`` px: follow a
    target's colour and shading where its fine detail is not wanted (a band of noise)."""
    from facesketch.models.filters import _blur

    return masked_l1(_blur(out, sigma), _blur(target.to(out.dtype), sigma), mask)


def detail_l1(
    out: torch.Tensor, target: torch.Tensor, mask: torch.Tensor, sigma: float = 1.5
) -> torch.Tensor:
    """:func:`masked_l1` of the two images' detail above a Gaussian of ``sigma`` px.  Why:
    a student that follows its teacher with a plain L1 matches the shading first and
    leaves the fine detail soft (the resize fusion of session 18: gap 0.045, edge F1 and
    KID well behind its teacher's); this weighs the detail on its own."""
    from facesketch.models.filters import _blur

    target = target.to(out.dtype)
    return masked_l1(out - _blur(out, sigma), target - _blur(target, sigma), mask)


def border_detail(x: torch.Tensor, width: int, sigma: float = 2.0) -> torch.Tensor:
    """The fine detail (above a Gaussian of ``sigma`` px, reflected borders) of an
    image in the frame ``width`` px wide along its four edges, flattened (N, C, K).
    Why: :func:`mesh_loss` leaves out 3 sigma along the borders, where its estimate
    sees padding, and a decoder parks a mesh exactly there (the top-edge band)."""
    from facesketch.models.filters import _blur

    h, w = x.shape[-2:]
    b = max(1, min(int(width), h // 2, w // 2))
    d = x - _blur(x, sigma)
    strips = [d[..., :b, :], d[..., h - b :, :], d[..., b : h - b, :b], d[..., b : h - b, w - b :]]
    return torch.cat([s.flatten(-2) for s in strips], -1)


def border_detail_loss(
    out: torch.Tensor, target: torch.Tensor | None, width: int, sigma: float = 2.0
) -> torch.Tensor:
    """Mean |fine detail of ``out`` - that of ``target``| in the border frame (target
    ``None``: no detail wanted there).  A photo's hair texture the output cannot match
    pixel for pixel is asked for as less detail, not as a pattern."""
    mine = border_detail(out, width, sigma)
    if target is None:
        return mine.abs().mean()
    with torch.no_grad():
        wanted = border_detail(target.to(out.dtype), width, sigma)
    return (mine - wanted).abs().mean()


def masked_l1(
    pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None
) -> torch.Tensor:
    """Mean |pred - target| over valid pixels (mask (N, 1, H, W) in [0, 1]; None = all)."""
    diff = (pred - target).abs()
    if mask is None:
        return diff.mean()
    mask = mask.expand_as(diff)
    return (diff * mask).sum() / mask.sum().clamp_min(1.0)


class PerceptualLoss(nn.Module):
    """Weighted L1 between feature-network activations of output and target.

    ``features`` maps a preprocessed batch to a list of feature maps (e.g. the HED
    VGG16 trunk, or torchvision's VGG19 when available); ``preprocess`` turns RGB
    in [-1, 1] into that network's input.  With a validity mask, both images get the
    target's pixels outside the mask, so unknown borders add no loss.
    The feature network is frozen and kept out of this module's state dict.
    """

    def __init__(
        self,
        features: nn.Module,
        preprocess: Callable[[torch.Tensor], torch.Tensor],
        weights: Sequence[float] | None = None,
    ) -> None:
        super().__init__()
        features.requires_grad_(False).eval()
        object.__setattr__(self, "features", features)  # not a submodule: not checkpointed
        self.preprocess = preprocess
        self.weights = tuple(weights) if weights is not None else None

    def to(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        """Move the (unregistered) feature network too."""
        self.features.to(*args, **kwargs)
        return super().to(*args, **kwargs)

    def forward(
        self, pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        if mask is not None:
            pred = pred * mask + target * (1 - mask)
        fp = self.features(self.preprocess(pred))
        with torch.no_grad():
            ft = self.features(self.preprocess(target))
        w = self.weights or (1.0,) * len(fp)
        return sum(wi * F.l1_loss(a, b) for wi, a, b in zip(w, fp, ft, strict=True)) / sum(w)


def mean_color(x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Masked per-channel mean colour (N, C): the appearance statistic eval compares."""
    if mask is None:
        return x.mean(dim=(2, 3))
    m = mask.expand_as(x)
    return (x * m).sum(dim=(2, 3)) / m.sum(dim=(2, 3)).clamp_min(1.0)
