"""Replacing a file in one step: the one way every file of claude-budget is written.

A temp file beside the target (created exclusively, never through a link), the bytes, an fsync,
``os.replace``, and an fsync of the folder, so that a reader sees the old file or the new one and
never a part, and a crash after the call cannot bring the old one back. The new file keeps the old
one's permission bits (or gets the umask's). A temp file never outlives a failure.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

# A filesystem or platform that cannot fsync a folder says so with one of these; the rename is
# then as durable as that filesystem makes it, and the write has still succeeded.
_NO_FOLDER_FSYNC = frozenset(
    getattr(errno, name) for name in ("EINVAL", "EBADF", "ENOTSUP", "EOPNOTSUPP", "ENOSYS") if hasattr(errno, name)
)


def write_atomic(
    path: Path,
    data: bytes,
    /,
    *,
    durable: bool = True,
    locked: bool = False,
    new_mode: int = 0o666,
    sync_folder: bool = True,
) -> None:
    """Replace ``path`` with ``data``. ``durable=False`` skips the two fsyncs (a cache that can be
    rebuilt). ``locked``: the caller holds the file's lock, so one temp name serves every writer
    and a killed writer leaves one stale file that the next write replaces, not one per pid.
    ``new_mode``: a new file's permissions (the umask applies); a replaced file keeps its own.
    ``sync_folder=False``: the caller fsyncs the folder itself (once for several files: :func:`sync_folder`).
    :raises OSError: nothing was replaced (the temp file is gone too)."""
    mode = _mode_of(path)
    tmp = path.with_name(f".{path.name}.tmp" if locked else f".{path.name}.{os.getpid()}.tmp")
    try:
        os.unlink(tmp)  # a killed writer's (the same pid, or any under the lock): O_EXCL below refuses it
    except FileNotFoundError:
        pass
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), new_mode)
    try:
        try:
            if mode is not None:
                _set_mode(fd, tmp, mode)
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            if durable:
                os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    if durable and sync_folder:
        _fsync_folder(path.parent)


def sync_folder(folder: Path, /) -> None:
    """Make the renames into ``folder`` durable (after :func:`write_atomic` with ``sync_folder=False``)."""
    _fsync_folder(folder)


def _mode_of(path: Path) -> int | None:
    """The permission bits of the file now, to give the file that replaces it; None if there is none."""
    try:
        return stat.S_IMODE(os.stat(path).st_mode)
    except FileNotFoundError:
        return None


def _set_mode(fd: int, path: Path, mode: int) -> None:
    # Explicitly, not through os.open's mode: that one is cut by the umask (0664 would become 0644).
    try:
        if hasattr(os, "fchmod"):
            os.fchmod(fd, mode)
        else:  # pragma: no cover (Windows before Python 3.13)
            os.chmod(path, mode)
    except OSError:
        pass  # a filesystem without Unix modes (FAT, some network shares): nothing to keep


def _fsync_folder(folder: Path) -> None:
    """Make the rename durable: until the folder is flushed, a crash can bring the old file back."""
    try:
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return  # Windows cannot open a folder (and needs no folder fsync)
    try:
        os.fsync(fd)
    except OSError as e:
        if e.errno not in _NO_FOLDER_FSYNC:
            raise
    finally:
        os.close(fd)
