"""The drawing canvas: pen, eraser, selection, zoom/pan and draggable component windows.

A QGraphicsView over a scene in document canvas pixels.  The canvas never edits the
document itself: it emits what the person did (a finished stroke, strokes moved or
deleted, a window dragged) and the main window turns that into an undoable
command, then calls :meth:`SketchCanvas.sync` with the new document.

Why one ~450-line module: it is one QGraphicsView whose tools (pen, eraser, selection,
window drags, zoom/pan) share the same mouse events and scene; the items are in canvas_items.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import shiboken6
from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QKeyEvent, QPainter, QPen, QTransform
from PySide6.QtWidgets import (
    QGraphicsItem,
    QGraphicsPathItem,
    QGraphicsPixmapItem,
    QGraphicsRectItem,
    QGraphicsScene,
    QGraphicsView,
)

from facesketch.layout import BACKGROUND, LOCAL_COMPONENTS, REFERENCE_CANVAS, FaceLayout
from facesketch.sketch import FACE, default_pen_width
from facesketch.ui.canvas_items import (
    ERASER,
    MIN_SEGMENT,
    PEN,
    SELECT,
    WINDOW_COLORS,
    Z_BACKGROUND,
    Z_LIVE,
    Z_OVERLAY,
    Z_STROKES,
    Z_WINDOWS,
    ZOOM_STEP,
    LandmarkItem,
    StrokeItem,
    WindowItem,
    stroke_path,
    stroke_pen,
)
from facesketch.ui.qimages import array_to_pixmap

__all__ = ["ERASER", "PEN", "SELECT", "WINDOW_COLORS", "SketchCanvas"]


def _discard(item: QGraphicsItem) -> None:
    """Delete a scene item now (its destructor takes it out of the scene).

    ``removeItem`` would hand the item back to Python, which on PySide6 6.11 leaks a
    reference to None per item: a long session would pile them up.
    """
    shiboken6.delete(item)


class SketchCanvas(QGraphicsView):
    """Vector sketch editor over a document; see the module docstring for the contract."""

    strokeFinished = Signal(object, float, bool)  # points (K, 2) float, width, eraser
    strokesMoved = Signal(list, float, float)  # stroke ids, dx, dy
    strokesDeleted = Signal(list)  # stroke ids
    windowMoved = Signal(str, int, int)  # component, new top-left x, y
    photoDropped = Signal(str, str)  # component under the drop, file path
    zoomChanged = Signal(float)

    def __init__(self, parent: Any = None) -> None:
        self._scene = QGraphicsScene()
        super().__init__(self._scene, parent)
        self.setRenderHints(
            QPainter.RenderHint.Antialiasing | QPainter.RenderHint.SmoothPixmapTransform
        )
        self.setViewportUpdateMode(QGraphicsView.ViewportUpdateMode.SmartViewportUpdate)
        self.setTransformationAnchor(QGraphicsView.ViewportAnchor.AnchorUnderMouse)
        self.setBackgroundBrush(QColor(200, 200, 204))
        self.setAcceptDrops(True)
        self.tool = PEN
        self.widths = {PEN: default_pen_width(REFERENCE_CANVAS), ERASER: 12.0}  # window sets them
        self.layout_: FaceLayout = FaceLayout.default()
        self._paper = QGraphicsRectItem()
        self._paper.setBrush(QColor(255, 255, 255))
        self._paper.setPen(QPen(Qt.PenStyle.NoPen))
        self._paper.setZValue(-1)
        self._scene.addItem(self._paper)
        self._background = QGraphicsPixmapItem()
        self._background.setZValue(Z_BACKGROUND)
        self._scene.addItem(self._background)
        self._overlay = QGraphicsPixmapItem()
        self._overlay.setZValue(Z_OVERLAY)
        self._overlay.setOpacity(0.55)
        self._scene.addItem(self._overlay)
        self._overlay_wanted = False
        self._strokes: dict[str, StrokeItem] = {}
        # Parent of every stroke item: one stacking value for all strokes, the drawing
        # order is the children's order (eraser strokes must stay above what they erase).
        self._stroke_layer = QGraphicsRectItem()
        self._stroke_layer.setFlag(QGraphicsItem.GraphicsItemFlag.ItemHasNoContents, True)
        self._stroke_layer.setZValue(Z_STROKES)
        self._scene.addItem(self._stroke_layer)
        self._background_shown: Any = None
        self._window_geometry: dict[str, tuple[int, int, int]] = {}
        # Parent of the window outlines: its transform shows them where the face was
        # drawn while "Follow my drawing" moves it (children keep layout coordinates,
        # so a drag still moves the layout's window)
        self._window_frame = QGraphicsRectItem()
        self._window_frame.setFlag(QGraphicsItem.GraphicsItemFlag.ItemHasNoContents, True)
        self._window_frame.setZValue(Z_WINDOWS)
        self._scene.addItem(self._window_frame)
        self._windows: dict[str, WindowItem] = {}
        self._windows_visible = True
        self._live: QGraphicsPathItem | None = None
        self._live_points: list[tuple[float, float]] = []
        self._pan_from: QPointF | None = None
        self._space_down = False
        self._landmarks = LandmarkItem()
        self._landmarks.setVisible(False)
        self._scene.addItem(self._landmarks)
        self._set_canvas_size(self.layout_.canvas)

    # -- document sync ---------------------------------------------------------------
    def _set_canvas_size(self, canvas: int) -> None:
        self._paper.setRect(0, 0, canvas, canvas)
        margin = canvas * 0.5
        self._scene.setSceneRect(-margin, -margin, canvas + 2 * margin, canvas + 2 * margin)

    def sync(self, document: Any) -> None:
        """Make the scene show ``document``: strokes (by id), windows and background layer.

        Only what changed is touched: new or edited strokes get an item, removed ones
        lose theirs; every other item is left alone.  Stroke items are children of one
        layer item, which stacks them in insertion order, so a stroke drawn last is on
        top with no stacking call at all and one put back in the middle (undo) takes
        one ``stackBefore``.  Each edit then costs the same few Qt calls however many
        strokes there are.
        """
        if document.layout.canvas != self.layout_.canvas:
            self._set_canvas_size(document.layout.canvas)
        self.layout_ = document.layout
        strokes = list(document.strokes)
        seen = {str(s.id) for s in strokes}
        for sid in [sid for sid in self._strokes if sid not in seen]:
            _discard(self._strokes.pop(sid))
        items: list[StrokeItem] = []
        fresh: list[int] = []
        for index, stroke in enumerate(strokes):
            sid = str(stroke.id)
            item = self._strokes.get(sid)
            if item is None or item.stroke is not stroke:
                if item is not None:
                    _discard(item)
                item = StrokeItem(stroke, self._stroke_layer)  # appended on top
                if self.tool == SELECT:
                    item.setFlag(QGraphicsItem.GraphicsItemFlag.ItemIsSelectable, True)
                    item.setFlag(QGraphicsItem.GraphicsItemFlag.ItemIsMovable, True)
                self._strokes[sid] = item
                fresh.append(index)
            items.append(item)
        # Kept items keep their relative order (no edit reorders strokes); a new one
        # that is not last goes right below the stroke after it, last ones first.
        for index in reversed(fresh):
            if index + 1 < len(items):
                items[index].stackBefore(items[index + 1])
        self._sync_windows()
        self._sync_background(getattr(document, "background_image", None))

    def stroke_order(self) -> list[str]:
        """Stroke ids as the scene stacks them, bottom first (must be the drawing order)."""
        return [
            item.stroke_id
            for item in self._stroke_layer.childItems()
            if isinstance(item, StrokeItem)
        ]

    def _sync_background(self, bg: Any) -> None:
        if bg is self._background_shown and bg is not None:
            return
        self._background_shown = bg
        if bg is None:
            if self._background.isVisible():
                self._background.setVisible(False)
            return
        pm = array_to_pixmap(np.asarray(bg))
        self._background.setPixmap(pm)
        self._background.setScale(self.layout_.canvas / max(pm.width(), 1))
        self._background.setVisible(True)

    def _sync_windows(self) -> None:
        for name in LOCAL_COMPONENTS:
            w = self.layout_.window(name)
            item = self._windows.get(name)
            geometry = (w.x, w.y, w.size)
            if item is None:
                item = WindowItem(self, name, QRectF(w.x, w.y, w.size, w.size))
                item.setParentItem(self._window_frame)
                self._windows[name] = item
                item.setVisible(self._windows_visible)
            elif self._window_geometry.get(name) != geometry or item.pos() != QPointF(w.x, w.y):
                item.setRect(0, 0, w.size, w.size)
                item.setPos(w.x, w.y)
            self._window_geometry[name] = geometry

    def _window_at(self, pos: Any) -> WindowItem | None:
        """The visible component window whose grab area is under viewport point ``pos``."""
        for item in self.items(pos):
            if isinstance(item, WindowItem) and item.isVisible():
                return item
        return None

    def _refresh_windows(self) -> None:
        for item in self._windows.values():
            item.refresh()

    def set_windows_visible(self, visible: bool) -> None:
        """Show or hide the component window outlines."""
        self._windows_visible = visible
        for item in self._windows.values():
            item.setVisible(visible)

    def set_window_placement(self, matrix: np.ndarray | None) -> None:
        """Show the component windows through ``matrix`` ((2, 3), layout -> where the face
        was drawn, document canvas px: "Follow my drawing" moved it), or in place (None)."""
        if matrix is None:
            t = QTransform()
        else:
            m = np.asarray(matrix, np.float64)
            t = QTransform(m[0, 0], m[1, 0], m[0, 1], m[1, 1], m[0, 2], m[1, 2])
        if self._window_frame.transform() != t:
            self._window_frame.setTransform(t)
            self._refresh_windows()  # name tabs and grab bands keep their screen size

    def window_placement(self) -> QTransform:
        """How the window outlines are shown (identity: at the layout's places)."""
        return self._window_frame.transform()

    def set_landmarks(self, points: np.ndarray | None) -> None:
        """Predicted landmarks ((68, 2) document canvas pixels) to show, or None."""
        self._landmarks.set_points(points)

    def set_landmarks_visible(self, visible: bool) -> None:
        """Show or hide the predicted landmarks ("Show landmarks")."""
        self._landmarks.setVisible(bool(visible))

    @property
    def landmarks_shown(self) -> int:
        """How many landmark dots are on screen (0 when hidden or none predicted)."""
        return self._landmarks.count if self._landmarks.isVisible() else 0

    def set_calibrated(self, sketch: np.ndarray | None, visible: bool | None = None) -> None:
        """Show the engine's calibrated sketch faintly over the strokes (or hide it)."""
        if visible is not None:
            self._overlay_wanted = visible
        if sketch is not None:
            pm = array_to_pixmap(sketch)
            self._overlay.setPixmap(pm)
            self._overlay.setScale(self.layout_.canvas / max(pm.width(), 1))
        self._overlay.setVisible(self._overlay_wanted and not self._overlay.pixmap().isNull())

    # -- tools -------------------------------------------------------------------------
    def set_tool(self, tool: str) -> None:
        """Switch between pen, eraser and select."""
        if tool not in (PEN, ERASER, SELECT):
            raise ValueError(f"unknown tool {tool!r}")
        self.tool = tool
        selecting = tool == SELECT
        for item in self._strokes.values():
            item.setFlag(QGraphicsItem.GraphicsItemFlag.ItemIsSelectable, selecting)
            item.setFlag(QGraphicsItem.GraphicsItemFlag.ItemIsMovable, selecting)
            if not selecting:
                item.setSelected(False)
        self.setDragMode(
            QGraphicsView.DragMode.RubberBandDrag if selecting else QGraphicsView.DragMode.NoDrag
        )
        self.viewport().setCursor(
            Qt.CursorShape.ArrowCursor if selecting else Qt.CursorShape.CrossCursor
        )
        self._refresh_windows()  # the border band grabs only with the select tool

    def set_width(self, tool: str, width: float) -> None:
        """Pen or eraser width in canvas pixels."""
        self.widths[tool] = float(width)

    def selected_ids(self) -> list[str]:
        """Ids of the selected strokes, in document order."""
        return [sid for sid, item in self._strokes.items() if item.isSelected()]

    def select_all(self) -> None:
        """Select every stroke (switches to the select tool)."""
        self.set_tool(SELECT)
        for item in self._strokes.values():
            item.setSelected(True)

    def delete_selected(self) -> None:
        """Ask for the selected strokes to be removed."""
        ids = self.selected_ids()
        if ids:
            self.strokesDeleted.emit(ids)

    # -- zoom and pan --------------------------------------------------------------------
    def zoom(self) -> float:
        """Current scale factor (1 = one canvas pixel per screen pixel)."""
        return self.transform().m11()

    def set_zoom(self, factor: float) -> None:
        """Set an absolute zoom factor (clamped to 0.1..16)."""
        self._auto_fit = False  # the person chose a zoom: resizing keeps it
        self._set_scrollbars(Qt.ScrollBarPolicy.ScrollBarAsNeeded)
        factor = min(16.0, max(0.1, factor))
        self.setTransform(QTransform.fromScale(factor, factor))
        self._refresh_windows()
        self.zoomChanged.emit(factor)

    def zoom_by(self, step: float) -> None:
        """Multiply the zoom by ``step``."""
        self.set_zoom(self.zoom() * step)

    def fit(self) -> None:
        """Zoom so the whole paper is visible (and keep it so on resize until a zoom)."""
        self._auto_fit = True
        # the scene is larger than the paper (room to pan): with scroll bars shown the
        # viewport shrinks after the fit and the paper ends up scrolled partly out of
        # view, so a fitted canvas has none (panning still works)
        self._set_scrollbars(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.fitInView(self._paper, Qt.AspectRatioMode.KeepAspectRatio)
        self.centerOn(self._paper)
        self._refresh_windows()
        self.zoomChanged.emit(self.zoom())

    def _set_scrollbars(self, policy: Qt.ScrollBarPolicy) -> None:
        self.setHorizontalScrollBarPolicy(policy)
        self.setVerticalScrollBarPolicy(policy)

    def resizeEvent(self, event: Any) -> None:
        super().resizeEvent(event)
        if getattr(self, "_auto_fit", False):
            self.fit()

    def wheelEvent(self, event: Any) -> None:
        if event.modifiers() & Qt.KeyboardModifier.ControlModifier:
            self.zoom_by(ZOOM_STEP if event.angleDelta().y() > 0 else 1 / ZOOM_STEP)
            event.accept()
            return
        super().wheelEvent(event)

    def keyPressEvent(self, event: QKeyEvent) -> None:
        key = event.key()
        if key == Qt.Key.Key_Space and not event.isAutoRepeat():
            self._space_down = True
            self.viewport().setCursor(Qt.CursorShape.OpenHandCursor)
        elif key in (Qt.Key.Key_Plus, Qt.Key.Key_Equal):
            self.zoom_by(ZOOM_STEP)
        elif key == Qt.Key.Key_Minus:
            self.zoom_by(1 / ZOOM_STEP)
        elif key in (Qt.Key.Key_Delete, Qt.Key.Key_Backspace):
            self.delete_selected()
        else:
            super().keyPressEvent(event)

    def keyReleaseEvent(self, event: QKeyEvent) -> None:
        if event.key() == Qt.Key.Key_Space and not event.isAutoRepeat():
            self._space_down = False
            self.set_tool(self.tool)  # restore the tool's cursor
        else:
            super().keyReleaseEvent(event)

    # -- mouse ---------------------------------------------------------------------------
    def _panning_press(self, event: Any) -> bool:
        return event.button() == Qt.MouseButton.MiddleButton or (
            self._space_down and event.button() == Qt.MouseButton.LeftButton
        )

    def mousePressEvent(self, event: Any) -> None:
        if self._panning_press(event):
            self._pan_from = event.position()
            self.viewport().setCursor(Qt.CursorShape.ClosedHandCursor)
            event.accept()
            return
        if event.button() == Qt.MouseButton.LeftButton and self.tool in (PEN, ERASER):
            if self._window_at(event.position().toPoint()) is not None:
                super().mousePressEvent(event)  # drag the window by its tab
                return
            self._begin_stroke(self.mapToScene(event.position().toPoint()))
            event.accept()
            return
        super().mousePressEvent(event)

    def mouseMoveEvent(self, event: Any) -> None:
        if self._pan_from is not None:
            delta = event.position() - self._pan_from
            self._pan_from = event.position()
            h, v = self.horizontalScrollBar(), self.verticalScrollBar()
            h.setValue(h.value() - round(delta.x()))
            v.setValue(v.value() - round(delta.y()))
            event.accept()
            return
        if self._live is not None:
            self._extend_stroke(self.mapToScene(event.position().toPoint()))
            event.accept()
            return
        super().mouseMoveEvent(event)

    def mouseReleaseEvent(self, event: Any) -> None:
        if self._pan_from is not None and event.button() in (
            Qt.MouseButton.MiddleButton,
            Qt.MouseButton.LeftButton,
        ):
            self._pan_from = None
            self.set_tool(self.tool)
            if self._space_down:
                self.viewport().setCursor(Qt.CursorShape.OpenHandCursor)
            event.accept()
            return
        if self._live is not None and event.button() == Qt.MouseButton.LeftButton:
            self._extend_stroke(self.mapToScene(event.position().toPoint()))
            self._end_stroke()
            event.accept()
            return
        super().mouseReleaseEvent(event)
        if self.tool == SELECT:
            self._commit_selection_move()

    def _begin_stroke(self, pos: QPointF) -> None:
        eraser = self.tool == ERASER
        self._live_points = [(pos.x(), pos.y())]
        self._live = QGraphicsPathItem()
        pen = stroke_pen(self.widths[self.tool], eraser)
        if eraser:
            pen.setColor(QColor(255, 255, 255, 230))
        self._live.setPen(pen)
        self._live.setZValue(Z_LIVE)
        self._live.setPath(stroke_path(np.array(self._live_points)))
        self._scene.addItem(self._live)

    def _extend_stroke(self, pos: QPointF) -> None:
        last = self._live_points[-1]
        if np.hypot(pos.x() - last[0], pos.y() - last[1]) < MIN_SEGMENT:
            return
        self._live_points.append((pos.x(), pos.y()))
        if self._live is not None:
            self._live.setPath(stroke_path(np.array(self._live_points)))

    def _end_stroke(self) -> None:
        points = np.asarray(self._live_points, dtype=np.float32)
        if self._live is not None:
            self._scene.removeItem(self._live)
        self._live, self._live_points = None, []
        eraser = self.tool == ERASER
        self.strokeFinished.emit(points, float(self.widths[self.tool]), eraser)

    def _commit_selection_move(self) -> None:
        moved = [item for item in self._strokes.values() if item.pos() != QPointF(0, 0)]
        if not moved:
            return
        delta = moved[0].pos()
        for item in moved:
            item.setPos(0, 0)  # the document command moves the points themselves
        self.strokesMoved.emit([i.stroke_id for i in moved], delta.x(), delta.y())

    # -- drops ---------------------------------------------------------------------------
    def dragEnterEvent(self, event: Any) -> None:
        if event.mimeData().hasUrls():
            event.acceptProposedAction()
        else:
            super().dragEnterEvent(event)

    def dragMoveEvent(self, event: Any) -> None:
        if event.mimeData().hasUrls():
            event.acceptProposedAction()
        else:
            super().dragMoveEvent(event)

    def dropEvent(self, event: Any) -> None:
        urls = [u for u in event.mimeData().urls() if u.isLocalFile()]
        if not urls:
            super().dropEvent(event)
            return
        pos = self.mapToScene(event.position().toPoint())
        name = self.layout_.component_at(pos.x(), pos.y())
        slot = FACE if name == BACKGROUND else name
        self.photoDropped.emit(slot, urls[0].toLocalFile())
        event.acceptProposedAction()

    def scene_to_viewport(self, x: float, y: float) -> Any:
        """Viewport point of canvas point (x, y) (for tests and tooltips)."""
        return self.mapFromScene(QPointF(x, y))
