"""Persistent preferences (QSettings): device, canvas and render size, pens, folders, recents.

Also the Settings menu: the choices offered for each preference (:data:`CHOICES`).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import QSettings
from PySide6.QtGui import QActionGroup
from PySide6.QtWidgets import QMenu

from facesketch.sketch import DEFAULT_LINE_WIDTH_512

ORGANIZATION, APPLICATION = "facesketch", "facesketch"
_MAX_RECENT = 8
#: Autosave intervals the Settings menu offers (seconds; 0 turns autosave off).
AUTOSAVE_CHOICES = (10, 30, 60, 300, 0)
#: The Settings menu: key, title, values offered.
CHOICES: tuple[tuple[str, str, tuple[int | str, ...]], ...] = (
    ("device", "Device (next start)", ("auto", "cpu", "cuda")),
    ("render_size", "Render size", (256, 512)),
    ("texture", "Real texture", ("on", "off")),
    ("canvas_size", "Canvas of new sketches", (256, 512)),
    ("autosave_s", "Autosave every", AUTOSAVE_CHOICES),
)
DEFAULTS: dict[str, Any] = {
    "device": "auto",
    "canvas_size": 512,
    "render_size": 512,
    "texture": "on",  # real skin/eye/hair texture from the gallery or the dropped photos
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


def choice_label(key: str, value: int | str) -> str:
    """How the Settings menu shows ``value`` of ``key``."""
    if key == "autosave_s":
        return "off" if not value else f"{value} s" if value < 60 else f"{value // 60} min"
    return str(value)


def fill_settings_menu(
    menu: QMenu, settings: Settings, chosen: Callable[[str, int | str], None]
) -> None:
    """One submenu per preference of :data:`CHOICES`, the current value ticked;
    picking a value calls ``chosen(key, value)``."""
    for key, title, values in CHOICES:
        sub = menu.addMenu(title)
        group = QActionGroup(menu)
        current = settings.get(key)
        for value in values:
            act = sub.addAction(choice_label(key, value))
            act.setCheckable(True)
            act.setChecked(value == current)
            group.addAction(act)
            act.triggered.connect(lambda _c=False, k=key, v=value: chosen(k, v))
