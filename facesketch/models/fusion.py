"""Global fusion (pasted component feature maps -> face) and the 2x up-sampling head.

:class:`GlobalFusion` is a pix2pixHD-style global generator.  It is fully
convolutional: trained on random crops of the 256 canvas, run on the whole canvas.
The engine renders 512 faces by running everything at 256 and finishing with
:class:`Upsampler2x`, a few thin layers and a sub-pixel conv predicting the
residual over bilinear up-sampling — the full-resolution layers are what cost
time on a CPU, so there are as few of them as possible.

Version 2 (``FusionConfig.decoder="resize"``, ``ref_ch=4``) also takes a warped
reference photo and its validity mask (real pixels, DESIGN.md "Real pixels"): the
decoder up-samples by nearest + conv (no mesh), and the head predicts, besides an RGB
synthesis, a small residual flow that re-warps the reference and a per-pixel blend
weight, so real texture is copied where the warp is right and synthesized elsewhere.
A resize decoder alone did not make a mesh-free face: the pasted maps carry the
component generators' transposed-conv grid, and the head's full-resolution skip copied
it through.  ``FusionConfig.input_notch`` takes it out of the maps on the way in.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from facesketch.models.blocks import (
    BaseNetwork,
    ResBlock,
    channels,
    conv_block,
    resize_up_block,
    up_block,
)
from facesketch.models.config import FusionConfig, UpConfig
from facesketch.models.discriminators import MultiScaleDiscriminator
from facesketch.models.filters import DEFAULT_PERIOD, binomial_blur, remove_periodic_pattern

__all__ = [
    "GlobalFusion",
    "drop_head_maps",
    "MultiScaleDiscriminator",
    "Upsampler2x",
    "build_fusion_discriminator",
    "warp_by_flow",
]


#: Initial blend logit of a reference fusion (sigmoid 0.88: mostly the reference).
BLEND_INIT = 2.0


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
        cin = cfg.in_ch + cfg.sketch_ch + cfg.ref_ch
        up = resize_up_block if cfg.decoder == "resize" else up_block
        down: list[nn.Module] = [conv_block(cin, ch[1], 3, 2)]
        down += [conv_block(ch[i], ch[i + 1], 3, 2) for i in range(1, cfg.n_down)]
        down += [ResBlock(ch[-1]) for _ in range(cfg.n_res)]
        down += [up(ch[i], ch[i - 1]) for i in range(cfg.n_down, 0, -1)]
        self.body = nn.Sequential(*down)
        skip = cin if cfg.head_maps else cin - cfg.in_ch
        if cfg.ref_ch:
            # RGB synthesis (3) + blend logit (1) + residual flow (2)
            self.head = nn.Sequential(nn.ReflectionPad2d(1), nn.Conv2d(cfg.base + skip, 6, 3))
        else:
            self.head = nn.Sequential(
                nn.ReflectionPad2d(1), nn.Conv2d(cfg.base + skip, 3, 3), nn.Tanh()
            )
        self.init_weights()
        if cfg.ref_ch:  # start by copying the reference (no flow yet) where it is valid
            with torch.no_grad():
                self.head[-1].bias[3] = BLEND_INIT
                self.head[-1].weight[4:6].zero_()

    @property
    def multiple(self) -> int:
        """Input sides must be multiples of this."""
        return 2**self.cfg.n_down

    def forward(
        self,
        feat: torch.Tensor,
        sketch: torch.Tensor | None = None,
        reference: torch.Tensor | None = None,
        valid: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Face (N, 3, H, W) in [-1, 1]; ``reference`` (N, 3, H, W) in [-1, 1] and
        ``valid`` (N, 1, H, W) in [0, 1] are required by a reference fusion only."""
        cfg = self.cfg
        if feat.ndim != 4 or feat.shape[1] != cfg.in_ch:
            raise ValueError(
                f"GlobalFusion expects (N, {cfg.in_ch}, H, W), got {tuple(feat.shape)}"
            )
        if cfg.input_notch:
            feat = remove_periodic_pattern(feat, DEFAULT_PERIOD)
        x = feat
        if cfg.sketch_ch:
            if sketch is None or sketch.shape[1] != cfg.sketch_ch:
                raise ValueError(
                    f"this GlobalFusion also needs the sketch (N, {cfg.sketch_ch}, H, W)"
                )
            x = torch.cat([x, sketch.to(feat.dtype)], dim=1)
        if not cfg.ref_ch:
            return self.head(torch.cat([self.body(x), self._skip(x)], dim=1))
        if reference is None or valid is None:
            raise ValueError("this GlobalFusion also needs a warped reference and its validity")
        if reference.shape[-2:] != feat.shape[-2:] or valid.shape[-2:] != feat.shape[-2:]:
            raise ValueError("reference, validity and feature map must have the same size")
        reference, valid = reference.to(feat.dtype), valid.to(feat.dtype)
        x = torch.cat([x, reference * valid, valid], dim=1)
        raw = self.head(torch.cat([self.body(x), self._skip(x)], dim=1))
        synth, blend, flow = torch.tanh(raw[:, :3]), raw[:, 3:4], raw[:, 4:6]
        flow = torch.tanh(flow) * (cfg.flow_px * 2.0 / feat.shape[-1])  # in grid units
        moved = warp_by_flow(torch.cat([reference, valid], dim=1), flow)
        alpha = torch.sigmoid(blend) * moved[:, 3:4].clamp(0, 1)
        return alpha * moved[:, :3] + (1 - alpha) * synth

    def _skip(self, x: torch.Tensor) -> torch.Tensor:
        """What the head's full-resolution skip repeats of the input (see ``head_maps``
        and ``head_maps_blur``)."""
        n = self.cfg.in_ch
        if not self.cfg.head_maps:
            return x[:, n:]
        if self.cfg.head_maps_blur:
            return torch.cat([binomial_blur(x[:, :n]), x[:, n:]], dim=1)
        return x

    def manifest_config(self) -> dict:
        """The config stored in (and compared against) a weights manifest."""
        return self.cfg.to_dict()


def is_transposed(state: dict[str, torch.Tensor]) -> bool:
    """Whether a fusion state dict has transposed-conv up-sampling (a version-1 decoder):
    its up blocks keep the conv at ``body.<i>.0`` (a resize block at ``body.<i>.1.1``)."""
    return any(
        k.startswith("body.") and k.endswith(".0.weight") and v.ndim == 4 and k.count(".") == 3
        for k, v in state.items()
    )


def init_from_transposed(fusion: GlobalFusion, old: dict[str, torch.Tensor]) -> GlobalFusion:
    """Warm-start a resize-conv (reference) fusion from a version-1 fusion's state dict.

    Same channels per level: encoder and residual blocks are copied; each transposed
    conv becomes the conv after nearest up-sampling (in/out channels swapped; the
    instance norm after it removes the ~4x gain); the first conv and the head get zero
    weights for the new input channels, the head's RGB rows are the old head's.  With
    validity 0 the synthesis then starts close to the old fusion's output."""
    new = fusion.state_dict()
    out = {}
    for k, v in new.items():
        parts = k.split(".")
        if k.startswith("head.1."):
            o, w = old[k], v.clone()  # the blend / flow rows keep their initialisation
            if o.ndim == 1:
                w[: o.shape[0]] = o
            else:
                w[: o.shape[0]] = 0
                w[: o.shape[0], : o.shape[1]] = o
            out[k] = w
            continue
        if len(parts) == 5 and parts[2] == "1" and f"body.{parts[1]}.0.weight" in old:
            # body.<i>.1.<j>.<p> (up-sample, conv_block) <- body.<i>.<j-1>.<p> (ConvT, norm)
            j = int(parts[3])
            src = old[f"body.{parts[1]}.{j - 1}.{parts[4]}"]
            if j == 1 and parts[4] == "weight":
                src = src.transpose(0, 1)
            out[k] = src.clone()
            continue
        o = old.get(k)
        if o is None:
            raise KeyError(f"the old fusion has no {k}: not a version-1 fusion of these sizes")
        if o.shape != v.shape:  # the first conv: new input channels start at zero
            w = torch.zeros_like(v)
            w[:, : o.shape[1]] = o
            out[k] = w
        else:
            out[k] = o.clone()
    fusion.load_state_dict(out)
    return fusion


def drop_head_maps(fusion: GlobalFusion, old: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A fusion's state dict whose head also read the pasted maps on its skip, made to fit
    ``fusion`` (``head_maps`` False): those input columns of the head's conv go, the rest
    (decoder output, sketch, reference) keep their weights."""
    key = "head.1.weight"
    want = fusion.state_dict()[key].shape[1]
    w = old.get(key)
    if w is None or w.shape[1] != want + fusion.cfg.in_ch:
        return old
    base = fusion.cfg.base
    return {**old, key: torch.cat([w[:, :base], w[:, base + fusion.cfg.in_ch :]], dim=1)}


def warp_by_flow(x: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
    """``x`` (N, C, H, W) sampled at the identity grid + ``flow`` (N, 2, H, W; x then y,
    in grid units of [-1, 1], align_corners=False); zeros outside."""
    n, _, h, w = x.shape
    ys = torch.linspace(-1 + 1 / h, 1 - 1 / h, h, device=x.device, dtype=x.dtype)
    xs = torch.linspace(-1 + 1 / w, 1 - 1 / w, w, device=x.device, dtype=x.dtype)
    gy, gx = torch.meshgrid(ys, xs, indexing="ij")
    grid = torch.stack([gx, gy], dim=-1)[None] + flow.permute(0, 2, 3, 1)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


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
