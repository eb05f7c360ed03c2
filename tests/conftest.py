"""Session-wide guard: no test may read or write the real ``~/.claude`` (or the real HOME at all).

For the whole session HOME is a fresh temporary folder and the variables that would point the
package somewhere real (a Claude Code session the tests run inside, the budget settings of whoever
runs them) are removed. Should a test still reach the real home — an explicit ``env`` that names
it, ``CLAUDE_CONFIG_DIR`` set by hand — the path resolver raises ``RealHomeTouched``, and at the
end of the session the files claude-budget would write there are checked to be unchanged
(``home_guard.py``; ``test_session_guard.py`` checks the guard itself).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

if str(Path(__file__).parent) not in sys.path:  # home_guard lives next to this file
    sys.path.insert(0, str(Path(__file__).parent))

from home_guard import home_guard


@pytest.fixture(scope="session", autouse=True)
def _no_real_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    with home_guard(tmp_path_factory.mktemp("session-home")) as home:
        yield home


@pytest.fixture(scope="session")
def pg_server() -> Iterator[object]:
    """A PostgreSQL server for the team-budget tests: ``CLAUDE_BUDGET_TEST_PG``, else a throwaway cluster."""
    import os

    from pg_cluster import Cluster

    given = os.environ.get("CLAUDE_BUDGET_TEST_PG")
    if given:
        yield given
        return
    cluster = Cluster()
    try:
        yield cluster
    finally:
        cluster.close()
