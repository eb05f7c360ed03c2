"""The ledger lock: an exclusive ``flock`` on ``<ledger>.lock``, the same lock ``filelock`` takes.

``filelock.FileLock`` on Unix is ``fcntl.flock(fd, LOCK_EX)`` on the whole lock file, which it
leaves in place on release. Taking exactly that lock here means an orchestrator that guards the
ledger with ``filelock.FileLock("<ledger>.lock")`` and our hooks exclude each other, while a hook
does not pay ``import filelock`` (70–100 ms of start-up, mostly stdlib modules it pulls in) on
every prompt and tool call. Where ``fcntl`` is missing (Windows) we use ``filelock`` itself.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from types import TracebackType

from .._errors import LedgerError, LockTimeout

try:
    import fcntl
except ImportError:  # pragma: no cover (Windows)
    fcntl = None  # type: ignore[assignment]  # falls back to filelock below

_POLL_START = 0.001
_POLL_MAX = 0.005  # short: a waiter asleep while the lock is free wastes it and loses its turn


class _Alarm(Exception):
    pass


def _on_alarm(signum: int, frame: object) -> None:
    raise _Alarm


class LedgerLock:
    """``with LedgerLock(path, timeout=5):`` — exclusive, blocking up to ``timeout`` seconds."""

    def __init__(self, path: Path, /, *, timeout: float, own_process: bool = False) -> None:
        """``own_process``: the caller owns the process's SIGALRM (the hook does; a library caller does not)."""
        self.path = path
        self.timeout = timeout
        self.own_process = own_process
        self._fd: int | None = None
        self._fallback: object = None

    def __enter__(self) -> LedgerLock:
        self.acquire()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()

    def acquire(self) -> None:
        if fcntl is None:  # pragma: no cover (Windows)
            self._acquire_with_filelock()
            return
        fd = self._open()
        try:
            got: bool | None = self._try(fd) or None  # None: not decided yet
            if got is None and self.own_process:
                got = self._wait_blocking(fd)
            if got is None:
                got = self._wait_polling(fd)
        except OSError as e:
            os.close(fd)
            raise LedgerError(f"cannot lock {self.path}: {e.strerror}", path=self.path) from None
        if not got:
            os.close(fd)
            raise LockTimeout(
                f"the ledger lock {self.path} was held by another process for more than "
                f"{self.timeout:g} s — if nothing is running, that process is stuck; "
                f"raise lock_timeout in .claude/budget.toml if this is a busy machine",
                path=self.path,
            )
        self._fd = fd

    @staticmethod
    def _try(fd: int) -> bool:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            return False

    def _wait_blocking(self, fd: int) -> bool | None:
        """A blocking flock, cut short by SIGALRM: no gap between a release and our turn.

        None when the alarm cannot be used here (not the main thread, or an itimer already runs).
        """
        import signal

        if signal.getitimer(signal.ITIMER_REAL)[0]:
            return None
        try:
            previous = signal.signal(signal.SIGALRM, _on_alarm)
        except ValueError:  # not the main thread
            return None
        try:
            signal.setitimer(signal.ITIMER_REAL, self.timeout)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
            finally:
                signal.setitimer(signal.ITIMER_REAL, 0)
            return True
        except _Alarm:
            # The alarm may have hit just after flock returned: then we hold the lock already.
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return True
            except BlockingIOError:
                return False
        finally:
            signal.signal(signal.SIGALRM, previous)

    def _wait_polling(self, fd: int) -> bool:
        deadline = time.monotonic() + self.timeout
        pause = _POLL_START
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return True
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    return False
                time.sleep(pause)
                pause = min(pause * 2, _POLL_MAX)

    def release(self) -> None:
        if self._fd is not None and fcntl is not None:
            fd, self._fd = self._fd, None
            try:
                fcntl.flock(fd, fcntl.LOCK_UN)
            finally:
                os.close(fd)
        elif self._fallback is not None:  # pragma: no cover (Windows)
            self._fallback.release()  # type: ignore[attr-defined]  # a filelock.FileLock
            self._fallback = None

    def _open(self) -> int:
        # Never truncate and never delete the lock file: waiters must all lock the same inode.
        # O_NOFOLLOW: a lock path planted as a symlink must not make us create or open files elsewhere.
        flags = os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
        try:
            return os.open(self.path, flags, 0o644)
        except OSError as e:
            if os.path.islink(self.path):
                raise LedgerError(
                    f"the ledger lock {self.path} is a symbolic link — remove it; "
                    "claude-budget creates the lock file itself",
                    path=self.path,
                ) from None
            raise LedgerError(
                f"cannot open the ledger lock {self.path}: {e.strerror} — check that its folder exists "
                "and is writable, or point CLAUDE_BUDGET_STATE at a writable place",
                path=self.path,
            ) from None

    def _acquire_with_filelock(self) -> None:  # pragma: no cover (Windows)
        import filelock

        lock = filelock.FileLock(str(self.path), timeout=self.timeout)
        try:
            lock.acquire()
        except filelock.Timeout:
            raise LockTimeout(
                f"the ledger lock {self.path} was held by another process for more than {self.timeout:g} s",
                path=self.path,
            ) from None
        self._fallback = lock
