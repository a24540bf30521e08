"""DeepFaceEditing's local disentanglement: per component, geometry and appearance apart.

For each component (left eye, right eye, nose, mouth, background; the eyes share
nothing) a :class:`ComponentModel` holds
- ``E_sketch`` (:class:`GeometryEncoder`): sketch crop -> spatial geometry latent,
- ``D_sketch`` (:class:`SketchDecoder`): latent -> sketch (stage 1 auto-encoder),
- ``E_image`` (:class:`ImageEncoder`): photo crop -> the same latent space (stage 2),
- ``E_app`` (:class:`AppearanceEncoder`): photo crop -> global code (no spatial info),
- ``G_syn`` (:class:`ComponentGenerator`): latent + code (AdaIN) -> feature map, with a
  ``to_rgb`` head used in training so the map stays image-like for the fusion.

The background branch sees the whole canvas with the local windows blanked
(:func:`component_input`), so a stroke inside a local window changes only that
component's branch (the background map there is hidden by the paste anyway).
"""

from __future__ import annotations

import torch
from torch import nn

from facesketch.imaging import PHOTO_BLANK, SKETCH_BLANK  # noqa: F401  (defined in imaging; re-exported)
from facesketch.layout import BACKGROUND, COMPONENTS, LOCAL_COMPONENTS, FaceLayout
from facesketch.models.blocks import (
    AdaINResBlock,
    BaseNetwork,
    ResBlock,
    channels,
    conv_block,
    up_block,
)
from facesketch.models.config import LocalConfig


def _downs(cfg: LocalConfig, component: str) -> int:
    return cfg.n_down + (cfg.bg_extra_down if component == BACKGROUND else 0)


class GeometryEncoder(BaseNetwork):
    """E_sketch: (N, in_ch, s, s) -> geometry latent (N, latent_ch, s/2^d, s/2^d)."""

    def __init__(self, cfg: LocalConfig, n_down: int, in_ch: int = 1) -> None:
        super().__init__()
        layers: list[nn.Module] = [conv_block(in_ch, cfg.enc_base, 7)]
        for i in range(n_down):
            layers.append(
                conv_block(
                    channels(cfg.enc_base, i, cfg.enc_max),
                    channels(cfg.enc_base, i + 1, cfg.enc_max),
                    3,
                    2,
                )
            )
        top = channels(cfg.enc_base, n_down, cfg.enc_max)
        layers += [ResBlock(top) for _ in range(cfg.enc_res)]
        layers.append(nn.Conv2d(top, cfg.latent_ch, 1))
        self.net = nn.Sequential(*layers)
        self.init_weights()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class ImageEncoder(GeometryEncoder):
    """E_image: photo crop (N, 3, s, s) -> the geometry latent space of E_sketch."""

    def __init__(self, cfg: LocalConfig, n_down: int) -> None:
        super().__init__(cfg, n_down, in_ch=3)


class SketchDecoder(BaseNetwork):
    """D_sketch: geometry latent -> sketch (N, 1, s, s) in [-1, 1]."""

    def __init__(self, cfg: LocalConfig, n_down: int) -> None:
        super().__init__()
        top = channels(cfg.enc_base, n_down, cfg.enc_max)
        self.stem = nn.Sequential(
            conv_block(cfg.latent_ch, top, 3), *[ResBlock(top) for _ in range(cfg.enc_res)]
        )
        self.ups = nn.ModuleList(
            up_block(
                channels(cfg.enc_base, i, cfg.enc_max), channels(cfg.enc_base, i - 1, cfg.enc_max)
            )
            for i in range(n_down, 0, -1)
        )
        self.head = nn.Sequential(nn.ReflectionPad2d(3), nn.Conv2d(cfg.enc_base, 1, 7), nn.Tanh())
        self.init_weights()

    def forward(self, latent: torch.Tensor) -> torch.Tensor:
        return self.features(latent)[-1]

    def features(self, latent: torch.Tensor) -> list[torch.Tensor]:
        """Every stage's output (stem, each up-sampling, final sketch): stage 2 matches them."""
        x = self.stem(latent)
        feats = [x]
        for up in self.ups:
            x = up(x)
            feats.append(x)
        feats.append(self.head(x))
        return feats


class AppearanceEncoder(BaseNetwork):
    """E_app: photo crop (N, 3, H, W) -> code (N, app_dim), global-average pooled.

    No normalisation layers: instance norm would erase exactly the colour statistics
    the code has to carry.
    """

    def __init__(self, cfg: LocalConfig) -> None:
        super().__init__()
        layers: list[nn.Module] = [conv_block(3, cfg.app_base, 7, norm="none")]
        for i in range(cfg.app_down):
            layers.append(
                conv_block(
                    channels(cfg.app_base, i, 256),
                    channels(cfg.app_base, i + 1, 256),
                    4,
                    2,
                    norm="none",
                )
            )
        layers += [
            nn.AdaptiveAvgPool2d(1),
            nn.Conv2d(channels(cfg.app_base, cfg.app_down, 256), cfg.app_dim, 1),
        ]
        self.net = nn.Sequential(*layers)
        self.init_weights()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).flatten(1)


class ComponentGenerator(BaseNetwork):
    """G_syn: geometry latent + appearance code -> feature map (N, feat_ch, s, s)."""

    def __init__(self, cfg: LocalConfig, n_down: int) -> None:
        super().__init__()
        self.stem = conv_block(cfg.latent_ch, cfg.gen_ch, 3)
        self.blocks = nn.ModuleList(
            AdaINResBlock(cfg.gen_ch, cfg.app_dim) for _ in range(cfg.gen_res)
        )
        if n_down < 1:
            raise ValueError("ComponentGenerator needs at least one up-sampling step")
        ups: list[nn.Module] = []
        ch = cfg.gen_ch
        for _ in range(n_down - 1):
            nxt = max(ch // 2, cfg.feat_ch)
            # no instance norm after AdaIN: it would wash out the appearance statistics
            ups.append(up_block(ch, nxt, norm="none"))
            ch = nxt
        ups.append(up_block(ch, cfg.feat_ch, norm="none", act="none"))  # linear feature map
        self.ups = nn.Sequential(*ups)
        self.rgb = nn.Sequential(nn.ReflectionPad2d(1), nn.Conv2d(cfg.feat_ch, 3, 3), nn.Tanh())
        self.init_weights()

    def forward(self, geom: torch.Tensor, code: torch.Tensor) -> torch.Tensor:
        x = self.stem(geom)
        for block in self.blocks:
            x = block(x, code)
        return self.ups(x)

    def to_rgb(self, feat: torch.Tensor) -> torch.Tensor:
        """Training-time RGB view (N, 3, s, s) of a feature map."""
        return self.rgb(feat)


class ComponentModel(BaseNetwork):
    """All local networks of one component; exported as one ``local/<component>`` file."""

    def __init__(self, cfg: LocalConfig, component: str) -> None:
        super().__init__()
        if component not in COMPONENTS:
            raise ValueError(f"unknown component {component!r}; expected one of {COMPONENTS}")
        self.cfg, self.component = cfg, component
        d = _downs(cfg, component)
        self.E_sketch = GeometryEncoder(cfg, d)
        self.D_sketch = SketchDecoder(cfg, d)
        self.E_image = ImageEncoder(cfg, d)
        self.E_app = AppearanceEncoder(cfg)
        self.G_syn = ComponentGenerator(cfg, d)

    @property
    def network(self) -> str:
        """Manifest network name."""
        return f"local/{self.component}"

    @property
    def multiple(self) -> int:
        """Crop sides must be multiples of this."""
        return 2 ** _downs(self.cfg, self.component)

    def manifest_config(self) -> dict:
        """The config stored in (and compared against) a weights manifest."""
        return {"local": self.cfg.to_dict(), "component": self.component}

    def forward(self, sketch: torch.Tensor, code: torch.Tensor) -> torch.Tensor:
        """Feature map of a sketch crop rendered with appearance ``code``."""
        return self.G_syn(self.E_sketch(sketch), code)


def blank_local_windows(x: torch.Tensor, layout: FaceLayout, value: float) -> torch.Tensor:
    """Copy of canvas tensor ``x`` with every local window (hard paste region) set to ``value``."""
    out = x.clone()
    for name in LOCAL_COMPONENTS:
        rows, cols = layout.window(name).slices
        hard = torch.as_tensor(
            layout.paste_mask(name, feather=None), dtype=x.dtype, device=x.device
        )
        out[..., rows, cols] = out[..., rows, cols] * (1 - hard) + value * hard
    return out


def component_input(
    canvas: torch.Tensor, layout: FaceLayout, name: str, blank: float = SKETCH_BLANK
) -> torch.Tensor:
    """What component ``name``'s geometry encoders see of a canvas tensor (..., H, W).

    Local components: their window crop.  Background: the whole canvas with the local
    windows blanked to ``blank`` (white paper, +1, for sketches; use 0 for photos).
    Training and the engine both call this, so they cannot disagree.
    """
    if name == BACKGROUND:
        return blank_local_windows(canvas, layout, blank)
    return layout.crop(canvas, name)
