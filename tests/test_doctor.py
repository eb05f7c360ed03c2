"""``claude-budget doctor``: one line per check, a fix for each problem, exit 1 on a problem."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any, Dict

import pytest

from budget_state import __version__, _hooklog
from budget_state.cli._cli import main
from budget_state._install import install
from budget_state.ledger._lock import LedgerLock
from budget_state._wiring import NOT_INSTALLED


@pytest.fixture
def clean_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """No claude-budget-hook and no claude on PATH: only what install wrote can be found."""
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    monkeypatch.delenv("CLAUDE_PROJECT_DIR", raising=False)


def doctor(project: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, Dict[str, Any]]:
    code = main(["doctor", "--project", str(project), "--json"])
    data: Dict[str, Any] = json.loads(capsys.readouterr().out)
    return code, data


def checks(data: Dict[str, Any]) -> Dict[str, tuple[str, str]]:
    return {c["check"]: (c["status"], c["detail"]) for c in data["checks"]}


def test_an_installed_project_is_healthy(tmp_path: Path, capsys: pytest.CaptureFixture[str], clean_path: None) -> None:
    install(tmp_path, python=sys.executable)

    code, data = doctor(tmp_path, capsys)

    found = checks(data)
    assert code == 0 and data["ok"] is True and data["version"] == 1, found
    assert found["hooks"] == ("ok", f"wired in {tmp_path / '.claude' / 'settings.json'}")
    assert found["runnable"] == (
        "ok",
        f"the hooks run claude-budget {__version__} from $CLAUDE_BUDGET_PYTHON ({sys.executable})",
    )
    assert found["double count"][0] == "ok"
    assert "portable" not in found  # today's line
    assert found["claude code"] == ("warn", "no `claude` on PATH to check the version of")
    assert found["statusline"][0] == "warn"
    assert data["log"] == []


def test_nothing_wired_is_a_problem(tmp_path: Path, capsys: pytest.CaptureFixture[str], clean_path: None) -> None:
    code, data = doctor(tmp_path, capsys)

    assert code == 1
    status, detail = checks(data)["hooks"]
    assert status == "problem" and "not wired" in detail


def test_wired_but_not_installed_here(tmp_path: Path, capsys: pytest.CaptureFixture[str], clean_path: None) -> None:
    install(tmp_path, python=sys.executable)
    (tmp_path / ".claude" / "settings.local.json").unlink()  # a teammate's clone

    code, data = doctor(tmp_path, capsys)

    assert code == 1
    problem = next(c for c in data["checks"] if c["check"] == "runnable")
    assert problem["status"] == "problem"
    assert problem["detail"] + ": " + problem["fix"] == NOT_INSTALLED


def test_an_interpreter_that_is_gone(tmp_path: Path, capsys: pytest.CaptureFixture[str], clean_path: None) -> None:
    settings = {
        "hooks": {"Stop": [{"hooks": [{"type": "command", "command": "/gone/bin/python -m budget_state.hook"}]}]}
    }
    (tmp_path / ".claude").mkdir()
    (tmp_path / ".claude" / "settings.json").write_text(json.dumps(settings))

    code, data = doctor(tmp_path, capsys)

    assert code == 1
    assert checks(data)["runnable"] == (
        "problem",
        "the hooks name an interpreter that is not here: /gone/bin/python (an older install)",
    )
    assert checks(data)["portable"][0] == "warn"


def test_two_different_hook_lines_for_one_event_count_twice(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], clean_path: None
) -> None:
    (tmp_path / "proj").mkdir()
    install(tmp_path / "proj", python=sys.executable)
    user = Path.home() / ".claude" / "settings.json"
    user.parent.mkdir(parents=True, exist_ok=True)
    old = f"{sys.executable} -m budget_state.hook"
    user.write_text(json.dumps({"hooks": {"Stop": [{"hooks": [{"type": "command", "command": old}]}]}}))
    try:
        code, data = doctor(tmp_path / "proj", capsys)
    finally:
        user.unlink()

    assert code == 1
    status, detail = checks(data)["double count"]
    assert status == "problem" and detail.startswith("claude-budget's hooks for Stop are wired with different commands")


def test_broken_settings_and_a_held_lock(tmp_path: Path, capsys: pytest.CaptureFixture[str], clean_path: None) -> None:
    install(tmp_path, python=sys.executable)
    (tmp_path / ".claude" / "settings.local.json").write_text("{nope")
    lock = tmp_path / ".claude" / "budget-ledger.toml.lock"

    with LedgerLock(lock, timeout=1):
        code, data = doctor(tmp_path, capsys)

    assert code == 1
    found = [c for c in data["checks"] if c["check"] in ("settings", "lock")]
    assert [(c["check"], c["status"]) for c in found] == [("settings", "problem"), ("lock", "warn")]
    assert found[0]["detail"].startswith(f"invalid JSON in {tmp_path / '.claude' / 'settings.local.json'}")


def test_the_hook_log_is_shown(tmp_path: Path, capsys: pytest.CaptureFixture[str], clean_path: None) -> None:
    install(tmp_path, python=sys.executable)
    ledger = tmp_path / ".claude" / "budget-ledger.toml"
    for i in range(12):
        _hooklog.write(ledger, "Stop", f"problem {i}", now=0)

    code = main(["doctor", "--project", str(tmp_path), "--log", "2"])

    out = capsys.readouterr().out.splitlines()
    assert code == 0
    assert out[-3:] == [
        f"Hook log ({tmp_path / '.claude' / 'budget-hook.log'}):",
        f"  1970-01-01T00:00:00Z claude-budget {__version__} pid {os.getpid()} Stop: problem 10",
        f"  1970-01-01T00:00:00Z claude-budget {__version__} pid {os.getpid()} Stop: problem 11",
    ]
