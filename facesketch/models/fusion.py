"""Global fusion (pasted component feature maps -> face) and the 2x up-sampling head.

:class:`GlobalFusion` is a pix2pixHD-style global generator.  It is fully
convolutional: trained on random crops of the 256 canvas, run on the whole canvas.
The engine renders 512 faces by running everything at 256 and finishing with
:class:`Upsampler2x`, a few thin layers and a sub-pixel conv predicting the
residual over bilinear up-sampling — the full-resolution layers are what cost
time on a CPU, so there are as few of them as possible.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from facesketch.models.blocks import BaseNetwork, ResBlock, channels, conv_block, up_block
from facesketch.models.config import FusionConfig, UpConfig
from facesketch.models.discriminators import MultiScaleDiscriminator

__all__ = ["GlobalFusion", "MultiScaleDiscriminator", "Upsampler2x", "build_fusion_discriminator"]


class GlobalFusion(BaseNetwork):
    """Pasted feature map (N, in_ch, S, S) [+ sketch (N, sketch_ch, S, S)] -> RGB face.

    The output is (N, 3, S, S) in [-1, 1].  With ``sketch_ch`` the canvas sketch is
    concatenated to the feature map (a skip past the component bottlenecks).
    """

    network = "fusion"

    def __init__(self, cfg: FusionConfig | None = None) -> None:
        super().__init__()
        self.cfg = cfg = cfg or FusionConfig()
        if cfg.n_down < 1:
            raise ValueError("GlobalFusion needs n_down >= 1")
        ch = [channels(cfg.base, i, cfg.max_ch) for i in range(cfg.n_down + 1)]
        # the first conv already halves: full-resolution layers are what cost CPU time;
        # the input is concatenated again before the head so no fine detail is lost
        cin = cfg.in_ch + cfg.sketch_ch
        down: list[nn.Module] = [conv_block(cin, ch[1], 3, 2)]
        down += [conv_block(ch[i], ch[i + 1], 3, 2) for i in range(1, cfg.n_down)]
        down += [ResBlock(ch[-1]) for _ in range(cfg.n_res)]
        down += [up_block(ch[i], ch[i - 1]) for i in range(cfg.n_down, 0, -1)]
        self.body = nn.Sequential(*down)
        self.head = nn.Sequential(nn.ReflectionPad2d(1), nn.Conv2d(cfg.base + cin, 3, 3), nn.Tanh())
        self.init_weights()

    @property
    def multiple(self) -> int:
        """Input sides must be multiples of this."""
        return 2**self.cfg.n_down

    def forward(self, feat: torch.Tensor, sketch: torch.Tensor | None = None) -> torch.Tensor:
        if feat.ndim != 4 or feat.shape[1] != self.cfg.in_ch:
            raise ValueError(
                f"GlobalFusion expects (N, {self.cfg.in_ch}, H, W), got {tuple(feat.shape)}"
            )
        if self.cfg.sketch_ch:
            if sketch is None or sketch.shape[1] != self.cfg.sketch_ch:
                raise ValueError(
                    f"this GlobalFusion also needs the sketch (N, {self.cfg.sketch_ch}, H, W)"
                )
            feat = torch.cat([feat, sketch.to(feat.dtype)], dim=1)
        return self.head(torch.cat([self.body(feat), feat], dim=1))

    def manifest_config(self) -> dict:
        """The config stored in (and compared against) a weights manifest."""
        return self.cfg.to_dict()


class Upsampler2x(BaseNetwork):
    """RGB (N, 3, H, W) in [-1, 1] -> RGB (N, 3, 2H, 2W): bilinear + learned residual.

    The output is not clamped (training wants the raw value); clamp before display.
    """

    network = "up"

    def __init__(self, cfg: UpConfig | None = None) -> None:
        super().__init__()
        self.cfg = cfg = cfg or UpConfig()
        if cfg.n_layers < 2:
            raise ValueError("Upsampler2x needs n_layers >= 2")
        layers: list[nn.Module] = [nn.Conv2d(3, cfg.ch, 3, padding=1), nn.ReLU(inplace=True)]
        for _ in range(cfg.n_layers - 2):
            layers += [nn.Conv2d(cfg.ch, cfg.ch, 3, padding=1), nn.ReLU(inplace=True)]
        layers += [nn.Conv2d(cfg.ch, 3 * 4, 3, padding=1), nn.PixelShuffle(2)]
        self.net = nn.Sequential(*layers)
        self.init_weights()
        # start as plain bilinear up-sampling: the residual head begins at zero
        nn.init.zeros_(layers[-2].weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        base = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
        return base + self.net(x)

    def manifest_config(self) -> dict:
        """The config stored in (and compared against) a weights manifest."""
        return self.cfg.to_dict()


def build_fusion_discriminator(cfg: FusionConfig) -> MultiScaleDiscriminator:
    """Multi-scale D for the fusion, conditional as in pix2pixHD: [feature map, RGB, sketch]."""
    return MultiScaleDiscriminator(
        cfg.in_ch + 3 + cfg.sketch_ch, cfg.d_base, cfg.d_layers, cfg.d_scales
    )
