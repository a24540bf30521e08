"""Sketch landmarks in the window: "Show landmarks", "Follow my drawing", "Fit windows
to drawing".

The landmarks are predicted on the engine's worker (:meth:`EngineClient.run_job`,
never the GUI thread), only while they are shown or for "Fit windows", and only when
the drawing changed since the last request; the canvas overlay is one item updated
when the points change.  "Follow my drawing" is a document setting (saved in the
project, one undo step); "Fit windows to drawing" moves every window onto the drawn
part in one undoable :class:`~facesketch.sketch.commands.SetLayout`.
No torch here: the job function imports the engine lazily.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtWidgets import QMainWindow

from facesketch.engine.contract import JobResult
from facesketch.sketch.commands import SetFollowDrawing, SetLayout
from facesketch.ui.files import make_action

#: Job tags this controller handles (``landmarks\t<purpose>``).
JOB_KINDS = ("landmarks",)
SHOW, FIT = "show", "fit"


def predict_document_landmarks(snapshot: Any) -> Any:
    """The engine-side job: landmarks + fitted layout of a document snapshot."""
    from facesketch.engine.landmarks import document_landmarks

    return document_landmarks(snapshot)


class LandmarkActions:
    """The three actions and the overlay's data flow (see the module docstring)."""

    def __init__(
        self, window: QMainWindow, model: Any, engine: Any, canvas: Any, feedback: Any
    ) -> None:
        self.window, self.model, self.engine = window, model, engine
        self.canvas, self.feedback = canvas, feedback
        self.predict = predict_document_landmarks  # tests substitute a stand-in
        self.act_show = make_action(window, "Show landmarks", self.set_shown, None, True)
        self.act_show.setToolTip("Show the face landmarks found in your drawing")
        self.act_follow = make_action(window, "Follow my drawing", self.set_follow, None, True)
        self.act_follow.setToolTip(
            "Render the face where and as large as you drew it (found by its landmarks)"
        )
        self.act_fit = make_action(window, "Fit windows to drawing", self.fit_windows)
        self.act_fit.setToolTip("Move the eye, nose and mouth windows onto your drawing")
        self._asked: object = None  # the drawing whose landmarks were last requested

    def actions(self) -> list[Any]:
        """The actions for a menu, in order."""
        return [self.act_follow, self.act_fit, self.act_show]

    # -- document changes ------------------------------------------------------------
    def on_document_changed(self) -> None:
        """Sync the Follow check box and re-predict shown landmarks if the ink changed."""
        doc = self.model.doc
        self.act_follow.blockSignals(True)
        self.act_follow.setChecked(bool(doc.follow_drawing))
        self.act_follow.blockSignals(False)
        if self.act_show.isChecked():
            self._request(SHOW)

    def _drawing_key(self) -> object:
        doc = self.model.doc
        return (tuple(s.id for s in doc.strokes), id(doc.background_image), doc.canvas)

    def _request(self, purpose: str) -> None:
        key = self._drawing_key()
        if purpose == SHOW and key == self._asked:
            return
        self._asked = key
        self.engine.run_job(f"landmarks\t{purpose}", self.predict, self.model.doc.snapshot())

    # -- actions --------------------------------------------------------------------------
    def set_shown(self, on: bool) -> None:
        """Toggle the landmark overlay (predicting when it is turned on)."""
        self.canvas.set_landmarks_visible(on)
        if on:
            self._asked = None
            self._request(SHOW)

    def set_follow(self, on: bool) -> None:
        """Turn "Follow my drawing" on or off (one undo step)."""
        if bool(on) != bool(self.model.doc.follow_drawing):
            self.model.push(SetFollowDrawing(bool(on)))

    def fit_windows(self) -> None:
        """Ask for the drawing's landmarks; the windows move when they arrive."""
        if not self.model.doc.strokes and self.model.doc.background_image is None:
            self.feedback.status("Draw a face first: the windows are fitted to its landmarks")
            return
        self._request(FIT)

    def on_job(self, kind: str, rest: list[str], job: JobResult) -> None:
        """Landmarks arrived (GUI thread): update the overlay, apply a fit."""
        purpose = rest[0] if rest else SHOW
        if job.error:
            self.feedback.status(f"Landmarks: {job.error}", 8000)
            return
        found = job.result
        self.canvas.set_landmarks(found.landmarks)
        if purpose != FIT:
            return
        if found.fitted is None:
            self.feedback.status("No face found in the drawing yet: the windows stay")
        elif found.fitted != self.model.doc.layout:
            self.model.push(SetLayout(found.fitted))
            self.feedback.status("Windows fitted to the drawing (Undo puts them back)")
