"""Autosave copies of the open sketch, and crash recovery.

Each running session writes its own copy (the file name carries the process id), so
a new session never overwrites or deletes a copy a crashed one left behind: such a
copy goes only when the person recovers or discards it.  A copy records the project
it belongs to, so a recovered sketch comes back under its own name; a damaged copy
is set aside instead of hiding older readable ones.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

from facesketch.fileio import (
    MAX_PROJECT_BYTES,
    atomic_write_bytes,
    pid_alive,
    read_file_bytes,
    remove_stale_temps_in,
    user_data_dir,
)
from facesketch.sketch.document import Document
from facesketch.sketch.project import (
    PROJECT_SUFFIX,
    ProjectError,
    _project_dir,
    document_to_dict,
    load_project,
    parse_project_json,
)


def autosave_dir() -> Path:
    """Where autosave copies live."""
    return user_data_dir() / "autosave"


def autosave_path(
    project_path: str | os.PathLike[str] | None = None, pid: int | None = None
) -> Path:
    """This session's autosave file for a project (or, with None, for its untitled sketch).

    The name carries the process id, so a new session never overwrites (or deletes) a
    copy a crashed session left behind: that copy stays until the person recovers or
    discards it.
    """
    pid = os.getpid() if pid is None else pid
    if project_path is None:
        return autosave_dir() / f"untitled-{pid}{PROJECT_SUFFIX}"
    full = os.path.abspath(project_path)
    digest = hashlib.sha256(full.encode("utf-8", "surrogateescape")).hexdigest()[:12]
    stem = Path(full).name.split(".")[0][:40] or "project"
    return autosave_dir() / f"{stem}-{digest}-{pid}{PROJECT_SUFFIX}"


def _owner_file(autosave: Path) -> Path:
    """Beside each autosave: the pid of the process that keeps it up to date."""
    return autosave.with_name(autosave.name + ".owner")


def _owned_by_live_process(autosave: Path) -> bool:
    try:
        pid = int(read_file_bytes(_owner_file(autosave), 64, "owner file").strip())
    except (OSError, ValueError):  # FileCheckError is a ValueError
        return False
    return pid_alive(pid)


def write_autosave(doc: Document, project_path: str | os.PathLike[str] | None = None) -> Path:
    """Write this session's autosave copy of ``doc`` (atomically); returns its path.

    The copy records the project file it belongs to (``autosave_of``) and when it was
    written, so a recovered sketch gets its name back.  The owner file beside it says
    which process writes it, so a second running instance does not offer (or delete)
    a sketch still being drawn.
    """
    path = autosave_path(project_path)
    data = document_to_dict(doc, _project_dir(path))
    data["autosave_of"] = None if project_path is None else os.path.abspath(project_path)
    data["autosaved_at"] = time.time()
    # ASCII escapes: any str (a lone surrogate, an undecodable file name) saves and reloads
    text = json.dumps(data, ensure_ascii=True, separators=(",", ":"))
    try:
        atomic_write_bytes(path, (text + "\n").encode("utf-8"))
    except OSError as exc:
        raise ProjectError(f"{path}: cannot write the autosave: {exc.strerror or exc}") from exc
    owner = _owner_file(path)
    try:
        mine = read_file_bytes(owner, 64, "owner file").strip() == str(os.getpid()).encode()
    except ValueError:  # missing, or not a small regular file (FileCheckError)
        mine = False
    if not mine:
        try:
            atomic_write_bytes(owner, str(os.getpid()).encode())
        except OSError as exc:
            raise ProjectError(f"{owner}: cannot write the autosave owner: {exc}") from exc
    return path


def remove_autosave(project_path: str | os.PathLike[str] | None = None) -> None:
    """Delete this session's autosave copy (after a save or a clean exit); never another's."""
    discard_autosave_file(autosave_path(project_path))


def discard_autosave_file(path: str | os.PathLike[str]) -> None:
    """Delete one autosave copy and its owner file (recovered or discarded)."""
    Path(path).unlink(missing_ok=True)
    _owner_file(Path(path)).unlink(missing_ok=True)


def set_aside_autosave(path: str | os.PathLike[str]) -> Path:
    """Move an unreadable autosave into ``autosave/damaged/`` (kept, no longer offered)."""
    p = Path(path)
    dest_dir = p.parent / "damaged"
    dest_dir.mkdir(parents=True, exist_ok=True)
    dest = dest_dir / p.name
    os.replace(p, dest)
    _owner_file(p).unlink(missing_ok=True)
    return dest


def find_autosaves(left_behind_only: bool = True) -> list[Path]:
    """Autosave copies left behind, newest first (for crash recovery).

    With ``left_behind_only`` (the default), copies that a running process (another
    window, or this one) still keeps are not listed.
    """
    folder = autosave_dir()
    if not folder.is_dir():
        return []
    remove_stale_temps_in(folder)  # half-written copies of sessions that died mid-save
    found = [p for p in folder.glob(f"*{PROJECT_SUFFIX}") if p.is_file()]
    if left_behind_only:
        found = [p for p in found if not _owned_by_live_process(p)]
    return sorted(found, key=lambda p: (p.stat().st_mtime, p.name), reverse=True)


@dataclass(frozen=True)
class AutosaveInfo:
    """A readable autosave copy: its document and the project file it belongs to."""

    path: Path
    document: Document
    project: Path | None
    saved_at: float

    def describe(self) -> str:
        """How the recovery offer names it: the project's name (not the hashed file)."""
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(self.saved_at))
        name = (
            f"{self.project.name} ({self.project.parent})" if self.project else "an untitled sketch"
        )
        n = len(self.document.strokes)
        return f"{name}, autosaved {when}, {n} stroke{'s' if n != 1 else ''}"


def read_autosave(path: str | os.PathLike[str]) -> AutosaveInfo:
    """Load an autosave copy; raises :class:`ProjectError` when it is damaged."""
    p = Path(path)
    doc = load_project(p)
    project, saved_at = None, None
    try:  # load_project validated the file; the two autosave fields are optional
        data = parse_project_json(read_file_bytes(p, MAX_PROJECT_BYTES, "project file"))
        origin, stamp = data.get("autosave_of"), data.get("autosaved_at")
        if isinstance(origin, str) and origin and "\0" not in origin:
            project = Path(origin)
        if isinstance(stamp, (int, float)) and not isinstance(stamp, bool):
            saved_at = float(stamp)
    except (ValueError, OSError):
        pass
    if saved_at is None:
        try:
            saved_at = p.stat().st_mtime
        except OSError:
            saved_at = 0.0
    return AutosaveInfo(p, doc, project, saved_at)
