"""Resident helpers the tests started: find them and stop them (``budget_state.helper``).

Every project a test wires gets a helper under its own HOME on its first hook, which would
otherwise wait out its idle time (30 min) after the test. Linux only (``/proc``), as CI is;
elsewhere nothing is found and the helpers leave by themselves.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

MARK = b"budget_state.helper\x00serve"


def helpers(under: Path | None = None) -> list[int]:
    """Pids of running helpers; with ``under``, only those whose HOME is inside that folder."""
    found = []
    root = os.fsencode(os.path.realpath(under)) if under is not None else None
    try:
        pids = [int(p) for p in os.listdir("/proc") if p.isdigit()]
    except OSError:
        return []
    for pid in pids:
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if MARK not in f.read():
                    continue
            if root is not None:
                with open(f"/proc/{pid}/environ", "rb") as f:
                    env = dict(item.partition(b"=")[::2] for item in f.read().split(b"\0"))
                home = os.path.realpath(env.get(b"HOME", b"/"))
                if not (home == root or home.startswith(root + b"/")):
                    continue
            found.append(pid)
        except OSError:
            continue
    return found


def stop_helpers(under: Path | None = None) -> int:
    """SIGKILL the helpers (and their children) under ``under``; how many there were."""
    pids = helpers(under)
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
    return len(pids)
