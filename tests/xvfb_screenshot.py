"""Screenshot the real app on a virtual X display (xcb platform, not offscreen).

    .venv/bin/python tests/xvfb_screenshot.py [OUT.png] [PROJECT]

Needs Xvfb (Debian/Ubuntu: ``apt-get install -y xvfb``).  Starts Xvfb on a free
display, runs ``facesketch app --screenshot OUT`` against it and stops Xvfb.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _free_display() -> int:
    for n in range(99, 199):
        if not Path(f"/tmp/.X11-unix/X{n}").exists() and not Path(f"/tmp/.X{n}-lock").exists():
            return n
    raise SystemExit("no free X display number between :99 and :198")


def main(argv: list[str]) -> int:
    xvfb = shutil.which("Xvfb")
    if xvfb is None:
        print("Xvfb not found: install it with `apt-get install -y xvfb`", file=sys.stderr)
        return 2
    out = Path(argv[0]) if argv else ROOT / "docs" / "screenshot.png"
    n = _free_display()
    server = subprocess.Popen(
        [xvfb, f":{n}", "-screen", "0", "1600x1000x24", "-nolisten", "tcp"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(100):  # wait for the socket
            if Path(f"/tmp/.X11-unix/X{n}").exists():
                break
            time.sleep(0.05)
        env = dict(os.environ, DISPLAY=f":{n}", QT_QPA_PLATFORM="xcb")
        env.pop("WAYLAND_DISPLAY", None)
        facesketch = Path(sys.executable).with_name("facesketch")
        cmd = [str(facesketch), "app", "--screenshot", str(out), *argv[1:2]]
        print("running:", " ".join(cmd), f"(DISPLAY=:{n})")
        return subprocess.call(cmd, env=env, cwd=ROOT)
    finally:
        server.terminate()
        server.wait(10)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
