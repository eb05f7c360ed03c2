"""The hook's log: what it could not do, beside the ledger, bounded.

Claude Code hides a hook's stderr, and a hook in the background has nobody to tell, so each
failure is also one line in ``budget-hook.log`` next to the ledger (``claude-budget doctor`` shows
the last ones). One ``O_APPEND`` write per line, so hooks writing at once do not interleave; past
:data:`MAX_BYTES` the file becomes ``budget-hook.log.1`` (the one before is dropped), so the two
together hold the last few hundred lines. Best effort: logging never raises.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Final

LOG_NAME: Final = "budget-hook.log"
MAX_BYTES: Final = 64 * 1024  # ~300 lines of ~200 bytes, plus as many in the rotated file
_MAX_LINE: Final = 2000


def log_path(ledger: Path, /) -> Path:
    return ledger.with_name(LOG_NAME)


def default_ledger(env: Mapping[str, str]) -> Path:
    """The ledger path without reading ``budget.toml`` (which may be what failed)."""
    from ._paths import find_project, ledger_path

    return ledger_path(find_project(env), env)


def write(ledger: Path, event: str, text: str, /, *, now: float | None = None) -> None:
    """Append ``<UTC time> <version> <event>: <text>`` to the log beside ``ledger``."""
    from ._version import __version__

    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() if now is None else now))
    one = " ".join(text.split())[:_MAX_LINE]
    line = f"{stamp} claude-budget {__version__} pid {os.getpid()} {event}: {one}\n".encode("utf-8", "replace")
    path = log_path(ledger)
    try:
        if not path.parent.is_dir():
            return  # no project folder to write in: not ours to create
        try:
            if path.stat().st_size + len(line) > MAX_BYTES:
                os.replace(path, path.with_name(LOG_NAME + ".1"))
        except FileNotFoundError:
            pass
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o644)
        try:
            os.write(fd, line)
        finally:
            os.close(fd)
    except OSError:
        pass


def tail(ledger: Path, /, *, lines: int = 10) -> list[str]:
    """The last ``lines`` lines of the log (the rotated file first, then the current one)."""
    path = log_path(ledger)
    out: list[str] = []
    for p in (path.with_name(LOG_NAME + ".1"), path):
        try:
            out += p.read_text(encoding="utf-8", errors="replace").splitlines()
        except OSError:
            continue
    return out[-lines:] if lines > 0 else []
