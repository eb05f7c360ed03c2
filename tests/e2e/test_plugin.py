"""The Claude Code plugin, installed from this repository's marketplace into a fresh HOME.

No ``claude-budget install`` and no claude-budget on PATH: the plugin finds a Python, makes its
environment once at SessionStart (in ``${CLAUDE_PLUGIN_DATA}``), and counts into the project's
ledger. With a project install as well, the plugin stands down and nothing is counted twice.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from e2e_harness import REPO, ClaudeCLI, FakeAPI, Project, clean_env, total

BIG = 1_000_000


def path_without_claude_budget() -> str:
    """PATH minus every folder that has a claude-budget-hook (this venv's, an activated one)."""
    dirs = os.environ.get("PATH", "/usr/bin:/bin").split(os.pathsep)
    return os.pathsep.join(d for d in dirs if d and not os.path.exists(os.path.join(d, "claude-budget-hook")))


def bare_project(tmp_path: Path, claude: ClaudeCLI, api: FakeAPI, name: str) -> Project:
    root, home = tmp_path / name, tmp_path / f"{name}-home"
    (root / ".claude").mkdir(parents=True)
    home.mkdir()
    (home / ".claude.json").write_text(json.dumps({"hasCompletedOnboarding": True}), encoding="utf-8")
    return Project(root, home, api, claude)


def install_plugin(p: Project) -> None:
    """As a user would: add this repository as a marketplace, install the plugin from it."""
    env = clean_env({"HOME": str(p.home), "PATH": path_without_claude_budget()})
    for args in (["plugin", "marketplace", "add", str(REPO)], ["plugin", "install", "claude-budget@claude-budget"]):
        done = subprocess.run(
            [str(p.claude), *args], cwd=p.root, env=env, capture_output=True, text=True, timeout=120, check=False
        )
        assert done.returncode == 0, f"claude {' '.join(args)}: {done.stdout}\n{done.stderr}"
    settings = json.loads((p.home / ".claude" / "settings.json").read_text())
    assert settings["enabledPlugins"] == {"claude-budget@claude-budget": True}


def plugin_data(p: Project) -> Path:
    return p.home / ".claude" / "plugins" / "data" / "claude-budget-claude-budget"


@pytest.fixture
def plugged(tmp_path: Path, claude: ClaudeCLI, fake_api: FakeAPI) -> Project:
    p = bare_project(tmp_path, claude, fake_api, "plugged")
    install_plugin(p)
    return p


def test_the_plugin_counts_exactly_refuses_and_answers_budget_for_free(plugged: Project, fake_api: FakeAPI) -> None:
    p = plugged
    env = {"PATH": path_without_claude_budget()}
    p.write_command("review-pr", "Review PR $ARGUMENTS. SCRIPT: bash, text", token_budget=BIG)

    work = p.run_claude("/review-pr 1", extra_env=env)

    assert work.requests == 2 and not work.blocked, work.describe()
    assert (plugin_data(p) / "venv" / "bin" / "python").exists()  # made once, at SessionStart
    cmd = p.status()["commands"]["/review-pr"]
    assert cmd["tokens"] == fake_api.totals() == work.usage
    assert (cmd["used"], cmd["runs"]) == (total(work.usage), 1)

    # plugin commands are /<plugin>:<name>; 2.1.332 also hands a bare /budget to the hooks, and
    # its mod registers /budget (display only: no "blocked" frame)
    asks = ["/claude-budget:budget", *(["/budget"] if p.cli.at_least(2, 1, 332) else [])]
    for ask in asks:
        status = p.run_claude(ask, extra_env=env)
        assert status.requests == 0, status.describe()
        assert status.by_mod if ask == "/budget" else status.blocked, status.describe()
        assert "/review-pr" in status.text, status.text

    p.write_config('mode = "block"\n')
    p.write_command("deploy", "Deploy. SCRIPT: text", token_budget=1000)
    first = p.run_claude("/deploy 1", extra_env=env)
    second = p.run_claude("/deploy 2", extra_env=env)

    assert first.requests == 1 and not first.blocked, first.describe()
    assert second.blocked and second.requests == 0, second.describe()
    assert "/deploy" in second.text, second.text
    assert p.status()["commands"]["/deploy"]["used"] == total(first.usage)
    # state only in the project and the plugin's data folder; nothing in the plugin itself
    assert p.ledger.exists()
    assert not list((REPO / "plugin").rglob("budget-ledger*"))
    assert not list((p.home / ".claude" / "plugins" / "cache").rglob("budget-ledger*"))
    doctor = p.budget_cli("doctor", "--json", extra_env={"PATH": path_without_claude_budget()})
    checks = {c["check"]: c for c in json.loads(doctor.stdout)["checks"]}
    assert checks["hooks"]["detail"] == "wired in the plugin claude-budget@claude-budget", checks
    assert checks["plugin"]["status"] == "ok", checks
    assert "a plugin cannot set one" in checks["statusline"]["detail"], checks


def test_plugin_and_project_install_together_count_once(tmp_path: Path, claude: ClaudeCLI, fake_api: FakeAPI) -> None:
    p = bare_project(tmp_path, claude, fake_api, "both")
    install_plugin(p)
    done = p.budget_cli("install", str(p.root))
    assert done.returncode == 0, done.stderr
    p.write_command("review-pr", "Review PR $ARGUMENTS. SCRIPT: bash, text", token_budget=BIG)

    work = p.run_claude("/review-pr 1", extra_env={"PATH": path_without_claude_budget()})

    assert work.requests == 2, work.describe()
    cmd = p.status()["commands"]["/review-pr"]
    assert (cmd["tokens"], cmd["runs"]) == (fake_api.totals(), 1)
    assert not (plugin_data(p) / "venv").exists()  # the plugin stood down from its first hook on
    doctor = p.budget_cli("doctor", "--json")
    checks = {c["check"]: c for c in json.loads(doctor.stdout)["checks"]}
    assert checks["double count"]["status"] == "warn", checks
    assert "the plugin stands down" in checks["double count"]["detail"], checks
    assert checks["hooks"]["detail"].endswith("the plugin claude-budget@claude-budget"), checks
