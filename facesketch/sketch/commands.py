"""Undoable edits of a :class:`~facesketch.sketch.document.Document`.

Every user action is one command object with ``apply(doc)`` and ``revert(doc)``.
``apply`` validates first and raises ``ValueError`` with a clear message before it
changes anything, so a refused edit leaves the document and the history as they
were.  Commands are never merged: one gesture, one undo step.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

import numpy as np

from facesketch.layout import FaceLayout
from facesketch.sketch.document import (
    AppearanceSlot,
    Document,
    Stroke,
    check_appearance_key,
    check_background,
    check_scn_strength,
)

#: Default number of undo steps kept.
DEFAULT_HISTORY = 500


class Command(Protocol):
    """What the stack needs of a command."""

    text: str

    def apply(self, doc: Document) -> None: ...

    def revert(self, doc: Document) -> None: ...


def _known_ids(doc: Document, ids: Iterable[str]) -> list[str]:
    ids = list(dict.fromkeys(ids))
    present = set(doc.stroke_ids())
    unknown = [i for i in ids if i not in present]
    if unknown:
        raise ValueError(f"no stroke with id {', '.join(unknown[:3])} in the document")
    return ids


class AddStrokes:
    """Append strokes (one drawn stroke, or a whole imported sketch) as one step."""

    text = "Draw"

    def __init__(self, strokes: Iterable[Stroke]) -> None:
        self.strokes = list(strokes)
        if not all(isinstance(s, Stroke) for s in self.strokes):
            raise ValueError("AddStrokes takes Stroke objects")

    def apply(self, doc: Document) -> None:
        ids = [s.id for s in self.strokes]
        taken = set(doc.stroke_ids()).intersection(ids)
        if taken or len(set(ids)) != len(ids):
            raise ValueError("stroke ids must be unique within a document")
        doc.strokes.extend(self.strokes)

    def revert(self, doc: Document) -> None:
        ids = {s.id for s in self.strokes}
        doc.strokes[:] = [s for s in doc.strokes if s.id not in ids]


class RemoveStrokes:
    """Delete strokes by id; undo puts them back at their old places in the order."""

    text = "Delete strokes"

    def __init__(self, ids: Iterable[str]) -> None:
        self.ids = list(ids)
        self._removed: list[tuple[int, Stroke]] = []

    def apply(self, doc: Document) -> None:
        wanted = set(_known_ids(doc, self.ids))
        self._removed = [(i, s) for i, s in enumerate(doc.strokes) if s.id in wanted]
        doc.strokes[:] = [s for s in doc.strokes if s.id not in wanted]

    def revert(self, doc: Document) -> None:
        for index, stroke in self._removed:  # ascending, so earlier inserts fix the indices
            doc.strokes.insert(index, stroke)


class MoveStrokes:
    """Translate strokes by (dx, dy) canvas pixels."""

    text = "Move strokes"

    def __init__(self, ids: Iterable[str], dx: float, dy: float) -> None:
        self.ids = list(ids)
        self.dx, self.dy = float(dx), float(dy)
        if not (np.isfinite(self.dx) and np.isfinite(self.dy)):
            raise ValueError("a move needs finite offsets")
        self._before: dict[int, Stroke] = {}

    def apply(self, doc: Document) -> None:
        wanted = set(_known_ids(doc, self.ids))
        self._before = {i: s for i, s in enumerate(doc.strokes) if s.id in wanted}
        for i, s in self._before.items():
            doc.strokes[i] = s.translated(self.dx, self.dy)

    def revert(self, doc: Document) -> None:
        # Restore the originals rather than moving back: no floating-point drift.
        for i, s in self._before.items():
            doc.strokes[i] = s


class ClearStrokes:
    """Remove every stroke (the background layer and appearance stay)."""

    text = "Clear"

    def __init__(self) -> None:
        self._before: list[Stroke] = []

    def apply(self, doc: Document) -> None:
        self._before = list(doc.strokes)
        doc.strokes.clear()

    def revert(self, doc: Document) -> None:
        doc.strokes[:] = self._before


class MoveWindow:
    """Move a component window to top-left (x, y); it is kept inside the canvas."""

    text = "Move component"

    def __init__(self, name: str, x: int, y: int) -> None:
        self.name, self.x, self.y = name, int(x), int(y)
        self._before: FaceLayout | None = None

    def apply(self, doc: Document) -> None:
        try:
            layout = doc.layout.moved(self.name, self.x, self.y)
        except KeyError as exc:
            raise ValueError(exc.args[0]) from None
        self._before = doc.layout
        doc.layout = layout

    def revert(self, doc: Document) -> None:
        assert self._before is not None
        doc.layout = self._before


class SetLayout:
    """Replace the whole layout (e.g. "reset windows"); the canvas size must stay."""

    text = "Reset components"

    def __init__(self, layout: FaceLayout) -> None:
        self.layout = layout
        self._before: FaceLayout | None = None

    def apply(self, doc: Document) -> None:
        if self.layout.canvas != doc.layout.canvas:
            raise ValueError(
                f"layout is for a {self.layout.canvas} px canvas, the document is {doc.canvas} px"
            )
        self._before, doc.layout = doc.layout, self.layout

    def revert(self, doc: Document) -> None:
        assert self._before is not None
        doc.layout = self._before


class SetAppearance:
    """Choose reference photos (and their mix) for a component or the whole face."""

    text = "Set appearance"

    def __init__(self, key: str, slot: AppearanceSlot) -> None:
        if not isinstance(slot, AppearanceSlot):
            raise ValueError("SetAppearance takes an AppearanceSlot")
        self.key, self.slot = key, slot
        self._before: AppearanceSlot | None = None

    def apply(self, doc: Document) -> None:
        check_appearance_key(self.key)
        self._before = doc.appearance.get(self.key)
        doc.appearance[self.key] = self.slot

    def revert(self, doc: Document) -> None:
        _restore_slot(doc, self.key, self._before)


class ClearAppearance:
    """Go back to the default appearance for a component or the whole face."""

    text = "Clear appearance"

    def __init__(self, key: str) -> None:
        self.key = key
        self._before: AppearanceSlot | None = None

    def apply(self, doc: Document) -> None:
        check_appearance_key(self.key)
        self._before = doc.appearance.pop(self.key, None)

    def revert(self, doc: Document) -> None:
        _restore_slot(doc, self.key, self._before)


def _restore_slot(doc: Document, key: str, slot: AppearanceSlot | None) -> None:
    if slot is None:
        doc.appearance.pop(key, None)
    else:
        doc.appearance[key] = slot


class SetScnStrength:
    """Set how strongly the stroke calibration network cleans the strokes (0..1)."""

    text = "Stroke cleaning"

    def __init__(self, value: float) -> None:
        self.value = check_scn_strength(value)
        self._before = 0.0

    def apply(self, doc: Document) -> None:
        self._before = doc.scn_strength
        doc.scn_strength = self.value

    def revert(self, doc: Document) -> None:
        doc.scn_strength = self._before


class SetBackground:
    """Set (or with None remove) the background sketch layer (uint8 gray image)."""

    text = "Background layer"

    def __init__(self, image: np.ndarray | None) -> None:
        self.image = check_background(image)
        self._before: np.ndarray | None = None

    def apply(self, doc: Document) -> None:
        self._before = doc.background_image
        doc.background_image = self.image

    def revert(self, doc: Document) -> None:
        doc.background_image = self._before


class SetFollowDrawing:
    """Turn "Follow my drawing" on or off (render the face where it is drawn)."""

    text = "Follow my drawing"

    def __init__(self, value: bool) -> None:
        self.value = bool(value)
        self._before = False

    def apply(self, doc: Document) -> None:
        self._before = doc.follow_drawing
        doc.follow_drawing = self.value

    def revert(self, doc: Document) -> None:
        doc.follow_drawing = self._before


class CommandStack:
    """Linear undo history of one document; the only editor of that document.

    ``revision`` increases on every change (push, undo, redo) so views can tell
    whether to refresh; ``modified`` says whether the document differs from the
    state last marked with :meth:`mark_saved`.
    """

    def __init__(self, document: Document, limit: int = DEFAULT_HISTORY) -> None:
        if limit < 1:
            raise ValueError("the undo history must keep at least one step")
        self.document = document
        self.limit = int(limit)
        self._done: list[Command] = []
        self._undone: list[Command] = []
        self.revision = 0
        # Depth of the undo list at the saved state; None once that state is unreachable.
        self._saved_depth: int | None = 0

    # -- editing -------------------------------------------------------------------
    def push(self, command: Command) -> None:
        """Apply ``command`` and record it; raises ValueError (nothing changed) if refused."""
        command.apply(self.document)
        self._done.append(command)
        if self._saved_depth is not None and self._saved_depth >= len(self._done):
            self._saved_depth = None  # the saved state was on the redo branch we drop
        self._undone.clear()
        if len(self._done) > self.limit:
            del self._done[0]
            if self._saved_depth is not None:
                self._saved_depth = self._saved_depth - 1 if self._saved_depth > 0 else None
        self._changed()

    def undo(self) -> None:
        """Revert the last command; IndexError when there is nothing to undo."""
        if not self._done:
            raise IndexError("nothing to undo")
        command = self._done.pop()
        command.revert(self.document)
        self._undone.append(command)
        self._changed()

    def redo(self) -> None:
        """Re-apply the last undone command; IndexError when there is nothing to redo."""
        if not self._undone:
            raise IndexError("nothing to redo")
        command = self._undone.pop()
        command.apply(self.document)
        self._done.append(command)
        self._changed()

    # -- queries -------------------------------------------------------------------
    def can_undo(self) -> bool:
        """Whether :meth:`undo` has something to do."""
        return bool(self._done)

    def can_redo(self) -> bool:
        """Whether :meth:`redo` has something to do."""
        return bool(self._undone)

    def undo_text(self) -> str:
        """Label of the command undo would revert ("" when none), for the Edit menu."""
        return self._done[-1].text if self._done else ""

    def redo_text(self) -> str:
        """Label of the command redo would re-apply ("" when none)."""
        return self._undone[-1].text if self._undone else ""

    @property
    def modified(self) -> bool:
        """Whether the document differs from the last :meth:`mark_saved` state."""
        return self._saved_depth != len(self._done)

    def mark_saved(self) -> None:
        """Remember the current state as the saved one (after writing the file)."""
        self._saved_depth = len(self._done)

    def clear(self) -> None:
        """Forget the history (the document stays as it is)."""
        was_modified = self.modified
        self._done.clear()
        self._undone.clear()
        self._saved_depth = None if was_modified else 0
        self._changed()

    def _changed(self) -> None:
        self.revision += 1
