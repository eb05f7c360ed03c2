"""The resident helper: hook events answered by a process that is already up.

A hook is a new process per event, and a Python start with the hook's imports is ~70 ms, most of
a run's added time when the API is fast (BENCHMARKS.md, section 0). The helper is one Python
process per user and hook command (interpreter + code), with everything imported, that forks a
child per event; the hook line hands it the event through a few builtins of bash
(:mod:`.client`). The child runs the very same ``budget_state.hook.main`` with the event's
environment and working directory, so there is one hook, not two.

How it fails: as today's hook, because today's hook *is* the fallback. A helper that is missing,
refuses the connection, does not greet, greets with another token (the port is someone else's
now), runs older code (``stale``), or does not answer in time makes the hook line run the hook
itself, which then (re)starts the helper for the next event (:func:`after_direct_hook`). A helper
that went silent is stopped first, with its children, so an event is never settled by both.

Lifetime: started on demand by the first hook that ran without it; one per key (an ``flock``
beside the endpoint); it exits after :data:`IDLE_SECONDS` without events, when its endpoint file
is gone or no longer names it, or when its own code changed on disk (a pip upgrade or an edit).
``CLAUDE_BUDGET_HELPER=off`` in the environment turns it off (the hook lines then run the hook
directly); ``claude-budget helper`` shows and stops helpers.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Final, NamedTuple

SWITCH_ENV: Final = "CLAUDE_BUDGET_HELPER"  # "off": hook lines run the hook directly
KEY_ENV: Final = "CLAUDE_BUDGET_HELPER_KEY"  # set by the client when it fell back: which helper
WHY_ENV: Final = "CLAUDE_BUDGET_HELPER_WHY"  # ... and why (see .client)
IDLE_ENV: Final = "CLAUDE_BUDGET_HELPER_IDLE"  # seconds without an event before the helper exits
IDLE_SECONDS: Final = 30 * 60
SUFFIX: Final = ".endpoint"
# A fallback for these reasons means the helper is there but must not be used again.
_REPLACE: Final = ("silent", "foreign", "stale", "lost")


class Endpoint(NamedTuple):
    """What ``<key>.endpoint`` says: where the helper listens, the two tokens, its pid."""

    port: int
    client_token: str
    server_token: str
    pid: int

    def line(self) -> str:
        return f"{self.port} {self.client_token} {self.server_token} {self.pid}\n"


def helper_dir(env: Mapping[str, str]) -> Path | None:
    """``<user cache>/claude-budget/helper`` (the client spells the same path in bash)."""
    from .._paths import user_cache

    base = user_cache(env)
    return base / "helper" if base else None


def read_endpoint(path: Path) -> Endpoint | None:
    try:
        port, client, server, pid = path.read_text(encoding="ascii").split()[:4]
        return Endpoint(int(port), client, server, int(pid))
    except (OSError, ValueError, UnicodeDecodeError):
        return None


def endpoints(env: Mapping[str, str]) -> Iterator[tuple[str, Endpoint | None]]:
    """Every helper endpoint of this user: (key, what its file says, or None if unreadable)."""
    where = helper_dir(env)
    if where is None:
        return
    try:
        names = sorted(os.listdir(where))
    except OSError:
        return
    for name in names:
        if name.endswith(SUFFIX):
            yield name[: -len(SUFFIX)], read_endpoint(where / name)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process now: not our helper
        return False
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:  # Linux: a zombie has ended (nobody reaped it yet)
            return f.read().rpartition(b")")[2].split()[:1] != [b"Z"]
    except OSError:
        return True


def stop(key: str, env: Mapping[str, str], *, hard: bool = False) -> bool:
    """Stop the helper of ``key`` and its children (an event being handled included); True if one ran.

    ``hard``: SIGKILL, for a helper that stopped answering (SIGTERM would wait for it).
    """
    where = helper_dir(env)
    if where is None:
        return False
    path = where / f"{key}{SUFFIX}"
    end = read_endpoint(path)
    try:
        path.unlink()
    except OSError:
        pass
    if end is None or not alive(end.pid) or not _is_helper(end.pid):
        return False
    sig = signal.SIGKILL if hard else signal.SIGTERM
    try:
        os.killpg(end.pid, sig)  # the helper leads its own session and group; its children are in it
    except OSError:
        try:
            os.kill(end.pid, sig)
        except OSError:
            return False
    return True


def _is_helper(pid: int) -> bool:
    """Whether ``pid`` is a helper: an endpoint file outlives a killed helper, and its pid may be
    another process's by now, which must not be signalled."""
    if os.path.isdir("/proc"):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                return b"budget_state.helper\x00serve" in f.read()
        except OSError:
            return False
    import subprocess

    try:  # no /proc (macOS): ask ps
        done = subprocess.run(["ps", "-p", str(pid), "-o", "command="], capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return False
    return "budget_state.helper serve" in done.stdout


def after_direct_hook(env: Mapping[str, str]) -> None:
    """The hook ran itself because the helper could not answer: get one up for the next event.

    Called by ``hook.main`` after its answer is written, only when the client set :data:`KEY_ENV`.
    Best effort and quick (a fork and exec; the helper's own start is not waited for).
    """
    key = env.get(KEY_ENV, "")
    if not key or env.get(SWITCH_ENV, "").lower() == "off" or "/" in key or key.startswith("."):
        return
    if env.get(WHY_ENV) in _REPLACE:
        stop(key, env, hard=env.get(WHY_ENV) in ("silent", "lost"))
    start(key, env)


def start(key: str, env: Mapping[str, str]) -> None:
    """Start a helper for ``key`` in its own session; it gives way at once if one already runs."""
    import subprocess
    import sys

    child_env = {k: v for k, v in env.items() if k not in (KEY_ENV, WHY_ENV)}
    try:
        subprocess.Popen(
            [sys.executable, "-m", "budget_state.helper", "serve", key],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            cwd="/",
            env=child_env,
            start_new_session=True,
            close_fds=True,
        )
    except OSError:
        pass
