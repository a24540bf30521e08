"""The main window: canvas, live result, appearance and cartoon panels, menus.

Wiring only: the canvas and panels report gestures, :class:`DocumentModel` turns
them into undoable commands, and every document change restarts a short debounce
timer whose expiry sends one render request to the engine (off the GUI thread).
The File menu, autosave/recovery and the appearance photos are controllers the
window holds (``file_actions``: :class:`FileActions`, ``autosave_actions``:
:class:`AutosaveActions`, ``appearance_actions``: :class:`AppearanceActions`);
engine jobs come back here and go to the one that asked.

Over 400 lines on purpose: it is the window's wiring (every widget, action, menu and
signal connection) in one place; behaviour lives in the controllers and the model.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QAction, QActionGroup, QCloseEvent, QKeySequence, QShowEvent
from PySide6.QtWidgets import (
    QComboBox,
    QDockWidget,
    QDoubleSpinBox,
    QLabel,
    QMainWindow,
    QSlider,
    QSplitter,
    QTabWidget,
    QToolBar,
)

from facesketch.engine.contract import JobResult, RenderResult, texture_label
from facesketch.sketch import width_at_reference, width_on_canvas
from facesketch.ui import appearance_actions, files, landmark_actions
from facesketch.ui.appearance_actions import AppearanceActions
from facesketch.ui.appearance_panel import AppearancePanel
from facesketch.ui.backend import Backend
from facesketch.ui.canvas import ERASER, PEN, SELECT, SketchCanvas
from facesketch.ui.cartoon_panel import CartoonPanel
from facesketch.ui.document_model import DocumentModel
from facesketch.ui.engine_client import EngineClient
from facesketch.ui.files import FileActions, make_action
from facesketch.ui.landmark_actions import LandmarkActions
from facesketch.ui.notice import Feedback
from facesketch.ui.recovery import AutosaveActions
from facesketch.ui.result_view import ResultView
from facesketch.ui.settings import Settings, fill_settings_menu

#: Settings key of each drawing tool's width.
_WIDTH_KEYS = {PEN: "pen_width", ERASER: "eraser_width"}
#: Quiet time after the last edit before a render is requested (ms).
RENDER_DEBOUNCE_MS = 150
SKETCH_RAW, SKETCH_OVERLAY, SKETCH_BESIDE = (
    "raw strokes",
    "calibrated over strokes",
    "calibrated beside face",
)


class MainWindow(QMainWindow):
    """facesketch's window; ``engine`` and ``backend`` are injectable for tests."""

    renderShown = Signal(RenderResult)  # the result just displayed (tests, screenshots)

    def __init__(
        self,
        engine: EngineClient,
        backend: Backend,
        settings: Settings,
        samples_dir: Path | None = None,
    ) -> None:
        super().__init__()
        self.engine, self.backend, self.settings = engine, backend, settings
        self.samples_dir = samples_dir
        self.model = DocumentModel(canvas=settings.get("canvas_size"), parent=self)
        self.feedback = Feedback(self)
        self.notice = self.feedback.notice
        self.autosave_actions = AutosaveActions(self, self.model, self.feedback)
        self.file_actions = FileActions(
            self,
            self.model,
            engine,
            backend,
            settings,
            self.feedback,
            self.autosave_actions,
            samples_dir,
        )
        self.last_result: RenderResult | None = None
        self.render_count = 0
        self.setWindowTitle("facesketch")
        self.resize(1400, 820)
        geometry = settings.q.value("window_geometry")  # the size the person left it at
        if geometry is not None:
            self.restoreGeometry(geometry)

        self.canvas = SketchCanvas()
        self.result_view = ResultView()
        split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(self.canvas)
        split.addWidget(self.result_view)
        split.setSizes([700, 700])
        self.setCentralWidget(split)
        self.appearance = AppearancePanel()
        self.appearance_actions = AppearanceActions(
            self.model, engine, backend, self.appearance, self.file_actions, self.feedback
        )
        self.landmark_actions = LandmarkActions(
            self, self.model, engine, self.canvas, self.feedback
        )
        self.cartoon = CartoonPanel()
        self.file_actions.connect_views(
            self.result_view,
            self.cartoon,
            self.appearance,
            self.appearance_actions.drop_photo,
            self.refresh_styles,
        )
        tabs = QTabWidget()
        tabs.addTab(self.appearance, "Appearance")
        tabs.addTab(self.cartoon, "Cartoon")
        self.side_tabs = tabs
        dock = QDockWidget("Look", self)
        dock.setObjectName("look-dock")
        dock.setWidget(tabs)
        dock.setFeatures(QDockWidget.DockWidgetFeature.DockWidgetMovable)
        self.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, dock)
        self.device_label = QLabel("device: starting…")
        self.time_label = QLabel("")
        self.statusBar().addPermanentWidget(self.time_label)
        self.statusBar().addPermanentWidget(self.device_label)

        self.render_timer = QTimer(self)
        self.render_timer.setSingleShot(True)
        self.render_timer.setInterval(RENDER_DEBOUNCE_MS)
        self.render_timer.timeout.connect(self.request_render)
        self.autosave_timer = QTimer(self)
        self.autosave_timer.timeout.connect(self.autosave_actions.autosave)
        self.apply_autosave_interval()

        self._build_actions()
        self._build_toolbar()
        self._build_menus()
        self._connect()
        self._width_canvas = 0  # canvas size the pen widths were last scaled to
        self.set_tool(PEN)
        self.file_actions.load_samples(self.samples_menu)
        self.refresh_styles()
        self.on_document_changed()
        self._fitted = False

    # -- construction ----------------------------------------------------------------
    def _build_actions(self) -> None:
        def a(
            text: str,
            slot: Callable[..., object],
            keys: list[str | QKeySequence.StandardKey] | None = None,
            checkable: bool = False,
        ) -> QAction:
            return make_action(self, text, slot, keys, checkable)

        self.act_undo = a("Undo", self.model.undo, [QKeySequence.StandardKey.Undo])
        self.act_redo = a("Redo", self.model.redo, ["Ctrl+Shift+Z", "Ctrl+Y"])
        self.act_clear = a("Clear", self.clear_canvas)
        self.act_delete = a("Delete selection", self.canvas.delete_selected, ["Del"])
        self.act_select_all = a("Select all", self.canvas.select_all, ["Ctrl+A"])
        self.act_zoom_in = a("Zoom in", lambda: self.canvas.zoom_by(1.25), ["Ctrl++", "Ctrl+="])
        self.act_zoom_out = a("Zoom out", lambda: self.canvas.zoom_by(0.8), ["Ctrl+-"])
        self.act_fit = a("Fit canvas", self.canvas.fit, ["Ctrl+0"])
        self.act_windows = a("Show component windows", self.canvas.set_windows_visible, None, True)
        self.act_windows.setChecked(True)
        self.tool_actions: dict[str, QAction] = {}
        group = QActionGroup(self)
        for tool, label, key in (
            (PEN, "Pen", "P"),
            (ERASER, "Eraser", "E"),
            (SELECT, "Select", "S"),
        ):
            act = a(label, lambda _c=False, t=tool: self.set_tool(t), [key], True)
            group.addAction(act)
            self.tool_actions[tool] = act

    def _build_toolbar(self) -> None:
        tb = QToolBar("Tools")
        tb.setObjectName("tools")
        self.addToolBar(Qt.ToolBarArea.TopToolBarArea, tb)
        for act in self.tool_actions.values():
            tb.addAction(act)
        self.pen_width = QDoubleSpinBox()
        self.pen_width.setRange(0.5, 40)
        self.pen_width.setSingleStep(0.5)
        self.pen_width.setPrefix("width ")
        self.pen_width.setToolTip("Width of the current pen or eraser (canvas px)")
        tb.addWidget(self.pen_width)
        tb.addSeparator()
        for act in (self.act_undo, self.act_redo, self.act_clear):
            tb.addAction(act)
        tb.addSeparator()
        tb.addAction(self.act_windows)
        self.sketch_mode = QComboBox()
        self.sketch_mode.addItems([SKETCH_RAW, SKETCH_OVERLAY, SKETCH_BESIDE])
        self.sketch_mode.setToolTip("Show the calibrated (SCN) sketch over or beside your strokes")
        tb.addWidget(self.sketch_mode)
        tb.addWidget(QLabel("  stroke calibration "))
        self.scn_slider = QSlider(Qt.Orientation.Horizontal)
        self.scn_slider.setRange(0, 100)
        self.scn_slider.setFixedWidth(120)
        self.scn_slider.setToolTip("Strength of the Stroke Calibration Network (0 = raw strokes)")
        tb.addWidget(self.scn_slider)
        self.scn_value = QLabel("")
        tb.addWidget(self.scn_value)

    def _build_menus(self) -> None:
        mb = self.menuBar()
        self.file_menu = mb.addMenu("&File")
        self.file_actions.build_file_menu(self.file_menu)
        edit = mb.addMenu("&Edit")
        for act in (
            self.act_undo,
            self.act_redo,
            None,
            self.act_select_all,
            self.act_delete,
            self.act_clear,
        ):
            edit.addSeparator() if act is None else edit.addAction(act)
        edit.addSeparator()
        edit.addAction(self.landmark_actions.act_follow)
        edit.addAction(self.landmark_actions.act_fit)
        view = mb.addMenu("&View")
        for act in (self.act_zoom_in, self.act_zoom_out, self.act_fit, None, self.act_windows):
            view.addSeparator() if act is None else view.addAction(act)
        view.addAction(self.landmark_actions.act_show)
        self.samples_menu = mb.addMenu("&Samples")
        fill_settings_menu(mb.addMenu("Se&ttings"), self.settings, self._set_setting)

    def _set_setting(self, key: str, value: int | str) -> None:
        self.settings.set(key, value)
        if key in ("render_size", "texture"):
            self.schedule_render()
        elif key == "device":
            self.feedback.status(f"device {value} is used from the next start", 6000)
        elif key == "autosave_s":
            self.apply_autosave_interval()

    def apply_autosave_interval(self) -> None:
        """(Re)start the autosave timer with the interval from the settings (0: off)."""
        ms = self.settings.autosave_ms()
        if ms <= 0:
            self.autosave_timer.stop()
            return
        self.autosave_timer.setInterval(ms)
        self.autosave_timer.start()

    def _connect(self) -> None:
        m, c, looks = self.model, self.canvas, self.appearance_actions
        m.changed.connect(self.on_document_changed)
        c.strokeFinished.connect(m.add_stroke)
        c.strokesMoved.connect(m.move_strokes)
        c.strokesDeleted.connect(m.remove_strokes)
        c.windowMoved.connect(self.on_window_moved)
        c.photoDropped.connect(looks.drop_photo)
        self.appearance.photoDropped.connect(looks.drop_photo)
        self.appearance.mixChanged.connect(looks.on_mix_changed)
        self.appearance.shapeChanged.connect(looks.on_shape_changed)
        self.appearance.slotCleared.connect(m.clear_appearance)
        self.cartoon.settingsChanged.connect(self.schedule_render)
        self.cartoon.settingsEdited.connect(m.set_cartoon)
        self.cartoon.importRequested.connect(self.file_actions.import_style_dialog)
        self.cartoon.exportRequested.connect(lambda: self.file_actions.export_dialog("cartoon"))
        self.scn_slider.sliderReleased.connect(lambda: m.set_scn(self.scn_slider.value() / 100))
        self.scn_slider.valueChanged.connect(lambda v: self.scn_value.setText(f"{v}%"))
        self.sketch_mode.currentTextChanged.connect(self.on_sketch_mode)
        self.pen_width.valueChanged.connect(self.on_width_changed)
        self.engine.renderFinished.connect(self.on_render_finished)
        self.engine.busyChanged.connect(self.result_view.set_busy)
        self.engine.jobFinished.connect(self.on_job_finished)

    # -- editing -----------------------------------------------------------------------
    def set_tool(self, tool: str) -> None:
        """Switch the canvas tool and show its width."""
        self.canvas.set_tool(tool)
        self.tool_actions[tool].setChecked(True)
        self.pen_width.setEnabled(tool != SELECT)
        if tool != SELECT:
            self.pen_width.blockSignals(True)
            self.pen_width.setValue(self.canvas.widths[tool])
            self.pen_width.blockSignals(False)

    def on_width_changed(self, value: float) -> None:
        """The spin box shows document pixels; the setting is kept at the 512 canvas."""
        tool = self.canvas.tool
        if tool in (PEN, ERASER):
            self.canvas.set_width(tool, value)
            width = width_at_reference(value, self.model.doc.layout.canvas)
            self.settings.set(_WIDTH_KEYS[tool], width)

    def apply_pen_widths(self) -> None:
        """Scale the pen and eraser to the document's canvas (the trained width by default)."""
        canvas = self.model.doc.layout.canvas
        if canvas == self._width_canvas:
            return
        self._width_canvas = canvas
        for tool, key in _WIDTH_KEYS.items():
            self.canvas.set_width(tool, width_on_canvas(self.settings.get(key), canvas))
        self.set_tool(self.canvas.tool)  # show the scaled width

    def clear_canvas(self) -> None:
        """Remove every stroke (undoable)."""
        self.model.clear()

    def on_window_moved(self, name: str, x: int, y: int) -> None:
        self.model.move_window(name, x, y)
        if not self.model.last_change_applied:
            self.canvas.sync(self.model.doc)  # snap the outline back

    def on_sketch_mode(self, mode: str) -> None:
        self.canvas.set_calibrated(None, visible=mode == SKETCH_OVERLAY)
        self.result_view.set_sketch_beside(mode == SKETCH_BESIDE)

    def on_document_changed(self) -> None:
        """Refresh every view of the document and schedule a render."""
        doc = self.model.doc
        self.canvas.sync(doc)
        self.apply_pen_widths()
        self.scn_slider.blockSignals(True)
        self.scn_slider.setValue(round(float(doc.scn_strength) * 100))
        self.scn_slider.blockSignals(False)
        self.scn_value.setText(f"{self.scn_slider.value()}%")
        self.cartoon.show_settings(doc.cartoon)
        self.act_undo.setEnabled(self.model.can_undo())
        self.act_redo.setEnabled(self.model.can_redo())
        self.appearance_actions.show_appearance()
        self.landmark_actions.on_document_changed()
        self.file_actions.update_title()
        self.schedule_render()

    # -- rendering ---------------------------------------------------------------------
    def schedule_render(self) -> None:
        """(Re)start the debounce timer: render once the person pauses."""
        self.render_timer.start()

    def request_render(self) -> None:
        """Send the current document to the engine (returns at once)."""
        doc = self.model.doc
        self.engine.render(
            doc.snapshot(),
            self.settings.get("render_size"),
            float(doc.scn_strength),
            self.cartoon.style(),
            self.settings.get("texture") == "on",
        )

    def on_render_finished(self, result: RenderResult) -> None:
        """Show a render result (GUI thread, via the engine client's queued signal)."""
        self.last_result = result
        self.render_count += 1
        device = result.device or self.engine.status().get("device", "")
        if device:
            self.device_label.setText(f"device: {device}")
        if result.error:
            if result.face is None:
                self.result_view.set_message(result.error)
            self.feedback.status(result.error, 10000)
            self.time_label.setText("render failed")
        if result.face is not None:
            self.result_view.set_result(result.face, result.sketch)
            self.canvas.set_calibrated(result.sketch)
            self.canvas.set_window_placement(result.placement)
            self.appearance_actions.fetch_suggestions()  # gallery faces like these parts
            text = f"last render {result.total_ms:.0f} ms"
            if "cartoon" in result.timings:
                text += f" + cartoon {result.timings['cartoon']:.0f} ms"
            if result.texture:
                text += f" · texture: {texture_label(result.texture[0])}"
            self.time_label.setText(text)
        for warning in result.warnings:
            self.feedback.status(warning, 8000)
        if result.cartoon is not None or self.cartoon.style() is not None:
            error = result.error if result.cartoon is None else None
            self.cartoon.set_cartoon(result.cartoon, error, result.face)
        self.renderShown.emit(result)

    def on_job_finished(self, job: JobResult) -> None:
        """A background job finished: the controller whose tag it carries takes it."""
        kind, *rest = job.tag.split("\t")
        if kind in appearance_actions.JOB_KINDS:
            self.appearance_actions.on_job(kind, rest, job)
        elif kind in files.JOB_KINDS:
            self.file_actions.on_job(kind, rest, job)
        elif kind in landmark_actions.JOB_KINDS:
            self.landmark_actions.on_job(kind, rest, job)
        else:
            raise ValueError(f"no handler for engine job {job.tag!r}")

    # -- cartoon styles ----------------------------------------------------------------
    def refresh_styles(self) -> None:
        """Reload the style list from the engine."""
        try:
            names = self.backend.list_styles()
        except Exception as exc:  # the list is optional: say why it is empty
            names = []
            self.feedback.status(f"cartoon styles unavailable: {exc}", 8000)
        self.cartoon.set_styles(names)

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        if not self._fitted:  # fit once the splitter has given the canvas its size
            self._fitted = True
            QTimer.singleShot(0, self.canvas.fit)

    # -- closing -------------------------------------------------------------------------
    def closeEvent(self, event: QCloseEvent) -> None:
        if not self.file_actions.maybe_save():
            event.ignore()
            return
        self.autosave_timer.stop()
        self.autosave_actions.discard_autosave()
        self.settings.q.setValue("window_geometry", self.saveGeometry())
        self.settings.sync()
        self.engine.shutdown()
        event.accept()
