"""Files only the user can have written: the one check before claude-budget believes what a file says.

The ledger, its parts and journal, and the frontmatter cache are read only when they, and the
folder they are in, are the user's (or root's) and no other user can write them, checked on the
open descriptor without following a link (docs/security.md): another local user who could plant
or swap one could otherwise steer what a session is allowed to spend.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Final

from ._errors import LedgerError

_OPEN_FLAGS: Final = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)


def read_private(path: Path | str, /, *, what: str | None = None) -> bytes | None:
    """``path``'s bytes, opened without following a link and checked to be the user's own regular
    file that no one else can write; None when it does not exist. ``what`` names it in an error
    (default: "the ledger part <path>")."""
    try:
        fd = os.open(path, _OPEN_FLAGS)
    except FileNotFoundError:
        return None
    except OSError as e:
        raise LedgerError(f"cannot read {what or f'the ledger part {path}'}: {e.strerror}", path=Path(path)) from None
    try:
        st = os.fstat(fd)
        regular = stat.S_ISREG(st.st_mode)
        # a regular file's size is known: one read of a byte more takes it all, and coming back short
        # says it is at its end (a status reads 400 parts: no second read each to find that out)
        chunks = [os.read(fd, st.st_size + 1)] if regular else []
        if not regular or len(chunks[0]) > st.st_size:  # not a file, or it grew meanwhile: read on
            while chunk := os.read(fd, 1 << 20):
                chunks.append(chunk)
    except OSError as e:
        raise LedgerError(f"cannot read {what or f'the ledger part {path}'}: {e.strerror}", path=Path(path)) from None
    finally:
        os.close(fd)
    if not owned(st):
        own_file(st, what=what or f"the ledger part {path}", path=Path(path))  # raises, saying why
    return b"".join(chunks)


def _mine(uid: int) -> bool:
    return uid == os.geteuid() or uid == 0


def _private_group(gid: int) -> bool:
    """A group-writable folder is still private when its group is the user's own and has no one else
    (the user-private groups of ``umask 002`` systems)."""
    if gid != os.getegid():
        return False
    try:
        import grp
        import pwd

        me = pwd.getpwuid(os.geteuid()).pw_name
        return set(grp.getgrgid(gid).gr_mem) <= {me}
    except (ImportError, KeyError):
        return False


def private_folder(folder: Path, *, what: str) -> None:
    """Raise :class:`LedgerError` unless ``folder`` (where ``what`` lives) is the user's (or root's)
    and no other user can write it: another user could swap or plant the files in it."""
    try:
        st = os.stat(folder)
    except FileNotFoundError:
        return  # made by this user, with the umask, when the first write needs it
    except OSError as e:
        raise LedgerError(f"cannot look at the folder of {what}: {e.strerror}") from None

    shared = st.st_mode & stat.S_IWOTH or (st.st_mode & stat.S_IWGRP and not _private_group(st.st_gid))
    if not _mine(st.st_uid) or shared:
        whose = "another user owns" if not _mine(st.st_uid) else "other users can write"
        raise LedgerError(
            f"{what} is in {folder}, a folder {whose}"
            " — claude-budget keeps its state only where no one else can change it: chmod go-w the folder, or "
            "move the ledger (ledger in .claude/budget.toml, or CLAUDE_BUDGET_STATE)"
        )


def owned(st: os.stat_result) -> bool:
    """The opened file is a regular file of the user's (or root's) that no one else can write."""
    return _mine(st.st_uid) and not st.st_mode & stat.S_IWOTH and stat.S_ISREG(st.st_mode)


def own_file(st: os.stat_result, *, what: str, path: Path) -> None:
    """Raise :class:`LedgerError` unless the opened file is the user's and no one else can write it."""
    if not owned(st):
        raise LedgerError(
            f"{what} belongs to another user or others can write it (uid {st.st_uid}, mode "
            f"{stat.S_IMODE(st.st_mode):o}) — claude-budget reads only your own state: remove it, or chown/chmod it",
            path=path,
        )
