"""HED (Xie & Tu, ICCV 2015) and its VGG16 trunk, in PyTorch.

One trunk serves two roles: the HED edge detector that synthesizes training
sketches and SCN targets, and the feature network of the perceptual / content
losses (no ImageNet VGG weights can be downloaded here; HED's VGG16 was
initialised from ImageNet and fine-tuned for edges).  The weights come from
``facesketch.engine.hed_weights``; this module only defines the networks.

HED layout: pooling sits at the start of blocks 2-5 (so each block's last ReLU is
a side-output tap), max pooling rounds odd sizes up (Keras/Caffe "same"), side
outputs are 1x1 convs up-sampled bilinearly (half-pixel centres) and fused by a
1x1 conv, then a sigmoid.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

#: Caffe-style BGR mean HED was trained with (0-255 scale).
HED_BGR_MEAN: tuple[float, float, float] = (104.00699, 116.66877, 122.67892)
#: Output channels and number of 3x3 convolutions of each VGG16 block.
VGG16_BLOCKS: tuple[tuple[int, int], ...] = ((64, 2), (128, 2), (256, 3), (512, 3), (512, 3))
#: Names of every ReLU output of the trunk, in order ("relu<block>_<conv>").
VGG16_LAYERS: tuple[str, ...] = tuple(
    f"relu{b + 1}_{c + 1}" for b, (_, n) in enumerate(VGG16_BLOCKS) for c in range(n)
)
#: The last ReLU of each block: HED's side-output taps and the usual perceptual layers.
BLOCK_OUTPUTS: tuple[str, ...] = ("relu1_2", "relu2_2", "relu3_3", "relu4_3", "relu5_3")


def hed_preprocess(x: torch.Tensor) -> torch.Tensor:
    """Project tensors (N, 3, H, W) RGB in [-1, 1] to HED's BGR 0-255 minus the mean."""
    if x.ndim != 4 or x.shape[1] != 3:
        raise ValueError(f"expected an (N, 3, H, W) RGB tensor, got shape {tuple(x.shape)}")
    mean = torch.tensor(HED_BGR_MEAN, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    return (x.flip(1) + 1.0) * 127.5 - mean


class VGG16Features(nn.Module):
    """The VGG16 conv trunk (HED layout); returns the features of the chosen ReLU layers.

    ``layers`` names ReLU outputs (see :data:`VGG16_LAYERS`); ``forward`` returns them in
    that order and stops after the deepest one, so a loss on shallow layers is cheap.
    Input is HED's preprocessed BGR (see :func:`hed_preprocess`).  Freeze it with
    ``requires_grad_(False)`` when used inside a loss.
    """

    def __init__(self, layers: Sequence[str] = BLOCK_OUTPUTS) -> None:
        super().__init__()
        unknown = [n for n in layers if n not in VGG16_LAYERS]
        if unknown or not layers:
            raise ValueError(f"unknown VGG16 layers {unknown}; choose from {VGG16_LAYERS}")
        self.layers: tuple[str, ...] = tuple(layers)
        self._last = max(VGG16_LAYERS.index(n) for n in self.layers)
        in_ch = 3
        for b, (ch, n) in enumerate(VGG16_BLOCKS):
            block = nn.Module()
            for c in range(n):
                block.add_module(f"conv{c + 1}", nn.Conv2d(in_ch, ch, 3, padding=1))
                in_ch = ch
            self.add_module(f"block{b + 1}", block)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Features of ``self.layers`` for a preprocessed batch (N, 3, H, W)."""
        wanted = set(self.layers)
        found: dict[str, torch.Tensor] = {}
        idx = 0
        for b, (_, n) in enumerate(VGG16_BLOCKS):
            block = getattr(self, f"block{b + 1}")
            if b > 0:
                x = F.max_pool2d(x, 2, 2, ceil_mode=True)
            for c in range(n):
                x = F.relu(getattr(block, f"conv{c + 1}")(x), inplace=True)
                name = VGG16_LAYERS[idx]
                if name in wanted:
                    found[name] = x  # safe: each in-place ReLU acts on a fresh conv output
                if idx == self._last:
                    return [found[n] for n in self.layers]
                idx += 1
        raise AssertionError("unreachable: the last wanted layer is always reached")


class HED(nn.Module):
    """Holistically-nested edge detector: fused edge probability (N, 1, H, W) in [0, 1]."""

    def __init__(self) -> None:
        super().__init__()
        self.trunk = VGG16Features(BLOCK_OUTPUTS)
        for i, (ch, _) in enumerate(VGG16_BLOCKS):
            self.add_module(f"dsn{i + 1}", nn.Conv2d(ch, 1, 1))
        self.fuse = nn.Conv2d(len(VGG16_BLOCKS), 1, 1)

    def side_logits(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Logits of the five side outputs and the fusion (6 maps at input size)."""
        h, w = x.shape[-2:]
        sides = []
        for i, feat in enumerate(self.trunk(x)):
            s = getattr(self, f"dsn{i + 1}")(feat)
            if s.shape[-2:] != (h, w):
                s = F.interpolate(s, size=(h, w), mode="bilinear", align_corners=False)
            sides.append(s)
        return [*sides, self.fuse(torch.cat(sides, dim=1))]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Edge probability for a batch preprocessed with :func:`hed_preprocess`."""
        return torch.sigmoid(self.side_logits(x)[-1])
