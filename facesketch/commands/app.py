"""``facesketch app``: open the drawing window (or, without a display, render the demo)."""

from __future__ import annotations

import argparse
import os

HELP = "open the drawing window (without a display: render the demo to a file)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``facesketch app``."""
    parser.add_argument("project", nargs="?", metavar="PROJECT", help="project file to open")
    parser.add_argument(
        "--screenshot", metavar="OUT.png", help="save a screenshot of the window, then quit"
    )
    parser.add_argument(
        "--demo-out",
        metavar="OUT.png",
        default="facesketch-demo.png",
        help="where the demo render goes when there is no display (default: %(default)s)",
    )


def run(args: argparse.Namespace) -> int:
    """Open the window, take a screenshot, or render the demo headless."""
    from facesketch.ui.app import has_display, render_demo, run_app

    if args.screenshot:
        if not has_display():  # a screenshot needs no screen: draw offscreen
            os.environ["QT_QPA_PLATFORM"] = "offscreen"
        return run_app(args.project, screenshot=args.screenshot)
    if not has_display():
        return render_demo(args.demo_out, args.project)
    return run_app(args.project)
