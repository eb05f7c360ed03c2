"""Fixtures of the adversarial reliability suite. The machinery itself — a throw-away project, hooks
run in-process or as real ``python -m budget_state.hook`` processes, transcripts written the way
Claude Code writes them, another process holding the ledger lock with ``filelock`` — is in
tests/kit.py, which the test modules import by name (``import kit``).

Nothing here touches the real ``~/.claude``: every project has its own ``HOME``, subprocesses get a
clean environment (no ``CLAUDE_BUDGET_*`` from outside) with this checkout first on ``PYTHONPATH``.
Every wait is bounded (``TIMEOUT``) and synchronisation goes through pipes, never through sleeps.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Callable

import pytest
from kit import LockHolder, Project


@pytest.fixture
def proj(tmp_path: Path) -> Project:
    return Project(tmp_path, session="s1")


@pytest.fixture
def hold_lock() -> Iterator[Callable[..., LockHolder]]:
    """``hold_lock(path, env)`` starts a holder; every holder is gone when the test ends."""
    holders: list[LockHolder] = []

    def start(lock: Path, env: Mapping[str, str]) -> LockHolder:
        holder = LockHolder(lock, env)
        holders.append(holder)
        return holder

    yield start
    for holder in holders:
        holder.stop()
