"""Cali-Sketch's Stroke Calibration Network G1: rough sketch in, clean sketch out.

Two bodies, chosen by ``SCNConfig.unet``:

- ``unet`` (``lite``): a small U-Net (``n_down`` stride-2 levels, ``n_res`` residual
  blocks at the bottom, skip connections at every level, no normalisation so that a
  64 px eye crop and a 256 px canvas are treated alike).  The bottleneck sees ~100 px
  of context, enough to tell hatching, scribbles and doubled strokes from contours;
  the full-resolution skip lets clean strokes through untouched.
- plain: encoder - residual blocks - decoder (Cali-Sketch's / pix2pixHD's shape).

What the head predicts, chosen by ``SCNConfig.gate``:

- ``keep`` (the default): a per-pixel *keep* logit for the rough ink; the output ink is
  rough ink x sigmoid(keep).  Calibration of rough drawings is mostly erasing (hatching,
  scribbles, strays, repeated strokes), and a gate cannot add ink where the user drew
  none: paper stays paper, clean strokes only need "keep" to come through.
- ``keep_add``: as ``keep``, plus an *add* logit that inks paper pixels (missed lines).
- ``none`` (manifests written before the gate): with ``residual`` a correction added to
  the rough sketch (last conv zero-initialised: an untrained calibrator is the
  identity), otherwise a tanh output.

Fully convolutional: train on crops, run on any size divisible by 2**n_down.  Its
discriminator D1 is :class:`PatchDiscriminator`.
"""

from __future__ import annotations

import torch
from torch import nn

from facesketch.models.blocks import BaseNetwork, ResBlock, channels, conv_block, up_block
from facesketch.models.config import SCNConfig
from facesketch.models.discriminators import PatchDiscriminator

__all__ = ["PatchDiscriminator", "StrokeCalibrator", "build_scn_discriminator", "compose_gate"]

#: Initial keep logit (sigmoid ~0.95): an untrained gate keeps every stroke.
KEEP_INIT = 3.0
#: Initial add logit (sigmoid ~0.02): an untrained gate adds nothing visible.
ADD_INIT = -4.0


def ink(sketch: torch.Tensor) -> torch.Tensor:
    """Ink amount in [0, 1] (1 = black line) of a sketch in [-1, 1]."""
    return ((1.0 - sketch) * 0.5).clamp(0.0, 1.0)


def compose_gate(rough: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
    """The calibrated sketch from gate logits: channel 0 keeps rough ink, an optional
    channel 1 inks paper.  With one channel no pixel gets darker than the rough one."""
    r = ink(rough)
    out = r * torch.sigmoid(logits[:, :1])
    if logits.shape[1] > 1:
        out = out + (1.0 - r) * torch.sigmoid(logits[:, 1:2])
    return 1.0 - 2.0 * out


class StrokeCalibrator(BaseNetwork):
    """G1: (N, 1, H, W) rough sketch in [-1, 1] -> (N, 1, H, W) calibrated sketch."""

    network = "scn"

    def __init__(self, cfg: SCNConfig | None = None) -> None:
        super().__init__()
        self.cfg = cfg = cfg or SCNConfig()
        if cfg.unet:
            self.net = _unet(cfg)
        else:
            self.net = _encoder_decoder(cfg)
            self.init_weights()
        head = self.head
        if cfg.gate != "none":
            nn.init.zeros_(head.weight)
            with torch.no_grad():
                head.bias.copy_(torch.tensor([KEEP_INIT, ADD_INIT][: head.out_channels]))
        elif cfg.residual:
            nn.init.zeros_(head.weight)
            nn.init.zeros_(head.bias)

    @property
    def head(self) -> nn.Conv2d:
        """The last conv (its outputs: the correction, or the gate logits)."""
        return next(m for m in reversed(self.net) if isinstance(m, nn.Conv2d))

    @property
    def multiple(self) -> int:
        """Input sides must be multiples of this."""
        return 2**self.cfg.n_down

    def forward(self, rough: torch.Tensor) -> torch.Tensor:
        """Calibrate a batch of sketches; raises ValueError on a wrong shape."""
        out = self.raw(rough)
        if self.cfg.gate != "none":
            return compose_gate(rough, out)
        return (rough + out).clamp(-1.0, 1.0) if self.cfg.residual else out

    def raw(self, rough: torch.Tensor) -> torch.Tensor:
        """The head's output: gate logits (``gate``), a correction or a tanh sketch."""
        if rough.ndim != 4 or rough.shape[1] != 1:
            raise ValueError(f"StrokeCalibrator expects (N, 1, H, W), got {tuple(rough.shape)}")
        h, w = rough.shape[-2:]
        if h % self.multiple or w % self.multiple:
            raise ValueError(
                f"StrokeCalibrator: sides {h}x{w} must be multiples of {self.multiple}"
            )
        return self._unet_forward(rough) if self.cfg.unet else self.net(rough)

    def _unet_forward(self, x: torch.Tensor) -> torch.Tensor:
        n = self.cfg.n_down
        enc, mid = self.net[: n + 1], self.net[n + 1]
        ups, fuses = self.net[n + 2 : 2 * n + 2], self.net[2 * n + 2 : 3 * n + 2]
        skips = []
        h = x
        for level in enc:
            h = level(h)
            skips.append(h)
        h = mid(skips.pop())
        for up, fuse in zip(ups, fuses, strict=True):
            h = fuse(torch.cat([up(h), skips.pop()], 1))
        for last in self.net[3 * n + 2 :]:  # head conv (+ tanh without ``residual``)
            h = last(h)
        return h

    def manifest_config(self) -> dict:
        """The config stored in (and compared against) a weights manifest."""
        return self.cfg.to_dict()


def _encoder_decoder(cfg: SCNConfig) -> nn.Sequential:
    """Cali-Sketch's G1 shape: 7x7 conv, stride-2 convs, residual blocks, up-convs."""
    layers: list[nn.Module] = [conv_block(1, cfg.base, 7)]
    for i in range(cfg.n_down):
        layers.append(
            conv_block(
                channels(cfg.base, i, cfg.max_ch), channels(cfg.base, i + 1, cfg.max_ch), 3, 2
            )
        )
    mid = channels(cfg.base, cfg.n_down, cfg.max_ch)
    layers += [ResBlock(mid) for _ in range(cfg.n_res)]
    for i in range(cfg.n_down, 0, -1):
        layers.append(
            up_block(channels(cfg.base, i, cfg.max_ch), channels(cfg.base, i - 1, cfg.max_ch))
        )
    layers += [nn.ReflectionPad2d(3), nn.Conv2d(cfg.base, _head_ch(cfg), 7)]
    if cfg.gate == "none" and not cfg.residual:
        layers.append(nn.Tanh())
    return nn.Sequential(*layers)


def _unet(cfg: SCNConfig) -> nn.ModuleList:
    """U-Net levels in order: encoders (n_down + 1), bottleneck, ups, fuses, head."""
    ch = [channels(cfg.base, i, cfg.max_ch) for i in range(cfg.n_down + 1)]

    def conv(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
        return conv_block(cin, cout, 3, stride, norm="none", act="lrelu")

    enc = [nn.Sequential(conv(1, ch[0]), conv(ch[0], ch[0]))]
    enc += [
        nn.Sequential(conv(ch[i], ch[i + 1], 2), conv(ch[i + 1], ch[i + 1]))
        for i in range(cfg.n_down)
    ]
    mid = nn.Sequential(*[ResBlock(ch[-1], norm="none") for _ in range(cfg.n_res)])
    ups = [
        nn.Sequential(
            nn.ConvTranspose2d(ch[i + 1], ch[i], 3, 2, 1, output_padding=1),
            nn.LeakyReLU(0.2, inplace=True),
        )
        for i in range(cfg.n_down - 1, -1, -1)
    ]
    fuses = [conv(2 * ch[i], ch[i]) for i in range(cfg.n_down - 1, -1, -1)]
    head: nn.Module = nn.Conv2d(ch[0], _head_ch(cfg), 3, padding=1, padding_mode="replicate")
    mods: list[nn.Module] = [*enc, mid, *ups, *fuses, head]
    if cfg.gate == "none" and not cfg.residual:
        mods.append(nn.Tanh())
    return nn.ModuleList(mods)


def _head_ch(cfg: SCNConfig) -> int:
    return 2 if cfg.gate == "keep_add" else 1


def build_scn_discriminator(cfg: SCNConfig) -> PatchDiscriminator:
    """D1 for a calibrator config (conditional on nothing: it judges sketches alone)."""
    return PatchDiscriminator(1, cfg.d_base, cfg.d_layers)
