"""Sketch landmark network: the 68 iBUG face landmarks of a drawing.

A small fully convolutional encoder-decoder gives one heatmap per landmark at a
quarter of the input resolution; the landmark is the heatmap's soft-argmax
(integral regression: differentiable, sub-pixel, trained on coordinates).  Being
convolutional it follows a face drawn off-centre, smaller or larger; the encoder
reaches 1/16 resolution so every heatmap sees the whole face (which eye is which
comes from context, not from position).

Coordinates are (x, y) pixels of the input, with pixel centres at integers (dlib's
and OpenCV's convention), so they compare directly with dlib landmarks.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from facesketch.models.blocks import BaseNetwork
from facesketch.models.config import LandmarkConfig

N_LANDMARKS = 68
#: Output stride of the heatmaps (input pixels per heatmap cell).
HEATMAP_STRIDE = 4
#: Encoder stride: inputs must be a multiple of it.
INPUT_MULTIPLE = 16


def _conv(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, stride, 1, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


def soft_argmax(logits: torch.Tensor, stride: int) -> torch.Tensor:
    """Expected (x, y) of softmax(logits) over each (H, W) map, in input pixels.

    Cell ``j`` covers input pixels ``[stride*j, stride*j + stride)``; its centre is
    ``stride*j + (stride - 1)/2`` with integer pixel centres."""
    n, k, h, w = logits.shape
    prob = F.softmax(logits.float().reshape(n, k, h * w), dim=-1).reshape(n, k, h, w)
    off = (stride - 1) / 2.0
    xs = torch.arange(w, dtype=prob.dtype, device=prob.device) * stride + off
    ys = torch.arange(h, dtype=prob.dtype, device=prob.device) * stride + off
    x = (prob.sum(2) * xs).sum(-1)
    y = (prob.sum(3) * ys).sum(-1)
    return torch.stack([x, y], -1)


class LandmarkNet(BaseNetwork):
    """Sketch (N, 1, S, S) in [-1, 1] (white paper = +1) -> landmarks (N, 68, 2) px."""

    def __init__(self, cfg: LandmarkConfig | None = None) -> None:
        super().__init__()
        self.cfg = cfg = cfg or LandmarkConfig()
        c = [min(cfg.base * 2**i, cfg.max_ch) for i in range(5)]
        self.stem = nn.Sequential(_conv(1, c[0], 2), _conv(c[0], c[0]))  # 1/2
        self.down = nn.ModuleList(
            [nn.Sequential(_conv(c[i], c[i + 1], 2), _conv(c[i + 1], c[i + 1])) for i in range(3)]
        )  # 1/4, 1/8, 1/16
        self.context = nn.Sequential(*[_conv(c[3], c[3]) for _ in range(cfg.n_context)])
        self.lat8 = nn.Conv2d(c[2], c[3], 1)
        self.lat4 = nn.Conv2d(c[1], c[3], 1)
        self.fuse8 = _conv(c[3], c[3])
        self.fuse4 = _conv(c[3], cfg.head_ch)
        self.head = nn.Conv2d(cfg.head_ch, N_LANDMARKS, 1)

    def heatmaps(self, sketch: torch.Tensor) -> torch.Tensor:
        """Landmark logits (N, 68, S/4, S/4)."""
        s = sketch.shape[-1]
        if sketch.dim() != 4 or sketch.shape[1] != 1 or s % INPUT_MULTIPLE:
            raise ValueError(
                f"LandmarkNet expects (N, 1, S, S) with S a multiple of {INPUT_MULTIPLE}; "
                f"got {tuple(sketch.shape)}"
            )
        # ink = 1, paper = 0: the zero padding then reads as blank paper
        x = self.stem((1.0 - sketch) * 0.5)
        f4 = self.down[0](x)
        f8 = self.down[1](f4)
        f16 = self.context(self.down[2](f8))
        y = self.fuse8(F.interpolate(f16, scale_factor=2.0, mode="nearest") + self.lat8(f8))
        y = self.fuse4(F.interpolate(y, scale_factor=2.0, mode="nearest") + self.lat4(f4))
        return self.head(y)

    def forward(self, sketch: torch.Tensor) -> torch.Tensor:
        """Landmarks (N, 68, 2), (x, y) pixels of the input (integer pixel centres)."""
        return soft_argmax(self.heatmaps(sketch) * self.cfg.sharpness, HEATMAP_STRIDE)


def inter_ocular(landmarks: torch.Tensor) -> torch.Tensor:
    """Distance between the eye centres (points 36-41, 42-47), (N,): the NME unit
    (the one train.scn_eval and train.eval use)."""
    return (landmarks[..., 36:42, :].mean(-2) - landmarks[..., 42:48, :].mean(-2)).norm(dim=-1)


def nme(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean point error / inter-ocular distance of the target, per sample (N,)."""
    return (pred - target).norm(dim=-1).mean(-1) / inter_ocular(target).clamp_min(1e-6)


__all__ = ["LandmarkNet", "N_LANDMARKS", "inter_ocular", "nme", "soft_argmax"]
