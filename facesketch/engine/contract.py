"""The typed hand-off between the UI and the render engine: requests in, results out.

Both sides import this module and nothing else of each other: the UI (which must
not load torch) builds a :class:`RenderRequest` from a document snapshot and reads
:class:`RenderResult` / :class:`JobResult`; the engine's
:class:`~facesketch.engine.service.RenderService` (and the UI's stand-in when the
engine cannot start, and test doubles) implement :class:`RenderEngine`.
Errors become user-facing text in one place, :func:`error_message`.
numpy and the sketch document only: no torch, no Qt.
"""

from __future__ import annotations

import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from facesketch.sketch.document import DocumentSnapshot

#: ``error`` of a render or job that was cancelled (``RenderEngine.cancel``).
CANCELLED = "cancelled"


@dataclass(frozen=True)
class RenderRequest:
    """What to render: a document snapshot at ``size`` pixels.

    ``scn_strength`` None means the document's own.  ``cartoon_style`` names a style
    to also stylize the face with.  ``geometry_photo`` (aligned RGB at the internal
    canvas) replaces the sketch as geometry for ``photo_components``.
    """

    document: DocumentSnapshot
    size: int = 512
    scn_strength: float | None = None
    cartoon_style: str | None = None
    geometry_photo: np.ndarray | None = None
    photo_components: tuple[str, ...] = ()
    #: the real-texture stage on or off (None: as the engine is)
    texture: bool | None = None


@dataclass
class RenderResult:
    """A finished render, or why there is none (``error``; ``face`` may then be None).

    With a cartoon style, ``error`` may explain a missing ``cartoon`` while ``face``
    is there."""

    request_id: int
    face: np.ndarray | None = None  # uint8 RGB (size, size, 3)
    sketch: np.ndarray | None = None  # calibrated sketch, uint8 (size, size)
    cartoon: np.ndarray | None = None  # uint8 RGB or None
    timings: dict[str, float] = field(default_factory=dict)  # milliseconds
    device: str = ""
    recomputed: list[str] = field(default_factory=list)
    error: str | None = None
    warnings: list[str] = field(default_factory=list)
    #: where the face's real texture came from (``gallery:<n>``, photo paths); empty
    #: when the real-texture stage is off or found no face
    texture: list[str] = field(default_factory=list)
    #: (2, 3) affine in document canvas px from the layout's canonical place to where the
    #: face was drawn, while "Follow my drawing" moved it; None when rendered as drawn
    #: (the canvas shows the component windows through it)
    placement: np.ndarray | None = None

    @property
    def total_ms(self) -> float:
        """Wall time of the render (``timings["total"]``, else the sum of the parts)."""
        return float(self.timings.get("total", sum(self.timings.values())))


def texture_label(source: str) -> str:
    """How the window names a texture source: ``gallery face 113`` or a photo's file name."""
    if source.startswith("gallery:"):
        return f"gallery face {source.split(':', 1)[1]}"
    return Path(source).name


@dataclass
class JobResult:
    """Outcome of a background job (``RenderEngine.run_async``): ``result`` or ``error``.

    ``tag`` is the caller's label, handed back so one handler can dispatch results.
    ``result`` is whatever the job's function returned (jobs differ: thumbnails, a
    photo import, strokes, a path), hence ``Any``."""

    job_id: int
    result: Any = None
    error: str | None = None
    tag: str = ""


def error_message(exc: BaseException) -> str:
    """The text a person sees for ``exc``: its message, or its type when it has none."""
    text = str(exc).strip()
    return text or type(exc).__name__


#: Exceptions that carry a message meant for the person (bad file, no face, ...);
#: anything else is a bug and its traceback is printed as well.
EXPECTED_ERRORS: tuple[type[BaseException], ...] = (ValueError, OSError)


def run_job(job_id: int, fn: Callable[..., Any], args: tuple = (), tag: str = "") -> JobResult:
    """Run ``fn(*args)`` and describe the outcome; never raises (``Exception``)."""
    try:
        return JobResult(job_id, result=fn(*args), tag=tag)
    except Exception as exc:
        if not isinstance(exc, EXPECTED_ERRORS):
            traceback.print_exc()
        return JobResult(job_id, error=error_message(exc), tag=tag)


RenderCallback = Callable[[RenderResult], None]
JobCallback = Callable[[JobResult], None]


class RenderEngine(Protocol):
    """What the UI needs of a render engine; callbacks may come from any thread."""

    def submit(self, request: RenderRequest, callback: RenderCallback) -> int:
        """Queue a render (superseding a queued one); returns its id."""
        ...

    def run_async(
        self, fn: Callable[..., Any], *args: Any, callback: JobCallback | None = None, tag: str = ""
    ) -> int:
        """Run ``fn(*args)`` on the engine's worker; ``callback`` gets a JobResult."""
        ...

    def status(self) -> dict[str, Any]:
        """``device``, ``ready``, ``weights``, ``error`` (cheap; any thread)."""
        ...

    def shutdown(self) -> None:
        """Stop the worker."""
        ...
