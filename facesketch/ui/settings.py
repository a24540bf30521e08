"""Persistent preferences (QSettings): device, canvas and render size, pens, folders, recents."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import QSettings

from facesketch.sketch import DEFAULT_LINE_WIDTH_512

ORGANIZATION, APPLICATION = "facesketch", "facesketch"
_MAX_RECENT = 8
#: Autosave intervals the Settings menu offers (seconds; 0 turns autosave off).
AUTOSAVE_CHOICES = (10, 30, 60, 300, 0)
DEFAULTS: dict[str, Any] = {
    "device": "auto",
    "canvas_size": 512,
    "render_size": 512,
    # pen and eraser widths are pixels at the 512 reference canvas (sketch.width_on_canvas
    # gives a document's pixels), so a 256 sketch draws at the trained width too
    "pen_width": DEFAULT_LINE_WIDTH_512,
    "eraser_width": 12.0,
    "autosave_s": 30,  # seconds between autosaves of a modified sketch; 0 = never
    "last_dir": str(Path.home()),
    "recent": [],
}


class Settings:
    """Typed access to the app's QSettings (tests point QSettings at a temp dir)."""

    def __init__(self, qsettings: QSettings | None = None) -> None:
        self.q = qsettings or QSettings(ORGANIZATION, APPLICATION)

    def get(self, key: str) -> Any:
        """The stored value of ``key`` converted to its default's type."""
        default = DEFAULTS[key]
        value = self.q.value(key, default)
        if isinstance(default, list):
            if value is None or value == "":
                return []
            return [str(v) for v in (value if isinstance(value, list) else [value])]
        try:
            return type(default)(value)
        except (TypeError, ValueError):
            return default

    def autosave_ms(self) -> int:
        """The autosave interval in milliseconds (0: off), kept within 1 s .. 1 h."""
        seconds = self.get("autosave_s")
        if seconds <= 0:
            return 0
        return int(min(max(seconds, 1), 3600) * 1000)

    def set(self, key: str, value: Any) -> None:
        """Store ``value`` under ``key``."""
        self.q.setValue(key, value)

    def add_recent(self, path: str | Path) -> list[str]:
        """Put ``path`` first in the recent files list; returns the list."""
        p = str(Path(path).resolve())
        recent = [r for r in self.get("recent") if r != p]
        recent.insert(0, p)
        recent = recent[:_MAX_RECENT]
        self.set("recent", recent)
        return recent

    def sync(self) -> None:
        """Flush to disk."""
        self.q.sync()
