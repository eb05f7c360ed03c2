"""``claude-budget uninstall``: exactly what install added goes, everything else stays."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Dict

import pytest

from budget_state.cli._cli import main
from budget_state._install import CONFIG_TEMPLATE, install
from budget_state.cli._uninstall import uninstall

PY = "/opt/venv/bin/python"


def read_tree(root: Path) -> Dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_install_then_uninstall_leaves_the_project_as_it_was(tmp_path: Path) -> None:
    claude = tmp_path / ".claude"
    (claude / "commands").mkdir(parents=True)
    settings = {
        "model": "opus",
        "hooks": {"Stop": [{"hooks": [{"type": "command", "command": "echo done"}]}]},
        "env": {"FOO": "1"},
    }
    (claude / "settings.json").write_text(json.dumps(settings, indent=2) + "\n")
    (claude / ".gitignore").write_text("node_modules/\n")
    (claude / "commands" / "review.md").write_text("---\ntokenBudget: 5\n---\nReview.\n")
    before = read_tree(tmp_path)
    install(tmp_path, python=PY)
    (claude / "budget-ledger.toml").write_text("schema = 1\n")  # what the hooks wrote meanwhile

    lines = uninstall(tmp_path)

    assert lines == [
        ".claude/settings.json: removed the hook from Stop, UserPromptSubmit, PreToolUse, SubagentStop, "
        "StopFailure, SessionEnd",
        ".claude/settings.local.json: removed env CLAUDE_BUDGET_PYTHON; deleted the file (nothing else was in it)",
        ".claude/commands/budget.md: deleted",
        ".claude/.gitignore: removed claude-budget's lines",
        ".claude/budget.toml: deleted (the untouched template)",
    ]
    after = read_tree(tmp_path)
    assert after.pop(".claude/budget-ledger.toml") == b"schema = 1\n"  # kept without --purge
    assert json.loads(after.pop(".claude/settings.json")) == settings
    before.pop(".claude/settings.json")
    assert after == before


def test_purge_deletes_the_ledger_and_what_lies_beside_it(tmp_path: Path) -> None:
    install(tmp_path, python=PY)
    claude = tmp_path / ".claude"
    for name in ("budget-ledger.toml", "budget-ledger.toml.lock", "budget-cache.json", "budget-hook.log"):
        (claude / name).write_text("x")

    lines = uninstall(tmp_path, purge=True)

    assert lines[-1] == (
        f"ledger: deleted budget-ledger.toml, budget-ledger.toml.lock, budget-cache.json, budget-hook.log in {claude}"
    )
    assert not (claude / "budget-ledger.toml").exists()
    assert not claude.exists()  # everything in it was claude-budget's


def test_what_the_user_changed_is_kept(tmp_path: Path) -> None:
    install(tmp_path, python=PY)
    claude = tmp_path / ".claude"
    (claude / "budget.toml").write_text(CONFIG_TEMPLATE + 'mode = "block"\n')
    (claude / "commands" / "budget.md").write_text("my own /budget\n")

    lines = uninstall(tmp_path)

    assert ".claude/budget.toml: kept (you changed it; delete it yourself if you no longer want it)" in lines
    assert ".claude/commands/budget.md: kept (written by you: it lacks the <!-- claude-budget --> marker)" in lines
    assert (claude / "budget.toml").exists() and (claude / "commands" / "budget.md").exists()


def test_dry_run_changes_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    install(tmp_path, python=PY)
    before = read_tree(tmp_path)

    assert main(["uninstall", str(tmp_path), "--dry-run"]) == 0

    out = capsys.readouterr().out
    assert out.splitlines()[0].startswith(".claude/settings.json: removed the hook from UserPromptSubmit")
    assert out.splitlines()[-1] == "Dry run: nothing was removed."
    assert read_tree(tmp_path) == before


def test_an_older_install_with_an_interpreter_path_is_removed_too(tmp_path: Path) -> None:
    old = {"hooks": {"Stop": [{"hooks": [{"type": "command", "command": "/x/python -m budget_state.hook"}]}]}}
    (tmp_path / ".claude").mkdir()
    (tmp_path / ".claude" / "settings.json").write_text(json.dumps(old))

    assert uninstall(tmp_path)[0] == (
        ".claude/settings.json: removed the hook from Stop; deleted the file (nothing else was in it)"
    )
    assert not (tmp_path / ".claude" / "settings.json").exists()


def test_user_install_and_uninstall(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """--user wires ~/.claude/settings.json (this machine's: the pointer may live there) and /budget."""
    home = Path.home() / ".claude"  # the session's temporary HOME (tests/conftest.py)
    user_settings = home / "settings.json"
    user_settings.parent.mkdir(parents=True, exist_ok=True)
    user_settings.write_text('{"theme": "dark"}\n')

    assert main(["install", "--user", "--dry-run"]) == 0
    assert user_settings.read_text() == '{"theme": "dark"}\n'
    assert main(["install", "--user"]) == 0

    out = capsys.readouterr().out
    assert "~/.claude/settings.json: added the hook for UserPromptSubmit, PreToolUse" in out
    data = json.loads(user_settings.read_text())
    assert data["theme"] == "dark" and sorted(data["hooks"]) == sorted(
        ["UserPromptSubmit", "PreToolUse", "SubagentStop", "Stop", "StopFailure", "SessionEnd"]
    )
    assert (home / "commands" / "budget.md").exists()

    assert main(["uninstall", "--user"]) == 0

    assert json.loads(user_settings.read_text()) == {"theme": "dark"}
    assert not (home / "commands" / "budget.md").exists()


def test_user_with_a_directory_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["install", "--user", "proj"]) == 1

    assert capsys.readouterr().err == (
        "Error: give either DIR or --user, not both (--user wires every project on this machine)\n"
    )
