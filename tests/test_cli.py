"""Command line frame: subcommands, help, usage errors, ``python -m facesketch``."""

from __future__ import annotations

import subprocess
import sys

import pytest

from facesketch import cli


def test_help_lists_the_five_commands(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["--help"]) == 0
    out = capsys.readouterr().out
    for name in ("app", "render", "cartoonize", "sketchify", "align"):
        assert name in out
    assert set(cli.COMMANDS) == {"app", "render", "cartoonize", "sketchify", "align"}


@pytest.mark.parametrize("name", cli.COMMANDS)
def test_each_command_has_help(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main([name, "--help"]) == 0
    assert "usage: facesketch " + name in capsys.readouterr().out


def test_usage_errors_return_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main([]) == 2
    assert cli.main(["no-such-command"]) == 2
    assert cli.main(["render", "a.png", "-o", "out.png", "--scn", "3"]) == 2
    assert "0..1" in capsys.readouterr().err


def test_render_arguments_parse() -> None:
    args = cli.build_parser().parse_args(
        ["render", "a.png", "b.json", "-o", "out", "--appearance-left-eye", "e.jpg", "--scn", "0.5"]
    )
    assert [str(p) for p in args.inputs] == ["a.png", "b.json"]
    assert str(args.appearance_left_eye) == "e.jpg"
    assert args.scn == 0.5 and args.size == 512 and str(args.output) == "out"


def test_python_dash_m() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "facesketch", "--version"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0 and "facesketch" in proc.stdout
