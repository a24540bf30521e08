"""File actions of the main window: projects, imports, exports, samples.

A controller that holds explicit references to what it works on (the window for
dialogs and its title, the document model, the engine, the settings, the views
it exports from), so the window module stays about wiring.  Slow work (vectorizing a
sketch, sketching a photo) runs as an engine job; results come back in
:meth:`FileActions.on_job`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QFileDialog, QInputDialog, QMainWindow, QMenu, QMessageBox

from facesketch.engine.contract import JobResult
from facesketch.imaging import ImageError, read_sketch, write_image
from facesketch.sketch import FACE
from facesketch.sketch.project import size_problem
from facesketch.ui.backend import Backend, PhotoImport
from facesketch.ui.document_model import DocumentModel
from facesketch.ui.engine_client import EngineClient
from facesketch.ui.notice import Feedback
from facesketch.ui.recovery import AutosaveActions
from facesketch.ui.settings import Settings

if TYPE_CHECKING:
    from facesketch.ui.appearance_panel import AppearancePanel
    from facesketch.ui.cartoon_panel import CartoonPanel
    from facesketch.ui.result_view import ResultView

PROJECT_FILTER = "facesketch project (*.json)"
IMAGE_FILTER = "Images (*.png *.jpg *.jpeg *.bmp *.webp)"
EXPORT_FILTER = "PNG image (*.png);;JPEG image (*.jpg *.jpeg)"
STYLE_FILTER = "CartoonGAN generator (*.pth *.pt *.safetensors)"
EXPORT_KINDS = ("face", "cartoon", "sketch", "sheet")
PHOTO_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp")
#: Engine job tags this controller answers (``on_job``).
JOB_KINDS = ("strokes", "photo", "style")


def make_action(
    parent: QMainWindow,
    text: str,
    slot: Callable[..., object],
    shortcut: list[str | QKeySequence.StandardKey] | None = None,
    checkable: bool = False,
) -> QAction:
    """A menu/toolbar action of ``parent`` that calls ``slot``."""
    act = QAction(text, parent)
    if shortcut is not None:
        act.setShortcuts([QKeySequence(k) for k in shortcut])
    act.setCheckable(checkable)
    act.triggered.connect(slot)
    return act


class FileActions:
    """Projects, imports, exports and samples of one main window."""

    def __init__(
        self,
        window: QMainWindow,
        model: DocumentModel,
        engine: EngineClient,
        backend: Backend,
        settings: Settings,
        feedback: Feedback,
        autosave: AutosaveActions,
        samples_dir: Path | None = None,
    ) -> None:
        self.window, self.model, self.engine = window, model, engine
        self.backend, self.settings, self.feedback = backend, settings, feedback
        self.autosave = autosave  # a saved sketch needs no autosave copy
        self.samples_dir = samples_dir
        # set by connect_views (they are built after this controller)
        self.result_view: ResultView | None = None
        self.cartoon: CartoonPanel | None = None
        self.appearance: AppearancePanel | None = None
        self.drop_photo: Callable[[str, str, int], None] = lambda slot, path, index: None
        self.styles_changed: Callable[[], None] = lambda: None

    def connect_views(
        self,
        result_view: ResultView,
        cartoon: CartoonPanel,
        appearance: AppearancePanel,
        drop_photo: Callable[[str, str, int], None],
        styles_changed: Callable[[], None],
    ) -> None:
        """The views exports read from, the photo drop of the samples, the style list."""
        self.result_view, self.cartoon, self.appearance = result_view, cartoon, appearance
        self.drop_photo, self.styles_changed = drop_photo, styles_changed

    # -- menu ----------------------------------------------------------------------------
    def build_file_menu(self, menu: QMenu) -> None:
        """Fill the File menu."""

        def a(text: str, slot: Callable[..., object], keys: list[str] | None = None) -> QAction:
            return make_action(self.window, text, slot, keys)

        menu.addAction(a("New", self.new_document, ["Ctrl+N"]))
        menu.addAction(a("Open…", self.open_dialog, ["Ctrl+O"]))
        self.recent_menu = menu.addMenu("Open recent")
        menu.addAction(a("Save", self.save, ["Ctrl+S"]))
        menu.addAction(a("Save as…", self.save_as, ["Ctrl+Shift+S"]))
        menu.addSeparator()
        menu.addAction(a("Import sketch image…", self.import_sketch_dialog, ["Ctrl+I"]))
        menu.addAction(a("Start from a photo…", self.start_from_photo_dialog))
        menu.addSeparator()
        export = menu.addMenu("Export")
        for kind, label in (
            ("face", "Face…"),
            ("cartoon", "Cartoon…"),
            ("sketch", "Sketch…"),
            ("sheet", "Side-by-side sheet…"),
        ):
            export.addAction(a(label, lambda _c=False, k=kind: self.export_dialog(k)))
        menu.addSeparator()
        menu.addAction(a("Quit", self.window.close, ["Ctrl+Q"]))
        self.update_recent_menu()

    def update_recent_menu(self) -> None:
        """Rebuild the Open recent submenu from the settings."""
        self.recent_menu.clear()
        recent = [r for r in self.settings.get("recent") if Path(r).is_file()]
        for path in recent:
            act = self.recent_menu.addAction(Path(path).name)
            act.setToolTip(path)
            act.triggered.connect(lambda _c=False, p=path: self.open_project(p))
        self.recent_menu.setEnabled(bool(recent))

    def update_title(self) -> None:
        """Window title: file name and a star when modified."""
        name = Path(self.model.path).name if self.model.path else "untitled"
        star = "*" if self.model.modified else ""
        self.window.setWindowTitle(f"{name}{star} — facesketch")

    def _dialog_dir(self) -> str:
        return self.settings.get("last_dir")

    def _ask_open(self, title: str, file_filter: str) -> str:
        """A file the person picks to open ("" when they cancel)."""
        path, _ = QFileDialog.getOpenFileName(self.window, title, self._dialog_dir(), file_filter)
        return path

    def _remember_dir(self, path: str | Path) -> None:
        self.settings.set("last_dir", str(Path(path).resolve().parent))

    # -- projects --------------------------------------------------------------------------
    def maybe_save(self) -> bool:
        """Ask about unsaved changes; False means the person cancelled."""
        if not self.model.modified:
            return True
        answer = QMessageBox.question(
            self.window,
            "Unsaved changes",
            "The sketch has unsaved changes. Save them?",
            QMessageBox.StandardButton.Save
            | QMessageBox.StandardButton.Discard
            | QMessageBox.StandardButton.Cancel,
        )
        if answer == QMessageBox.StandardButton.Save:
            return self.save()
        return answer == QMessageBox.StandardButton.Discard

    def new_document(self) -> None:
        """Start an empty sketch (after the unsaved-changes prompt)."""
        if self.maybe_save():
            self.model.new(self.settings.get("canvas_size"))

    def open_dialog(self) -> None:
        if not self.maybe_save():
            return
        path = self._ask_open("Open sketch", PROJECT_FILTER)
        if path:
            self.open_project(path)

    def open_project(self, path: str | Path) -> bool:
        """Load a project file; a bad file leaves the current sketch untouched."""
        try:
            self.model.open(path)
        except Exception as exc:  # ProjectError and friends carry a clear message
            self.feedback.error(str(exc))
            return False
        self._remember_dir(path)
        self.settings.add_recent(path)
        self.update_recent_menu()
        self.feedback.status(f"Opened {path}")
        return True

    def save(self) -> bool:
        """Save to the current file (asks for one the first time)."""
        if self.model.path is None:
            return self.save_as()
        return self.save_to(self.model.path)

    def save_as(self) -> bool:
        path, _ = QFileDialog.getSaveFileName(
            self.window, "Save sketch", self._dialog_dir(), PROJECT_FILTER
        )
        if not path:
            return False
        if not path.lower().endswith(".json"):
            path += ".json"
        return self.save_to(path)

    def save_to(self, path: str | Path) -> bool:
        """Write the project to ``path`` (atomic); errors are shown, not raised."""
        try:
            self.model.save(path)
        except Exception as exc:
            self.feedback.error(f"could not save {path}: {exc}")
            return False
        self.autosave.discard_autosave()
        self._remember_dir(path)
        self.settings.add_recent(path)
        self.update_recent_menu()
        self.update_title()
        self.feedback.status(f"Saved {path}")
        return True

    # -- imports ---------------------------------------------------------------------------
    def import_sketch_dialog(self) -> None:
        path = self._ask_open("Import sketch image", IMAGE_FILTER)
        if not path:
            return
        box = QMessageBox(self.window)
        box.setWindowTitle("Import sketch")
        box.setText("Use the image as a background layer, or turn its lines into editable strokes?")
        layer = box.addButton("Background layer", QMessageBox.ButtonRole.AcceptRole)
        box.addButton("Editable strokes", QMessageBox.ButtonRole.AcceptRole)
        box.addButton(QMessageBox.StandardButton.Cancel)
        box.exec()
        if (
            box.clickedButton() is None
            or box.buttonRole(box.clickedButton()) != QMessageBox.ButtonRole.AcceptRole
        ):
            return
        self.import_sketch(path, as_strokes=box.clickedButton() is not layer)

    def import_sketch(self, path: str | Path, as_strokes: bool) -> None:
        """Bring a sketch image in as a background layer or (off-thread) as strokes."""
        canvas = self.model.doc.layout.canvas
        try:
            sketch = read_sketch(path)
        except ImageError as exc:
            self.feedback.error(str(exc))
            return
        sketch = cv2.resize(sketch, (canvas, canvas), interpolation=cv2.INTER_AREA)
        self._remember_dir(path)
        if not as_strokes:
            self.model.set_background(sketch)
            return
        self.feedback.status(f"Vectorizing {Path(path).name}…", 0)
        self.engine.run_job(f"strokes\t{path}", self.backend.sketch_to_strokes, sketch)

    def start_from_photo_dialog(self) -> None:
        if not self.maybe_save():
            return
        path = self._ask_open("Start from a photo", IMAGE_FILTER)
        if path:
            self.start_from_photo(path)

    def start_from_photo(self, path: str | Path) -> None:
        """Align, sketch and vectorize a photo off-thread; it becomes a new document."""
        self._remember_dir(path)
        self.feedback.status(f"Sketching {Path(path).name}…", 0)
        canvas = self.settings.get("canvas_size")
        self.engine.run_job(f"photo\t{path}", self.backend.photo_to_document, str(path), canvas)

    def on_job(self, kind: str, rest: list[str], job: JobResult) -> None:
        """Results of import jobs (GUI thread); ``kind`` is one of :data:`JOB_KINDS`."""
        if job.error:
            self.feedback.error(job.error)
            return
        if kind == "strokes":
            strokes = list(job.result)
            problem = size_problem([*self.model.doc.strokes, *strokes])
            if problem:  # the sketch could not be saved any more
                self.feedback.error(f"not imported: the sketch would have {problem}")
                return
            self.model.add_strokes(strokes)
            self.feedback.status(f"Imported {len(strokes)} strokes")
        elif kind == "photo":
            imp: PhotoImport = job.result
            self.model.new_from_strokes(imp.strokes, photo=imp.path)
            self.feedback.status(f"Started from {Path(imp.path).name}: {len(imp.strokes)} strokes")
        elif kind == "style":
            self.styles_changed()
            self.feedback.status(f"Imported cartoon style {rest[0]}")

    def import_style_dialog(self) -> None:
        path = self._ask_open("Import CartoonGAN style", STYLE_FILTER)
        if not path:
            return
        default = Path(path).name.split("_net_G")[0].split(".")[0].lower()
        name, ok = QInputDialog.getText(
            self.window, "Style name", "Name of the style:", text=default
        )
        if ok and name.strip():
            self.engine.run_job(
                f"style\t{name.strip()}", self.backend.import_style, path, name.strip()
            )

    # -- exports ---------------------------------------------------------------------------
    def export_array(self, kind: str) -> np.ndarray | None:
        """The image an export of ``kind`` writes, or None when there is none yet."""
        face = self.result_view.face_array if self.result_view is not None else None
        cartoon = self.cartoon.cartoon if self.cartoon is not None else None
        sketch = self.model.doc.rasterize()
        if kind == "face":
            return face
        if kind == "cartoon":
            return cartoon
        if kind == "sketch":
            return sketch
        if kind == "sheet":
            parts = [np.repeat(sketch[:, :, None], 3, axis=2)]
            side = sketch.shape[0]
            for img in (face, cartoon):
                if img is not None:
                    parts.append(cv2.resize(img, (side, side), interpolation=cv2.INTER_AREA))
            return np.concatenate(parts, axis=1)
        raise ValueError(f"unknown export {kind!r}; expected one of {EXPORT_KINDS}")

    def export_image(self, kind: str, path: str | Path) -> Path | None:
        """Write the ``kind`` image to ``path`` (PNG or JPEG by extension)."""
        img = self.export_array(kind)
        if img is None:
            self.feedback.error(f"nothing to export yet: no {kind} has been rendered")
            return None
        p = Path(path)
        if p.suffix.lower() not in (".png", ".jpg", ".jpeg"):
            p = p.with_suffix(".png")
        try:
            out = write_image(p, img)
        except (ImageError, OSError) as exc:
            self.feedback.error(f"could not export {p}: {exc}")
            return None
        self.feedback.status(f"Exported {out}")
        return out

    def export_dialog(self, kind: str) -> None:
        stem = Path(self.model.path).stem if self.model.path else "facesketch"
        start = str(Path(self._dialog_dir()) / f"{stem}-{kind}.png")
        path, _ = QFileDialog.getSaveFileName(self.window, f"Export {kind}", start, EXPORT_FILTER)
        if path:
            self._remember_dir(path)
            self.export_image(kind, path)

    # -- samples ---------------------------------------------------------------------------
    def sample_photos(self) -> list[Path]:
        """The bundled sample reference photos."""
        if self.samples_dir is None or not self.samples_dir.is_dir():
            return []
        return sorted(p for p in self.samples_dir.iterdir() if p.suffix.lower() in PHOTO_SUFFIXES)

    def sample_projects(self) -> list[Path]:
        """The bundled sample sketch projects."""
        if self.samples_dir is None or not self.samples_dir.is_dir():
            return []
        return sorted(self.samples_dir.glob("*.json"))

    def load_samples(self, menu: QMenu) -> None:
        """List the samples in ``menu`` (the Samples menu) and the appearance panel."""
        menu.clear()
        for proj in self.sample_projects():
            act = menu.addAction(f"Open sketch: {proj.stem}")
            act.triggered.connect(
                lambda _c=False, p=proj: self.maybe_save() and self.open_sample(p)
            )
        menu.addSeparator()
        for photo in self.sample_photos():
            act = menu.addAction(f"Use photo for whole face: {photo.stem}")
            act.triggered.connect(lambda _c=False, p=photo: self.drop_photo(FACE, str(p), 0))
            if self.appearance is not None:
                self.appearance.samples.add_photo(photo)

    def open_sample(self, path: Path) -> bool:
        """Open a bundled sample as an untitled document (saving never overwrites it)."""
        ok = self.open_project(path)
        if ok:
            self.model.path = None
            self.update_title()
        return ok
