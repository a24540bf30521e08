"""CartoonGAN (Chen, Lai & Liu, CVPR 2018): photo-to-cartoon generator and discriminator.

The generator follows the authors' released model exactly (so their weights load
without surgery): a flat 7x7 conv, two down-convs (stride-2 3x3 conv, then 3x3
conv, instance norm, ReLU), residual blocks with reflection padding, two up-convs
(transposed conv, 3x3 conv, instance norm, ReLU) and a 7x7 output conv with tanh.
One config builds both the authors' ``official`` size (64 channels, 8 residual
blocks) and the project's ``lite`` one sized for a 2-core CPU.

Pure torch: no files, no Qt.  Channel order is the caller's business (the
authors' weights expect BGR; the project's own are trained on RGB).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn


@dataclass(frozen=True)
class CartoonConfig:
    """Sizes of a CartoonGAN generator and discriminator."""

    base: int = 64  # channels of the full-resolution layers (x2, x4 after each down-conv)
    n_res: int = 8  # residual blocks at 1/4 resolution
    d_base: int = 32  # discriminator's first-layer channels

    def __post_init__(self) -> None:
        if self.base < 1 or self.n_res < 0 or self.d_base < 1:
            raise ValueError(f"invalid CartoonConfig {self}")

    def to_dict(self) -> dict[str, Any]:
        """Plain dict for manifests and checkpoints."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> CartoonConfig:
        """Inverse of :meth:`to_dict`; unknown keys are an error, not silently dropped."""
        unknown = set(d) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"unknown CartoonConfig keys {sorted(unknown)}")
        return cls(**d)


#: ``official``: the authors' released generator.  ``lite``: the project's shipped
#: style, ~10x fewer operations (32 channels, 4 residual blocks) so that a 512
#: portrait stylizes in well under a second on a 2-core CPU (see bench/cartoon.py).
CARTOON_PRESETS: dict[str, CartoonConfig] = {
    "official": CartoonConfig(base=64, n_res=8),
    "lite": CartoonConfig(base=32, n_res=4),
}


def cartoon_preset(name: str) -> CartoonConfig:
    """The named config; raises ``ValueError`` listing the known names."""
    try:
        return CARTOON_PRESETS[name]
    except KeyError:
        raise ValueError(
            f"unknown CartoonGAN preset {name!r}; known: {sorted(CARTOON_PRESETS)}"
        ) from None


class ScaleShiftInstanceNorm(nn.Module):
    """Instance norm with a learned per-channel scale and shift (the authors' ``in*``).

    Matches their Torch/Lua layer: biased variance, eps 1e-9 (not torch's 1e-5, which
    visibly changes flat regions of their outputs).
    """

    def __init__(self, channels: int, eps: float = 1e-9) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.ones(channels))
        self.shift = nn.Parameter(torch.zeros(channels))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Normalise each channel of each image over H, W (statistics in float32)."""
        xf = x.float()
        var, mean = torch.var_mean(xf, dim=(2, 3), keepdim=True, correction=0)
        scale = self.scale.float().view(1, -1, 1, 1) * torch.rsqrt(var + self.eps)
        shift = self.shift.float().view(1, -1, 1, 1) - mean * scale
        return torch.addcmul(shift, xf, scale).to(x.dtype)  # one pass over the big map


class _Down(nn.Module):
    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, 2, 1)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1)
        self.norm = ScaleShiftInstanceNorm(cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.norm(self.conv2(self.conv1(x))))


class _Res(nn.Module):
    def __init__(self, ch: int) -> None:
        super().__init__()
        self.pad = nn.ReflectionPad2d(1)
        self.conv1 = nn.Conv2d(ch, ch, 3)
        self.norm1 = ScaleShiftInstanceNorm(ch)
        self.conv2 = nn.Conv2d(ch, ch, 3)
        self.norm2 = ScaleShiftInstanceNorm(ch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.relu(self.norm1(self.conv1(self.pad(x))))
        return x + self.norm2(self.conv2(self.pad(y)))


class _Up(nn.Module):
    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.deconv = nn.ConvTranspose2d(cin, cout, 3, 2, 1, output_padding=1)
        self.conv = nn.Conv2d(cout, cout, 3, 1, 1)
        self.norm = ScaleShiftInstanceNorm(cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.norm(self.conv(self.deconv(x))))


class CartoonGenerator(nn.Module):
    """Photo (N, 3, H, W) in [-1, 1] to cartoon (N, 3, H', W') in [-1, 1].

    H' = H and W' = W when both are multiples of 4 (the engine pads to that);
    otherwise the output is a little larger, exactly as in the authors' model.
    """

    def __init__(self, cfg: CartoonConfig | None = None) -> None:
        super().__init__()
        self.cfg = cfg or CARTOON_PRESETS["lite"]
        c = self.cfg.base
        self.stem = nn.Sequential(
            nn.ReflectionPad2d(3), nn.Conv2d(3, c, 7), ScaleShiftInstanceNorm(c), nn.ReLU()
        )
        self.down = nn.Sequential(_Down(c, 2 * c), _Down(2 * c, 4 * c))
        self.res = nn.Sequential(*[_Res(4 * c) for _ in range(self.cfg.n_res)])
        self.up = nn.Sequential(_Up(4 * c, 2 * c), _Up(2 * c, c))
        self.head = nn.Sequential(nn.ReflectionPad2d(3), nn.Conv2d(c, 3, 7), nn.Tanh())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Stylize a batch; see the class docstring for sizes."""
        if x.ndim != 4 or x.shape[1] != 3:
            raise ValueError(f"expected an (N, 3, H, W) image tensor, got {tuple(x.shape)}")
        if min(x.shape[2:]) < 4:
            raise ValueError(f"image too small for CartoonGAN: {tuple(x.shape[2:])}")
        return self.head(self.up(self.res(self.down(self.stem(x)))))


class CartoonDiscriminator(nn.Module):
    """The paper's shallow patch discriminator: (N, 3, H, W) to logits (N, 1, H/4, W/4).

    Flat conv, two stages of (stride-2 conv, conv, norm), a feature conv and a 3x3
    output conv, all 3x3 with LeakyReLU(0.2).  Outputs raw logits (the loss decides).
    """

    def __init__(self, cfg: CartoonConfig | None = None) -> None:
        super().__init__()
        self.cfg = cfg or CARTOON_PRESETS["lite"]
        c = self.cfg.d_base

        def act() -> nn.Module:
            return nn.LeakyReLU(0.2, inplace=True)

        self.net = nn.Sequential(
            nn.Conv2d(3, c, 3, 1, 1),
            act(),
            nn.Conv2d(c, 2 * c, 3, 2, 1),
            act(),
            nn.Conv2d(2 * c, 4 * c, 3, 1, 1),
            nn.InstanceNorm2d(4 * c, affine=True),
            act(),
            nn.Conv2d(4 * c, 4 * c, 3, 2, 1),
            act(),
            nn.Conv2d(4 * c, 8 * c, 3, 1, 1),
            nn.InstanceNorm2d(8 * c, affine=True),
            act(),
            nn.Conv2d(8 * c, 8 * c, 3, 1, 1),
            nn.InstanceNorm2d(8 * c, affine=True),
            act(),
            nn.Conv2d(8 * c, 1, 3, 1, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Patch logits: one real/fake score per ~receptive field of the input."""
        return self.net(x)
