"""Model cards restate the manifest and the evaluation, so a reader need not open JSON."""

from __future__ import annotations

import json
from pathlib import Path

from train import model_card


def test_card_has_manifest_facts_eval_metrics_and_sheet(tmp_path: Path) -> None:
    manifest = {
        "network": "fusion",
        "data": "faces",
        "steps": 1234,
        "wall_time_s": 600.0,
        "hardware": "cpu, 2 cores",
        "sha256": "ab" * 32,
        "metrics": {"val_psnr": 17.25},
    }
    (tmp_path / "fusion.json").write_text(json.dumps(manifest))
    (tmp_path / "val.json").write_text(json.dumps({"f1_face": 0.41, "samples": 64}))
    args = [str(tmp_path / "fusion.json"), "--notes", "sharp", "--eval"]
    args += [f"val={tmp_path / 'val.json'}", "--image", "fusion-contact.png"]
    assert model_card.main(args) == 0
    card = (tmp_path / "fusion.md").read_text()
    for text in ("`fusion`", "1234", "10.0 min", "| val_psnr | 17.25 |", "| val: f1_face | 0.41 |"):
        assert text in card
    assert "| val: samples | 64 |" in card and "![fusion-contact](fusion-contact.png)" in card
