"""Project files: a document as versioned JSON, written atomically; autosave copies.

Format (``"format": "facesketch-project"``, ``"version": 1``): the layout, the strokes
(points as a flat x, y list, shortest float32 text), the appearance slots (reference
paths relative to the project's folder when they are inside it, so a project
travels with its photos), the SCN strength and the background layer as base64 PNG.
Loading validates everything before building a document, so a bad file changes
nothing and the error names the file and the problem.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from facesketch import __version__
from facesketch.fileio import (
    MAX_PROJECT_BYTES,
    FileCheckError,
    atomic_write_bytes,
    read_file_bytes,
)
from facesketch.layout import COMPONENTS, FaceLayout
from facesketch.sketch.cartoon_settings import CartoonSettings
from facesketch.sketch.document import MAX_STROKE_WIDTH, AppearanceSlot, Document, Stroke

__all__ = [
    "FORMAT",
    "MAX_CANVAS",
    "MAX_POINTS",
    "MAX_STROKES",
    "VERSION",
    "ProjectError",
    "atomic_write_bytes",
    "document_from_dict",
    "document_to_dict",
    "load_project",
    "parse_project_json",
    "save_project",
    "size_problem",
]

FORMAT = "facesketch-project"
#: Newest project format this code reads and the one it writes.
VERSION = 1
#: Suffix the app gives project files.
PROJECT_SUFFIX = ".json"


class ProjectError(ValueError):
    """A project file cannot be read or written; the message names the file and why."""


# -- limits ------------------------------------------------------------------------
#: Most strokes a project may hold (a detailed drawing has a few thousand; at the
#: limit a render takes seconds, see bench/raster_limits.py).
MAX_STROKES = 20_000
#: Most points in all strokes together.
MAX_POINTS = 1_000_000
#: Smallest and largest canvas side a project may have (the app draws 256 or 512).
MIN_CANVAS, MAX_CANVAS = 16, 4096
#: Longest number text accepted in a project (int or float digits).
MAX_NUMBER_DIGITS = 40
#: Largest stroke coordinate (canvas pixels; strokes may lie off the canvas, not far off).
MAX_COORDINATE = 1e6


# -- encoding ------------------------------------------------------------------------
def _float_text(values: np.ndarray) -> list[float]:
    # str() of a float32 is its shortest round-tripping text: compact files, exact reload.
    return [float(str(v)) for v in np.asarray(values, np.float32).ravel()]


#: An appearance reference naming a face of the shipped gallery, ``gallery:<n>``
#: (facesketch.engine.gallery), not a file: saved and loaded as it is.
GALLERY_PREFIX = "gallery:"


def _encode_path(path: str, base: Path | None) -> str:
    if base is None or path.startswith(GALLERY_PREFIX):
        return path
    path = os.path.abspath(path)  # a relative path meant the working folder
    try:
        rel = os.path.relpath(path, base)
    except ValueError:  # another drive (Windows)
        return path
    if rel == os.pardir or rel.startswith(os.pardir + os.sep):
        return path
    return Path(rel).as_posix()


def _decode_path(path: str, base: Path | None) -> str:
    if path.startswith(GALLERY_PREFIX):
        tail = path[len(GALLERY_PREFIX) :]
        if not (tail.isdigit() and len(tail) <= 6):
            raise ValueError(f"bad gallery reference {path!r}: expected gallery:<face number>")
        return path
    if base is None or os.path.isabs(path):
        return path
    return os.path.normpath(os.path.join(base, path))


def _encode_png(image: np.ndarray) -> str:
    ok, buf = cv2.imencode(".png", image)
    if not ok:
        raise ProjectError("cannot encode the background layer as PNG")
    return base64.b64encode(buf.tobytes()).decode("ascii")


def document_to_dict(doc: Document, base: Path | None = None) -> dict[str, Any]:
    """Plain-JSON form of ``doc``; reference paths under ``base`` become relative."""
    bg = doc.background_image
    return {
        "format": FORMAT,
        "version": VERSION,
        "app_version": __version__,
        "layout": doc.layout.to_dict(),
        "scn_strength": float(doc.scn_strength),
        "appearance": {
            key: {
                "paths": [_encode_path(p, base) for p in slot.paths],
                "mix": slot.mix,
                **({"shape": True} if slot.shape else {}),
            }
            for key, slot in sorted(doc.appearance.items())
        },
        "background": None if bg is None else {"png": _encode_png(bg)},
        **({} if doc.cartoon.is_default else {"cartoon": doc.cartoon.to_dict()}),
        **({"follow_drawing": True} if doc.follow_drawing else {}),
        "strokes": [
            {"id": s.id, "width": s.width, "eraser": s.eraser, "points": _float_text(s.points)}
            for s in doc.strokes
        ],
    }


# -- decoding ------------------------------------------------------------------------
def _field(data: Mapping[str, Any], key: str, kind: type | tuple[type, ...], where: str) -> Any:
    if key not in data:
        raise ValueError(f"{where}: missing field {key!r}")
    value = data[key]
    if not isinstance(value, kind) or isinstance(value, bool) and bool not in _as_tuple(kind):
        raise ValueError(f"{where}.{key}: expected {_kind_name(kind)}, got {type(value).__name__}")
    return value


def _as_tuple(kind: type | tuple[type, ...]) -> tuple[type, ...]:
    return kind if isinstance(kind, tuple) else (kind,)


def _kind_name(kind: type | tuple[type, ...]) -> str:
    return " or ".join(k.__name__ for k in _as_tuple(kind))


def _decode_layout(data: Any) -> FaceLayout:
    if not isinstance(data, Mapping):
        raise ValueError("layout: expected an object")
    canvas = data.get("canvas")
    if not isinstance(canvas, int) or isinstance(canvas, bool):
        raise ValueError(f"layout.canvas: expected a whole number, got {canvas!r:.40}")
    if not MIN_CANVAS <= canvas <= MAX_CANVAS:
        raise ValueError(f"layout.canvas: {canvas} is outside {MIN_CANVAS}..{MAX_CANVAS}")
    windows = data.get("windows")
    missing = [n for n in COMPONENTS if not isinstance(windows, Mapping) or n not in windows]
    if missing:
        raise ValueError(f"layout: no window for {', '.join(missing)}")
    for name, xyz in windows.items():
        if not (
            isinstance(xyz, list)
            and len(xyz) == 3
            and all(isinstance(v, int) and not isinstance(v, bool) for v in xyz)
        ):
            raise ValueError(f"layout.windows.{name}: expected [x, y, size] whole numbers")
    layout = FaceLayout.from_dict(data)
    extra = set(layout.windows) - set(COMPONENTS)
    if extra:
        raise ValueError(f"layout: unknown components {', '.join(sorted(extra))}")
    ref = FaceLayout.default(layout.canvas)
    for name in COMPONENTS:
        w, r = layout.window(name), ref.window(name)
        inside = w.x >= 0 and w.y >= 0 and max(w.x, w.y) + w.size <= layout.canvas
        if w.size != r.size or not inside:
            raise ValueError(f"layout: window {name} {w} does not fit the {layout.canvas} canvas")
    return layout


def _decode_stroke(data: Any, i: int) -> Stroke:
    where = f"strokes[{i}]"
    if not isinstance(data, Mapping):
        raise ValueError(f"{where}: expected an object")
    flat = _field(data, "points", list, where)
    if (
        not flat
        or len(flat) % 2
        or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in flat)
    ):
        raise ValueError(f"{where}.points: expected a non-empty flat list of x, y numbers")
    pts = np.asarray([float(v) for v in flat], np.float64).reshape(-1, 2)
    if not np.isfinite(pts).all() or np.abs(pts).max() > MAX_COORDINATE:
        raise ValueError(
            f"{where}.points: coordinates must be finite and within ±{MAX_COORDINATE:g}"
        )
    width = _field(data, "width", (int, float), where)
    if not 0 < float(width) <= MAX_STROKE_WIDTH:
        raise ValueError(
            f"{where}.width: {float(width):g} is outside the pen widths 0..{MAX_STROKE_WIDTH:g} px"
        )
    eraser = _field(data, "eraser", bool, where)
    sid = _field(data, "id", str, where)
    try:
        return Stroke(pts.astype(np.float32), float(width), eraser, sid)
    except ValueError as exc:
        raise ValueError(f"{where}: {exc}") from None


def size_problem(strokes: list[Stroke]) -> str | None:
    """Why ``strokes`` are more than a project may hold (None when they fit).

    The app checks this before adding an import and before saving, so it never
    writes a file its own loader would refuse.
    """
    if len(strokes) > MAX_STROKES:
        return f"{len(strokes):,} strokes, more than the {MAX_STROKES:,} a project may hold"
    points = sum(len(s.points) for s in strokes)
    if points > MAX_POINTS:
        return f"{points:,} stroke points, more than the {MAX_POINTS:,} a project may hold"
    return None


def _decode_strokes(items: list) -> list[Stroke]:
    if len(items) > MAX_STROKES:
        raise ValueError(
            f"{len(items):,} strokes, more than the {MAX_STROKES:,} a project may hold"
        )
    points = sum(len(s.get("points", ())) // 2 for s in items if isinstance(s, Mapping))
    if points > MAX_POINTS:
        raise ValueError(f"{points:,} stroke points, more than the {MAX_POINTS:,} allowed")
    return [_decode_stroke(s, i) for i, s in enumerate(items)]


def _decode_background(data: Any) -> np.ndarray | None:
    if data is None:
        return None
    if not isinstance(data, Mapping) or not isinstance(data.get("png"), str):
        raise ValueError("background: expected null or an object with a base64 'png'")
    try:
        raw = base64.b64decode(data["png"], validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("background.png: not valid base64") from None
    if raw[:8] == b"\x89PNG\r\n\x1a\n" and len(raw) >= 24:  # refuse a bomb before decoding
        w, h = int.from_bytes(raw[16:20], "big"), int.from_bytes(raw[20:24], "big")
        if max(w, h) > 2 * MAX_CANVAS:
            raise ValueError(f"background.png: {w}x{h} is larger than a canvas may be")
    img = cv2.imdecode(np.frombuffer(raw, np.uint8), cv2.IMREAD_UNCHANGED)
    if img is None or img.dtype != np.uint8:
        raise ValueError("background.png: not a readable 8-bit PNG image")
    if img.ndim == 3:
        img = cv2.cvtColor(img, cv2.COLOR_BGRA2GRAY if img.shape[2] == 4 else cv2.COLOR_BGR2GRAY)
    return img


def document_from_dict(data: Any, base: Path | None = None) -> Document:
    """Inverse of :func:`document_to_dict`; raises ValueError saying which field is wrong."""
    if not isinstance(data, Mapping):
        raise ValueError("not a facesketch project (the file holds no JSON object)")
    if data.get("format") != FORMAT:
        raise ValueError(f"not a facesketch project (format is {data.get('format')!r})")
    version = data.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise ValueError(f"malformed project version {version!r}")
    if version > VERSION:
        raise ValueError(
            f"made by a newer facesketch (version {version}); this one reads up to {VERSION}"
        )
    layout = _decode_layout(_field(data, "layout", dict, "project"))
    strokes = _decode_strokes(_field(data, "strokes", list, "project"))
    appearance = {}
    for key, slot in _field(data, "appearance", dict, "project").items():
        where = f"appearance.{key}"
        if not isinstance(slot, Mapping):
            raise ValueError(f"{where}: expected an object")
        paths = _field(slot, "paths", list, where)
        if not all(isinstance(p, str) and p and "\0" not in p for p in paths):
            raise ValueError(f"{where}.paths: expected a list of file paths")
        mix = _field(slot, "mix", (int, float), where)
        shape = slot.get("shape", False)  # optional: files from before it existed lack it
        if not isinstance(shape, bool):
            raise ValueError(f"{where}.shape: expected true or false")
        try:
            paths_t = tuple(_decode_path(p, base) for p in paths)
            appearance[key] = AppearanceSlot(paths_t, mix, shape)
        except ValueError as exc:
            raise ValueError(f"{where}: {exc}") from None
    scn = _field(data, "scn_strength", (int, float), "project")
    background = _decode_background(data.get("background"))
    try:  # optional: files from before the cartoon settings lack it
        cartoon = CartoonSettings.from_dict(data.get("cartoon") or {})
    except (TypeError, ValueError) as exc:
        raise ValueError(f"cartoon: {exc}") from None
    # optional: files from before "Follow my drawing" lack it and load with it off
    follow = data.get("follow_drawing", False)
    if not isinstance(follow, bool):
        raise ValueError("project.follow_drawing: expected true or false")
    return Document(
        layout=layout,
        strokes=strokes,
        appearance=appearance,
        scn_strength=scn,
        background_image=background,
        cartoon=cartoon,
        follow_drawing=follow,
    )


# -- files -----------------------------------------------------------------------------
def _project_dir(path: Path) -> Path:
    return Path(os.path.abspath(path)).parent


def save_project(doc: Document, path: str | os.PathLike[str]) -> Path:
    """Write ``doc`` to ``path`` atomically; raises ProjectError if it cannot be written."""
    p = Path(path)
    problem = size_problem(doc.strokes)
    if problem:  # it could never be opened again: keep the old file, say why
        raise ProjectError(f"{p}: not saved: {problem}; erase some strokes and save again")
    data = document_to_dict(doc, _project_dir(p))
    # ASCII escapes: any str (a lone surrogate, an undecodable file name) saves and reloads
    text = json.dumps(data, ensure_ascii=True, separators=(",", ":"))
    try:
        return atomic_write_bytes(p, (text + "\n").encode("utf-8"))
    except OSError as exc:
        raise ProjectError(f"{p}: cannot save the project: {exc.strerror or exc}") from exc


def _json_number(kind: type) -> Any:
    def parse(text: str) -> Any:
        if len(text) > MAX_NUMBER_DIGITS:
            raise ValueError(f"a number with {len(text)} digits ({text[:12]}…)")
        return kind(text)

    return parse


def _json_constant(text: str) -> Any:
    raise ValueError(f"{text} is not a number a project may hold")


def parse_project_json(raw: bytes) -> Any:
    """The JSON value of a project file's bytes; ValueError for anything but plain JSON.

    Numbers are limited to :data:`MAX_NUMBER_DIGITS` characters and NaN / Infinity
    are refused, so no later conversion overflows.
    """
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(f"not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    try:
        return json.loads(
            text,
            parse_int=_json_number(int),
            parse_float=_json_number(float),
            parse_constant=_json_constant,
        )
    except RecursionError:
        raise ValueError("nested too deeply to be a project") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"corrupt or truncated JSON: {exc}") from None


def load_project(path: str | os.PathLike[str]) -> Document:
    """Read a project file; raises ProjectError naming the file and the problem.

    Nothing else escapes: a special file, a huge file, deep nesting, absurd numbers or
    sizes all become a :class:`ProjectError`.
    """
    p = Path(path)
    try:
        raw = read_file_bytes(p, MAX_PROJECT_BYTES, "project file")
    except FileCheckError as exc:
        raise ProjectError(str(exc)) from None
    if not raw.strip():
        raise ProjectError(f"{p}: the file is empty")
    try:
        data = parse_project_json(raw)
    except ValueError as exc:
        raise ProjectError(f"{p}: not a facesketch project ({exc})") from None
    try:
        return document_from_dict(data, _project_dir(p))
    except (ValueError, KeyError, TypeError, OverflowError, RecursionError) as exc:
        raise ProjectError(f"{p}: {exc}") from None
