"""The SCN's keep/add gate: it only erases rough ink (unless add is on), its training
targets are the line F1's, old residual manifests keep loading, and it trains."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from facesketch.engine.weights import load_into, read_manifest
from facesketch.models import StrokeCalibrator
from facesketch.models.config import SCNConfig, preset
from facesketch.models.scn import compose_gate, ink
from train import scn as train_scn

TINY = preset("tiny").scn
REPO = Path(__file__).resolve().parents[1]


def _sketch(n: int = 2, side: int = 32, seed: int = 0) -> torch.Tensor:
    """Random strokes on paper, with grey anti-aliasing, in [-1, 1]."""
    g = torch.Generator().manual_seed(seed)
    x = torch.ones(n, 1, side, side)
    lines = torch.rand(n, 1, side, side, generator=g) < 0.15
    x[lines] = torch.rand(int(lines.sum()), generator=g) * 1.4 - 1.0
    return x


def _scramble(model: StrokeCalibrator, seed: int = 1) -> StrokeCalibrator:
    """Large random weights: an arbitrary (not identity-like) calibrator."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.5)
    return model.eval()


@pytest.mark.parametrize("unet", [True, False])
def test_keep_gate_never_adds_ink(unet: bool) -> None:
    """However it is trained, a keep-only calibrator cannot draw where the user did not:
    paper stays exactly paper and no pixel gets darker."""
    model = _scramble(StrokeCalibrator(SCNConfig(**{**TINY.to_dict(), "unet": unet})))
    rough = _sketch()
    with torch.no_grad():
        out = model(rough)
    assert out.shape == rough.shape
    paper = rough == 1.0
    assert torch.equal(out[paper], torch.ones(int(paper.sum())))
    assert (ink(out) <= ink(rough) + 1e-6).all()
    # and it does change the drawing (the check above is not vacuous)
    assert (ink(out) < ink(rough) - 0.1).any()


def test_add_gate_can_ink_paper_and_blank_input_stays_blank_without_it() -> None:
    rough = torch.ones(1, 1, 8, 8)
    logits = torch.full((1, 2, 8, 8), 6.0)
    assert (compose_gate(rough, logits) < -0.9).all()  # add on: paper is inked
    assert torch.equal(compose_gate(rough, logits[:, :1]), rough)  # keep only: not


def test_untrained_gate_keeps_every_stroke() -> None:
    """Step 0 is (near) the identity: clean drawings are not damaged before training."""
    for gate in ("keep", "keep_add"):
        model = StrokeCalibrator(SCNConfig(**{**TINY.to_dict(), "gate": gate})).eval()
        rough = _sketch()
        with torch.no_grad():
            out = model(rough)
        dark = rough < -0.2  # clearly ink: stays ink (the F1's threshold is mid grey)
        assert (out[dark] < 0).all() and (out[rough >= 0] >= 0).all(), gate
        assert (out - rough).abs().max() < 0.15


def test_gate_targets_follow_the_line_f1_tolerance() -> None:
    """keep = rough ink within 2 px (elliptical) of clean ink; add = clean ink far from it."""
    clean = torch.ones(1, 1, 24, 24)
    rough = torch.ones(1, 1, 24, 24)
    clean[..., 4, 2:20] = -1  # a clean line
    rough[..., 6, 2:20] = -1  # drawn 2 px off: the F1 counts it, keep it
    rough[..., 12, 2:20] = -1  # 8 px off: false ink, erase it
    clean[..., 20, 2:10] = -1  # a line the rough drawing lacks
    keep, add = train_scn.gate_targets(rough, clean)
    assert keep[0, 0, 6, 2:20].all() and not keep[0, 0, 12, 2:20].any()
    assert add[0, 0, 20, 2:10].all() and not add[0, 0, 4, 2:20].any()
    # a diagonal neighbour at (2, 2) is outside the elliptical 5x5 window, as in edge_f1
    k = train_scn._NEAR[0, 0]
    assert k[2, 2] == 1 and k[0, 0] == 0


def test_gate_loss_moves_the_gate_toward_erasing_false_ink() -> None:
    """A few optimiser steps on one pair: the far stroke fades, the near one stays."""
    torch.manual_seed(0)
    clean = torch.ones(1, 1, 32, 32)
    rough = torch.ones(1, 1, 32, 32)
    clean[..., 8, 4:28] = -1
    rough[..., 9, 4:28] = -1  # kept
    rough[..., 22, 4:28] = -1  # false ink
    model = StrokeCalibrator(TINY)
    task = train_scn.SCNTask.__new__(train_scn.SCNTask)
    task.tcfg = {"keep_balance": 0.5}
    opt = torch.optim.Adam(model.parameters(), 1e-2)
    for _ in range(40):
        loss = task.gate_losses(model.raw(rough), rough, clean)["keep"]
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        out = model(rough)
    assert (out[0, 0, 22, 4:28] > 0).all()  # erased (lighter than the F1's ink level)
    assert (out[0, 0, 9, 4:28] < 0).all()  # kept


def test_old_manifests_load_as_what_they_were_trained_as() -> None:
    before_unet = {"base": 4, "n_down": 2, "n_res": 1, "max_ch": 8, "residual": True}
    cfg = SCNConfig.from_dict(before_unet)
    assert cfg.unet is False and cfg.gate == "none"
    before_gate = {**TINY.to_dict(), "unet": True}
    del before_gate["gate"]
    assert SCNConfig.from_dict(before_gate).gate == "none"
    assert SCNConfig.from_dict(TINY.to_dict()) == TINY  # round trip keeps the gate
    with pytest.raises(ValueError, match="gate must be one of"):
        SCNConfig(gate="erase")
    # a residual calibrator starts as the exact identity, as before
    model = StrokeCalibrator(SCNConfig.from_dict(before_gate)).eval()
    x = _sketch()
    with torch.no_grad():
        assert torch.equal(model(x), x)


def test_shipped_scn_weights_load() -> None:
    path = REPO / "resources" / "weights" / "scn.safetensors"
    if not path.is_file():
        pytest.skip("no shipped SCN weights in resources/weights")
    conf = read_manifest(path)["config"]
    model = StrokeCalibrator(SCNConfig.from_dict(conf))
    load_into(model, path, "scn", conf)
    with torch.no_grad():
        out = model.eval()(_sketch(1, 64))
    assert out.shape == (1, 1, 64, 64) and torch.isfinite(out).all()


def test_component_crops_and_window_crop() -> None:
    """Training sees what the app feeds the SCN: crops around the local windows, and
    the background input with the windows blanked to paper."""
    from facesketch.layout import LOCAL_COMPONENTS, FaceLayout
    from facesketch.models.local import SKETCH_BLANK, blank_local_windows

    lay = FaceLayout.default(256)
    canvas = torch.arange(256 * 256, dtype=torch.float32).reshape(1, 256, 256)
    rng = np.random.default_rng(0)
    for name in LOCAL_COMPONENTS:
        (crop,) = train_scn.window_crop([canvas], 96, name, lay, rng)
        win = lay.window(name)
        y0, x0 = divmod(int(crop[0, 0, 0]), 256)
        assert crop.shape == (1, 96, 96)
        cy, cx = y0 + 48, x0 + 48  # crop centre within 8 px of the window centre
        assert abs(cy - (win.y + win.size // 2)) <= 8 and abs(cx - (win.x + win.size // 2)) <= 8
    blank = blank_local_windows(torch.zeros(1, 256, 256), lay, SKETCH_BLANK)
    rows, cols = lay.window(LOCAL_COMPONENTS[0]).slices
    assert blank[0, rows, cols].max() == SKETCH_BLANK and blank[0, 0, 0] == 0


def test_keep_add_trains_resumes_and_exports(tmp_path: Path) -> None:
    """The smoke-train pattern of test_train_smoke for the add head: the manifest
    records the gate and the export loads into a calibrator built from it."""
    run = tmp_path / "scn"
    args = [
        "--synthetic",
        "--no-progress",
        "--run-dir",
        str(run),
        *("--set", "preset=tiny", "--set", "train.batch=2", "--set", "train.workers=0"),
        *("--set", "data.synthetic_count=4", "--set", "train.val_images=2"),
        *("--set", "model.scn.gate=keep_add", "--set", "task.window_crop_p=1.0"),
    ]
    assert train_scn.main([*args, "--max-steps", "2"]) == 0
    assert train_scn.main([*args, "--max-steps", "3"]) == 0
    ckpt = torch.load(run / "ckpt.pt", map_location="cpu", weights_only=False)
    assert ckpt["loop"]["step"] == 3
    path = run / "export" / "scn.safetensors"
    conf = read_manifest(path)["config"]
    assert conf["gate"] == "keep_add"
    model = StrokeCalibrator(SCNConfig.from_dict(conf))
    load_into(model, path, "scn", conf)
    assert model.head.out_channels == 2
    rows = (run / "log.csv").read_text().splitlines()
    header = rows[0].split(",")
    assert "g_keep" in header and "g_add" in header and "val_f1_s70" in header
    json.loads((run / "config.json").read_text())  # the run's config is readable
