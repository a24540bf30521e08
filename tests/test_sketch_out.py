"""``facesketch render --sketch-out``: the sketch the networks received, after calibration."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from facesketch import cli
from facesketch.commands import render
from facesketch.engine.bundle import random_bundle
from facesketch.imaging import read_image
from facesketch.models import preset

TINY = dataclasses.replace(preset("tiny"), canvas=128)
SIZE = 2 * TINY.canvas


@pytest.fixture()
def calibrating_networks(monkeypatch):
    """Tiny random networks whose calibrator really changes strokes (not the identity)."""
    bundle = random_bundle(TINY, seed=3)
    torch.nn.init.normal_(bundle.scn.net[-1].weight, 0.0, 0.5)
    monkeypatch.setattr(render, "load_bundle", lambda _w: bundle)


def _sketch(tmp_path: Path) -> Path:
    sk = np.full((256, 256), 255, np.uint8)
    cv2.ellipse(sk, (128, 136), (80, 104), 0, 0, 360, 0, 2)
    cv2.line(sk, (100, 120), (150, 125), 0, 2)
    cv2.imwrite(str(tmp_path / "s.png"), sk)
    return tmp_path / "s.png"


def test_sketch_out_shows_what_calibration_did(calibrating_networks, tmp_path, capsys):
    src = _sketch(tmp_path)
    outs = {}
    for scn in ("0", "1"):
        sk_out = tmp_path / f"sk{scn}.png"
        args = ["render", str(src), "-o", str(tmp_path / f"f{scn}.png"), "--size", str(SIZE)]
        code = cli.main([*args, "--scn", scn, "--sketch-out", str(sk_out)])
        assert code == 0, capsys.readouterr().err
        outs[scn] = read_image(sk_out)
    assert outs["0"].shape[:2] == (SIZE, SIZE)
    drawn = cv2.resize(cv2.imread(str(src), 0), (SIZE, SIZE), interpolation=cv2.INTER_AREA)
    raw = outs["0"] if outs["0"].ndim == 2 else outs["0"][..., 0]
    assert np.abs(raw.astype(int) - drawn).mean() < 8  # strength 0: the strokes as drawn
    assert not np.array_equal(outs["0"], outs["1"])  # strength 1: what the SCN made of them


def test_sketch_out_folder_for_several_inputs(calibrating_networks, tmp_path, capsys):
    a = _sketch(tmp_path)
    b = tmp_path / "t.png"
    b.write_bytes(a.read_bytes())
    args = ["render", str(a), str(b), "-o", str(tmp_path / "faces"), "--size", str(SIZE)]
    assert cli.main([*args, "--sketch-out", str(tmp_path / "sk")]) == 0, capsys.readouterr().err
    assert sorted(p.name for p in (tmp_path / "sk").iterdir()) == ["s.png", "t.png"]
