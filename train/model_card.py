"""Write a model card (``<stem>.md``) beside shipped weights from their manifest.

The manifest holds the facts (network, config, data, steps, wall time, hardware,
metrics, sha256); the card restates them for people and adds what a number cannot
say (``--notes``: what the outputs look like, known limits).

    python -m train.model_card resources/weights/fusion.json --notes "..." [--title T]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def render_card(manifest: dict, title: str, notes: str, command: str = "") -> str:
    """Markdown text of a model card for ``manifest``."""
    metrics = manifest.get("metrics") or {}
    rows = "\n".join(
        f"| {k} | {v:.4g} |" if isinstance(v, float) else f"| {k} | {v} |"
        for k, v in sorted(metrics.items())
    )
    wall = float(manifest.get("wall_time_s") or 0.0)
    lines = [
        f"# {title}",
        "",
        f"- network: `{manifest.get('network')}`",
        f"- training data: {manifest.get('data')}",
        f"- steps: {manifest.get('steps')}",
        f"- wall time: {wall / 60:.1f} min",
        f"- hardware: {manifest.get('hardware')}",
        f"- sha256: `{manifest.get('sha256')}`",
        "- format: fp16 safetensors; config in the JSON manifest beside this card",
    ]
    if command:
        lines += ["", "Trained with:", "", "```", command, "```"]
    if rows:
        lines += ["", "## Validation metrics", "", "| metric | value |", "|---|---|", rows]
    lines += ["", "## Notes", "", notes.strip() or "(none)", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m train.model_card", description=__doc__)
    ap.add_argument("manifest", type=Path, nargs="+", help="manifest JSON file(s)")
    ap.add_argument("--title", default="", help="card title (default: network name)")
    ap.add_argument("--notes", default="", help="what the outputs look like, limits")
    ap.add_argument("--command", default="", help="the command that trained it")
    args = ap.parse_args(argv)
    for path in args.manifest:
        manifest = json.loads(path.read_text())
        title = args.title or f"facesketch weights: {manifest.get('network')}"
        out = path.with_suffix(".md")
        out.write_text(render_card(manifest, title, args.notes, args.command))
        print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
