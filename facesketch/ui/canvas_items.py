"""What the canvas scene holds: smooth stroke paths and draggable component windows."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QBrush, QColor, QPainter, QPainterPath, QPainterPathStroker, QPen
from PySide6.QtWidgets import (
    QGraphicsItem,
    QGraphicsPathItem,
    QGraphicsRectItem,
    QGraphicsSimpleTextItem,
)

from facesketch.layout import COMPONENT_LABELS

if TYPE_CHECKING:
    from facesketch.ui.canvas import SketchCanvas

PEN, ERASER, SELECT = "pen", "eraser", "select"
#: Outline colour of each component window (also used by the appearance panel).
WINDOW_COLORS = {
    "left_eye": QColor(30, 136, 229),
    "right_eye": QColor(0, 150, 136),
    "nose": QColor(251, 140, 0),
    "mouth": QColor(216, 27, 96),
}
MIN_SEGMENT = 0.75  # canvas px between recorded points: smooth but not bloated
ZOOM_STEP = 1.25
#: Width (canvas px) of the band around a stroke that a click selects it in.
HIT_WIDTH = 8.0
Z_BACKGROUND, Z_OVERLAY, Z_STROKES, Z_WINDOWS, Z_LIVE = 0, 1, 2, 3, 4


def stroke_path(points: np.ndarray) -> QPainterPath:
    """A smooth path through ``points``: quadratic curves through segment midpoints."""
    path = QPainterPath()
    pts = np.asarray(points, dtype=float)
    if len(pts) == 0:
        return path
    path.moveTo(QPointF(*pts[0]))
    if len(pts) == 1:
        path.lineTo(QPointF(pts[0][0] + 0.01, pts[0][1]))
        return path
    for i in range(1, len(pts) - 1):
        mid = (pts[i] + pts[i + 1]) / 2.0
        path.quadTo(QPointF(*pts[i]), QPointF(*mid))
    path.lineTo(QPointF(*pts[-1]))
    return path


def stroke_pen(width: float, eraser: bool) -> QPen:
    color = QColor(255, 255, 255) if eraser else QColor(20, 20, 20)
    pen = QPen(color, max(0.5, float(width)))
    pen.setCapStyle(Qt.PenCapStyle.RoundCap)
    pen.setJoinStyle(Qt.PenJoinStyle.RoundJoin)
    return pen


class StrokeItem(QGraphicsPathItem):
    """One document stroke on screen; remembers the stroke it was drawn from.

    Made as a child of the canvas's stroke layer (``parent``), which stacks it: no
    stacking value of its own (PySide6 6.11 leaks a reference to None on the first
    ``setZValue`` of every new item; 6.12 on Python <= 3.11 loses one on every call).
    """

    def __init__(self, stroke: Any, parent: QGraphicsItem | None = None) -> None:
        super().__init__(stroke_path(stroke.points), parent)
        self.stroke = stroke
        self.setPen(stroke_pen(stroke.width, stroke.eraser))
        # thin lines are hard to click: hit-test (and repaint) a wider band around them
        stroker = QPainterPathStroker()
        stroker.setWidth(max(self.pen().widthF() + 4.0, HIT_WIDTH))
        stroker.setCapStyle(Qt.PenCapStyle.RoundCap)
        self._outline = stroker.createStroke(self.path())

    def shape(self) -> QPainterPath:
        return self._outline

    def boundingRect(self) -> QRectF:
        return self._outline.boundingRect()

    @property
    def stroke_id(self) -> str:
        return str(self.stroke.id)

    def paint(self, painter: QPainter, option: Any, widget: Any = None) -> None:
        if self.isSelected():
            glow = QPen(QColor(66, 165, 245, 140), self.pen().widthF() + 4)
            glow.setCapStyle(Qt.PenCapStyle.RoundCap)
            painter.setPen(glow)
            painter.drawPath(self.path())
        painter.setPen(self.pen())
        painter.drawPath(self.path())


class WindowItem(QGraphicsRectItem):
    """A component window outline; dragging it asks the canvas to move the window.

    Windows overlap where people draw most (the nose bridge crosses the eye windows'
    borders), so with the pen or eraser only the name tab grabs the mouse; the select
    tool also grabs the border band.
    """

    def __init__(self, canvas: SketchCanvas, name: str, rect: QRectF) -> None:
        super().__init__(0, 0, rect.width(), rect.height())
        self.canvas, self.name = canvas, name
        self.setPos(rect.topLeft())
        self.color = WINDOW_COLORS.get(name, QColor(120, 120, 120))
        pen = QPen(self.color, 1.5)
        pen.setStyle(Qt.PenStyle.DashLine)
        pen.setCosmetic(True)
        self.setPen(pen)
        self.setBrush(QBrush(Qt.BrushStyle.NoBrush))
        self.setZValue(Z_WINDOWS)
        self.setFlag(QGraphicsItem.GraphicsItemFlag.ItemIsMovable, True)
        self.setCursor(Qt.CursorShape.SizeAllCursor)
        self.setToolTip(
            f"{COMPONENT_LABELS[name]} window: drag its name tab to move where this part is "
            "rendered (or its border, with the select tool)"
        )
        self.label = QGraphicsSimpleTextItem(COMPONENT_LABELS[name], self)
        self.label.setBrush(QColor(255, 255, 255))
        self.label.setFlag(QGraphicsItem.GraphicsItemFlag.ItemIgnoresTransformations, True)
        self.label.setAcceptedMouseButtons(Qt.MouseButton.NoButton)  # the tab takes the press
        self._press_pos = QPointF()
        self.refresh()

    def _zoom(self) -> float:
        """Screen pixels per item unit: the view's zoom times the frame's scale (the
        windows are drawn smaller or larger where "Follow my drawing" moved the face)."""
        try:
            zoom = self.canvas.zoom()
        except RuntimeError:  # the view is deleted before its scene's items (window closed)
            return getattr(self, "_last_zoom", 1.0)
        parent = self.parentItem()
        if parent is not None:
            zoom *= abs(parent.transform().determinant()) ** 0.5 or 1.0
        self._last_zoom = max(zoom, 1e-3)
        return self._last_zoom

    def tab_rect(self) -> QRectF:
        """The name tab (item coordinates): label size in screen pixels, so divided by zoom."""
        text = self.label.boundingRect()
        z = self._zoom()
        return QRectF(0, 0, (text.width() + 6) / z, (text.height() + 2) / z)

    def _band(self) -> QPainterPath:
        band = max(4.0, 8.0 / self._zoom())
        outer, inner = QPainterPath(), QPainterPath()
        r = self.rect()
        outer.addRect(r.adjusted(-band, -band, band, band))
        inner.addRect(r.adjusted(band, band, -band, -band))
        return outer.subtracted(inner)

    def shape(self) -> QPainterPath:
        path = QPainterPath()
        path.addRect(self.tab_rect())
        if self.canvas.tool == SELECT:
            path = path.united(self._band())
        return path

    def boundingRect(self) -> QRectF:
        return super().boundingRect().united(self._band().boundingRect())

    def refresh(self) -> None:
        """The hit area depends on zoom and tool: tell the scene it changed."""
        self.prepareGeometryChange()
        self.label.setPos(3.0 / self._zoom(), 1.0 / self._zoom())
        self.update()

    def paint(self, painter: QPainter, option: Any, widget: Any = None) -> None:
        painter.setPen(self.pen())
        painter.setBrush(Qt.BrushStyle.NoBrush)
        painter.drawRect(self.rect())
        tab = QColor(self.color)
        tab.setAlpha(200)
        painter.fillRect(self.tab_rect(), tab)

    def mousePressEvent(self, event: Any) -> None:
        self._press_pos = self.pos()
        super().mousePressEvent(event)

    def mouseReleaseEvent(self, event: Any) -> None:
        super().mouseReleaseEvent(event)
        if self.pos() != self._press_pos:
            self.canvas.windowMoved.emit(self.name, round(self.pos().x()), round(self.pos().y()))


#: Stacking value of the predicted-landmark overlay (above the windows, below live ink).
Z_LANDMARKS = 3.5
#: Dot radius of a predicted landmark, in screen pixels (the same at every zoom).
LANDMARK_DOT_PX = 2.5
LANDMARK_COLOR = QColor(229, 57, 53)


class LandmarkItem(QGraphicsItem):
    """The 68 predicted landmarks as small dots: one item, repainted only when the
    points change (:meth:`set_points`), never hit-tested (clicks go to the canvas)."""

    def __init__(self) -> None:
        super().__init__()
        self._points: list[QPointF] = []
        self._bounds = QRectF()
        self.setZValue(Z_LANDMARKS)
        self.setAcceptedMouseButtons(Qt.MouseButton.NoButton)
        self.setAcceptHoverEvents(False)

    @property
    def count(self) -> int:
        """How many points are shown."""
        return len(self._points)

    def set_points(self, points: np.ndarray | None) -> None:
        """Show ``points`` ((K, 2) canvas pixels) or nothing (None)."""
        self.prepareGeometryChange()
        pts = [] if points is None else np.asarray(points, np.float64).reshape(-1, 2)
        self._points = [QPointF(float(x), float(y)) for x, y in pts]
        if self._points:
            xs = [p.x() for p in self._points]
            ys = [p.y() for p in self._points]
            pad = 8.0
            self._bounds = QRectF(
                min(xs) - pad,
                min(ys) - pad,
                max(xs) - min(xs) + 2 * pad,
                max(ys) - min(ys) + 2 * pad,
            )
        else:
            self._bounds = QRectF()
        self.update()

    def boundingRect(self) -> QRectF:
        return self._bounds

    def shape(self) -> QPainterPath:
        return QPainterPath()  # never hit: drawing and dragging go through

    def paint(self, painter: QPainter, option: Any, widget: Any = None) -> None:
        if not self._points:
            return
        zoom = max(painter.worldTransform().m11(), 1e-6)
        r = LANDMARK_DOT_PX / zoom
        painter.setPen(QPen(Qt.PenStyle.NoPen))
        painter.setBrush(QBrush(LANDMARK_COLOR))
        for p in self._points:
            painter.drawEllipse(p, r, r)
