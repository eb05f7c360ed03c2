"""The resident helper under stress: the hook lines install writes, run as Claude Code runs them.

Every event goes through ``/bin/sh -c <line>`` with the event on stdin. The hook the line finds is
a wrapper (``$CLAUDE_BUDGET_PYTHON``) that notes each run of its own in ``direct.log`` and then
runs the real interpreter: so a test can tell an event the helper answered (no new line) from one
the hook ran itself (the fallback). The helper's life is observed through its endpoint file and
``/proc``; every wait is bounded.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import REPO, TIMEOUT, Project, add, check_reply, counted, tokens_of

from budget_state._install import install
from budget_state.helper import SUFFIX, Endpoint, alive, read_endpoint

pytestmark = pytest.mark.skipif(not shutil.which("bash") or not os.path.isdir("/proc"), reason="needs bash and /proc")

USAGE = {"input": 11, "output": 222, "cache_creation": 3_000, "cache_read": 40_000}


class Wired:
    """A project wired by ``claude-budget install``, whose hook lines run through a noting wrapper."""

    def __init__(self, tmp: Path, name: str = "proj", *, code: Path | None = None, **env: str) -> None:
        self.project = Project(tmp / name)
        self.root = self.project.root
        self.direct_log = tmp / name / "direct.log"
        wrapper = tmp / name / "bin" / "python"
        wrapper.parent.mkdir(parents=True)
        wrapper.write_text(f'#!/bin/sh\necho "$$ $*" >> "{self.direct_log}"\nexec "{sys.executable}" "$@"\n')
        wrapper.chmod(0o755)
        self.wrapper = wrapper
        install(self.root, python=sys.executable)
        settings = json.loads((self.root / ".claude" / "settings.json").read_text())
        self.lines = {event: groups[0]["hooks"][0]["command"] for event, groups in settings["hooks"].items()}
        self.env = dict(self.project.env)
        self.env.update(CLAUDE_BUDGET_PYTHON=str(wrapper), PYTHONPATH=str(code or REPO), **env)
        self.helpers = Path(self.env["HOME"]) / ".cache" / "claude-budget" / "helper"

    def line(self, event: str, session: str, *, raw: bytes | None = None, **fields: Any) -> dict[str, Any] | None:
        stdin = raw if raw is not None else json.dumps(self.project.payload(event, session, fields)).encode()
        done = subprocess.run(
            ["/bin/sh", "-c", self.lines[event]],
            input=stdin,
            capture_output=True,
            env=self.env,
            cwd=self.root,
            timeout=TIMEOUT,
        )
        assert done.returncode == 0, done
        assert done.stderr == b"", done.stderr  # silent: Claude Code shows a hook's stderr as an error
        return check_reply(done.stdout.decode())

    def direct_runs(self) -> int:
        try:
            return len(self.direct_log.read_text().splitlines())
        except FileNotFoundError:
            return 0

    def endpoint(self) -> Endpoint | None:
        files = sorted(self.helpers.glob(f"*{SUFFIX}")) if self.helpers.is_dir() else []
        return read_endpoint(files[0]) if files else None

    def wait_for_helper(self, other_than: int | None = None) -> Endpoint:
        """The running helper's endpoint (a new one, when ``other_than`` names the old pid)."""
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline:
            end = self.endpoint()
            if end is not None and end.pid != other_than and alive(end.pid):
                return end
            time.sleep(0.02)
        raise AssertionError("no helper came up")

    def warm(self, session: str = "warm") -> Endpoint:
        """One event the hook runs itself (there is no helper yet); it starts the helper."""
        assert self.line("SessionEnd", session, reason="other") is None
        return self.wait_for_helper()


def _read_toml(path: Path) -> dict[str, Any]:
    from budget_state._toml import loads

    return loads(path.read_text())


def turn(w: Wired, session: str, prompt: str, responses: int, *, command: str = "/deploy go") -> dict[str, int]:
    """A whole turn through the hook lines: prompt, a response and PreToolUse per tool, Stop; what it spent."""
    t = w.project.transcript(session)
    t.user(prompt)
    assert w.line("UserPromptSubmit", session, prompt=command, prompt_id=prompt) is None
    spent: dict[str, int] = {}
    for k in range(responses):
        add(spent, t.response(USAGE))
        w.line("PreToolUse", session, prompt_id=prompt, tool_name="Bash", tool_use_id=f"toolu_{prompt}_{k}")
    w.line("Stop", session, prompt_id=prompt, last_assistant_message="x")
    return spent


def settled(w: Wired, want: dict[str, int], scope: str = "/deploy") -> dict[str, int]:
    """The command's totals once the background events are in (bounded wait: they are off the path)."""
    deadline = time.monotonic() + TIMEOUT
    got: dict[str, int] = {}
    while time.monotonic() < deadline:
        got = tokens_of(_read_toml(w.project.ledger_path).get("commands", {}).get(scope))
        if got == want:
            return got
        time.sleep(0.05)
    return got


@pytest.fixture
def wired(tmp_path: Path) -> Iterator[Wired]:
    w = Wired(tmp_path)
    w.project.command("deploy", 10_000_000)
    yield w


def helper_pids(end: Endpoint) -> list[int]:
    """The helper and its children (its spares and events): its process group."""
    out = []
    for pid in (int(p) for p in os.listdir("/proc") if p.isdigit()):
        try:
            if os.getpgid(pid) == end.pid:
                out.append(pid)
        except OSError:
            continue
    return out


# --- the helper answers -----------------------------------------------------------------------------


def test_after_the_first_event_the_helper_answers_and_counts_exactly(wired: Wired) -> None:
    wired.warm()
    assert wired.direct_runs() == 1  # the first event: no helper yet, the hook ran itself and started one

    want: dict[str, int] = {}
    for n in range(3):
        add(want, turn(wired, f"s{n}", f"p{n}", responses=3))
        assert wired.line("SessionEnd", f"s{n}", reason="other") is None

    assert wired.direct_runs() == 1  # every later event went to the helper
    assert settled(wired, want) == want


def test_the_helper_gives_the_same_answers_as_the_hook(wired: Wired) -> None:
    wired.project.command("tiny", 10)
    wired.warm()
    (wired.root / ".claude" / "budget.toml").write_text('mode = "block"\n')
    turn(wired, "s1", "p1", responses=1, command="/tiny now")
    wired.line("SessionEnd", "s1", reason="other")  # it may tell of the crossing a background hook saw

    refused = wired.line("UserPromptSubmit", "s2", prompt="/tiny again", prompt_id="p2")
    status = wired.line("UserPromptSubmit", "s2", prompt="/budget", prompt_id="p3")
    assert wired.direct_runs() == 1
    wired.env["CLAUDE_BUDGET_HELPER"] = "off"  # the hook itself, in the same state
    refused_direct = wired.line("UserPromptSubmit", "s3", prompt="/tiny again", prompt_id="p4")
    assert wired.direct_runs() == 2

    assert refused is not None and refused["decision"] == "block" and "/tiny" in refused["reason"]
    assert status is not None and status["decision"] == "block" and "Token budgets" in status["reason"]
    assert refused_direct == refused


def test_the_event_keeps_its_environment(wired: Wired) -> None:
    """The helper runs each event with the event's variables, not its own (started by another event)."""
    wired.project.command("tiny", 10)
    wired.warm()
    turn(wired, "s1", "p1", responses=1, command="/tiny now")
    wired.line("SessionEnd", "s1", reason="other")  # it may tell of the crossing a background hook saw

    warn = wired.line("UserPromptSubmit", "s2", prompt="/tiny again", prompt_id="p2")
    wired.env["CLAUDE_BUDGET_MODE"] = "block"
    block = wired.line("UserPromptSubmit", "s3", prompt="/tiny again", prompt_id="p3")

    assert warn is None or "decision" not in warn  # warn mode: at most a note, the prompt goes on
    assert block is not None and block["decision"] == "block"
    assert wired.direct_runs() == 1


def test_a_large_event_goes_through_whole(wired: Wired) -> None:
    wired.warm()
    t = wired.project.transcript("s1")
    t.user("p1")
    assert wired.line("UserPromptSubmit", "s1", prompt="/deploy go", prompt_id="p1") is None
    spent = t.response(USAGE)
    big = {"file_path": "/tmp/x", "content": "é" * 1_500_000}  # a Write of a 3 MB file
    wired.env["CLAUDE_BUDGET_MODE"] = "kill"  # PreToolUse waits for the hook's answer
    assert wired.line("PreToolUse", "s1", prompt_id="p1", tool_name="Write", tool_input=big, tool_use_id="t1") is None
    assert wired.direct_runs() == 1
    assert settled(wired, spent) == spent


def test_hooks_at_once_through_one_helper_lose_nothing(wired: Wired) -> None:
    wired.warm()
    results: list[dict[str, int]] = []
    errors: list[BaseException] = []

    def session(n: int) -> None:
        try:
            results.append(turn(wired, f"s{n}", f"p{n}", responses=4))
            wired.line("SessionEnd", f"s{n}", reason="other")
        except BaseException as e:  # noqa: BLE001 (reported below)
            errors.append(e)

    threads = [threading.Thread(target=session, args=(n,)) for n in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(TIMEOUT)
    assert not errors
    want: dict[str, int] = {}
    for r in results:
        add(want, r)
    assert settled(wired, want) == want
    assert wired.direct_runs() == 1


def test_off_means_no_helper(tmp_path: Path) -> None:
    w = Wired(tmp_path, CLAUDE_BUDGET_HELPER="off")
    w.project.command("deploy", 10_000_000)
    spent = turn(w, "s1", "p1", responses=2)
    assert w.line("SessionEnd", "s1", reason="other") is None
    assert settled(w, spent) == spent
    time.sleep(0.3)  # a helper would be up by now (it is started after the hook answers)
    assert w.endpoint() is None
    assert w.direct_runs() == 5  # prompt, 2 tools, Stop, SessionEnd: each a hook process


# --- the helper fails: the hook answers, and the next helper is a good one ----------------------------


def test_a_killed_helper_is_replaced_and_nothing_is_lost(wired: Wired) -> None:
    old = wired.warm()
    for pid in helper_pids(old):
        os.kill(pid, signal.SIGKILL)

    spent = turn(wired, "s1", "p1", responses=2)  # the first event finds nobody: the hook runs it

    new = wired.wait_for_helper(other_than=old.pid)
    assert wired.direct_runs() >= 2
    assert settled(wired, spent) == spent
    before = wired.direct_runs()
    more = turn(wired, "s2", "p2", responses=1)
    add(spent, more)
    assert wired.direct_runs() == before  # the new helper answers
    assert settled(wired, spent) == spent
    assert alive(new.pid)


def test_a_wedged_helper_costs_one_wait_then_is_replaced(wired: Wired) -> None:
    old = wired.warm()
    stopped = helper_pids(old)
    for pid in stopped:
        os.kill(pid, signal.SIGSTOP)  # alive, connected to, answering nothing
    try:
        t = wired.project.transcript("s1")
        t.user("p1")
        started = time.monotonic()
        assert wired.line("UserPromptSubmit", "s1", prompt="/deploy go", prompt_id="p1") is None
        waited = time.monotonic() - started
        spent = t.response(USAGE)
        wired.line("Stop", "s1", prompt_id="p1", last_assistant_message="x")

        new = wired.wait_for_helper(other_than=old.pid)
        assert waited < 10  # the greeting's 2 s, then the hook itself: not the hook's 30 s limit
        assert not any(alive(pid) for pid in stopped)  # the fallback stopped it (SIGKILL works on stopped)
        assert settled(wired, spent) == spent
        assert alive(new.pid)
    finally:
        for pid in stopped:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass


def test_a_helper_whose_code_changed_hands_over_to_the_new_code(tmp_path: Path) -> None:
    """An upgrade (or an edit of an editable install) while the helper runs the old code."""
    code = tmp_path / "code"
    shutil.copytree(REPO / "budget_state", code / "budget_state", ignore=shutil.ignore_patterns("__pycache__"))
    w = Wired(tmp_path, code=code)
    w.project.command("deploy", 10_000_000)
    old = w.warm()

    units = code / "budget_state" / "_units.py"
    units.write_text(units.read_text() + "\n# 0.3.1: a new release\n")
    t = w.project.transcript("s1")
    t.user("p1")
    before = w.direct_runs()
    assert w.line("UserPromptSubmit", "s1", prompt="/deploy go", prompt_id="p1") is None

    assert w.direct_runs() == before + 1  # the old helper said "stale": the new code ran the event
    new = w.wait_for_helper(other_than=old.pid)
    deadline = time.monotonic() + TIMEOUT
    while alive(old.pid) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not alive(old.pid)
    spent = t.response(USAGE)
    w.line("Stop", "s1", prompt_id="p1", last_assistant_message="x")
    assert w.direct_runs() == before + 1  # and the new helper answers from then on
    assert settled(w, spent) == spent
    assert alive(new.pid)


def test_a_port_someone_else_holds_never_gets_the_event(wired: Wired, tmp_path: Path) -> None:
    """The helper is gone and another program listens on its port: the client waits for the server
    token before it sends anything, so the event never reaches that program."""
    old = wired.warm()
    for pid in helper_pids(old):
        os.kill(pid, signal.SIGKILL)
    stranger = socket.socket()
    stranger.bind(("127.0.0.1", 0))
    stranger.listen(8)
    path = next(wired.helpers.glob(f"*{SUFFIX}"))
    path.write_text(Endpoint(stranger.getsockname()[1], old.client_token, old.server_token, old.pid).line())
    received: list[bytes] = []

    def serve() -> None:
        conn, _ = stranger.accept()
        conn.sendall(b"hello, I am not claude-budget\n")
        conn.settimeout(5)
        try:
            while chunk := conn.recv(65536):
                received.append(chunk)
        except OSError:
            pass
        conn.close()

    th = threading.Thread(target=serve)
    th.start()
    try:
        spent = turn(wired, "s1", "p1", responses=1)
    finally:
        th.join(TIMEOUT)
        stranger.close()
    assert b"".join(received) == b""
    assert settled(wired, spent) == spent
    wired.wait_for_helper(other_than=old.pid)


def test_two_projects_share_one_helper_and_keep_their_own_ledgers(tmp_path: Path) -> None:
    a = Wired(tmp_path, "a")
    b = Wired(tmp_path, "b")
    # One user, two projects, one interpreter: the same hook command, so the same helper.
    b.env.update(HOME=a.env["HOME"], CLAUDE_BUDGET_PYTHON=a.env["CLAUDE_BUDGET_PYTHON"])
    b.helpers = a.helpers
    a.project.command("deploy", 10_000_000)
    b.project.command("deploy", 10_000_000)
    helper = a.warm()

    spent_a = turn(a, "sa", "pa", responses=2)
    spent_b = turn(b, "sb", "pb", responses=3)

    assert a.direct_runs() == 1 and b.direct_runs() == 0  # b's events went to the same helper
    assert settled(a, spent_a) == spent_a
    assert settled(b, spent_b) == spent_b
    assert a.endpoint() == helper


def test_the_helper_leaves_when_idle_or_when_its_endpoint_is_gone(tmp_path: Path) -> None:
    w = Wired(tmp_path, CLAUDE_BUDGET_HELPER_IDLE="1")
    first = w.warm()
    deadline = time.monotonic() + TIMEOUT
    while alive(first.pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not alive(first.pid)
    assert w.endpoint() is None  # it removed its endpoint on the way out

    w.env.pop("CLAUDE_BUDGET_HELPER_IDLE")
    second = w.warm("again")
    next(w.helpers.glob(f"*{SUFFIX}")).unlink()
    deadline = time.monotonic() + TIMEOUT
    while alive(second.pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not alive(second.pid)
    assert not any(alive(p) for p in helper_pids(second))  # its spares went with it


def test_claude_budget_helper_shows_and_stops_it(wired: Wired) -> None:
    end = wired.warm()

    def cli(*args: str) -> Any:
        done = subprocess.run(
            [sys.executable, "-m", "budget_state", "helper", *args, "--json"],
            capture_output=True,
            env=wired.env,
            timeout=TIMEOUT,
        )
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)

    shown = cli()
    assert shown["version"] == 1 and shown["enabled"] is True
    assert [(h["pid"], h["port"], h["running"]) for h in shown["helpers"]] == [(end.pid, end.port, True)]

    assert len(cli("stop")["stopped"]) == 1
    deadline = time.monotonic() + TIMEOUT
    while alive(end.pid) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not alive(end.pid)
    assert cli()["helpers"] == []
    spent = turn(wired, "s1", "p1", responses=1)  # the next event runs the hook and starts a new one
    assert settled(wired, spent) == spent
    wired.wait_for_helper(other_than=end.pid)


def test_a_stale_endpoint_never_signals_the_process_that_now_has_its_pid(wired: Wired, tmp_path: Path) -> None:
    """A killed helper leaves its endpoint file; the pid in it may be someone else's by now."""
    old = wired.warm()
    for pid in helper_pids(old):
        os.kill(pid, signal.SIGKILL)
    bystander = subprocess.Popen(["sleep", "60"], start_new_session=True)
    try:
        path = next(wired.helpers.glob(f"*{SUFFIX}"))
        path.write_text(Endpoint(old.port, old.client_token, old.server_token, bystander.pid).line())
        wired.env["CLAUDE_BUDGET_HELPER"] = "on"
        from budget_state.helper import stop

        assert stop(path.name[: -len(SUFFIX)], wired.env, hard=True) is False
        assert bystander.poll() is None  # still running
    finally:
        bystander.kill()
        bystander.wait()


def _maps(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/maps").read_text()
    except OSError:
        return ""


def test_the_team_engine_is_loaded_only_once_a_project_needs_it(tmp_path: Path) -> None:
    """The database client is ~15 MB that every fork would carry: the helper loads it after the first
    event of a project with team budgets, for the spares it forks from then on."""
    pytest.importorskip("psycopg")
    w = Wired(tmp_path)
    w.project.command("deploy", 10_000_000)
    end = w.warm()
    turn(w, "s1", "p1", responses=1)
    assert "psycopg" not in _maps(end.pid)

    config = w.root / ".claude" / "budget.toml"  # nothing listens there: the event loads the client all the same
    config.write_text(config.read_text() + '\nteam_url = "postgresql://cb@127.0.0.1:9/none"\nteam = "t"\n')
    w.line("UserPromptSubmit", "s2", prompt="/deploy go", prompt_id="p2")
    deadline = time.monotonic() + TIMEOUT
    while "psycopg" not in _maps(end.pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert "psycopg" in _maps(end.pid)
    assert w.endpoint() == end and w.direct_runs() == 1  # the same helper, which answered every event


_IMPORTS_PROBE = r"""
import io, json, sys
from budget_state.helper import server
server._warm()
before = set(sys.modules)
from budget_state import hook
env = json.loads(sys.argv[1])
for payload, args in json.loads(sys.argv[2]):
    hook.main(args, stdin=io.BytesIO(json.dumps(payload).encode()), stdout=io.StringIO(), env=env)
print(json.dumps(sorted(set(sys.modules) - before)))

"""


def test_an_event_imports_nothing_the_helper_has_not_already(wired: Wired) -> None:
    """Each event is a fresh fork of the helper: a module the helper did not import is imported again
    by every event (measured: ~5 ms for the team's small config module). Every kind of event, with a
    dollar budget, in each mode the hook decides in, imports nothing new."""
    (wired.root / ".claude" / "commands" / "cost.md").write_text("---\ncostBudget: 2.5\nbudgetWindow: day\n---\nx\n")
    t = wired.project.transcript("s")
    t.user("p")
    t.response(USAGE)
    events: list[tuple[dict[str, Any], list[str]]] = []
    for mode in ("warn", "kill"):
        for event, fields in (
            ("UserPromptSubmit", {"prompt": "/cost go", "prompt_id": "p"}),
            ("PreToolUse", {"prompt_id": "p", "tool_name": "Bash", "tool_use_id": "toolu_1"}),
            ("Stop", {"prompt_id": "p", "last_assistant_message": "x"}),
            ("UserPromptSubmit", {"prompt": "/budget", "prompt_id": "q"}),
            ("SessionEnd", {"reason": "other"}),
        ):
            for args in ([], ["--background"]):
                events.append((wired.project.payload(event, "s", fields), args))
        env = {**wired.env, "CLAUDE_BUDGET_MODE": mode}
        done = subprocess.run(
            [sys.executable, "-c", _IMPORTS_PROBE, json.dumps(env), json.dumps(events)],
            env=wired.env,
            cwd=wired.root,
            capture_output=True,
            timeout=TIMEOUT,
        )
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout) == [], (mode, json.loads(done.stdout))
