"""Which hooks Claude Code waits for: the shell lines install writes, and the hook in the background."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, List, Optional

import pytest
from kit import Project, open_run

from budget_state._install import install
from budget_state._wiring import NOT_INSTALLED, PYTHON_ENV, hook_command
from budget_state.ledger import _records

PY = "/opt/venv/bin/python"


def run_line(command: str, project: Path, payload: bytes, env: Dict[str, str]) -> subprocess.CompletedProcess[bytes]:
    """``command`` as Claude Code runs it: ``/bin/sh -c``, the event on stdin, in the project."""
    return subprocess.run(
        ["/bin/sh", "-c", command],
        input=payload,
        capture_output=True,
        env={"PATH": "/usr/bin:/bin", **env},
        cwd=project,
        timeout=60,
    )


def commands(project: Path) -> Dict[str, str]:
    settings = json.loads((project / ".claude" / "settings.json").read_text())
    return {event: groups[0]["hooks"][0]["command"] for event, groups in settings["hooks"].items()}


FAKE = """\
import sys
sys.stdin.read()
print("background" if "--background" in sys.argv else "foreground")
"""


@pytest.mark.parametrize(
    ("config", "env", "where"),
    [
        (None, {}, "background"),
        ('# mode = "kill"\nmode = "warn"\n', {}, "background"),
        ('mode = "block"\n', {}, "background"),
        ('mode = "kill"\n', {}, "foreground"),
        ("mode='Kill-Running'\n", {}, "foreground"),
        ('on_error = "closed"\n', {}, "foreground"),
        (None, {"CLAUDE_BUDGET_MODE": "kill"}, "foreground"),
        (None, {"CLAUDE_BUDGET_ON_ERROR": "closed"}, "foreground"),
        ('mode = "kill"\n', {"CLAUDE_BUDGET_MODE": "warn"}, "foreground"),  # a false alarm: only slower
    ],
    ids=["none", "commented", "block", "kill", "kill-running", "closed", "env-kill", "env-closed", "env-warn"],
)
def test_pre_tool_use_waits_only_where_it_may_decide(
    tmp_path: Path, config: Optional[str], env: Dict[str, str], where: str
) -> None:
    """The line reads the mode without Python (sh and grep), so a change of mode needs no new install."""
    fake = tmp_path / "python"
    fake.write_text(f"#!{sys.executable}\n{FAKE}")
    fake.chmod(0o755)
    install(tmp_path, python=str(fake))
    if config is not None:
        (tmp_path / ".claude" / "budget.toml").write_text(config)
    line = commands(tmp_path)["PreToolUse"]

    env = {"CLAUDE_PROJECT_DIR": str(tmp_path), PYTHON_ENV: str(fake), "HOME": str(tmp_path), **env}
    done = run_line(line, tmp_path, b"{}", env)

    assert done.returncode == 0
    if where == "foreground":
        assert done.stdout == b"foreground\n"
    else:
        assert done.stdout == b""  # the hook went on in the background, its output to /dev/null


@pytest.mark.parametrize(("entrypoint", "where"), [("cli", "foreground"), ("sdk-cli", "background")])
def test_stop_answers_in_the_interactive_tui_only(tmp_path: Path, entrypoint: str, where: str) -> None:
    fake = tmp_path / "python"
    fake.write_text(f"#!{sys.executable}\n{FAKE}")
    fake.chmod(0o755)
    install(tmp_path, python=str(fake))
    line = commands(tmp_path)["Stop"]

    done = run_line(line, tmp_path, b"{}", {"CLAUDE_CODE_ENTRYPOINT": entrypoint, PYTHON_ENV: str(fake)})

    assert (done.returncode, done.stdout) == (0, b"foreground\n" if where == "foreground" else b"")


# --- the hook --------------------------------------------------------------------------------------


@pytest.fixture
def proj(tmp_path: Path) -> Project:
    p = Project(tmp_path)
    p.command("deploy", 100)
    return p


def test_a_hook_in_the_background_decides_nothing_and_leaves_the_crossing_to_the_next(proj: Project) -> None:
    (proj.root / ".claude" / "budget.toml").write_text('mode = "kill"\n')
    assert proj.run("UserPromptSubmit", prompt="/deploy", prompt_id="p1") is None
    proj.spend("p1", 150)

    assert proj.run("PreToolUse", args=["--background"], prompt_id="p1", tool_name="Bash") is None
    assert proj.totals("/deploy")["input"] == 150  # counted all the same

    reply = proj.run("PreToolUse", prompt_id="p1", tool_name="Bash")
    assert reply is not None and reply["continue"] is False
    assert reply["stopReason"].startswith("Token budget exceeded: /deploy has used 150 of 100 tokens")


def test_a_late_stop_in_the_background_leaves_the_next_turn_running(proj: Project) -> None:
    assert proj.run("UserPromptSubmit", prompt="/deploy", prompt_id="p1") is None
    proj.spend("p1", 10)
    assert proj.run("UserPromptSubmit", prompt="/deploy again", prompt_id="p2") is None
    proj.spend("p2", 20)

    assert proj.run("Stop", args=["--background"], prompt_id="p1") is None  # p1's Stop, after p2 began

    state = proj.ledger()
    assert open_run(state, "sess-1") == "p2"
    assert [r.ended is not None for r in _records.runs(state)] == [True, False]
    assert proj.run("Stop", args=["--background"], prompt_id="p2") is None
    session = _records.session(proj.ledger(), "sess-1")
    assert session is not None and session.run is None


def test_the_background_command_hands_the_event_to_the_hook(proj: Project) -> None:
    """The shell line install writes returns at once, and the hook it started still gets stdin."""
    install(proj.root, python=sys.executable)
    settings = json.loads((proj.root / ".claude" / "settings.json").read_text())
    command: str = settings["hooks"]["PreToolUse"][0]["hooks"][0]["command"]
    assert proj.run("UserPromptSubmit", prompt="/deploy", prompt_id="p1") is None
    proj.spend("p1", 42)

    env = {**proj.env, PYTHON_ENV: sys.executable}  # as .claude/settings.local.json sets it
    done = run_line(command, proj.root, json.dumps(proj.payload("PreToolUse", prompt_id="p1", tool_name="Bash")).encode(), env)

    assert (done.returncode, done.stdout, done.stderr) == (0, b"", b"")
    deadline = time.monotonic() + 30  # a bound on waiting for the detached hook, not a timing check
    counted: List[int] = []
    while time.monotonic() < deadline:
        counted = [proj.tokens("/deploy")["input"]]
        if counted == [42]:
            break
        time.sleep(0.05)
    assert counted == [42]


# --- the portable line: which hook it finds ---------------------------------------------------------


def fake_python(path: Path, says: str) -> Path:
    """An "interpreter" that prints who it is and the arguments it was given."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"#!{sys.executable}\nimport sys\nsys.stdin.read()\nprint({says!r}, *sys.argv[1:])\n")
    path.chmod(0o755)
    return path


def console_script(path: Path, first_line: str) -> Path:
    """A console script as pip, pipx and uv write one: a ``#!`` line, then Python that runs the hook."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"{first_line}\nimport sys\nsys.stdin.read()\nprint('script', *sys.argv[1:])\n")
    path.chmod(0o755)
    return path


@pytest.mark.parametrize(
    ("have", "found"),
    [
        (["pointer", "venv", "path"], "pointer -I -m budget_state.hook"),
        (["venv", "path"], "venv -I -m budget_state.hook"),
        (["path"], "path -I -m budget_state.hook"),
    ],
    ids=["pointer-first", "project-venv-next", "path-last"],
)
def test_the_line_finds_the_hook_in_order_and_runs_it_isolated(tmp_path: Path, have: List[str], found: str) -> None:
    """Every form runs ``<python> -I -m budget_state.hook``: the interpreter the pointer names, the
    project venv's, or the one a console script's ``#!`` line names."""
    project = tmp_path / "proj"
    (project / ".claude").mkdir(parents=True)
    env = {"CLAUDE_PROJECT_DIR": str(project), "HOME": str(tmp_path)}
    if "pointer" in have:
        env[PYTHON_ENV] = str(fake_python(tmp_path / "elsewhere" / "python", "pointer"))
    if "venv" in have:
        fake_python(project / ".venv" / "bin" / "python", "venv")
        console_script(project / ".venv" / "bin" / "claude-budget-hook", f"#!{project / '.venv' / 'bin' / 'python'}")
    path = "/usr/bin:/bin"
    if "path" in have:
        pipx = fake_python(tmp_path / "pipx" / "venv" / "bin" / "python", "path")
        path = f"{console_script(tmp_path / 'pipx' / 'bin' / 'claude-budget-hook', f'#!{pipx}').parent}:{path}"

    done = subprocess.run(
        ["/bin/sh", "-c", hook_command(event="UserPromptSubmit")],
        input=b"{}",
        capture_output=True,
        env={**env, "PATH": path},
        cwd=project,
        timeout=60,
    )

    assert (done.returncode, done.stdout.decode(), done.stderr) == (0, found + "\n", b"")


@pytest.mark.parametrize("first_line", ["#!/bin/sh", f"#!/usr/bin/env {os.path.basename(sys.executable)}"])
def test_a_console_script_of_another_form_runs_as_it_is_without_the_variables_that_steer_imports(
    tmp_path: Path, first_line: str
) -> None:
    """pip's ``#!/bin/sh`` form (long paths) or an ``env`` line: the script itself, PYTHONPATH and co. cleared."""
    project = tmp_path / "proj"
    (project / ".claude").mkdir(parents=True)
    bindir = tmp_path / "bin"
    script = bindir / "claude-budget-hook"
    if first_line == "#!/bin/sh":
        script.parent.mkdir(parents=True)
        script.write_text(
            f"#!/bin/sh\nexec {sys.executable} -c 'import os, sys; sys.stdin.read(); "
            "print(\"script\", os.environ.get(\"PYTHONPATH\"), os.environ.get(\"PYTHONNOUSERSITE\"))'\n"
        )
        script.chmod(0o755)
        path = f"{bindir}:/usr/bin:/bin"
    else:
        console_script(script, first_line)
        path = f"{bindir}:{os.path.dirname(sys.executable)}:/usr/bin:/bin"
    env = {"CLAUDE_PROJECT_DIR": str(project), "HOME": str(tmp_path), "PATH": path, "PYTHONPATH": str(project)}

    done = run_line(hook_command(event="UserPromptSubmit"), project, b"{}", env)

    assert done.returncode == 0, done.stderr
    expected = "script None 1\n" if first_line == "#!/bin/sh" else "script\n"
    assert done.stdout.decode() == expected


def missing(project: Path, tmp: Path, event: str, **extra: str) -> subprocess.CompletedProcess[bytes]:
    """The line where claude-budget is not installed (nothing on PATH but the system's tools)."""
    env = {"CLAUDE_PROJECT_DIR": str(project), "HOME": str(tmp / "home"), "TMPDIR": str(tmp), **extra}
    (tmp / "home" / ".claude").mkdir(parents=True, exist_ok=True)  # Claude Code's own folder, always there
    return run_line(hook_command(event=event), project, b"{}", env)


def test_not_installed_says_so_once_per_session_and_nothing_else(tmp_path: Path) -> None:
    project = tmp_path / "proj"
    (project / ".claude").mkdir(parents=True)

    first = missing(project, tmp_path, "UserPromptSubmit")
    again = missing(project, tmp_path, "UserPromptSubmit")  # same parent process: the same session
    others = [missing(project, tmp_path, e) for e in ("PreToolUse", "Stop", "SubagentStop", "SessionEnd")]

    assert (first.returncode, first.stderr) == (0, b"")
    assert json.loads(first.stdout) == {"systemMessage": NOT_INSTALLED}
    assert (again.returncode, again.stdout, again.stderr) == (0, b"", b"")
    assert [(o.returncode, o.stdout, o.stderr) for o in others] == [(0, b"", b"")] * 4


@pytest.mark.parametrize(
    ("config", "env"),
    [('on_error = "closed"\n', {}), (None, {"CLAUDE_BUDGET_ON_ERROR": "closed"})],
    ids=["file", "env"],
)
def test_not_installed_refuses_every_prompt_where_on_error_is_closed(
    tmp_path: Path, config: Optional[str], env: Dict[str, str]
) -> None:
    project = tmp_path / "proj"
    (project / ".claude").mkdir(parents=True)
    if config:
        (project / ".claude" / "budget.toml").write_text(config)

    replies = [missing(project, tmp_path, "UserPromptSubmit", **env) for _ in range(2)]

    for done in replies:
        assert (done.returncode, done.stderr) == (0, b"")
        assert json.loads(done.stdout) == {"decision": "block", "reason": NOT_INSTALLED + " (on_error is closed)"}


def test_not_installed_is_silent_where_the_plugin_counts(tmp_path: Path) -> None:
    project = tmp_path / "proj"
    (project / ".claude").mkdir(parents=True)
    (tmp_path / "home" / ".claude").mkdir(parents=True)
    (tmp_path / "home" / ".claude" / "settings.json").write_text(
        json.dumps({"enabledPlugins": {"claude-budget@claude-budget": True}}, indent=2)
    )

    done = missing(project, tmp_path, "UserPromptSubmit")

    assert (done.returncode, done.stdout, done.stderr) == (0, b"", b"")


def test_the_message_survives_the_shell_and_json() -> None:
    assert not set(NOT_INSTALLED) & set("'\"\\%$`")
