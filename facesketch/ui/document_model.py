"""The open document as the UI sees it: one Document, its CommandStack, its file.

Every edit goes through here and becomes one undoable command of
:mod:`facesketch.sketch`; ``changed`` tells the views to refresh.  This is the only
UI module that names the sketch module's commands.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PySide6.QtCore import QObject, Signal

from facesketch import sketch as sk
from facesketch.sketch.cartoon_settings import CartoonSettings


class DocumentModel(QObject):
    """Document + undo stack + file path + modified flag."""

    changed = Signal()

    def __init__(self, canvas: int = 512, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.path: Path | None = None
        self.last_change_applied = True
        self._unsaved = False  # modified although the history is at its saved state
        self._set(sk.Document.new(canvas))

    # -- plumbing ------------------------------------------------------------------------
    def _set(self, doc: sk.Document) -> None:
        self.doc = doc
        self.stack = sk.CommandStack(doc)

    @property
    def modified(self) -> bool:
        """Whether there are changes not written to the document's file."""
        return self._unsaved or self.stack.modified

    @modified.setter
    def modified(self, value: bool) -> None:
        self._unsaved = bool(value)
        if not value:
            self.stack.mark_saved()

    def _push(self, command: sk.Command) -> None:
        try:
            self.stack.push(command)
        except ValueError:
            self.last_change_applied = False
            self.changed.emit()
            raise
        self.last_change_applied = True
        self.changed.emit()

    def push(self, command: sk.Command) -> None:
        """Apply an undoable command built by a controller (landmark actions)."""
        self._push(command)

    def undo(self) -> None:
        """Undo the last command (no-op when there is none)."""
        if self.can_undo():
            self.stack.undo()
            self.changed.emit()

    def redo(self) -> None:
        """Redo the last undone command (no-op when there is none)."""
        if self.can_redo():
            self.stack.redo()
            self.changed.emit()

    def can_undo(self) -> bool:
        return bool(self.stack.can_undo())

    def can_redo(self) -> bool:
        return bool(self.stack.can_redo())

    # -- edits -----------------------------------------------------------------------------
    def add_stroke(self, points: np.ndarray, width: float, eraser: bool) -> None:
        """Add one stroke drawn on the canvas."""
        stroke = sk.Stroke(np.asarray(points, np.float32), float(width), bool(eraser))
        self._push(sk.AddStrokes([stroke]))

    def add_strokes(self, strokes: list) -> None:
        """Add many strokes as one undoable step (an imported sketch)."""
        if strokes:
            self._push(sk.AddStrokes(list(strokes)))

    def remove_strokes(self, ids: list[str]) -> None:
        if ids:
            self._push(sk.RemoveStrokes(list(ids)))

    def move_strokes(self, ids: list[str], dx: float, dy: float) -> None:
        if ids and (dx or dy):
            self._push(sk.MoveStrokes(list(ids), float(dx), float(dy)))

    def clear(self) -> None:
        if self.doc.strokes:
            self._push(sk.ClearStrokes())

    def move_window(self, name: str, x: int, y: int) -> None:
        """Move a component window (its geometry renders where the window now is)."""
        try:
            self._push(sk.MoveWindow(name, int(x), int(y)))
        except ValueError:
            pass  # the canvas snaps the outline back

    def slot(self, key: str) -> sk.AppearanceSlot | None:
        """The appearance slot ``key`` (component name or "face"), or None."""
        return self.doc.appearance.get(key)

    def set_appearance(
        self, key: str, paths: tuple[str, ...], mix: float, shape: bool = False
    ) -> None:
        slot = sk.AppearanceSlot(tuple(paths), float(mix), bool(shape))
        self._push(sk.SetAppearance(key, slot))

    def clear_appearance(self, key: str) -> None:
        if self.slot(key) is not None:
            self._push(sk.ClearAppearance(key))

    def set_scn(self, strength: float) -> None:
        if abs(float(strength) - float(self.doc.scn_strength)) > 1e-6:
            self._push(sk.SetScnStrength(float(strength)))

    def set_cartoon(self, settings: CartoonSettings) -> None:
        """Set the cartoon settings (ink, proportions; one undo step when they change)."""
        from facesketch.sketch.cartoon_settings import SetCartoonSettings

        if settings != self.doc.cartoon:
            self._push(SetCartoonSettings(settings))

    def set_background(self, image: np.ndarray | None) -> None:
        self._push(sk.SetBackground(image))

    # -- whole documents -------------------------------------------------------------------
    def replace(self, doc: sk.Document, path: Path | None, modified: bool) -> None:
        """Make ``doc`` the open document (new undo history)."""
        self._set(doc)
        self.path = path
        self.modified = modified
        self.changed.emit()

    def new(self, canvas: int) -> None:
        """An empty document."""
        self.replace(sk.Document.new(canvas), None, False)

    def new_from_strokes(self, strokes: list[sk.Stroke], photo: str | None = None) -> None:
        """A new document holding ``strokes``; ``photo`` fills the whole-face appearance."""
        doc = sk.Document.new(self.doc.layout.canvas)
        self.replace(doc, None, True)
        self.add_strokes(strokes)
        if photo:
            self.set_appearance(sk.FACE, (photo,), 0.0)

    def open(self, path: str | Path) -> None:
        """Load a project file (raises ProjectError; the open document stays on failure)."""
        doc = sk.load_project(path)
        self.replace(doc, Path(path), False)

    def save(self, path: str | Path) -> None:
        """Save atomically to ``path`` and make it the document's file."""
        sk.save_project(self.doc, path)
        self.path = Path(path)
        self.modified = False

    # -- autosave --------------------------------------------------------------------------
    def write_autosave(self) -> Path:
        return sk.write_autosave(self.doc, self.path)

    def remove_autosave(self) -> None:
        sk.remove_autosave(self.path)

    def find_autosaves(self) -> list[Path]:
        return list(sk.find_autosaves())

    def read_autosave(self, path: Path) -> sk.AutosaveInfo:
        """The autosave copy at ``path`` (an :class:`~facesketch.sketch.AutosaveInfo`)."""
        return sk.read_autosave(path)

    def set_aside_autosave(self, path: Path) -> Path:
        return sk.set_aside_autosave(path)

    def discard_autosave_file(self, path: Path) -> None:
        sk.discard_autosave_file(path)

    def recover(self, info: sk.AutosaveInfo | Path) -> None:
        """Open an autosaved copy as a modified document under its project's name.

        ``info`` is an :class:`~facesketch.sketch.AutosaveInfo` (or a path to read);
        a copy of an untitled sketch comes back untitled.
        """
        if not isinstance(info, sk.AutosaveInfo):
            info = sk.read_autosave(info)
        self.replace(info.document, info.project, True)
