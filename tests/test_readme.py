"""README: the quick start stays two commands and every CLI flag is documented."""

from __future__ import annotations

import argparse
from pathlib import Path

from facesketch.cli import COMMANDS, build_parser

README = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")


def test_quick_start_is_make_run_and_make_test() -> None:
    quick = README.split("## Quick start", 1)[1]
    first_block = quick.split("```sh\n", 1)[1].split("```", 1)[0]
    assert first_block == "make run\nmake test\n"
    assert "pip install torch==2.13.0 ." in quick.split("## ", 1)[0]


def test_every_flag_of_every_command_is_documented() -> None:
    section = README.split("## Command line", 1)[1].split("\n## ", 1)[0]
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    missing = []
    for name in COMMANDS:
        if f"**`facesketch {name}`**" not in section:
            missing.append(name)
        for action in sub.choices[name]._actions:
            for opt in action.option_strings:
                if opt not in ("-h", "--help") and f"`{opt}" not in section:
                    missing.append(f"{name} {opt}")
    assert not missing, f"README's Command line section lacks: {', '.join(missing)}"
