"""The guard against tests touching the real home folder; ``conftest.py`` turns it on for the session.

A module of its own (not conftest) so tests can import it whichever conftest pytest loaded last.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

from budget_state import _paths

REAL_HOME = Path(os.path.realpath(os.path.expanduser("~")))
REAL_CLAUDE = REAL_HOME / ".claude"
# What claude-budget (install, the hook, the CLI) would create or change in a .claude folder.
WATCHED = ("budget-ledger.toml", "budget-ledger.toml.lock", "budget-cache.json", "budget.toml", ".gitignore")
WATCHED_DEEP = (("commands", "budget.md"),)
# The product's settings (not the test harness's own CLAUDE_BUDGET_CLAUDE_BIN / _TMUX_BIN) and what
# a Claude Code session the tests run inside would pass down.
_SCRUBBED = (
    "CLAUDE_BUDGET_MODE",
    "CLAUDE_BUDGET_OVERALL",
    "CLAUDE_BUDGET_STATE",
    "CLAUDE_BUDGET_ON_ERROR",
    "CLAUDE_BUDGET_LOCK_TIMEOUT",
    "CLAUDE_BUDGET_DEBUG",
    "CLAUDE_PROJECT_DIR",
    "CLAUDE_CONFIG_DIR",
    "CLAUDECODE",
)


class RealHomeTouched(AssertionError):
    """A test resolved a path inside the real home folder."""


def _inside_real_home(path: Path) -> bool:
    real = Path(os.path.realpath(path))
    return real == REAL_HOME or REAL_HOME in real.parents


def _stamps() -> dict[str, tuple[int, int] | None]:
    out: dict[str, tuple[int, int] | None] = {}
    for parts in [(name,) for name in WATCHED] + list(WATCHED_DEEP):
        path = REAL_CLAUDE.joinpath(*parts)
        try:
            st = os.stat(path)
            out["/".join(parts)] = (st.st_mtime_ns, st.st_size)
        except OSError:
            out["/".join(parts)] = None
    return out


@contextlib.contextmanager
def home_guard(home: Path) -> Iterator[Path]:
    """HOME is ``home``; resolving a path in the real home raises; claude-budget's files there stay as they were."""
    before = _stamps()
    real_home_of = _paths._home
    real_claude_home = _paths.claude_home

    def guarded_home(env: Mapping[str, str]) -> Path:
        found = real_home_of(env)
        if _inside_real_home(found):
            raise RealHomeTouched(f"a test resolved the real home folder {found}: give it a HOME in tmp_path")
        return found

    def guarded_claude_home(env: Mapping[str, str]) -> Path:
        found = real_claude_home(env)
        if _inside_real_home(found):
            raise RealHomeTouched(f"a test resolved {found}, in the real home folder: set HOME/CLAUDE_CONFIG_DIR")
        return found

    patch = pytest.MonkeyPatch()
    try:
        for name in list(os.environ):
            if name in _SCRUBBED:
                patch.delenv(name)
        patch.setenv("HOME", str(home))
        patch.setattr(_paths, "_home", guarded_home)
        patch.setattr(_paths, "claude_home", guarded_claude_home)
        yield home
    finally:
        patch.undo()
    after = _stamps()
    changed = sorted(k for k in before if before[k] != after[k])
    assert not changed, f"the tests changed {', '.join(str(REAL_CLAUDE / k) for k in changed)} in the real home"
