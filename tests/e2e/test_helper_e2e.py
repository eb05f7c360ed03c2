"""The resident helper answers the real CLI's hook events, and the count stays exact.

The project's hook lines run ``$CLAUDE_BUDGET_PYTHON``, here a wrapper that notes every time the
hook runs as a process of its own (the fallback) before it runs the real interpreter. The first
event of the first session has no helper to go to, so the hook runs itself and starts one; from
then on the helper answers: a second session adds no line. Killing the helper between sessions
costs one event the old way, and nothing of the count.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from pathlib import Path

from e2e_harness import FakeAPI, Project, total

from budget_state.helper import alive, endpoints

SCRIPT = "SCRIPT: bash, bash, text"


def wrap(p: Project, tmp_path: Path) -> Path:
    log = tmp_path / "direct.log"
    wrapper = tmp_path / "bin" / "python"
    wrapper.parent.mkdir()
    wrapper.write_text(f'#!/bin/sh\necho "$$ $*" >> "{log}"\nexec "{sys.executable}" "$@"\n')
    wrapper.chmod(0o755)
    local = p.root / ".claude" / "settings.local.json"
    settings = json.loads(local.read_text())
    settings["env"]["CLAUDE_BUDGET_PYTHON"] = str(wrapper)
    local.write_text(json.dumps(settings))
    return log


def lines(log: Path) -> int:
    """Interpreter starts for hook events (not the mod's Python child, `--mod`, on 2.1.286+)."""
    return len([x for x in log.read_text().splitlines() if "--mod" not in x]) if log.exists() else 0


def quiet(log: Path) -> int:
    """The wrapper's count once the first session's stragglers are in: a background event that ran
    the hook itself may still be starting, and a second helper started by one may be waiting (up to
    2 s) for the first one's lock."""
    time.sleep(2.5)
    return lines(log)


def stop_all(p: Project) -> list[int]:
    """Kill every helper of the project's user, and any that takes over in the next 2.5 s."""
    killed: list[int] = []
    deadline = time.monotonic() + 2.5
    while time.monotonic() < deadline:
        for _, end in endpoints(p.env()):
            if end is not None and alive(end.pid):
                os.killpg(end.pid, signal.SIGKILL)
                killed.append(end.pid)
        time.sleep(0.1)
    return killed


def helper_pid(p: Project) -> int:
    env = p.env()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        running = [end.pid for _, end in endpoints(env) if end is not None and alive(end.pid)]
        if running:
            return running[0]
        time.sleep(0.05)
    raise AssertionError("no helper came up")


def test_the_helper_answers_the_hooks_of_later_sessions(project, fake_api: FakeAPI, tmp_path: Path):
    p = project()
    log = wrap(p, tmp_path)
    p.write_command("deploy", f"Deploy $ARGUMENTS. {SCRIPT}", token_budget=10_000_000)

    first = p.run_claude("/deploy 1")
    pid = helper_pid(p)
    after_first = quiet(log)
    second = p.run_claude("/deploy 2")

    assert not first.blocked and not second.blocked, (first.describe(), second.describe())
    assert 1 <= after_first <= 6  # the hook ran itself until the helper was up (it starts in ~0.1 s)
    assert lines(log) == after_first  # every event of the second session went to the helper
    assert pid in (helper_pid(p), *[end.pid for _, end in endpoints(p.env()) if end])
    cmd = p.status()["commands"]["/deploy"]
    assert (cmd["tokens"], cmd["runs"]) == (fake_api.totals(), 2)
    assert cmd["used"] == total(first.usage) + total(second.usage)


def test_a_killed_helper_costs_one_event_and_nothing_of_the_count(project, fake_api: FakeAPI, tmp_path: Path):
    p = project()
    log = wrap(p, tmp_path)
    p.write_config('mode = "kill"\n')  # PreToolUse waits for the helper's answer too
    p.write_command("deploy", f"Deploy $ARGUMENTS. {SCRIPT}", token_budget=10_000_000)
    p.run_claude("/deploy 1")
    helper_pid(p)
    killed = stop_all(p)
    before = lines(log)

    run = p.run_claude("/deploy 2")

    assert not run.blocked, run.describe()
    assert helper_pid(p) not in killed
    assert 1 <= lines(log) - before <= 6  # the hook ran itself until a new helper was up
    cmd = p.status()["commands"]["/deploy"]
    assert (cmd["tokens"], cmd["runs"]) == (fake_api.totals(), 2)
