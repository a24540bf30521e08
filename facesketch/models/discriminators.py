"""PatchGAN discriminators that expose their intermediate features.

The features serve Cali-Sketch's calibration loss and pix2pixHD's feature-matching
loss; the last entry of each returned list is the patch logit map (LSGAN).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from facesketch.models.blocks import BaseNetwork


class PatchDiscriminator(BaseNetwork):
    """70x70-style PatchGAN: ``n_layers`` stride-2 convs, then two stride-1 convs."""

    def __init__(self, in_ch: int, base: int = 64, n_layers: int = 3, max_ch: int = 512) -> None:
        super().__init__()
        layers: list[nn.Module] = [
            nn.Sequential(nn.Conv2d(in_ch, base, 4, 2, 1), nn.LeakyReLU(0.2, inplace=True))
        ]
        ch = base
        for i in range(1, n_layers + 1):
            nxt = min(base * 2**i, max_ch)
            stride = 2 if i < n_layers else 1
            layers.append(
                nn.Sequential(
                    nn.Conv2d(ch, nxt, 4, stride, 1),
                    nn.InstanceNorm2d(nxt, affine=True),
                    nn.LeakyReLU(0.2, inplace=True),
                )
            )
            ch = nxt
        layers.append(nn.Conv2d(ch, 1, 4, 1, 1))
        self.layers = nn.ModuleList(layers)
        self.init_weights()

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Intermediate features of every layer; the last one is the patch logit map."""
        feats = []
        for layer in self.layers:
            x = layer(x)
            feats.append(x)
        return feats


class MultiScaleDiscriminator(BaseNetwork):
    """pix2pixHD's discriminators at ``n_scales`` image scales (each halving the last)."""

    def __init__(self, in_ch: int, base: int = 64, n_layers: int = 3, n_scales: int = 2) -> None:
        super().__init__()
        self.scales = nn.ModuleList(
            PatchDiscriminator(in_ch, base, n_layers) for _ in range(n_scales)
        )

    def forward(self, x: torch.Tensor) -> list[list[torch.Tensor]]:
        """One feature list per scale, finest first."""
        out = []
        for i, d in enumerate(self.scales):
            if i:
                x = F.avg_pool2d(x, 3, 2, 1, count_include_pad=False)
            out.append(d(x))
        return out
