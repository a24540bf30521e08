"""The live result: the rendered face (optionally the calibrated sketch beside it).

Painting only; it never waits for the engine.  A small spinner in the corner says a
render is under way, and a message replaces the picture when the engine cannot
render (no weights yet, an error), so a person always knows why nothing changed.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QRectF, QSize, Qt, QTimer
from PySide6.QtGui import QColor, QMouseEvent, QPainter, QPaintEvent, QPen, QPixmap
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
    def paintEvent(self, event: QPaintEvent) -> None:
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


class CartoonView(QWidget):
    """The cartoon, as large as its panel allows; optionally a before/after split.

    In split mode the face (before) shows left of a vertical line and the cartoon
    (after) right of it; dragging the mouse moves the line.  Painting only.
    """

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setMinimumSize(160, 160)
        self._after: QPixmap | None = None
        self._before: QPixmap | None = None
        self.message = "Enable the preview to see the face as a cartoon."
        self.split = False
        self.split_at = 0.5  # fraction of the picture's width shown as "before"

    def sizeHint(self) -> QSize:
        return QSize(360, 360)

    def set_images(self, after: np.ndarray | None, before: np.ndarray | None = None) -> None:
        """Show a cartoon (and the face it came from, for the split view)."""
        self._after = array_to_pixmap(after) if after is not None else None
        self._before = array_to_pixmap(before) if before is not None else None
        self.update()

    def set_message(self, text: str) -> None:
        """Show ``text`` instead of a picture."""
        self.message = text
        self._after = self._before = None
        self.update()

    def set_split(self, on: bool) -> None:
        """Turn the before/after split on or off."""
        self.split = bool(on)
        self.update()

    @property
    def has_picture(self) -> bool:
        return self._after is not None

    def picture_rect(self) -> QRectF:
        """Where the picture is drawn: the largest rectangle of its aspect that fits."""
        pm = self._after
        if pm is None or pm.width() == 0:
            return QRectF()
        f = min((self.width() - 8) / pm.width(), (self.height() - 8) / pm.height())
        w, h = max(1.0, pm.width() * f), max(1.0, pm.height() * f)
        return QRectF((self.width() - w) / 2, (self.height() - h) / 2, w, h)

    def _drag(self, event: QMouseEvent) -> None:
        r = self.picture_rect()
        if self.split and r.width() > 0:
            x = event.position().x()
            self.split_at = min(1.0, max(0.0, (x - r.x()) / r.width()))
            self.update()

    def mousePressEvent(self, event: QMouseEvent) -> None:
        self._drag(event)

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        self._drag(event)

    def paintEvent(self, event: QPaintEvent) -> None:
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
        p.fillRect(self.rect(), QColor(42, 42, 46))
        if self._after is None:
            p.setPen(QColor(204, 204, 204))
            p.drawText(
                self.rect().adjusted(16, 16, -16, -16),
                Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap,
                self.message,
            )
            p.end()
            return
        r = self.picture_rect()
        p.drawPixmap(r, self._after, QRectF(self._after.rect()))
        if self.split and self._before is not None:
            b = self._before
            cut = r.width() * self.split_at
            src_w = b.width() * self.split_at
            p.drawPixmap(QRectF(r.x(), r.y(), cut, r.height()), b, QRectF(0, 0, src_w, b.height()))
            p.setPen(QPen(QColor(255, 255, 255, 220), 2))
            p.drawLine(int(r.x() + cut), int(r.y()), int(r.x() + cut), int(r.bottom()))
            p.setPen(QColor(255, 255, 255))
            p.drawText(QRectF(r.x() + 6, r.y() + 4, 80, 18), "before")
            p.drawText(QRectF(r.right() - 56, r.y() + 4, 50, 18), "after")
        p.end()
