"""A non-modal notice that floats over the window and fades by itself."""

from __future__ import annotations

from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import QLabel, QMainWindow, QWidget


class Notice(QLabel):
    """A banner at the top of its parent; never blocks, disappears after a few seconds."""

    def __init__(self, parent: QWidget) -> None:
        super().__init__(parent)
        self.setWordWrap(True)
        self.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.setStyleSheet(
            "QLabel{background:rgba(120,40,30,230);color:white;padding:8px 14px;"
            "border-radius:6px;font-weight:bold;}"
        )
        self.hide()
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.timeout.connect(self.hide)

    def show_message(self, text: str, msec: int = 6000, error: bool = True) -> None:
        """Show ``text`` for ``msec`` milliseconds."""
        color = "rgba(120,40,30,230)" if error else "rgba(30,70,120,230)"
        self.setStyleSheet(
            f"QLabel{{background:{color};color:white;padding:8px 14px;"
            "border-radius:6px;font-weight:bold;}"
        )
        self.setText(text)
        parent = self.parentWidget()
        width = min(560, max(200, parent.width() - 40))
        self.setFixedWidth(width)
        self.adjustSize()
        self.move((parent.width() - width) // 2, 44)
        self.raise_()
        self.show()
        self._timer.start(msec)


class Feedback:
    """How the window's actions tell the person what happened: a status-bar line for
    progress and results, and for errors also the notice over the window."""

    def __init__(self, window: QMainWindow) -> None:
        self.window = window
        self.notice = Notice(window)

    def status(self, text: str, msec: int = 5000) -> None:
        """A status-bar message for ``msec`` ms (0: until the next one)."""
        self.window.statusBar().showMessage(text, msec)

    def error(self, text: str) -> None:
        """Something went wrong: said without blocking the person."""
        self.status(text, 10000)
        self.notice.show_message(text)
