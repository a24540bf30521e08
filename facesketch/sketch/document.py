"""The sketch document: vector strokes, component windows and appearance choices.

The document is plain data.  The canvas draws it, the command stack
(:mod:`facesketch.sketch.commands`) is the only thing that edits it in the app, the
engine reads an immutable :meth:`Document.snapshot` on its worker thread, and
:mod:`facesketch.sketch.project` writes it to disk.  Strokes are immutable values,
so undo can keep references to them instead of copies.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import numpy as np

from facesketch.layout import COMPONENTS, FaceLayout
from facesketch.sketch.cartoon_settings import CartoonSettings

#: Appearance key for a reference that gives the whole face its look.
FACE = "face"
#: Keys an appearance slot may have: one per component, plus the whole face.
APPEARANCE_KEYS: tuple[str, ...] = (*COMPONENTS, FACE)
#: At most this many reference photos per slot (their codes are interpolated by ``mix``).
MAX_SLOT_REFERENCES = 2
#: Widest pen (canvas pixels): the app's pens go to 40; wider would take seconds to draw.
MAX_STROKE_WIDTH = 256.0


def new_stroke_id() -> str:
    """A fresh, unique stroke id (stable across save/load, so undo and selection survive)."""
    return uuid.uuid4().hex


def _frozen_array(a: np.ndarray) -> np.ndarray:
    a = np.array(a, copy=True)
    a.flags.writeable = False
    return a


@dataclass(frozen=True, eq=False)
class Stroke:
    """One pen or eraser stroke in canvas pixels of its document's canvas.

    ``points`` is float32 (K, 2) of (x, y), K >= 1 (one point draws a dot);
    ``width`` is the pen diameter in the same pixels.  The array is a private,
    read-only copy, so a stroke can be shared with another thread safely.
    """

    points: np.ndarray
    width: float
    eraser: bool = False
    id: str = field(default_factory=new_stroke_id)

    def __post_init__(self) -> None:
        try:
            pts = np.asarray(self.points, dtype=np.float32)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"stroke points must be numbers: {exc}") from None
        if pts.ndim == 1 and pts.size == 2:
            pts = pts.reshape(1, 2)
        if pts.ndim != 2 or pts.shape[1] != 2 or pts.shape[0] == 0:
            raise ValueError(f"stroke points must have shape (K, 2) with K >= 1, got {pts.shape}")
        if not np.isfinite(pts).all():
            raise ValueError("stroke points must be finite numbers")
        width = float(self.width)
        if not math.isfinite(width) or width <= 0:
            raise ValueError(f"stroke width must be a positive number, got {self.width!r}")
        if width > MAX_STROKE_WIDTH:
            raise ValueError(
                f"stroke width {width:g} is more than the widest pen ({MAX_STROKE_WIDTH:g} px)"
            )
        if not isinstance(self.id, str) or not self.id:
            raise ValueError("stroke id must be a non-empty string")
        object.__setattr__(self, "points", _frozen_array(pts))
        object.__setattr__(self, "width", width)
        object.__setattr__(self, "eraser", bool(self.eraser))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Stroke):
            return NotImplemented
        return (
            self.id == other.id
            and self.width == other.width
            and self.eraser == other.eraser
            and np.array_equal(self.points, other.points)
        )

    def __hash__(self) -> int:
        return hash(self.id)

    def translated(self, dx: float, dy: float) -> Stroke:
        """The same stroke (same id) moved by (dx, dy) pixels."""
        offset = np.array([dx, dy], np.float32)
        return Stroke(self.points + offset, self.width, self.eraser, self.id)

    def bounds(self) -> tuple[float, float, float, float]:
        """Box (x0, y0, x1, y1) of the ink, pen radius included: what the stroke can touch."""
        r = self.width / 2.0
        x0, y0 = self.points.min(axis=0)
        x1, y1 = self.points.max(axis=0)
        return (float(x0) - r, float(y0) - r, float(x1) + r, float(y1) + r)


@dataclass(frozen=True)
class AppearanceSlot:
    """Reference photos chosen for one component (or the whole face).

    With two photos their appearance codes are interpolated: ``mix`` 0 is the first,
    1 the second.  Zero photos means "the default appearance".  ``shape``: the part
    also takes its shape from the first photo (through E_image) instead of the strokes.
    """

    paths: tuple[str, ...] = ()
    mix: float = 0.5
    shape: bool = False

    def __post_init__(self) -> None:
        if isinstance(self.paths, (str, bytes)):
            raise ValueError("appearance paths must be a sequence of file paths, not one string")
        paths = tuple(str(p) for p in self.paths)
        if len(paths) > MAX_SLOT_REFERENCES:
            raise ValueError(
                f"an appearance slot holds at most {MAX_SLOT_REFERENCES} photos, got {len(paths)}"
            )
        mix = float(self.mix)
        if not 0.0 <= mix <= 1.0:
            raise ValueError(f"appearance mix must be within 0..1, got {self.mix!r}")
        object.__setattr__(self, "paths", paths)
        object.__setattr__(self, "mix", mix)
        object.__setattr__(self, "shape", bool(self.shape))


def check_appearance_key(key: str) -> str:
    """``key`` if it names a component or the whole face, else ValueError listing the valid ones."""
    if key not in APPEARANCE_KEYS:
        raise ValueError(f"unknown appearance slot {key!r}; expected one of {APPEARANCE_KEYS}")
    return key


def check_scn_strength(value: float) -> float:
    """``value`` as a float if it is a valid stroke-calibration strength (0..1)."""
    v = float(value)
    if not 0.0 <= v <= 1.0:
        raise ValueError(f"SCN strength must be within 0..1, got {value!r}")
    return v


def check_background(image: np.ndarray | None) -> np.ndarray | None:
    """A read-only private copy of a background sketch layer (uint8 gray 2-D) or None."""
    if image is None:
        return None
    arr = np.asarray(image)
    if arr.dtype != np.uint8 or arr.ndim != 2 or arr.size == 0:
        raise ValueError(
            f"the background layer must be a non-empty uint8 grayscale image, "
            f"got dtype {arr.dtype} shape {arr.shape}"
        )
    return _frozen_array(arr)


def _background_equal(a: np.ndarray | None, b: np.ndarray | None) -> bool:
    if a is None or b is None:
        return a is b
    return a.shape == b.shape and bool(np.array_equal(a, b))


def _rasterize(
    doc: Document | DocumentSnapshot, canvas: int | None, line_width_scale: float
) -> np.ndarray:
    """:meth:`Document.rasterize` of a document or a snapshot."""
    from facesketch.sketch.raster import rasterize_strokes

    return rasterize_strokes(
        list(doc.strokes),
        doc.canvas if canvas is None else canvas,
        doc.layout.canvas,
        line_width_scale=line_width_scale,
        background=doc.background_image,
    )


def _editable(doc: Document | DocumentSnapshot) -> Document:
    """A new editable document with ``doc``'s content (no undo history)."""
    return Document(
        layout=doc.layout,
        strokes=list(doc.strokes),
        appearance=dict(doc.appearance),
        scn_strength=doc.scn_strength,
        background_image=doc.background_image,
        cartoon=doc.cartoon,
        follow_drawing=doc.follow_drawing,
    )


@dataclass(eq=False)
class Document:
    """A face sketch being edited.

    Mutable so that the command stack can edit it in place; everything it holds is
    immutable (strokes, slots, the layout, a read-only background array), so a
    snapshot is a cheap shallow copy.
    """

    layout: FaceLayout = field(default_factory=FaceLayout.default)
    strokes: list[Stroke] = field(default_factory=list)
    appearance: dict[str, AppearanceSlot] = field(default_factory=dict)
    scn_strength: float = 0.0
    background_image: np.ndarray | None = None
    cartoon: CartoonSettings = field(default_factory=CartoonSettings)
    #: "Follow my drawing": render the face where (and as large as) it is drawn, found
    #: by its predicted landmarks (facesketch.engine.landmarks), not only in the windows.
    follow_drawing: bool = False

    def __post_init__(self) -> None:
        self.follow_drawing = bool(self.follow_drawing)
        if not isinstance(self.cartoon, CartoonSettings):
            raise ValueError("Document.cartoon must be a CartoonSettings value")
        self.strokes = list(self.strokes)
        self.appearance = dict(self.appearance)
        for key in self.appearance:
            check_appearance_key(key)
        self.scn_strength = check_scn_strength(self.scn_strength)
        self.background_image = check_background(self.background_image)
        ids = [s.id for s in self.strokes]
        if len(set(ids)) != len(ids):
            raise ValueError("stroke ids in a document must be unique")

    @classmethod
    def new(cls, canvas: int = 512) -> Document:
        """An empty document on a ``canvas``-pixel square with the canonical layout."""
        if int(canvas) <= 0:
            raise ValueError(f"canvas size must be positive, got {canvas!r}")
        # a new drawing renders where it is drawn (people rarely draw inside the
        # windows); projects saved without the setting keep rendering in the windows
        return cls(layout=FaceLayout.default(int(canvas)), follow_drawing=True)

    @property
    def canvas(self) -> int:
        """Side of the square canvas the strokes' coordinates refer to."""
        return self.layout.canvas

    def stroke_ids(self) -> list[str]:
        """Ids of the strokes, in drawing order."""
        return [s.id for s in self.strokes]

    def snapshot(self) -> DocumentSnapshot:
        """An immutable copy, safe to hand to a worker thread while editing goes on."""
        bg = self.background_image
        if bg is not None and bg.flags.writeable:  # someone assigned an array directly
            bg = _frozen_array(bg)
        return DocumentSnapshot(
            layout=self.layout,
            strokes=tuple(self.strokes),
            appearance=MappingProxyType(dict(self.appearance)),
            scn_strength=float(self.scn_strength),
            background_image=bg,
            cartoon=self.cartoon,
            follow_drawing=self.follow_drawing,
        )

    def copy(self) -> Document:
        """An independent document with the same content (undo history not included)."""
        return _editable(self)

    def rasterize(self, canvas: int | None = None, line_width_scale: float = 1.0) -> np.ndarray:
        """The sketch image the networks see: background layer (if any), strokes on top.

        uint8 (canvas, canvas), white paper, black anti-aliased lines; eraser strokes
        erase the background layer too, as they do on screen.
        """
        return _rasterize(self, canvas, line_width_scale)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, (Document, DocumentSnapshot)):
            return NotImplemented
        return _same_content(self, other)


@dataclass(frozen=True, eq=False)
class DocumentSnapshot:
    """Read-only view of a :class:`Document` at one moment (see :meth:`Document.snapshot`)."""

    layout: FaceLayout
    strokes: tuple[Stroke, ...]
    appearance: Mapping[str, AppearanceSlot]
    scn_strength: float
    background_image: np.ndarray | None
    cartoon: CartoonSettings = CartoonSettings()
    follow_drawing: bool = False

    @property
    def canvas(self) -> int:
        """Side of the square canvas the strokes' coordinates refer to."""
        return self.layout.canvas

    def rasterize(self, canvas: int | None = None, line_width_scale: float = 1.0) -> np.ndarray:
        """Same as :meth:`Document.rasterize`."""
        return _rasterize(self, canvas, line_width_scale)

    def to_document(self) -> Document:
        """A new editable document with this content."""
        return _editable(self)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, (Document, DocumentSnapshot)):
            return NotImplemented
        return _same_content(self, other)


def _same_content(a: Any, b: Any) -> bool:
    return (
        a.layout == b.layout
        and list(a.strokes) == list(b.strokes)
        and dict(a.appearance) == dict(b.appearance)
        and a.scn_strength == b.scn_strength
        and _background_equal(a.background_image, b.background_image)
        and a.cartoon == b.cartoon
        and a.follow_drawing == b.follow_drawing
    )
