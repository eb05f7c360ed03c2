"""A project's committed settings on a teammate's machine: no interpreter path of ours in them.

The teammate's clone has ``.claude/settings.json`` but not ``settings.local.json`` (per machine,
not committed). With claude-budget installed their own way (here: a pipx-style
``claude-budget-hook`` on PATH) the hooks count and enforce; without it, one line per session
and no errors — or a refusal where the project asks for ``on_error = "closed"``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from e2e_harness import REPO, FakeAPI, Project, total
from test_plugin import path_without_claude_budget

from budget_state._wiring import NOT_INSTALLED


def from_another_machine(p: Project) -> None:
    shared = (p.root / ".claude" / "settings.json").read_text()
    assert sys.executable not in shared and str(REPO) not in shared, "the committed settings name this machine"
    (p.root / ".claude" / "settings.local.json").unlink()  # not in the teammate's clone


def test_committed_settings_count_and_enforce_where_installed_another_way(project, fake_api: FakeAPI, tmp_path: Path):
    p = project()
    from_another_machine(p)
    pipx_bin = tmp_path / "pipx-bin"  # pipx links each app's scripts into one folder on PATH
    pipx_bin.mkdir()
    (pipx_bin / "claude-budget-hook").symlink_to(Path(sys.executable).parent / "claude-budget-hook")
    env = {"PATH": f"{pipx_bin}:{path_without_claude_budget()}"}
    p.write_config('mode = "block"\n')
    p.write_command("review-pr", "Review PR $ARGUMENTS. SCRIPT: bash, text", token_budget=1000)

    first = p.run_claude("/review-pr 1", extra_env=env)
    second = p.run_claude("/review-pr 2", extra_env=env)

    assert first.requests == 2 and not first.blocked, first.describe()
    cmd = p.status()["commands"]["/review-pr"]
    assert (cmd["tokens"], cmd["used"]) == (fake_api.totals(), total(first.usage))
    assert second.blocked and second.requests == 0, second.describe()


def test_a_teammate_without_claude_budget_gets_one_line_not_an_error_per_event(project, fake_api, tmp_path: Path):
    p = project()
    from_another_machine(p)
    env = {"PATH": path_without_claude_budget(), "TMPDIR": str(tmp_path)}

    run = p.run_claude("Say hi. SCRIPT: bash, text", extra_env=env, output="stream-json")

    assert run.returncode == 0 and not run.blocked and run.requests == 2, run.describe()
    shown = [e.get("content") for e in run.events if NOT_INSTALLED in json.dumps(e)]
    # 2.1.332's stream-json carries a hook's systemMessage; 2.1.197's -p shows it nowhere
    assert shown == ([f"UserPromptSubmit says: {NOT_INSTALLED}"] if p.cli.at_least(2, 1, 332) else []), shown
    assert "hook error" not in json.dumps(run.events).lower()
    assert "error" not in run.stderr.lower(), run.stderr
    marks = (p.home / ".claude" / "claude-budget-missing").read_text().split()
    assert len(marks) == 1 and marks[0].isdigit()  # said once, for this Claude Code process (its pid)
    assert not list(tmp_path.glob("claude-budget-missing*"))  # nothing in a shared temp folder
    assert not p.ledger.exists()  # nothing ran

    p.write_config('on_error = "closed"\n')  # the team wants enforcement, not a silent gap
    refused = p.run_claude("Say hi. SCRIPT: text", extra_env=env)

    assert refused.blocked and refused.requests == 0, refused.describe()
    assert NOT_INSTALLED in refused.text, refused.text
