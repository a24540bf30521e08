"""facesketch.models: the networks only (pure torch: no file I/O, no Qt, no dlib).

Every network is built from a config in :mod:`facesketch.models.config`
(``preset("lite" | "paper")``); weights are loaded by ``facesketch.engine.weights``.
"""

from facesketch.models.config import (
    FusionConfig,
    LocalConfig,
    ModelConfig,
    SCNConfig,
    UpConfig,
    preset,
)
from facesketch.models.fusion import GlobalFusion, MultiScaleDiscriminator, Upsampler2x
from facesketch.models.local import (
    AppearanceEncoder,
    ComponentGenerator,
    ComponentModel,
    GeometryEncoder,
    ImageEncoder,
    SketchDecoder,
    component_input,
)
from facesketch.models.scn import PatchDiscriminator, StrokeCalibrator

__all__ = [
    "AppearanceEncoder",
    "ComponentGenerator",
    "ComponentModel",
    "FusionConfig",
    "GeometryEncoder",
    "GlobalFusion",
    "ImageEncoder",
    "LocalConfig",
    "ModelConfig",
    "MultiScaleDiscriminator",
    "PatchDiscriminator",
    "SCNConfig",
    "SketchDecoder",
    "StrokeCalibrator",
    "UpConfig",
    "Upsampler2x",
    "component_input",
    "preset",
]
