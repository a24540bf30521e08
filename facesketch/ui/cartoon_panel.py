"""Cartoon panel: style, ink from the user's sketch, anime proportions, live preview.

The panel only shows and asks: the main window renders (on the engine's worker,
never here) and turns :attr:`CartoonPanel.settingsEdited` into an undoable
document command, so ink and proportions are saved in the project.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSlider,
    QVBoxLayout,
    QWidget,
)

from facesketch.sketch.cartoon_settings import (
    INK_WIDTH_RANGE,
    CartoonSettings,
)
from facesketch.ui.result_view import CartoonView

_OFF_TEXT = "Enable the preview to see the face as a cartoon."


def _slider(lo: int, hi: int, value: int, tip: str) -> QSlider:
    s = QSlider(Qt.Orientation.Horizontal)
    s.setRange(lo, hi)
    s.setValue(value)
    s.setToolTip(tip)
    return s


class CartoonPanel(QWidget):
    """Style list, ink and proportion controls, and a preview that fills the panel."""

    settingsChanged = Signal()  # enabled or style changed: re-render
    settingsEdited = Signal(object)  # a new CartoonSettings for the document (undoable)
    importRequested = Signal()
    exportRequested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.enabled = QCheckBox("Live cartoon preview")
        self.enabled.setToolTip("Also stylize every render (costs some time per render)")
        self.styles = QComboBox()
        self.import_button = QPushButton("Import style…")
        self.import_button.setToolTip("Import an official CartoonGAN generator (*_net_G_float.pth)")
        self.export_button = QPushButton("Export cartoon…")
        self.export_button.setToolTip("Write the cartoon at the full render size")
        self.export_button.setEnabled(False)
        self.ink = QCheckBox("Ink from my sketch")
        self.ink.setToolTip(
            "Draw your calibrated strokes over the cartoon, beside the network's own lines"
        )
        lo, hi = (round(v * 100) for v in INK_WIDTH_RANGE)
        self.ink_width = _slider(lo, hi, 100, "Width of your ink lines (x the drawn width)")
        self.ink_darkness = _slider(0, 100, 85, "How dark your ink lines are")
        self.proportions = _slider(
            0, 100, 0, "Anime proportions: larger eyes, smaller nose, mouth and chin (0 = off)"
        )
        self.split = QCheckBox("Before / after split")
        self.split.setToolTip("Show the face left of a line you can drag, the cartoon right of it")
        self.preview = CartoonView()
        self.preview.message = _OFF_TEXT
        self.cartoon: np.ndarray | None = None

        row = QHBoxLayout()
        row.addWidget(QLabel("Style"))
        row.addWidget(self.styles, 1)
        grid = QGridLayout()
        grid.addWidget(self.ink, 0, 0, 1, 2)
        grid.addWidget(QLabel("Line width"), 1, 0)
        grid.addWidget(self.ink_width, 1, 1)
        grid.addWidget(QLabel("Darkness"), 2, 0)
        grid.addWidget(self.ink_darkness, 2, 1)
        grid.addWidget(QLabel("Anime proportions"), 3, 0)
        grid.addWidget(self.proportions, 3, 1)
        box = QVBoxLayout(self)
        box.setContentsMargins(4, 4, 4, 4)
        box.addWidget(self.enabled)
        box.addLayout(row)
        box.addWidget(self.import_button)
        box.addLayout(grid)
        box.addWidget(self.split)
        box.addWidget(self.preview, 1)
        box.addWidget(self.export_button)

        self.enabled.toggled.connect(self._on_toggle)
        self.styles.currentIndexChanged.connect(lambda _i: self.settingsChanged.emit())
        self.import_button.clicked.connect(self.importRequested)
        self.export_button.clicked.connect(self.exportRequested)
        self.split.toggled.connect(self.preview.set_split)
        self.ink.toggled.connect(self._emit_settings)
        for s in (self.ink_width, self.ink_darkness, self.proportions):
            s.sliderReleased.connect(self._emit_settings)
            s.valueChanged.connect(
                lambda _v, s=s: None if s.isSliderDown() else self._emit_settings()
            )
        self._sync_enabled()

    # -- settings ------------------------------------------------------------------
    def current_settings(self) -> CartoonSettings:
        """The settings the controls show."""
        return CartoonSettings(
            ink=self.ink.isChecked(),
            ink_width=self.ink_width.value() / 100,
            ink_darkness=self.ink_darkness.value() / 100,
            proportions=self.proportions.value() / 100,
        )

    def show_settings(self, settings: CartoonSettings) -> None:
        """Show a document's settings (no signal: this is not an edit)."""
        widgets = (self.ink, self.ink_width, self.ink_darkness, self.proportions)
        for w in widgets:
            w.blockSignals(True)
        self.ink.setChecked(settings.ink)
        self.ink_width.setValue(round(settings.ink_width * 100))
        self.ink_darkness.setValue(round(settings.ink_darkness * 100))
        self.proportions.setValue(round(settings.proportions * 100))
        for w in widgets:
            w.blockSignals(False)
        self._sync_enabled()

    def _emit_settings(self) -> None:
        self._sync_enabled()
        self.settingsEdited.emit(self.current_settings())

    def _sync_enabled(self) -> None:
        on = self.ink.isChecked()
        self.ink_width.setEnabled(on)
        self.ink_darkness.setEnabled(on)

    # -- styles and preview --------------------------------------------------------
    def set_styles(self, names: list[str], current: str | None = None) -> None:
        """Fill the style list (keeps the current choice when it still exists)."""
        keep = current or self.styles.currentText()
        self.styles.blockSignals(True)
        self.styles.clear()
        self.styles.addItems(names)
        if keep in names:
            self.styles.setCurrentText(keep)
        self.styles.blockSignals(False)
        if not names:
            self.enabled.setChecked(False)
            self.enabled.setEnabled(False)
            self.preview.set_message("No cartoon style installed. Import one with “Import style…”.")
        else:
            self.enabled.setEnabled(True)

    def style(self) -> str | None:
        """The style to render with, or None when the preview is off."""
        if not self.enabled.isChecked() or self.styles.count() == 0:
            return None
        return self.styles.currentText()

    def set_cartoon(
        self, cartoon: np.ndarray | None, error: str | None = None, before: np.ndarray | None = None
    ) -> None:
        """Show the latest cartoon (full resolution kept for export) or why there is none."""
        self.cartoon = cartoon
        self.export_button.setEnabled(cartoon is not None)
        if cartoon is not None:
            self.preview.set_images(cartoon, before)
        else:
            self.preview.set_message(error or _OFF_TEXT)

    def _on_toggle(self, on: bool) -> None:
        if not on:
            self.set_cartoon(None)
        self.settingsChanged.emit()
