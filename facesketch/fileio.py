"""Safe file reading and writing: the one place that decides what may be read or replaced.

Every file the program reads (projects, photos, sketches, weights, styles,
autosaves) goes through :func:`read_file_bytes`, which opens it without blocking,
accepts only a regular file and reads at most a size limit, so a path naming
``/dev/zero``, a FIFO or a huge file fails at once with a message instead of
hanging or eating memory.  Every file the program writes goes through
:func:`atomic_write_bytes`: readers see the old content or the new, never half; a
symlink is written through (the link stays); the file keeps its permissions (new
files get the usual ``0666 & ~umask``); temp files of an interrupted save are
cleaned up by the next save of the same file.  The per-user folder
(:func:`user_data_dir`: autosaves, imported styles) is decided here too.
"""

from __future__ import annotations

import os
import re
import stat
import tempfile
import time
from pathlib import Path

#: Largest project or autosave file read (a drawn face is well under 1 MB).
MAX_PROJECT_BYTES = 32 * 1024 * 1024
#: Largest photo or sketch image file read.
MAX_IMAGE_BYTES = 256 * 1024 * 1024
#: Largest weights (safetensors), style or checkpoint file read.
MAX_WEIGHTS_BYTES = 2 * 1024 * 1024 * 1024
#: Environment variable that moves the per-user folder (tests, portable installs).
HOME_ENV = "FACESKETCH_HOME"
#: Temp files of a save without a process id in their name count as left over after this.
STALE_TEMP_S = 3600.0


class FileCheckError(ValueError):
    """A path cannot be read safely; the message names the file and why."""


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISCHR(mode):
        return "a character device"
    if stat.S_ISBLK(mode):
        return "a block device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def _size_text(n: int) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return f"{n} bytes"


def check_regular_file(
    path: str | os.PathLike[str], max_bytes: int, what: str = "file"
) -> os.stat_result:
    """The stat of ``path`` if it is an existing regular file of at most ``max_bytes``.

    Raises :class:`FileCheckError` ("<path>: no such file", "… is a FIFO (named pipe),
    not a <what>", "… is 3.0 GiB, more than the 256.0 MiB a <what> may be").
    """
    p = Path(path)
    try:
        st = os.stat(p)
    except FileNotFoundError:
        raise FileCheckError(f"{p}: no such file") from None
    except OSError as exc:
        raise FileCheckError(f"{p}: cannot read the file: {exc.strerror or exc}") from None
    _check_stat(p, st, max_bytes, what)
    return st


def _a(what: str) -> str:
    return f"{'an' if what[:1].lower() in 'aeiou' else 'a'} {what}"


def _check_stat(p: Path, st: os.stat_result, max_bytes: int, what: str) -> None:
    if not stat.S_ISREG(st.st_mode):
        raise FileCheckError(f"{p}: is {_kind(st.st_mode)}, not {_a(what)}")
    if st.st_size > max_bytes:
        raise FileCheckError(
            f"{p}: is {_size_text(st.st_size)}, more than the {_size_text(max_bytes)} "
            f"{_a(what)} may be"
        )


def read_file_bytes(path: str | os.PathLike[str], max_bytes: int, what: str = "file") -> bytes:
    """The content of a regular file of at most ``max_bytes``; never blocks on a FIFO.

    The file is opened non-blocking and checked on the open descriptor, so a file
    swapped for a pipe between the check and the read is still refused.
    """
    p = Path(path)
    check_regular_file(p, max_bytes, what)
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(p, flags)
    except OSError as exc:
        raise FileCheckError(f"{p}: cannot read the file: {exc.strerror or exc}") from None
    try:
        _check_stat(p, os.fstat(fd), max_bytes, what)
        chunks, total = [], 0
        while True:
            chunk = os.read(fd, min(1 << 20, max_bytes + 1 - total))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
            if total > max_bytes:  # grew while being read
                raise FileCheckError(f"{p}: grew past {_size_text(max_bytes)} while being read")
    except OSError as exc:
        raise FileCheckError(f"{p}: cannot read the file: {exc.strerror or exc}") from None
    finally:
        os.close(fd)
    return b"".join(chunks)


# -- writing --------------------------------------------------------------------------
def _umask() -> int:
    try:  # Linux: read it without changing it (os.umask would race other threads)
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    old = os.umask(0o022)
    os.umask(old)
    return old


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` may still run (unknown counts as alive: keep its files)."""
    if pid == os.getpid():
        return True
    if os.name != "posix" or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # exists (owned by someone else) or cannot tell: keep its file
    return True


def temp_prefix(name: str) -> str:
    """Prefix of the temp files a save of ``name`` writes (``.<name>.<pid>-``)."""
    return f".{name}.{os.getpid()}-"


def remove_stale_temps(target: str | os.PathLike[str]) -> list[Path]:
    """Delete temp files of interrupted saves of ``target``; returns what was removed.

    A temp file names the process that wrote it: it is left over once that process is
    gone.  Temp files of older versions (no process id) count as left over after
    :data:`STALE_TEMP_S`.
    """
    p = Path(target)
    return _remove_stale(p.parent, re.escape(p.name))


def remove_stale_temps_in(folder: str | os.PathLike[str]) -> list[Path]:
    """Delete temp files of interrupted saves of any file in ``folder`` (at start-up).

    For folders whose files are never saved twice under one name (each session's
    autosave carries its process id), where :func:`remove_stale_temps` never runs.
    """
    return _remove_stale(Path(folder), r".+")


def _remove_stale(folder: Path, name_pattern: str) -> list[Path]:
    pattern = re.compile(rf"^\.{name_pattern}\.(?:(\d+)-)?[A-Za-z0-9_]+\.tmp$")
    removed: list[Path] = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    now = time.time()
    for entry in entries:
        m = pattern.match(entry.name)
        if m is None:
            continue
        try:
            if not entry.is_file(follow_symlinks=False):
                continue
            if m.group(1) is not None:
                stale = not pid_alive(int(m.group(1)))
            else:
                stale = now - entry.stat(follow_symlinks=False).st_mtime > STALE_TEMP_S
            if stale:
                os.unlink(entry.path)
                removed.append(Path(entry.path))
        except OSError:
            continue
    return removed


def write_target(path: str | os.PathLike[str]) -> Path:
    """The file a save of ``path`` replaces: the final target when ``path`` is a symlink."""
    p = Path(path)
    if p.is_symlink():
        return Path(os.path.realpath(p))
    return p


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write ``data`` to ``path`` so that readers see the old file or the new one, never half.

    Temp file in the same folder, fsync, then ``os.replace``; the temp file is removed
    if anything fails.  A symlink at ``path`` is kept and its target replaced; the
    file keeps its mode (a new one gets ``0666 & ~umask``, not mkstemp's 0600).
    Returns ``path``.
    """
    p = Path(path)
    target = write_target(p)
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        mode = stat.S_IMODE(os.stat(target).st_mode)
    except OSError:
        mode = 0o666 & ~_umask()
    remove_stale_temps(target)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=temp_prefix(target.name), suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    try:  # make the rename itself durable; not possible on every platform
        dir_fd = os.open(target.parent, os.O_RDONLY)
    except OSError:
        return p
    try:
        os.fsync(dir_fd)
    except OSError:
        pass
    finally:
        os.close(dir_fd)
    return p


def check_writable_dest(path: str | os.PathLike[str]) -> None:
    """Raise :class:`FileCheckError` if a file at ``path`` clearly cannot be written.

    Checks before slow work starts: the nearest existing ancestor must be a folder
    this process may write into, and ``path`` itself must not be a folder.
    """
    p = Path(os.path.abspath(path))
    if p.is_dir():
        raise FileCheckError(f"{p}: is a folder; give a file name (e.g. {p / 'out.png'})")
    parent = p.parent
    while not parent.exists():
        if parent.parent == parent:
            break
        parent = parent.parent
    if not parent.is_dir():
        raise FileCheckError(
            f"{p}: cannot be written because {parent} is a file, not a folder; "
            "choose another output path"
        )
    if not os.access(parent, os.W_OK | os.X_OK):
        raise FileCheckError(
            f"{p}: cannot write into {parent} (permission denied); choose a folder you can write to"
        )


def user_data_dir() -> Path:
    """Per-user data folder: ``$FACESKETCH_HOME``, else ~/.local/share/facesketch (not created)."""
    home = os.environ.get(HOME_ENV, "").strip()
    return Path(home).expanduser() if home else Path.home() / ".local" / "share" / "facesketch"
