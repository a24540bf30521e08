"""Building blocks shared by the sketch-to-face networks (convs, residual, AdaIN).

Up-sampling uses 3x3 transposed convs (as pix2pixHD): 9 taps per 2x2 output block,
and full-resolution layers dominate CPU time; they leave a mesh, so the mesh-free
decoders use :func:`resize_up_block` (nearest + 3x3 conv, computed phase-split: 16 taps
per block instead of 36).
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
    return ResizeUp(
        nn.Upsample(scale_factor=2, mode="nearest"), conv_block(cin, cout, 3, 1, norm, act)
    )


# Rows of a 3x3 kernel that fall on each low-resolution row, per output phase: after a
# 2x nearest up-sampling, output row 2i reads low rows (i-1, i, i) and row 2i+1 reads
# (i, i, i+1).
_PHASE_ROWS = torch.tensor([[[1.0, 0.0, 0.0], [0.0, 1.0, 1.0]], [[1.0, 1.0, 0.0], [0.0, 0.0, 1.0]]])


class ResizeUp(nn.Sequential):
    """Nearest 2x + 3x3 conv, computed in its phase-split (sub-pixel) form.

    The same parameters (``0``: up-sampling, ``1``: conv block) as the plain sequence,
    and the same result to rounding, but each output phase is a 2x2 conv at the input
    resolution: 16 taps per 2x2 output block instead of 36, which is what keeps the
    mesh-free decoder within the CPU budget.  The reflection padding of the up-sampled
    map is a replicate padding of the input."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        conv = self[1][1]
        w = conv.weight
        rows = _PHASE_ROWS.to(w)
        # (a, b, out, in, 2, 2): rows combined by phase a, columns by phase b
        k = torch.einsum("apr,oirs,bqs->aboipq", rows, w, rows)
        cout, cin = w.shape[:2]
        k = k.reshape(4 * cout, cin, 2, 2)
        bias = None if conv.bias is None else conv.bias.repeat(4)
        y = F.conv2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), k, bias)
        h, w_ = x.shape[-2:]
        y = y.view(y.shape[0], 2, 2, cout, h + 1, w_ + 1)
        phases = [[y[:, a, b, :, a : a + h, b : b + w_] for b in (0, 1)] for a in (0, 1)]
        # interleave: out[..., 2i + a, 2j + b] = phase (a, b)[..., i, j]
        top = torch.stack([torch.stack(row, dim=-1) for row in phases], dim=-3)
        out = top.reshape(y.shape[0], cout, 2 * h, 2 * w_)
        for layer in self[1][2:]:
            out = layer(out)
        return out


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
