"""The live result: the rendered face (optionally the calibrated sketch beside it).

Painting only; it never waits for the engine.  A small spinner in the corner says a
render is under way, and a message replaces the picture when the engine cannot
render (no weights yet, an error), so a person always knows why nothing changed.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from PySide6.QtCore import QRectF, QSize, Qt, QTimer
from PySide6.QtGui import QColor, QPainter, QPen, QPixmap
from PySide6.QtWidgets import QSizePolicy, QWidget

from facesketch.ui.qimages import array_to_pixmap


class ResultView(QWidget):
    """Shows the latest face; ``set_busy`` animates a subtle spinner."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setMinimumSize(200, 200)
        self._face: QPixmap | None = None
        self._sketch: QPixmap | None = None
        self.face_array: np.ndarray | None = None
        self.sketch_array: np.ndarray | None = None
        self.message = "Draw on the canvas: the face appears here."
        self.show_sketch_beside = False
        self._busy = False
        self._angle = 0
        self._timer = QTimer(self)
        self._timer.setInterval(60)
        self._timer.timeout.connect(self._spin)

    def sizeHint(self) -> QSize:
        return QSize(512, 512)

    # -- state -----------------------------------------------------------------------
    def set_result(self, face: np.ndarray | None, sketch: np.ndarray | None = None) -> None:
        """Show a new face (and calibrated sketch); clears any message."""
        self.face_array, self.sketch_array = face, sketch
        self._face = array_to_pixmap(face) if face is not None else None
        self._sketch = array_to_pixmap(sketch) if sketch is not None else None
        self.message = "" if face is not None else self.message
        self.update()

    def set_message(self, text: str) -> None:
        """Show ``text`` instead of a face (e.g. why the engine cannot render)."""
        self.message = text
        self._face = None
        self.face_array = None
        self.update()

    def set_sketch_beside(self, on: bool) -> None:
        """Show the calibrated sketch next to the face."""
        self.show_sketch_beside = on
        self.update()

    def set_busy(self, busy: bool) -> None:
        """Start or stop the corner spinner."""
        if busy == self._busy:
            return
        self._busy = busy
        if busy:
            self._timer.start()
        else:
            self._timer.stop()
        self.update()

    @property
    def busy(self) -> bool:
        return self._busy

    def _spin(self) -> None:
        self._angle = (self._angle + 30) % 360
        self.update(self.width() - 30, 0, 30, 30)

    # -- painting ----------------------------------------------------------------------
    def paintEvent(self, event: Any) -> None:
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        p.fillRect(self.rect(), QColor(40, 40, 44))
        pictures = [pm for pm in (self._face,) if pm is not None]
        if self.show_sketch_beside and self._sketch is not None and self._face is not None:
            pictures.append(self._sketch)
        if pictures:
            n = len(pictures)
            cell_w = (self.width() - 8 * (n + 1)) / n
            side = max(1.0, min(cell_w, self.height() - 16.0))
            y = (self.height() - side) / 2
            for i, pm in enumerate(pictures):
                x = 8 + i * (cell_w + 8) + (cell_w - side) / 2
                p.drawPixmap(QRectF(x, y, side, side), pm, QRectF(pm.rect()))
        else:
            p.setPen(QColor(220, 220, 224))
            p.drawText(
                self.rect().adjusted(24, 24, -24, -24),
                Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap,
                self.message,
            )
        if self._busy:
            pen = QPen(QColor(255, 255, 255, 190), 2.5)
            pen.setCapStyle(Qt.PenCapStyle.RoundCap)
            p.setPen(pen)
            r = QRectF(self.width() - 24, 8, 14, 14)
            p.drawArc(r, -self._angle * 16, 270 * 16)
        p.end()
