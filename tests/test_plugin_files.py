"""The plugin and the marketplace in this repository, and the plugin's hook runner (POSIX sh)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Dict

import pytest

from budget_state import __version__, _install, _wiring, hook

REPO = Path(__file__).resolve().parents[1]
PLUGIN = REPO / "plugin"
SHIM = PLUGIN / "hooks" / "claude-budget.sh"

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover (Python < 3.11)
    import tomli as tomllib


def test_marketplace_holds_the_plugin() -> None:
    market = json.loads((REPO / ".claude-plugin" / "marketplace.json").read_text())
    manifest = json.loads((PLUGIN / ".claude-plugin" / "plugin.json").read_text())

    assert market["name"] == "claude-budget" and market["plugins"][0]["name"] == manifest["name"] == "claude-budget"
    assert (REPO / market["plugins"][0]["source"]).resolve() == PLUGIN
    assert f"{manifest['name']}@{market['name']}" == _wiring.PLUGIN_ID
    assert manifest["version"] == __version__  # one version: budget_state.__version__
    assert manifest["license"] == "MIT"
    assert (PLUGIN / "budget_state").resolve() == (REPO / "budget_state")  # the code it runs
    assert (PLUGIN / "commands" / "budget.md").is_file()


def test_plugin_hooks_are_the_installed_events_plus_session_start() -> None:
    hooks = json.loads((PLUGIN / "hooks" / "hooks.json").read_text())["hooks"]

    assert list(hooks) == ["SessionStart", *_install.HOOK_EVENTS]
    for event, groups in hooks.items():
        (handler,) = groups[0]["hooks"]
        assert handler["command"] == f'sh "${{CLAUDE_PLUGIN_ROOT}}/hooks/claude-budget.sh" {event}'
        assert handler["timeout"] == (300 if event == "SessionStart" else 30)
    assert hooks["PreToolUse"][0]["matcher"] == "*"


def test_requirements_are_the_package_dependencies() -> None:
    declared = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    listed = [
        line for line in (PLUGIN / "hooks" / "requirements.txt").read_text().splitlines() if line and line[0] != "#"
    ]

    def norm(req: str) -> str:
        return re.sub(r"\s+", "", req.replace("'", '"')).lower()

    hooks_need = [d for d in declared if not d.startswith(("filelock", "rich"))]  # Windows only; `watch` only
    assert sorted(map(norm, listed)) == sorted(norm(d) for d in hooks_need)


def test_background_events_agree() -> None:
    assert _wiring._BACKGROUND == hook.BACKGROUND_EVENTS


def test_the_runner_is_posix_sh() -> None:
    assert subprocess.run(["sh", "-n", str(SHIM)], capture_output=True).returncode == 0


def shim(
    event: str, project: Path, data: Path, extra: Dict[str, str] | None = None
) -> subprocess.CompletedProcess[bytes]:
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(data.parent / "home"),
        "CLAUDE_PROJECT_DIR": str(project),
        "CLAUDE_PLUGIN_ROOT": str(PLUGIN),
        "CLAUDE_PLUGIN_DATA": str(data),
        **(extra or {}),
    }
    return subprocess.run(["sh", str(SHIM), event], input=b"{}", capture_output=True, env=env, timeout=60)


@pytest.fixture
def fake_venv(tmp_path: Path) -> Path:
    """A plugin data folder whose venv python reports what the hook would get."""
    data = tmp_path / "data"
    python = data / "venv" / "bin" / "python"
    python.parent.mkdir(parents=True)
    python.write_text(
        f"#!{sys.executable}\nimport os, sys\nsys.stdin.read()\n"
        "print(' '.join(sys.argv[1:4]), os.environ.get('CLAUDE_BUDGET_STATE'), sys.argv[-1])\n"
    )
    python.chmod(0o755)
    return data


def test_the_runner_stands_down_where_the_settings_count(tmp_path: Path, fake_venv: Path) -> None:
    project = tmp_path / "proj"
    (project / ".claude").mkdir(parents=True)
    (project / ".claude" / "settings.json").write_text(json.dumps({"hooks": {"x": _wiring.hook_command()}}))
    hook_script = project / ".venv" / "bin" / "claude-budget-hook"
    hook_script.parent.mkdir(parents=True)
    hook_script.write_text("#!/bin/sh\n")
    hook_script.chmod(0o755)

    done = shim("UserPromptSubmit", project, fake_venv)

    assert (done.returncode, done.stdout, done.stderr) == (0, b"", b"")


def test_the_runner_counts_into_the_project_or_its_data_folder(tmp_path: Path, fake_venv: Path) -> None:
    project = tmp_path / "proj"
    (project / ".claude").mkdir(parents=True)
    bare = tmp_path / "bare"  # no .claude/: no project to keep a ledger in
    bare.mkdir()

    in_project = shim("SessionEnd", project, fake_venv)
    no_project = shim("UserPromptSubmit", bare, fake_venv)

    isolated = f"-I -X pycache_prefix={fake_venv / 'pycache'}"
    assert in_project.stdout.decode() == f"{isolated} None {PLUGIN}\n"
    assert no_project.stdout.decode() == f"{isolated} {fake_venv / 'budget-ledger.toml'} {PLUGIN}\n"


def test_without_python_the_runner_says_so_once_and_fails_no_event(tmp_path: Path) -> None:
    project = tmp_path / "proj"
    (project / ".claude").mkdir(parents=True)
    data = tmp_path / "data"

    first = shim("UserPromptSubmit", project, data)
    again = shim("UserPromptSubmit", project, data)
    others = [shim(e, project, data) for e in ("PreToolUse", "Stop", "SessionEnd")]

    message = json.loads(first.stdout)["systemMessage"]
    assert message.startswith("claude-budget: its Python environment is not set up")
    assert (first.returncode, first.stderr) == (0, b"")
    assert [(r.returncode, r.stdout, r.stderr) for r in (again, *others)] == [(0, b"", b"")] * 4


def test_the_runner_decides_when_to_wait_by_the_settings_lines_own_rule() -> None:
    """One rule for "may this PreToolUse decide?": the runner carries _wiring.MAY_DECIDE verbatim."""
    text = SHIM.read_text()
    block = text.split("# BEGIN MAY_DECIDE\n", 1)[1].split("# END MAY_DECIDE", 1)[0]
    assert block.strip() == _wiring.MAY_DECIDE.strip(), "copy budget_state._wiring.MAY_DECIDE into the runner"
    assert _wiring.MAY_DECIDE in _wiring.hook_command(event="PreToolUse")


def test_the_runner_runs_the_plugins_code_isolated_from_the_project_folder(tmp_path: Path) -> None:
    """A json.py in the project (the hook's working folder) or on PYTHONPATH is never imported."""
    project = tmp_path / "proj"
    (project / ".claude").mkdir(parents=True)
    evil = tmp_path / "evil"
    evil.mkdir()
    for folder in (project, evil):
        (folder / "json.py").write_text("import pathlib; pathlib.Path(__file__).with_name('ran').touch()\n")
    data = tmp_path / "data"
    python = data / "venv" / "bin" / "python"
    python.parent.mkdir(parents=True)
    python.write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')  # this test venv's Python, packages and all
    python.chmod(0o755)

    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path / "home"),
        "CLAUDE_PROJECT_DIR": str(project),
        "CLAUDE_PLUGIN_ROOT": str(PLUGIN),
        "CLAUDE_PLUGIN_DATA": str(data),
        "PYTHONPATH": str(evil),
    }
    payload = json.dumps(
        {"hook_event_name": "UserPromptSubmit", "session_id": "s", "prompt": "/budget", "cwd": str(project)}
    )
    done = subprocess.run(
        ["sh", str(SHIM), "UserPromptSubmit"], input=payload.encode(), capture_output=True, env=env, cwd=project
    )

    assert done.returncode == 0, done.stderr
    assert "Token budgets" in json.loads(done.stdout)["reason"]  # the hook ran, and answered /budget
    assert not (project / "ran").exists() and not (evil / "ran").exists()


def test_the_mod_finds_python_by_the_settings_lines_own_isolated_rule() -> None:
    """The mod's Python is found and run as the hook lines do it: _wiring._FIND verbatim (python -I)."""
    for mod in (PLUGIN / "hooks" / "claude-budget.mod.ts", Path(_wiring.__file__).with_name("claude-budget.mod.ts")):
        block = mod.read_text().split("// BEGIN FIND\n", 1)[1].split("// END FIND", 1)[0]
        literal = block.strip().removeprefix("const FIND_PYTHON = ")
        assert json.loads(literal) == _wiring._FIND, f"{mod}: copy budget_state._wiring._FIND into FIND_PYTHON"
