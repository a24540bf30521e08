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


def render_card(
    manifest: dict,
    title: str,
    notes: str,
    command: str = "",
    evals: dict[str, dict] | None = None,
    images: list[str] | None = None,
) -> str:
    """Markdown text of a model card for ``manifest`` (+ ``train.eval`` results by label)."""
    metrics = dict(manifest.get("metrics") or {})
    for label, result in (evals or {}).items():
        metrics.update({f"{label}: {k}": v for k, v in result.items()})
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
    for img in images or []:
        lines += ["", f"![{Path(img).stem}]({img})"]
    lines += ["", "## Notes", "", notes.strip() or "(none)", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m train.model_card", description=__doc__)
    ap.add_argument("manifest", type=Path, nargs="+", help="manifest JSON file(s)")
    ap.add_argument("--title", default="", help="card title (default: network name)")
    ap.add_argument("--notes", default="", help="what the outputs look like, limits")
    ap.add_argument("--command", default="", help="the command that trained it")
    ap.add_argument(
        "--eval",
        action="append",
        default=[],
        metavar="LABEL=METRICS.json",
        help="train.eval metrics to add to the table (repeatable)",
    )
    ap.add_argument(
        "--image", action="append", default=[], help="contact sheet to show (relative path)"
    )
    args = ap.parse_args(argv)
    evals = {}
    for item in args.eval:
        label, _, file = item.partition("=")
        if not file:
            ap.error(f"--eval wants LABEL=METRICS.json, got {item!r}")
        evals[label] = json.loads(Path(file).read_text())
    for path in args.manifest:
        manifest = json.loads(path.read_text())
        title = args.title or f"facesketch weights: {manifest.get('network')}"
        out = path.with_suffix(".md")
        card = render_card(manifest, title, args.notes, args.command, evals, args.image)
        out.write_text(card)
        print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
