"""The package's exceptions: one small hierarchy, each naming the file it is about."""

from __future__ import annotations

from pathlib import Path


class BudgetError(Exception):
    """Base class for every error claude-budget raises on purpose."""


class ConfigError(BudgetError, ValueError):
    """A budget setting (config file, environment variable or frontmatter) is invalid."""

    def __init__(self, message: str, /, *, path: Path | None = None) -> None:
        super().__init__(message)
        self.path = path


class LedgerError(BudgetError, OSError):
    """The ledger cannot be read or written."""

    def __init__(self, message: str, /, *, path: Path | None = None) -> None:
        super().__init__(message)
        self.path = path


class LedgerCorrupt(LedgerError):
    """The ledger did not parse; it was moved aside to ``moved_to`` and a fresh one started."""

    def __init__(self, message: str, /, *, path: Path | None = None, moved_to: Path | None = None) -> None:
        super().__init__(message, path=path)
        self.moved_to = moved_to


class LockTimeout(BudgetError, TimeoutError):
    """The ledger lock was held elsewhere for longer than we were willing to wait."""

    def __init__(self, message: str, /, *, path: Path | None = None) -> None:
        super().__init__(message)
        self.path = path
