"""Cali-Sketch's Stroke Calibration Network G1: rough sketch in, clean sketch out.

Encoder (``n_down`` stride-2 convs) - residual blocks - decoder, 1 channel in and
out (white paper = +1).  With ``residual`` (the default) the decoder predicts a
correction added to the rough sketch, its last conv zero-initialised, so an untrained
calibrator is the identity rather than noise; otherwise a tanh output.  Fully
convolutional: train on crops, run on any size divisible by 2**n_down.  Its
discriminator D1 is :class:`PatchDiscriminator`.
"""

from __future__ import annotations

import torch
from torch import nn

from facesketch.models.blocks import BaseNetwork, ResBlock, channels, conv_block, up_block
from facesketch.models.config import SCNConfig
from facesketch.models.discriminators import PatchDiscriminator

__all__ = ["PatchDiscriminator", "StrokeCalibrator", "build_scn_discriminator"]


class StrokeCalibrator(BaseNetwork):
    """G1: (N, 1, H, W) rough sketch in [-1, 1] -> (N, 1, H, W) calibrated sketch."""

    network = "scn"

    def __init__(self, cfg: SCNConfig | None = None) -> None:
        super().__init__()
        self.cfg = cfg = cfg or SCNConfig()
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
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(cfg.base, 1, 7)]
        if not cfg.residual:
            layers.append(nn.Tanh())
        self.net = nn.Sequential(*layers)
        self.init_weights()
        if cfg.residual:
            nn.init.zeros_(layers[-1].weight)
            nn.init.zeros_(layers[-1].bias)

    @property
    def multiple(self) -> int:
        """Input sides must be multiples of this."""
        return 2**self.cfg.n_down

    def forward(self, rough: torch.Tensor) -> torch.Tensor:
        """Calibrate a batch of sketches; raises ValueError on a wrong shape."""
        if rough.ndim != 4 or rough.shape[1] != 1:
            raise ValueError(f"StrokeCalibrator expects (N, 1, H, W), got {tuple(rough.shape)}")
        h, w = rough.shape[-2:]
        if h % self.multiple or w % self.multiple:
            raise ValueError(
                f"StrokeCalibrator: sides {h}x{w} must be multiples of {self.multiple}"
            )
        out = self.net(rough)
        return (rough + out).clamp(-1.0, 1.0) if self.cfg.residual else out

    def manifest_config(self) -> dict:
        """The config stored in (and compared against) a weights manifest."""
        return self.cfg.to_dict()


def build_scn_discriminator(cfg: SCNConfig) -> PatchDiscriminator:
    """D1 for a calibrator config (conditional on nothing: it judges sketches alone)."""
    return PatchDiscriminator(1, cfg.d_base, cfg.d_layers)
