"""Where the project is: the walk up from the current folder, and what it must not take for one."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from budget_state._api import Context
from budget_state._paths import find_project


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A HOME with Claude Code's user folder in it, as every real one has."""
    home = tmp_path / "home"
    (home / ".claude").mkdir(parents=True)
    monkeypatch.delenv("CLAUDE_PROJECT_DIR", raising=False)
    return home


def test_the_user_folder_in_home_is_not_a_project(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    here = home / "notes" / "2026"
    here.mkdir(parents=True)
    monkeypatch.chdir(here)
    env = {"HOME": str(home)}

    assert find_project(env) == here
    assert Context.load(env=env).ledger.path == here / ".claude" / "budget-ledger.toml"
    assert not (home / ".claude" / "budget-ledger.toml").exists()


def test_a_project_under_home_is_found(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    project = home / "src" / "app"
    (project / ".claude").mkdir(parents=True)
    (project / "lib" / "deep").mkdir(parents=True)
    monkeypatch.chdir(project / "lib" / "deep")

    assert find_project({"HOME": str(home)}) == project


def test_home_is_found_through_a_symbolic_link(home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    link = tmp_path / "home-link"
    link.symlink_to(home)
    (home / "w").mkdir()
    monkeypatch.chdir(home / "w")

    assert find_project({"HOME": str(link)}) == Path(os.getcwd())


def test_the_home_of_the_env_mapping_is_used(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Not the process's HOME: the mapping passed in is the hook's environment."""
    (home / "w").mkdir()
    monkeypatch.chdir(home / "w")
    monkeypatch.setenv("HOME", "/nonexistent-home")

    assert find_project({"HOME": str(home)}) == home / "w"
    assert find_project({"HOME": "/nonexistent-home"}) == home  # another HOME: this .claude is a project


def test_explicit_settings_still_win(home: Path, tmp_path: Path) -> None:
    assert find_project({"HOME": str(home), "CLAUDE_PROJECT_DIR": str(home)}) == home
    assert find_project({"HOME": str(home)}, cwd=str(tmp_path)) == tmp_path
