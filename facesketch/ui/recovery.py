"""Autosave and crash recovery of the main window's sketch.

The window's timer calls :meth:`AutosaveActions.autosave`; saving or a clean close
discards the copy; at start :meth:`AutosaveActions.offer_recovery` offers the copy a
session that did not end normally left behind.  A controller with explicit
references: the window (for the question box), the document model, the feedback.
"""

from __future__ import annotations

from PySide6.QtWidgets import QMainWindow, QMessageBox

from facesketch.ui.document_model import DocumentModel
from facesketch.ui.notice import Feedback


class AutosaveActions:
    """Autosave copies of one window's sketch and the offer to recover one."""

    def __init__(self, window: QMainWindow, model: DocumentModel, feedback: Feedback) -> None:
        self.window, self.model, self.feedback = window, model, feedback

    def autosave(self) -> None:
        """Write the autosave copy when there are unsaved changes."""
        if self.model.modified:
            try:
                self.model.write_autosave()
            except Exception as exc:
                self.feedback.status(f"autosave failed: {exc}", 8000)

    def discard_autosave(self) -> None:
        """Forget the autosave copy of the current document (after save or clean close)."""
        try:
            self.model.remove_autosave()
        except OSError:
            pass

    def offer_recovery(self) -> bool:
        """After a crash, offer to reopen the newest readable autosaved sketch (or discard it).

        Damaged copies are set aside (kept under ``autosave/damaged``) so they never hide
        older readable ones; Cancel keeps the copy for next time, and nothing this
        session does (saving, editing, quitting) touches it.
        """
        found, damaged = [], []
        for path in self.model.find_autosaves():
            try:
                found.append(self.model.read_autosave(path))
            except Exception as exc:  # ProjectError: the copy is damaged
                damaged.append((path, exc))
        for path, exc in damaged:
            try:
                kept = self.model.set_aside_autosave(path)
            except OSError:
                kept = path
            self.feedback.status(f"a damaged autosave was set aside: {kept} ({exc})", 10000)
        if not found:
            return False
        info = found[0]
        more = (
            f"\n\n({len(found) - 1} older autosaved sketch(es) will be offered next time.)"
            if len(found) > 1
            else ""
        )
        answer = QMessageBox.question(
            self.window,
            "Recover sketch",
            f"facesketch found an autosaved sketch from a session that did not end "
            f"normally:\n{info.describe()}\n\nRecover it? (Discard deletes it; Cancel asks "
            f"again next time.){more}",
            QMessageBox.StandardButton.Yes
            | QMessageBox.StandardButton.Discard
            | QMessageBox.StandardButton.Cancel,
        )
        if answer == QMessageBox.StandardButton.Discard:
            self.model.discard_autosave_file(info.path)
            return False
        if answer != QMessageBox.StandardButton.Yes:
            return False
        self.model.recover(info)  # the window refreshes (title included) on the change
        try:  # the content must live in this session's autosave before the copy goes
            self.model.write_autosave()
        except Exception as exc:
            self.feedback.error(f"recovered, but could not autosave it: {exc}")
            return True
        self.model.discard_autosave_file(info.path)
        return True
