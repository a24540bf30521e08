"""Building blocks shared by the sketch-to-face networks (convs, residual, AdaIN).

Up-sampling uses 3x3 transposed convs (as pix2pixHD): 4x cheaper than nearest +
3x3 conv at the output size, and full-resolution layers dominate CPU time; they leave
a mesh, so the reference fusion uses :func:`resize_up_block` instead.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class BaseNetwork(nn.Module):
    """Common helpers: GAN-style weight init and parameter counts."""

    def init_weights(self, gain: float = 0.02) -> BaseNetwork:
        """Normal(0, gain) conv / linear weights, zero biases (pix2pix convention)."""
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
                nn.init.normal_(m.weight, 0.0, gain)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
        return self

    def num_params(self) -> int:
        """Number of parameters (trainable or not)."""
        return sum(p.numel() for p in self.parameters())


def norm_layer(kind: str, ch: int) -> nn.Module:
    """``in`` instance norm (affine), ``none`` identity."""
    if kind == "in":
        return nn.InstanceNorm2d(ch, affine=True)
    if kind == "none":
        return nn.Identity()
    raise ValueError(f"unknown norm {kind!r}")


def conv_block(
    cin: int, cout: int, k: int = 3, stride: int = 1, norm: str = "in", act: str = "relu"
) -> nn.Sequential:
    """Reflection-padded conv + norm + activation (``relu``, ``lrelu`` or ``none``)."""
    layers: list[nn.Module] = []
    pad = k // 2
    if pad:
        layers.append(nn.ReflectionPad2d(pad))
    layers += [nn.Conv2d(cin, cout, k, stride), norm_layer(norm, cout)]
    if act == "relu":
        layers.append(nn.ReLU(inplace=True))
    elif act == "lrelu":
        layers.append(nn.LeakyReLU(0.2, inplace=True))
    elif act != "none":
        raise ValueError(f"unknown activation {act!r}")
    return nn.Sequential(*layers)


def up_block(cin: int, cout: int, norm: str = "in", act: str = "relu") -> nn.Sequential:
    """2x up-sampling by a 3x3 transposed conv (pix2pixHD), + norm + activation.

    A third of the cost of nearest + 3x3 conv at the output size, which matters on a CPU.
    """
    layers: list[nn.Module] = [nn.ConvTranspose2d(cin, cout, 3, 2, 1, output_padding=1)]
    layers.append(norm_layer(norm, cout))
    if act == "relu":
        layers.append(nn.ReLU(inplace=True))
    elif act != "none":
        raise ValueError(f"unknown activation {act!r}")
    return nn.Sequential(*layers)


def resize_up_block(cin: int, cout: int, norm: str = "in", act: str = "relu") -> nn.Sequential:
    """2x nearest up-sampling + reflection-padded 3x3 conv (+ norm + activation).

    Every output pixel gets the same number of kernel taps, so unlike a strided
    transposed conv it leaves no checkerboard (Odena et al., Distill 2016)."""
    return nn.Sequential(
        nn.Upsample(scale_factor=2, mode="nearest"), conv_block(cin, cout, 3, 1, norm, act)
    )


class ResBlock(nn.Module):
    """Two 3x3 conv blocks with an identity shortcut."""

    def __init__(self, ch: int, norm: str = "in") -> None:
        super().__init__()
        self.body = nn.Sequential(
            conv_block(ch, ch, 3, 1, norm), conv_block(ch, ch, 3, 1, norm, "none")
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class AdaIN(nn.Module):
    """Adaptive instance norm: the appearance code sets each channel's scale and shift."""

    def __init__(self, ch: int, code_dim: int) -> None:
        super().__init__()
        self.affine = nn.Linear(code_dim, 2 * ch)

    def forward(self, x: torch.Tensor, code: torch.Tensor) -> torch.Tensor:
        gamma, beta = self.affine(code)[:, :, None, None].chunk(2, dim=1)
        return F.instance_norm(x) * (1 + gamma) + beta


class AdaINResBlock(nn.Module):
    """Residual block whose two norms are AdaIN driven by the appearance code."""

    def __init__(self, ch: int, code_dim: int) -> None:
        super().__init__()
        self.pad1, self.pad2 = nn.ReflectionPad2d(1), nn.ReflectionPad2d(1)
        self.conv1, self.conv2 = nn.Conv2d(ch, ch, 3), nn.Conv2d(ch, ch, 3)
        self.norm1, self.norm2 = AdaIN(ch, code_dim), AdaIN(ch, code_dim)

    def forward(self, x: torch.Tensor, code: torch.Tensor) -> torch.Tensor:
        h = F.relu(self.norm1(self.conv1(self.pad1(x)), code))
        h = self.norm2(self.conv2(self.pad2(h)), code)
        return x + h


def channels(base: int, level: int, max_ch: int) -> int:
    """Channel count at down-sampling ``level``: doubles per level, capped at ``max_ch``."""
    return min(base * 2**level, max_ch)
