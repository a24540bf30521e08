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
import hashlib
import json
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from facesketch import __version__
from facesketch.layout import COMPONENTS, FaceLayout
from facesketch.sketch.cartoon_settings import CartoonSettings
from facesketch.sketch.document import AppearanceSlot, Document, Stroke

FORMAT = "facesketch-project"
#: Newest project format this code reads and the one it writes.
VERSION = 1
#: Suffix the app gives project files.
PROJECT_SUFFIX = ".json"
#: Environment variable for the per-user data folder (autosaves, imported styles).
HOME_ENV = "FACESKETCH_HOME"


class ProjectError(ValueError):
    """A project file cannot be read or written; the message names the file and why."""


# -- atomic writes -------------------------------------------------------------------
def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write ``data`` to ``path`` so that readers see the old file or the new one, never half.

    Temp file in the same folder, fsync, then ``os.replace``; the temp file is removed
    if anything fails.
    """
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=p.parent, prefix=f".{p.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, p)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    try:  # make the rename itself durable; not possible on every platform
        dir_fd = os.open(p.parent, os.O_RDONLY)
    except OSError:
        return p
    try:
        os.fsync(dir_fd)
    except OSError:
        pass
    finally:
        os.close(dir_fd)
    return p


# -- encoding ------------------------------------------------------------------------
def _float_text(values: np.ndarray) -> list[float]:
    # str() of a float32 is its shortest round-tripping text: compact files, exact reload.
    return [float(str(v)) for v in np.asarray(values, np.float32).ravel()]


def _encode_path(path: str, base: Path | None) -> str:
    if base is None:
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
    windows = data.get("windows")
    missing = [n for n in COMPONENTS if not isinstance(windows, Mapping) or n not in windows]
    if missing:
        raise ValueError(f"layout: no window for {', '.join(missing)}")
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
    pts = np.asarray(flat, np.float64).reshape(-1, 2)
    width = _field(data, "width", (int, float), where)
    eraser = _field(data, "eraser", bool, where)
    sid = _field(data, "id", str, where)
    try:
        return Stroke(pts.astype(np.float32), float(width), eraser, sid)
    except ValueError as exc:
        raise ValueError(f"{where}: {exc}") from None


def _decode_background(data: Any) -> np.ndarray | None:
    if data is None:
        return None
    if not isinstance(data, Mapping) or not isinstance(data.get("png"), str):
        raise ValueError("background: expected null or an object with a base64 'png'")
    try:
        raw = base64.b64decode(data["png"], validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("background.png: not valid base64") from None
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
    strokes = [_decode_stroke(s, i) for i, s in enumerate(_field(data, "strokes", list, "project"))]
    appearance = {}
    for key, slot in _field(data, "appearance", dict, "project").items():
        where = f"appearance.{key}"
        if not isinstance(slot, Mapping):
            raise ValueError(f"{where}: expected an object")
        paths = _field(slot, "paths", list, where)
        if not all(isinstance(p, str) for p in paths):
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
    return Document(
        layout=layout,
        strokes=strokes,
        appearance=appearance,
        scn_strength=scn,
        background_image=background,
        cartoon=cartoon,
    )


# -- files -----------------------------------------------------------------------------
def _project_dir(path: Path) -> Path:
    return Path(os.path.abspath(path)).parent


def save_project(doc: Document, path: str | os.PathLike[str]) -> Path:
    """Write ``doc`` to ``path`` atomically; raises ProjectError if it cannot be written."""
    p = Path(path)
    data = document_to_dict(doc, _project_dir(p))
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    try:
        return atomic_write_bytes(p, (text + "\n").encode("utf-8"))
    except OSError as exc:
        raise ProjectError(f"{p}: cannot save the project: {exc.strerror or exc}") from exc


def load_project(path: str | os.PathLike[str]) -> Document:
    """Read a project file; raises ProjectError naming the file and the problem."""
    p = Path(path)
    try:
        raw = p.read_bytes()
    except FileNotFoundError:
        raise ProjectError(f"{p}: no such file") from None
    except IsADirectoryError:
        raise ProjectError(f"{p}: is a folder, not a project file") from None
    except OSError as exc:
        raise ProjectError(f"{p}: cannot read the file: {exc.strerror or exc}") from None
    if not raw.strip():
        raise ProjectError(f"{p}: the file is empty")
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ProjectError(
            f"{p}: not a facesketch project (corrupt or truncated JSON: {exc})"
        ) from None
    try:
        return document_from_dict(data, _project_dir(p))
    except (ValueError, KeyError, TypeError) as exc:
        raise ProjectError(f"{p}: {exc}") from None


# -- autosave ------------------------------------------------------------------------------
def user_data_dir() -> Path:
    """Per-user data folder: ``$FACESKETCH_HOME``, else ~/.local/share/facesketch (not created)."""
    home = os.environ.get(HOME_ENV, "").strip()
    return Path(home).expanduser() if home else Path.home() / ".local" / "share" / "facesketch"


def autosave_dir() -> Path:
    """Where autosave copies live."""
    return user_data_dir() / "autosave"


def autosave_path(project_path: str | os.PathLike[str] | None = None) -> Path:
    """The autosave file for a project (or, with None, for this process's untitled sketch)."""
    if project_path is None:
        return autosave_dir() / f"untitled-{os.getpid()}{PROJECT_SUFFIX}"
    full = os.path.abspath(project_path)
    digest = hashlib.sha256(full.encode("utf-8", "surrogateescape")).hexdigest()[:12]
    stem = Path(full).name.split(".")[0][:40] or "project"
    return autosave_dir() / f"{stem}-{digest}{PROJECT_SUFFIX}"


def _owner_file(autosave: Path) -> Path:
    """Beside each autosave: the pid of the process that keeps it up to date."""
    return autosave.with_name(autosave.name + ".owner")


def _alive(pid: int) -> bool:
    """Whether process ``pid`` runs (POSIX; elsewhere every owner counts as gone)."""
    if pid == os.getpid():
        return True
    if os.name != "posix" or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, belongs to someone else
    except OSError:
        return False
    return True


def _owned_by_live_process(autosave: Path) -> bool:
    try:
        pid = int(_owner_file(autosave).read_text(encoding="utf-8").strip())
    except (OSError, ValueError):
        return False
    return _alive(pid)


def write_autosave(doc: Document, project_path: str | os.PathLike[str] | None = None) -> Path:
    """Write the autosave copy of ``doc`` (atomically); returns its path.

    The owner file beside it says which process writes it, so a second running
    instance does not offer (or delete) a sketch still being drawn.
    """
    path = save_project(doc, autosave_path(project_path))
    owner = _owner_file(path)
    if not owner.is_file() or owner.read_text(encoding="utf-8").strip() != str(os.getpid()):
        owner.write_text(str(os.getpid()), encoding="utf-8")
    return path


def remove_autosave(project_path: str | os.PathLike[str] | None = None) -> None:
    """Delete the autosave copy (after a save or a clean exit); no error if there is none."""
    discard_autosave_file(autosave_path(project_path))


def discard_autosave_file(path: str | os.PathLike[str]) -> None:
    """Delete one autosave copy and its owner file (recovered or discarded)."""
    Path(path).unlink(missing_ok=True)
    _owner_file(Path(path)).unlink(missing_ok=True)


def find_autosaves(left_behind_only: bool = True) -> list[Path]:
    """Autosave copies left behind, newest first (for crash recovery).

    With ``left_behind_only`` (the default), copies that a running process (another
    window, or this one) still keeps are not listed.
    """
    folder = autosave_dir()
    if not folder.is_dir():
        return []
    found = [p for p in folder.glob(f"*{PROJECT_SUFFIX}") if p.is_file()]
    if left_behind_only:
        found = [p for p in found if not _owned_by_live_process(p)]
    return sorted(found, key=lambda p: (p.stat().st_mtime, p.name), reverse=True)
