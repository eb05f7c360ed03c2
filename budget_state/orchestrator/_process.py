"""Instances as processes: each in a process group of its own, stopped by an escalation.

A group of its own, so that a terminal's Ctrl-C reaches the orchestrator alone (it then stops
every instance in order, letting each end its session — SessionEnd settles the ledger), and so
that stopping an instance also stops the shells and tools it started. The hooks Claude Code runs
in the background leave the group (``setsid``) and finish their count whatever happens here.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO, Any

# Interrupt (Claude Code ends the session and runs SessionEnd), then terminate, then kill.
ESCALATION: tuple[signal.Signals, ...] = (signal.SIGINT, signal.SIGTERM, signal.SIGKILL)
GRACE = 2.0  # seconds between two steps of the escalation


class Process:
    """One started instance: ``claude -p …`` with stdout and stderr in files."""

    def __init__(
        self,
        argv: Sequence[str],
        *,
        cwd: Path,
        env: Mapping[str, str],
        stdout: Path,
        stderr: Path,
    ) -> None:
        self.stdout_path = stdout
        self.stderr_path = stderr
        self.started = time.monotonic()
        self.ended: float | None = None
        self.signals: list[str] = []  # what the escalation sent, in order
        self._step = 0
        self._next: float | None = None
        out: IO[bytes] = open(stdout, "wb")  # noqa: SIM115 (closed in poll(), once the process is gone)
        err: IO[bytes] = open(stderr, "wb")  # noqa: SIM115
        try:
            self.popen = subprocess.Popen(
                list(argv),
                cwd=cwd,
                env=dict(env),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                start_new_session=True,
            )
        except OSError:
            out.close()
            err.close()
            raise
        self._files = (out, err)
        self.pid = self.popen.pid

    @property
    def returncode(self) -> int | None:
        return self.popen.returncode

    def poll(self) -> int | None:
        """The exit code once the process has ended (its group is then cleared), else None."""
        code = self.popen.poll()
        if code is not None and self.ended is None:
            self.ended = time.monotonic()
            self._kill_group(signal.SIGKILL)  # what it left behind (a tool's shell) goes with it
            for f in self._files:
                f.close()
        return code

    @property
    def stopping(self) -> bool:
        return self._next is not None

    def stop(self, *, now: float, delay: float = 0.0) -> None:
        """Begin the escalation: the first signal ``delay`` seconds from ``now`` (the hook's chance)."""
        if self._next is None and self.ended is None:
            self._next = now + delay

    def hurry(self, now: float) -> None:
        """No more waiting between the steps (a second Ctrl-C): the next one goes at the next look."""
        if self._next is not None:
            self._next = min(self._next, now)

    def advance(self, now: float) -> None:
        """Send the next signal of the escalation when its time has come."""
        if self._next is None or self.ended is not None or now < self._next:
            return
        if self._step < len(ESCALATION):
            sig = ESCALATION[self._step]
            self.signals.append(sig.name)
            self._kill_group(sig)
            self._step += 1
        self._next = now + GRACE

    def _kill_group(self, sig: signal.Signals) -> None:
        try:
            os.killpg(self.pid, sig)
        except (ProcessLookupError, PermissionError):  # already gone (or reaped and the id reused)
            pass

    def output(self) -> str:
        try:
            return self.stdout_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""

    def errors(self) -> str:
        try:
            return self.stderr_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""


class Interrupt:
    """Ctrl-C (or SIGTERM): the first stops every instance in order, a second hurries the escalation."""

    def __init__(self) -> None:
        self.count = 0
        self._old: dict[int, Any] = {}

    def __enter__(self) -> Interrupt:
        for sig in (signal.SIGINT, signal.SIGTERM):
            self._old[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._old.items():
            signal.signal(sig, handler)

    def _handle(self, signum: int, frame: object) -> None:
        self.count += 1
