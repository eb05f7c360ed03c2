"""The session fixture in conftest.py really keeps the tests out of the real home folder."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from home_guard import REAL_HOME, RealHomeTouched

import budget_state
from budget_state import _api, _paths


def test_our_session_fixture_works(_no_real_home: Path) -> None:
    assert Path(os.environ["HOME"]) == _no_real_home != REAL_HOME
    assert Path.home() == _no_real_home
    assert not any(k in ("CLAUDE_BUDGET_MODE", "CLAUDE_BUDGET_STATE", "CLAUDE_PROJECT_DIR") for k in os.environ)
    assert _paths.claude_home(os.environ) == _no_real_home / ".claude"


@pytest.mark.parametrize(
    "env",
    [{"HOME": str(REAL_HOME)}, {"CLAUDE_CONFIG_DIR": str(REAL_HOME / ".claude")}, {"HOME": str(REAL_HOME / "x/..")}],
    ids=["home", "config-dir", "home-spelled-otherwise"],
)
def test_resolving_the_real_home_raises(env: dict[str, str]) -> None:
    with pytest.raises(RealHomeTouched):
        _paths.claude_home(env)


def test_the_api_with_the_real_home_raises_before_touching_anything(tmp_path: Path) -> None:
    """What a careless test would do: the real HOME in an explicit env."""
    (tmp_path / ".claude").mkdir()
    with pytest.raises(RealHomeTouched):
        budget_state.snapshot(tmp_path, env={"HOME": str(REAL_HOME)})
    with pytest.raises(RealHomeTouched):
        _api.Context.load(env={"HOME": str(REAL_HOME)})
