"""Appearance actions of the main window: dropped photos become slot references.

A photo is aligned on the engine's worker (dlib is slow); only when that succeeds
does the slot change, so a photo without a face leaves the previous look in place.
A controller with explicit references to the document model, the engine, the
appearance panel and the file actions (a dropped project file opens instead).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from facesketch.engine.contract import JobResult
from facesketch.sketch import FACE
from facesketch.ui.appearance_panel import AppearancePanel
from facesketch.ui.backend import Backend
from facesketch.ui.document_model import DocumentModel
from facesketch.ui.engine_client import EngineClient
from facesketch.ui.files import FileActions
from facesketch.ui.notice import Feedback
from facesketch.ui.qimages import scaled_pixmap

THUMB_SIDE = 54
#: Engine job tags this controller answers (``on_job``).
JOB_KINDS = ("ref", "thumb", "suggest")


class AppearanceActions:
    """Reference photos of the appearance slots of one main window."""

    def __init__(
        self,
        model: DocumentModel,
        engine: EngineClient,
        backend: Backend,
        panel: AppearancePanel,
        files: FileActions,
        feedback: Feedback,
    ) -> None:
        self.model, self.engine, self.backend = model, engine, backend
        self.panel, self.files, self.feedback = panel, files, feedback
        #: path -> slot -> aligned crop ({} while the alignment job is pending)
        self.ref_thumbs: dict[str, dict[str, np.ndarray]] = {}

    def on_mix_changed(self, slot: str, mix: float) -> None:
        current = self.model.slot(slot)
        if current is not None and len(current.paths) == 2:
            self.model.set_appearance(slot, tuple(current.paths), mix, current.shape)

    def on_shape_changed(self, slot: str, on: bool) -> None:
        """The slot's part takes its shape from the first photo (or from the strokes again)."""
        current = self.model.slot(slot)
        if current is not None and current.paths and bool(current.shape) != on:
            self.model.set_appearance(slot, tuple(current.paths), current.mix, on)

    def show_appearance(self) -> None:
        """Show every slot with the aligned crops known so far (fetch missing ones)."""
        for slot in self.panel.slots:
            current = self.model.slot(slot)
            paths = tuple(current.paths) if current is not None else ()
            mix = float(current.mix) if current is not None else 0.0
            shape = bool(current.shape) if current is not None else False
            thumbs = {}
            for p in paths:
                crops = self.ref_thumbs.get(p)
                if crops is None:
                    self.fetch_thumbnails(p)
                elif crops:
                    crop = crops.get(slot, crops.get(FACE))
                    if crop is not None:
                        thumbs[p] = scaled_pixmap(crop, THUMB_SIDE)
            self.panel.show_slot(slot, paths, mix, thumbs, shape)

    # -- appearance photos ---------------------------------------------------------------
    def drop_photo(self, slot: str, path: str, index: int = 0) -> None:
        """Align a dropped photo off-thread; on success it becomes ``slot``'s reference.

        A dropped project file opens instead (after the unsaved-changes prompt).
        """
        if Path(path).suffix.lower() == ".json":
            if self.files.maybe_save():
                self.files.open_project(path)
            return
        self.feedback.status(f"Aligning {Path(path).name}…", 0)
        self.engine.run_job(
            f"ref\t{slot}\t{index}\t{path}", self.backend.reference_thumbnails, path
        )

    def fetch_thumbnails(self, path: str) -> None:
        self.ref_thumbs[path] = {}  # pending: asked once
        self.engine.run_job(f"thumb\t{path}", self.backend.reference_thumbnails, path)

    def fetch_suggestions(self) -> None:
        """Ask the engine which gallery faces fit the parts just rendered (after a render)."""
        self.engine.run_job("suggest", self.backend.gallery_suggestions)

    def show_suggestions(self, found: dict) -> None:
        """Each slot's suggested gallery faces (the whole face: the background's)."""
        faces = found.get("components", {})
        for slot in self.panel.slots:
            rows = faces.get("background" if slot == FACE else slot, [])
            current = self.model.slot(slot)
            own = current is not None and bool(current.paths)
            used = found.get("look") == "gallery" and not own and slot != FACE
            tiles = [(r, w, scaled_pixmap(c, 26), t) for r, w, c, t in rows]
            self.panel.show_suggestions(slot, tiles, used)

    def on_job(self, kind: str, rest: list[str], job: JobResult) -> None:
        """A reference photo was aligned (or not); ``kind`` is one of :data:`JOB_KINDS`."""
        if kind == "suggest":
            if job.error is None and job.result:
                self.show_suggestions(job.result)
            return
        path = rest[-1]
        if job.error:
            if kind == "ref":  # a fresh drop failed: keep the previous appearance
                self.feedback.error(job.error)
            else:
                self.feedback.status(job.error, 8000)
            return
        self.ref_thumbs[path] = dict(job.result)
        if kind == "thumb":
            self.show_appearance()
            return
        slot, index = rest[0], int(rest[1])
        current = self.model.slot(slot)
        old = tuple(current.paths) if current is not None else ()
        if index == 0 or not old:
            paths = (path, *old[1:2])
        else:
            paths = (old[0], path)
        # a newly added second photo starts half-mixed, so the change is visible
        mix = float(current.mix) if len(old) == 2 and len(paths) == 2 else 0.5
        shape = bool(current.shape) if current is not None else False
        self.model.set_appearance(slot, paths, mix, shape)
        self.feedback.status(f"{Path(path).name} → {slot.replace('_', ' ')}")
