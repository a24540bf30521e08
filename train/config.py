"""Run configuration of the training loop: config JSON, ``--set`` overrides, CLI flags."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

from facesketch.models.config import ModelConfig, merge_dict, preset

CONFIG_DIR = Path(__file__).parent / "configs"
TRAIN_DEFAULTS: dict[str, Any] = {
    "batch": 4,
    "lr": 2e-4,
    "betas": [0.5, 0.999],
    "seed": 0,
    "workers": 1,
    "threads": 0,  # CPU threads; 0 = cores / processes
    "max_steps": 200_000,
    "max_minutes": 0,  # 0 = no time box
    "warmup_steps": 0,  # linear lr ramp over the run's first steps (0 = none)
    "log_every": 20,
    "val_every": 500,
    "ckpt_every": 200,
    "val_images": 4,
    "amp": "auto",  # auto: bf16 (or fp16 + GradScaler) on CUDA, off on CPU
}


def default_data_root() -> Path:
    """The prepared-data folder when no --data/--out is given: ``$FACESKETCH_DATA``, else
    ``~/.cache/facesketch/prepared``.  The one definition: train.prepare writes there and
    every trainer, train.pack and the evaluations read there."""
    env = os.environ.get("FACESKETCH_DATA")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "facesketch" / "prepared"


def parse_value(text: str) -> Any:
    """A --set value: JSON when it parses (numbers, true, lists), else the string."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def apply_overrides(cfg: dict, pairs: list[str]) -> dict:
    """Apply ``key.sub=value`` overrides (new dict); ValueError for a malformed pair."""
    out = json.loads(json.dumps(cfg))
    for pair in pairs:
        if "=" not in pair:
            raise ValueError(f"--set expects key=value, got {pair!r}")
        key, value = pair.split("=", 1)
        node = out
        parts = key.strip().split(".")
        for p in parts[:-1]:
            node = node.setdefault(p, {})
            if not isinstance(node, dict):
                raise ValueError(f"--set {key}: {p} is not a section")
        node[parts[-1]] = parse_value(value)
    return out


def model_config(cfg: dict) -> ModelConfig:
    """The network config of a run: ``preset`` with the ``model`` section merged in."""
    base = preset(cfg.get("preset", "lite")).to_dict()
    return ModelConfig.from_dict(merge_dict(base, cfg.get("model", {})))


def load_config(path: Path | None, overrides: list[str]) -> dict:
    """Read a config JSON, fill loop defaults, apply overrides."""
    cfg: dict = json.loads(Path(path).read_text()) if path else {}
    cfg = apply_overrides(cfg, overrides)
    cfg["train"] = merge_dict(TRAIN_DEFAULTS, cfg.get("train", {}))
    cfg.setdefault("data", {})
    cfg.setdefault("task", {})
    model_config(cfg)  # fail early on a bad model section
    return cfg


def build_parser(name: str, description: str) -> argparse.ArgumentParser:
    """Arguments every stage script shares (stage scripts add their own)."""
    ap = argparse.ArgumentParser(prog=f"python -m train.{name}", description=description)
    ap.add_argument("--config", type=Path, default=CONFIG_DIR / f"{name}.json", help="config JSON")
    ap.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override, e.g. train.batch=8",
    )
    ap.add_argument("--run-dir", type=Path, default=None, help="default runs/<stage>")
    ap.add_argument(
        "--data", type=Path, default=None, help="prepared data root (default $FACESKETCH_DATA)"
    )
    ap.add_argument("--synthetic", action="store_true", help="tiny synthetic data (smoke runs)")
    ap.add_argument("--max-steps", type=int, default=None, help="stop at this global step")
    ap.add_argument("--max-minutes", type=float, default=None, help="time box for this invocation")
    ap.add_argument(
        "--init", nargs="*", type=Path, default=None, help="run dirs / ckpt.pt to load nets from"
    )
    ap.add_argument(
        "--export", type=Path, default=None, help="export folder (default <run-dir>/export)"
    )
    ap.add_argument("--restart", action="store_true", help="ignore an existing checkpoint")
    ap.add_argument("--device", default=None, help="cpu, cuda, cuda:1 (default: auto)")
    ap.add_argument("--no-progress", action="store_true", help="no tqdm bar")
    return ap


def config_from_args(args: argparse.Namespace, extra: dict | None = None) -> dict:
    """The run config from parsed args: config file, --set, then explicit flags."""
    cfg = load_config(args.config if args.config and Path(args.config).exists() else None, args.set)
    if extra:
        cfg = merge_dict(cfg, extra)
    if args.data:
        cfg["data"]["root"] = str(args.data)
    if args.synthetic:
        cfg["data"]["synthetic"] = True
    if args.max_steps is not None:
        cfg["train"]["max_steps"] = args.max_steps
    if args.max_minutes is not None:
        cfg["train"]["max_minutes"] = args.max_minutes
    return cfg
