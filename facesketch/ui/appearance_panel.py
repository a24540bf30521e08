"""Appearance panel: a reference-photo slot per component plus one for the whole face.

Each slot takes up to two photos (dropped files) and a mix between them.  The panel
only displays state and reports what the person did; the main window aligns the
photos off-thread and issues the undoable document commands.

Under each slot, "suggested faces": the shipped gallery's faces whose drawn part is
shaped most like the sketch's (with their blend weights).  With the gallery default
look and no photo they are the faces the look came from; clicking one makes it the
slot's reference (``gallery:<n>``), exactly as if its photo had been dropped.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import QMimeData, QSize, Qt, QUrl, Signal
from PySide6.QtGui import QColor, QIcon, QPixmap
from PySide6.QtWidgets import (
    QCheckBox,
    QFrame,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QSlider,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from facesketch.layout import COMPONENT_LABELS, COMPONENTS
from facesketch.sketch import FACE
from facesketch.ui.canvas import WINDOW_COLORS

#: Slot keys in display order: the whole face first, then each component.
SLOTS: tuple[str, ...] = (FACE, *COMPONENTS)
SLOT_LABELS = {FACE: "Whole face", **COMPONENT_LABELS}
_THUMB = 56
_SUGGESTION = 26
#: How many suggested faces a slot shows.
MAX_SUGGESTIONS = 5


def _local_paths(mime: QMimeData) -> list[str]:
    return [u.toLocalFile() for u in mime.urls() if u.isLocalFile()] if mime.hasUrls() else []


class ThumbDrop(QLabel):
    """One reference picture of a slot; accepts a dropped image file."""

    dropped = Signal(str)

    def __init__(self, hint: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.hint = hint
        self.path: str | None = None
        self.setFixedSize(_THUMB, _THUMB)
        self.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.setAcceptDrops(True)
        self.setWordWrap(True)
        self.clear_picture()

    def clear_picture(self) -> None:
        """Back to the empty 'drop a photo' state."""
        self.path = None
        self.setPixmap(QPixmap())
        self.setText(self.hint)
        self.setToolTip("Drop a face photo here")
        self.setStyleSheet("QLabel{border:1px dashed #999;color:#888;font-size:9px;}")

    def show_picture(self, path: str, pixmap: QPixmap | None) -> None:
        """Show the aligned crop of ``path`` (or its file name while it is aligned)."""
        self.path = path
        self.setToolTip(path)
        self.setStyleSheet("QLabel{border:1px solid #666;}")
        if pixmap is None or pixmap.isNull():
            self.setPixmap(QPixmap())
            self.setText(Path(path).stem[:10])
        else:
            self.setText("")
            self.setPixmap(pixmap)

    def dragEnterEvent(self, event: Any) -> None:
        if _local_paths(event.mimeData()):
            event.acceptProposedAction()

    def dropEvent(self, event: Any) -> None:
        paths = _local_paths(event.mimeData())
        if paths:
            self.dropped.emit(paths[0])
            event.acceptProposedAction()


class SuggestionRow(QWidget):
    """Small buttons of the gallery faces suggested for a slot; a click picks one."""

    picked = Signal(str)  # a gallery reference, gallery:<n>

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        row.setSpacing(2)
        self.title = QLabel("suggested")
        self.title.setStyleSheet("color:#777;font-size:9px;")
        row.addWidget(self.title)
        self.buttons: list[QToolButton] = []
        for _ in range(MAX_SUGGESTIONS):
            b = QToolButton()
            b.setIconSize(QSize(_SUGGESTION, _SUGGESTION))
            b.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextUnderIcon)
            b.setStyleSheet("QToolButton{font-size:8px;padding:0px;}")
            b.clicked.connect(lambda _=False, b=b: self._clicked(b))
            b.hide()
            row.addWidget(b)
            self.buttons.append(b)
        row.addStretch(1)
        self.references: list[str] = []
        self.hide()

    def _clicked(self, button: QToolButton) -> None:
        ref = button.property("reference")
        if ref:
            self.picked.emit(str(ref))

    def show_faces(self, faces: list[tuple[str, float, QPixmap | None, str]], used: bool) -> None:
        """``faces``: (reference, weight, pixmap, description), nearest first."""
        faces = faces[:MAX_SUGGESTIONS]
        self.references = [f[0] for f in faces]
        self.title.setText("look from" if used else "suggested")
        self.title.setToolTip(
            "The default look blends these gallery faces (shaped most like your drawing)"
            if used
            else "Gallery faces shaped most like your drawing: click one to use its look"
        )
        for b, face in zip(self.buttons, [*faces, *[None] * MAX_SUGGESTIONS], strict=False):
            if face is None:
                b.hide()
                b.setProperty("reference", None)
                continue
            ref, weight, pixmap, text = face
            b.setProperty("reference", ref)
            b.setIcon(QIcon(pixmap) if pixmap is not None else QIcon())
            b.setText(f"{round(weight * 100)}%")
            b.setToolTip(f"{text}; weight {weight:.2f}. Click to use this face's look")
            b.show()
        self.setVisible(bool(faces))


class SlotWidget(QFrame):
    """A slot: two reference pictures, a mix slider and a clear button."""

    def __init__(self, panel: AppearancePanel, slot: str) -> None:
        super().__init__(panel)
        self.slot = slot
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.setAcceptDrops(True)
        title = QLabel(SLOT_LABELS[slot])
        color = WINDOW_COLORS.get(slot, QColor(90, 90, 90))
        title.setStyleSheet(f"font-weight:bold;color:{color.name()};")
        self.first = ThumbDrop("drop photo")
        self.second = ThumbDrop("2nd photo (mix)")
        self.mix = QSlider(Qt.Orientation.Horizontal)
        self.mix.setRange(0, 100)
        self.mix.setToolTip("Mix between the two reference photos")
        self.mix.setEnabled(False)
        self.clear_button = QToolButton()
        self.clear_button.setText("✕")
        self.clear_button.setToolTip(f"Clear the {SLOT_LABELS[slot].lower()} appearance")
        self.clear_button.setEnabled(False)
        self.shape = QCheckBox("shape")
        self.shape.setToolTip(
            "Also take the shape from the first photo (its image encoder) instead of your "
            "strokes; untick to draw it again"
        )
        self.shape.setEnabled(False)
        grid = QGridLayout(self)
        grid.setContentsMargins(4, 4, 4, 4)
        grid.setSpacing(3)
        head = QHBoxLayout()
        head.addWidget(title)
        head.addStretch(1)
        head.addWidget(self.shape)
        head.addWidget(self.clear_button)
        grid.addLayout(head, 0, 0, 1, 2)
        grid.addWidget(self.first, 1, 0)
        grid.addWidget(self.second, 1, 1)
        grid.addWidget(self.mix, 2, 0, 1, 2)
        self.suggested = SuggestionRow(self)
        grid.addWidget(self.suggested, 3, 0, 1, 2)
        self.suggested.picked.connect(lambda ref: panel.photoDropped.emit(slot, ref, 0))
        self.first.dropped.connect(lambda p: panel.photoDropped.emit(slot, p, 0))
        self.second.dropped.connect(lambda p: panel.photoDropped.emit(slot, p, 1))
        self.mix.sliderReleased.connect(lambda: panel.mixChanged.emit(slot, self.mix.value() / 100))
        self.clear_button.clicked.connect(lambda: panel.slotCleared.emit(slot))
        self.shape.toggled.connect(lambda on: panel.shapeChanged.emit(slot, on))
        self._panel = panel

    def dragEnterEvent(self, event: Any) -> None:
        if _local_paths(event.mimeData()):
            event.acceptProposedAction()

    def dropEvent(self, event: Any) -> None:
        # dropped on the slot's frame (not a thumbnail): first picture
        paths = _local_paths(event.mimeData())
        if paths:
            self._panel.photoDropped.emit(self.slot, paths[0], 0)
            event.acceptProposedAction()


class SampleList(QListWidget):
    """Bundled sample photos: drag one onto a slot or the canvas, or double-click it."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setViewMode(QListWidget.ViewMode.IconMode)
        self.setIconSize(QSize(48, 48))
        self.setFlow(QListWidget.Flow.LeftToRight)
        self.setWrapping(False)
        self.setFixedHeight(80)
        self.setDragEnabled(True)
        self.setDragDropMode(QListWidget.DragDropMode.DragOnly)
        self.setToolTip("Sample photos: drag one onto a slot or onto a face part")

    def add_photo(self, path: Path) -> None:
        """List a sample photo file."""
        item = QListWidgetItem(QIcon(str(path)), path.stem)
        item.setData(Qt.ItemDataRole.UserRole, str(path))
        item.setToolTip(str(path))
        self.addItem(item)

    def mimeData(self, items: list[QListWidgetItem]) -> QMimeData:  # noqa: N802 (Qt name)
        mime = QMimeData()
        mime.setUrls([QUrl.fromLocalFile(i.data(Qt.ItemDataRole.UserRole)) for i in items])
        return mime


class AppearancePanel(QWidget):
    """All slots plus the sample list; see the module docstring."""

    photoDropped = Signal(str, str, int)  # slot, file path, index (0 first, 1 second)
    mixChanged = Signal(str, float)
    slotCleared = Signal(str)
    shapeChanged = Signal(str, bool)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        box = QVBoxLayout(self)
        box.setContentsMargins(4, 4, 4, 4)
        hint = QLabel("Drop face photos on a slot or on a part of the sketch.")
        hint.setWordWrap(True)
        hint.setStyleSheet("color:#666;")
        box.addWidget(hint)
        grid = QGridLayout()
        grid.setSpacing(4)
        self.slots: dict[str, SlotWidget] = {}
        for i, slot in enumerate(SLOTS):
            w = SlotWidget(self, slot)
            self.slots[slot] = w
            grid.addWidget(w, i // 2, i % 2)
        box.addLayout(grid)
        box.addWidget(QLabel("Samples"))
        self.samples = SampleList()
        self.samples.itemDoubleClicked.connect(
            lambda item: self.photoDropped.emit(FACE, item.data(Qt.ItemDataRole.UserRole), 0)
        )
        box.addWidget(self.samples)
        box.addStretch(1)

    def show_slot(
        self,
        slot: str,
        paths: tuple[str, ...],
        mix: float,
        thumbs: dict[str, QPixmap],
        shape: bool = False,
    ) -> None:
        """Display a slot's references (``thumbs`` maps path to aligned-crop pixmap)."""
        w = self.slots[slot]
        for view, idx in ((w.first, 0), (w.second, 1)):
            if idx < len(paths):
                view.show_picture(paths[idx], thumbs.get(paths[idx]))
            else:
                view.clear_picture()
        w.mix.setEnabled(len(paths) == 2)
        w.mix.blockSignals(True)
        w.mix.setValue(round(mix * 100) if len(paths) == 2 else 0)
        w.mix.blockSignals(False)
        w.clear_button.setEnabled(bool(paths))
        w.shape.setEnabled(bool(paths))
        w.shape.blockSignals(True)
        w.shape.setChecked(bool(paths) and shape)
        w.shape.blockSignals(False)

    def show_suggestions(
        self, slot: str, faces: list[tuple[str, float, QPixmap | None, str]], used: bool
    ) -> None:
        """Show the gallery faces suggested for ``slot`` (``used``: its look came from them)."""
        self.slots[slot].suggested.show_faces(faces, used)
