"""Appearance behaviour of the main window: dropped photos become slot references.

A photo is aligned on the engine's worker (dlib is slow); only when that succeeds
does the slot change, so a photo without a face leaves the previous look in place.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from facesketch.sketch import FACE
from facesketch.ui.engine_client import JobOutcome
from facesketch.ui.qimages import scaled_pixmap

THUMB_SIDE = 54


class AppearanceActions:
    """Mixed into MainWindow; relies on its model, engine, backend and panels."""

    model: Any
    engine: Any
    backend: Any
    appearance: Any
    ref_thumbs: dict[str, dict[str, Any]]

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
        for slot in self.appearance.slots:
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
            self.appearance.show_slot(slot, paths, mix, thumbs, shape)

    # -- appearance photos ---------------------------------------------------------------
    def drop_photo(self, slot: str, path: str, index: int = 0) -> None:
        """Align a dropped photo off-thread; on success it becomes ``slot``'s reference.

        A dropped project file opens instead (after the unsaved-changes prompt).
        """
        if Path(path).suffix.lower() == ".json":
            if self.maybe_save():
                self.open_project(path)
            return
        self.statusBar().showMessage(f"Aligning {Path(path).name}…")
        self.engine.run_job(
            f"ref\t{slot}\t{index}\t{path}", self.backend.reference_thumbnails, path
        )

    def fetch_thumbnails(self, path: str) -> None:
        self.ref_thumbs[path] = {}  # pending: asked once
        self.engine.run_job(f"thumb\t{path}", self.backend.reference_thumbnails, path)

    def on_job_finished(self, outcome: JobOutcome) -> None:
        """A background job finished: dispatch on its tag."""
        kind, *rest = outcome.tag.split("\t")
        if kind in ("ref", "thumb"):
            self._on_reference(kind, rest, outcome)
        else:
            self.on_file_job(kind, rest, outcome)

    def _on_reference(self, kind: str, rest: list[str], outcome: JobOutcome) -> None:
        path = rest[-1]
        if outcome.error:
            if kind == "ref":  # a fresh drop failed: keep the previous appearance
                self.show_error(outcome.error)
            else:
                self.statusBar().showMessage(outcome.error, 8000)
            return
        self.ref_thumbs[path] = dict(outcome.value)
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
        self.statusBar().showMessage(f"{Path(path).name} → {slot.replace('_', ' ')}", 5000)
