"""Cartoon panel: pick a CartoonGAN style, import one, preview the face as a cartoon."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QPixmap
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from facesketch.ui.qimages import scaled_pixmap

_PREVIEW = 240


class CartoonPanel(QWidget):
    """Style list + live preview; rendering is requested by the main window."""

    settingsChanged = Signal()  # enabled or style changed: re-render
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
        self.export_button.setEnabled(False)
        self.preview = QLabel("Enable the preview to see the face as a cartoon.")
        self.preview.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.preview.setWordWrap(True)
        self.preview.setMinimumSize(_PREVIEW, _PREVIEW)
        self.preview.setStyleSheet("QLabel{background:#2a2a2e;color:#ccc;}")
        self.cartoon: np.ndarray | None = None
        row = QHBoxLayout()
        row.addWidget(QLabel("Style"))
        row.addWidget(self.styles, 1)
        box = QVBoxLayout(self)
        box.setContentsMargins(4, 4, 4, 4)
        box.addWidget(self.enabled)
        box.addLayout(row)
        box.addWidget(self.import_button)
        box.addWidget(self.preview, 1)
        box.addWidget(self.export_button)
        self.enabled.toggled.connect(self._on_toggle)
        self.styles.currentIndexChanged.connect(lambda _i: self.settingsChanged.emit())
        self.import_button.clicked.connect(self.importRequested)
        self.export_button.clicked.connect(self.exportRequested)

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
            self.preview.setText("No cartoon style installed. Import one with “Import style…”.")
        else:
            self.enabled.setEnabled(True)

    def style(self) -> str | None:
        """The style to render with, or None when the preview is off."""
        if not self.enabled.isChecked() or self.styles.count() == 0:
            return None
        return self.styles.currentText()

    def set_cartoon(self, cartoon: np.ndarray | None, error: str | None = None) -> None:
        """Show the latest cartoon (or why there is none)."""
        self.cartoon = cartoon
        self.export_button.setEnabled(cartoon is not None)
        if cartoon is not None:
            self.preview.setPixmap(scaled_pixmap(cartoon, _PREVIEW))
        else:
            self.preview.setPixmap(QPixmap())
            self.preview.setText(error or "Enable the preview to see the face as a cartoon.")

    def _on_toggle(self, on: bool) -> None:
        if not on:
            self.set_cartoon(None)
        self.settingsChanged.emit()
