"""Which hooks Claude Code waits for: the shell lines install writes, and the hook in the background."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, List, Optional

import pytest
from test_hook import Project

from budget_state._install import install

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
    """The shell line reads the mode without Python, so a change of mode needs no new install."""
    fake = tmp_path / "python"
    fake.write_text(f"#!{sys.executable}\n{FAKE}")
    fake.chmod(0o755)
    install(tmp_path, python=str(fake))
    if config is not None:
        (tmp_path / ".claude" / "budget.toml").write_text(config)
    line = commands(tmp_path)["PreToolUse"].replace(" -m budget_state.hook", "")  # the fake is a script

    done = run_line(line, tmp_path, b"{}", {"CLAUDE_PROJECT_DIR": str(tmp_path), **env})

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
    line = commands(tmp_path)["Stop"].replace(" -m budget_state.hook", "")

    done = run_line(line, tmp_path, b"{}", {"CLAUDE_CODE_ENTRYPOINT": entrypoint})

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
    assert proj.ledger()["commands"]["/deploy"]["input"] == 150  # counted all the same

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
    assert state["sessions"]["sess-1"]["run"] == "p2"
    assert ["ended" in r for r in state["runs"]] == [True, False]
    assert proj.run("Stop", args=["--background"], prompt_id="p2") is None
    assert "run" not in proj.ledger()["sessions"]["sess-1"]


def test_the_background_command_hands_the_event_to_the_hook(proj: Project) -> None:
    """The shell line install writes returns at once, and the hook it started still gets stdin."""
    install(proj.root, python=sys.executable)
    settings = json.loads((proj.root / ".claude" / "settings.json").read_text())
    command: str = settings["hooks"]["PreToolUse"][0]["hooks"][0]["command"]
    assert proj.run("UserPromptSubmit", prompt="/deploy", prompt_id="p1") is None
    proj.spend("p1", 42)

    done = run_line(command, proj.root, proj.payload("PreToolUse", prompt_id="p1", tool_name="Bash"), proj.env)

    assert (done.returncode, done.stdout, done.stderr) == (0, b"", b"")
    deadline = time.monotonic() + 30  # a bound on waiting for the detached hook, not a timing check
    counted: List[int] = []
    while time.monotonic() < deadline:
        counted = [proj.ledger().get("commands", {}).get("/deploy", {}).get("input", 0)]
        if counted == [42]:
            break
        time.sleep(0.05)
    assert counted == [42]
