"""Small dataclass configs for every sketch-to-face network, and the named presets.

One code path builds both the shipped ``lite`` networks (sized for a 2-core CPU at
interactive rates) and the ``paper`` sizes of DeepFaceEditing / Cali-Sketch; ``tiny``
exists only so tests and smoke runs finish in seconds.  Configs turn into plain
dicts (they go into weight manifests, and loading compares them) and back.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field, fields
from typing import Any, TypeVar

T = TypeVar("T")


def _from_dict(cls: type[T], data: dict[str, Any]) -> T:
    """Build dataclass ``cls`` from ``data``; unknown keys are an error (typos are bugs)."""
    if not isinstance(data, dict):
        raise ValueError(f"{cls.__name__}: expected a dict, got {type(data).__name__}")
    known = {f.name: f for f in fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(data) - set(known))
    if unknown:
        raise ValueError(f"{cls.__name__}: unknown keys {unknown}; valid: {sorted(known)}")
    kwargs: dict[str, Any] = {}
    for name, value in data.items():
        sub = _NESTED.get((cls.__name__, name))
        kwargs[name] = _from_dict(sub, value) if sub is not None else value
    return cls(**kwargs)


class _Config:
    """Mixin: dict round trip for the config dataclasses."""

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict (nested configs become nested dicts)."""
        return dataclasses.asdict(self)  # type: ignore[call-overload]

    @classmethod
    def from_dict(cls: type[T], data: dict[str, Any]) -> T:
        """Inverse of :meth:`to_dict`; raises ValueError naming unknown keys."""
        return _from_dict(cls, data)


@dataclass(frozen=True)
class SCNConfig(_Config):
    """Stroke Calibration Network G1 (a U-Net, or Cali-Sketch's encoder - residual
    blocks - decoder) with a keep/add ink gate or a residual head, and its D1.

    Versions: manifests without ``unet`` are the plain encoder-decoder, manifests
    without ``gate`` predict a residual correction (``gate="none"``)."""

    base: int = 12  # channels of the first (full resolution) conv (thin: it runs at 256)
    n_down: int = 3
    n_res: int = 4
    max_ch: int = 64
    # gate "none" only: predict a correction added to the input (starts as the
    # identity: leaves good strokes alone from step 0 and learns what to change)
    residual: bool = True
    # U-Net skips (full-resolution features reach the output): thin strokes pass
    # through unchanged while the bottleneck sees enough context to tell hatching,
    # doubled and stray strokes from contours; False = the plain encoder-decoder
    unet: bool = True
    # "keep": output ink = rough ink x sigmoid(keep logit), erases but never adds ink;
    # "keep_add": plus an add logit for paper pixels; "none": ``residual`` / tanh head
    gate: str = "keep"
    d_base: int = 16  # PatchDiscriminator D1 (it runs 3 times a step: keep it light)
    d_layers: int = 3

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SCNConfig:
        """As :meth:`_Config.from_dict`; a config without ``unet`` (weights made before
        the U-Net existed) is the plain encoder-decoder it was trained as."""
        if isinstance(data, dict) and "unet" not in data:
            data = {**data, "unet": False}
        if isinstance(data, dict) and "gate" not in data:  # before the gate: residual
            data = {**data, "gate": "none"}
        return _from_dict(cls, data)

    def __post_init__(self) -> None:
        if self.gate not in SCN_GATES:
            raise ValueError(f"SCNConfig.gate must be one of {SCN_GATES}, got {self.gate!r}")


#: Heads of the stroke calibrator (see SCNConfig.gate).
SCN_GATES: tuple[str, ...] = ("keep", "keep_add", "none")


@dataclass(frozen=True)
class LocalConfig(_Config):
    """Per-component networks of DeepFaceEditing's local disentanglement.

    The geometry latent is spatial: ``latent_ch`` x (s / 2**n_down)^2 for a window of
    side s; the background (whole canvas) downsamples ``bg_extra_down`` times more.
    """

    enc_base: int = 16  # E_sketch / E_image / D_sketch first-layer channels
    enc_max: int = 64
    n_down: int = 2
    enc_res: int = 1  # residual blocks at latent resolution in encoders / decoder
    latent_ch: int = 64  # geometry latent channels (paper: 512-1024)
    bg_extra_down: int = 1
    app_base: int = 16  # E_app
    app_down: int = 4
    app_dim: int = 64  # appearance code length
    gen_ch: int = 64  # G_syn channels at latent resolution
    gen_res: int = 2  # AdaIN residual blocks
    feat_ch: int = 16  # channels of the component feature map fed to the fusion
    d_base: int = 32  # multi-scale discriminators for stage 3
    d_layers: int = 3
    d_scales: int = 2


@dataclass(frozen=True)
class FusionConfig(_Config):
    """pix2pixHD-like global fusion from the pasted feature map to RGB."""

    in_ch: int = 16  # must equal LocalConfig.feat_ch
    # the (calibrated) sketch also reaches the fusion as extra input channels: a skip
    # that carries fine geometry the lite component latents are too small to keep
    # (0 in manifests written before it existed; the lite preset uses 1)
    sketch_ch: int = 0
    base: int = 16  # channels of the last (full resolution) decoder layer
    n_down: int = 4
    n_res: int = 3
    max_ch: int = 128
    d_base: int = 32
    d_layers: int = 3
    d_scales: int = 2
    # version 2 (manifests without these keys are version 1: transposed convs, no
    # reference): "resize" = nearest up-sampling + 3x3 conv (no mesh, no notch filter)
    decoder: str = "transpose"
    # a warped reference photo (RGB) + its validity mask as extra inputs (0 or 4); the
    # fusion predicts a residual flow (at most ``flow_px`` canvas pixels) and a
    # per-pixel blend between the re-warped reference and its own synthesis
    ref_ch: int = 0
    flow_px: float = 8.0
    # the pasted maps enter the fusion through the mesh notch: the component generators'
    # transposed convs leave a grid in them (about 0.2 rms of every channel), which the
    # head's full-resolution skip copied straight to the face and the encoder passed on,
    # whatever the decoder (session 18).  False in manifests written before it.
    input_notch: bool = False
    # the head's full-resolution skip repeats the pasted maps (True, version 1) or only the
    # sketch and reference: what grid the notch leaves in the maps (measured: about 14 %)
    # the head's skip weights amplified into a dotted nose; through the encoder's
    # down-sampling it reaches the face only as content.
    head_maps: bool = True
    # the maps on the head's skip are blurred ([1, 2, 1], ``filters.binomial_blur``):
    # the notch's residue there drew a dotted nose (period 2: 0.53 -> 0.15 at no
    # training, photos 0.25, the face changing by 0.005 mean), while the skip still
    # carries the maps' shape at full resolution (``head_maps`` False lost identity:
    # descriptor 0.566 -> 0.67, session 18).  False in manifests written before it.
    head_maps_blur: bool = False

    def __post_init__(self) -> None:
        if self.decoder not in ("transpose", "resize"):
            raise ValueError(
                f"FusionConfig.decoder must be transpose or resize, not {self.decoder!r}"
            )
        if self.head_maps_blur and not self.head_maps:
            raise ValueError("FusionConfig.head_maps_blur needs head_maps (maps on the skip)")
        if self.ref_ch not in (0, 4):
            raise ValueError(
                f"FusionConfig.ref_ch must be 0 or 4 (RGB + validity), not {self.ref_ch}"
            )

    def to_dict(self) -> dict[str, Any]:
        """As :meth:`_Config.to_dict`, without the version-2 keys when they are at their
        version-1 values: a shipped version-1 manifest stays equal to its config."""
        d = dataclasses.asdict(self)
        if self.decoder == "transpose" and not self.ref_ch:
            for k in ("decoder", "ref_ch", "flow_px"):
                d.pop(k)
        if not self.input_notch:
            d.pop("input_notch")
        if self.head_maps:
            d.pop("head_maps")
        if not self.head_maps_blur:
            d.pop("head_maps_blur")
        return d


@dataclass(frozen=True)
class UpConfig(_Config):
    """The light learned 2x up-sampling head (sub-pixel conv) run after the fusion."""

    ch: int = 16
    n_layers: int = 3


@dataclass(frozen=True)
class LandmarkConfig(_Config):
    """Sketch landmark network (facesketch.models.landmarks): channels double from
    ``base`` per stride-2 stage up to ``max_ch``; heatmaps at 1/4 of ``input_size``."""

    input_size: int = 128  # the side sketches are resized to (a multiple of 16)
    base: int = 16
    max_ch: int = 96
    n_context: int = 2  # 3x3 convs at 1/16 resolution (receptive field: the whole face)
    head_ch: int = 64
    sharpness: float = 1.0  # heatmap logit scale before the soft-argmax


@dataclass(frozen=True)
class ModelConfig(_Config):
    """Everything the sketch-to-face chain needs, on a ``canvas``-pixel face layout."""

    canvas: int = 256
    scn: SCNConfig = field(default_factory=SCNConfig)
    local: LocalConfig = field(default_factory=LocalConfig)
    fusion: FusionConfig = field(default_factory=FusionConfig)
    up: UpConfig = field(default_factory=UpConfig)

    def __post_init__(self) -> None:
        if self.fusion.in_ch != self.local.feat_ch:
            raise ValueError(
                f"fusion.in_ch ({self.fusion.in_ch}) must equal local.feat_ch "
                f"({self.local.feat_ch}): the fusion reads the pasted component maps"
            )


_NESTED: dict[tuple[str, str], type] = {
    ("ModelConfig", "scn"): SCNConfig,
    ("ModelConfig", "local"): LocalConfig,
    ("ModelConfig", "fusion"): FusionConfig,
    ("ModelConfig", "up"): UpConfig,
}

PRESETS: tuple[str, ...] = ("lite", "paper", "tiny")


def preset(name: str) -> ModelConfig:
    """Named config: ``lite`` (shipped), ``paper`` (reference sizes), ``tiny`` (tests)."""
    if name == "lite":
        return ModelConfig(fusion=FusionConfig(sketch_ch=1))
    if name == "paper":
        # DeepFaceEditing: 512-1024-channel geometry latents, 64-channel component maps,
        # a pix2pixHD global generator; Cali-Sketch: a 64-channel 3-down / 9-res generator.
        return ModelConfig(
            canvas=512,
            scn=SCNConfig(
                base=64, n_down=3, n_res=9, max_ch=512, unet=False, d_base=64, d_layers=3
            ),
            local=LocalConfig(
                enc_base=64,
                enc_max=512,
                n_down=2,
                enc_res=4,
                latent_ch=1024,
                bg_extra_down=1,
                app_base=64,
                app_down=5,
                app_dim=256,
                gen_ch=512,
                gen_res=4,
                feat_ch=64,
                d_base=64,
                d_layers=3,
                d_scales=3,
            ),
            fusion=FusionConfig(
                in_ch=64,
                sketch_ch=1,
                base=64,
                n_down=4,
                n_res=9,
                max_ch=1024,
                d_base=64,
                d_scales=3,
            ),
            up=UpConfig(ch=32, n_layers=4),
        )
    if name == "tiny":
        return ModelConfig(
            canvas=128,
            scn=SCNConfig(base=4, n_down=2, n_res=1, max_ch=8, d_base=4, d_layers=2),
            local=LocalConfig(
                enc_base=4,
                enc_max=8,
                n_down=2,
                enc_res=1,
                latent_ch=8,
                bg_extra_down=1,
                app_base=4,
                app_down=2,
                app_dim=8,
                gen_ch=8,
                gen_res=1,
                feat_ch=4,
                d_base=4,
                d_layers=2,
                d_scales=2,
            ),
            fusion=FusionConfig(
                in_ch=4, sketch_ch=1, base=4, n_down=2, n_res=1, max_ch=8, d_base=4, d_layers=2
            ),
            up=UpConfig(ch=4, n_layers=2),
        )
    raise ValueError(f"unknown preset {name!r}; choose from {PRESETS}")


def merge_dict(base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """Recursive dict update returning a new dict (``overrides`` wins)."""
    out = dict(base)
    for k, v in overrides.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = merge_dict(out[k], v)
        else:
            out[k] = v
    return out
