"""Command line: ``facesketch <command> …`` with one module per command.

Each module in :mod:`facesketch.commands` exposes ``HELP``, ``add_arguments(parser)``
and ``run(args) -> int``, so each command's owner edits only its own file.  Command
modules must import heavy things (torch, Qt, dlib) inside ``run``, so ``--help`` is
quick.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from types import ModuleType

from facesketch import __version__

#: Subcommands, in the order ``--help`` lists them.
COMMANDS: tuple[str, ...] = ("app", "render", "cartoonize", "sketchify", "align")


def _load(name: str) -> ModuleType:
    return importlib.import_module(f"facesketch.commands.{name}")


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser, one subparser per command module."""
    parser = argparse.ArgumentParser(
        prog="facesketch",
        description="Draw a face, see it rendered photo-real, live; give it the look of "
        "reference photos; export it as a cartoon.",
    )
    parser.add_argument("--version", action="version", version=f"facesketch {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        module = _load(name)
        help_text = str(getattr(module, "HELP", ""))
        cmd = sub.add_parser(name, help=help_text, description=help_text)
        module.add_arguments(cmd)
        cmd.set_defaults(_run=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code (0 ok, 1 failure, 2 usage error)."""
    parser = build_parser()
    try:
        args = parser.parse_args(list(argv) if argv is not None else None)
    except SystemExit as exc:  # --help, --version and usage errors
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 2)
    if args.command is None:
        parser.print_help(sys.stderr)
        return 2
    try:
        return int(args._run(args) or 0)
    except KeyboardInterrupt:
        print("facesketch: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
