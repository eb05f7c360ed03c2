"""Many writers on one ledger at once: hook processes of several sessions, an orchestrator recording
through the API, and another process holding the lock with ``filelock`` for a while. The totals must
come out exact: what the transcripts hold (each response once) plus what the API recorded.
"""

from __future__ import annotations

import random
import subprocess
import threading
import time
from typing import Any

import kit

from budget_state.ledger import _records

SESSIONS = 4
PROMPTS = 4
API_RECORDS = 30
HOLD = 1.5  # seconds the lock is held elsewhere: well under the hooks' lock_timeout below
COMMANDS: tuple[str | None, ...] = ("/alpha", "/beta", None)

# An orchestrator: record_usage in a loop, one "." on stdout per record done.
API = """
import sys
import budget_state
project, n = sys.argv[1], int(sys.argv[2])
commands = ["/alpha", "/beta", None]
for i in range(n):
    usage = {"input": i + 1, "output": 2 * i, "cache_read": 3}
    budget_state.record_usage(usage, command=commands[i % 3], model="claude-api", project=project)
    sys.stdout.write("."); sys.stdout.flush()
"""


def _api_expected(kit: Any) -> tuple[dict[str, dict[str, int]], dict[str, int]]:
    per: dict[str, dict[str, int]] = {"overall": {}, "/alpha": {}, "/beta": {}}
    runs = {"/alpha": 0, "/beta": 0}
    for i in range(API_RECORDS):
        usage = {"input": i + 1, "output": 2 * i, "cache_read": 3}
        kit.add(per["overall"], usage)
        command = COMMANDS[i % 3]
        if command is not None:
            kit.add(per[command], usage)
            runs[command] += 1
    return per, runs


def test_hooks_and_api_hammering_one_ledger_count_exactly(proj: Any, hold_lock: Any) -> None:
    proj.command("alpha", "1B")
    proj.command("beta", "1B")
    env = {**proj.env, "CLAUDE_BUDGET_LOCK_TIMEOUT": "30"}
    zero = dict.fromkeys(kit.CATEGORIES, 0)
    expected: dict[str, dict[str, int]] = {"overall": dict(zero), "/alpha": dict(zero), "/beta": dict(zero)}
    runs = {"/alpha": 0, "/beta": 0}
    guard = threading.Lock()
    calls: list[tuple[str, str, Any, float, float]] = []  # session, event, reply, start, end
    errors: list[BaseException] = []
    first_prompts_done = threading.Barrier(SESSIONS + 1, timeout=kit.TIMEOUT)
    go = threading.Event()

    def session(i: int) -> None:
        rng = random.Random(i)
        sid = f"sess-{i}"
        t = proj.writer(sid)
        t.user("before-install")
        t.response({"input": 10**6, "output": 10**6}, repeats=3)  # history: never counted

        def hook(event: str, **fields: Any) -> None:
            start = time.monotonic()
            reply = proj.hook_proc(event, sid, env=env, **fields)
            with guard:
                calls.append((sid, event, reply, start, time.monotonic()))

        def spend(usage: dict[str, int], command: str | None) -> None:
            with guard:
                kit.add(expected["overall"], usage)
                if command is not None:
                    kit.add(expected[command], usage)

        try:
            for j in range(PROMPTS):
                pid = f"{sid}-p{j}"
                command = COMMANDS[(i + j) % 3]
                hook("UserPromptSubmit", prompt=f"{command} {j}" if command else f"hello {j}", prompt_id=pid)
                if command is not None:
                    with guard:
                        runs[command] += 1
                if j == 0:
                    first_prompts_done.wait()
                    assert go.wait(kit.TIMEOUT)
                t.user(pid)
                for _ in range(2):
                    usage = {c: rng.randint(0, 20000) for c in kit.CATEGORIES}
                    repeats, grow = rng.randint(1, 4), rng.choice([0, 0, 9])
                    data = b"".join(t.response_lines(usage, repeats=repeats, grow=grow))
                    cut = rng.randint(1, len(data) - 1)
                    t.write(data[:cut])  # a hook reads while a line is half written
                    hook("PreToolUse", prompt_id=pid, tool_name="Bash")
                    t.write(data[cut:])
                    hook("SubagentStop", prompt_id=pid)
                    spend(kit.counted(usage, repeats=repeats, grow=grow), command)
                if j == 1:
                    sub = kit.Transcript(t.path.with_suffix("") / "subagents" / f"agent-{i}.jsonl")
                    sub.user(pid)
                    spend(sub.response({"input": 7, "output": 70 + i}, repeats=2, grow=3), command)
                    hook("SubagentStop", prompt_id=pid, agent_transcript_path=str(sub.path))
                hook("Stop", prompt_id=pid)
            hook("SessionEnd")
        except BaseException as e:  # noqa: BLE001 (handed to the test thread)
            errors.append(e)
            first_prompts_done.abort()
            go.set()

    threads = [threading.Thread(target=session, args=(i,), daemon=True) for i in range(SESSIONS)]
    for th in threads:
        th.start()
    api: subprocess.Popen[bytes] | None = None
    try:
        first_prompts_done.wait()
        holder = hold_lock(proj.lock_path, env)
        api = subprocess.Popen(
            [kit.PYTHON, "-c", API, str(proj.root), str(API_RECORDS)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
        )
        go.set()
        time.sleep(HOLD)  # the scenario: the lock stays held this long while everyone piles up
        released_at = time.monotonic()
        holder.release()
        out, err = api.communicate(timeout=kit.TIMEOUT)
        assert (api.returncode, out, err) == (0, b"." * API_RECORDS, b"")
    finally:
        go.set()
        for th in threads:
            th.join(kit.TIMEOUT)
        if api is not None and api.poll() is None:
            api.kill()
            api.wait(kit.TIMEOUT)
    assert not errors, errors
    assert not any(th.is_alive() for th in threads)

    assert len(calls) == SESSIONS * (PROMPTS * 6 + 2)
    for sid, event, reply, _, _ in calls:
        assert (reply.rc, reply.out, reply.err) == (0, "", ""), (sid, event, reply)
    waited = [(start, end) for _, _, _, start, end in calls if holder.held_at <= start < released_at]
    assert waited, "no hook ran while the lock was held: the scenario did not happen"
    assert all(end > released_at for _, end in waited), "a hook got past a lock held by filelock"

    api_usage, api_runs = _api_expected(kit)
    state = proj.ledger()
    for scope in ("overall", "/alpha", "/beta"):
        want = dict(expected[scope])
        kit.add(want, api_usage[scope])
        assert kit.tokens(state, scope) == want, scope
    for command in ("/alpha", "/beta"):
        assert kit.totals(state, command)["runs"] == runs[command] + api_runs[command], command
    assert state.overall.models["claude-api"]["input"] == api_usage["overall"]["input"]
    hook_runs = [r for r in _records.runs(state) if r.source != "api"]
    assert len(hook_runs) == sum(runs.values()) and all(r.ended is not None for r in hook_runs)


# A writer that never pauses: record_usage on /alpha and /beta in turn until told to stop (stdin closes).
WRITER = """
import sys, threading
import budget_state
project = sys.argv[1]
done = threading.Event()
threading.Thread(target=lambda: (sys.stdin.read(), done.set()), daemon=True).start()
i = 0
while not done.is_set():
    budget_state.record_usage({"input": 1 + i % 7}, command=("/alpha", "/beta")[i % 2], model="m", project=project)
    i += 1
    if i == 1:
        sys.stdout.write("."); sys.stdout.flush()
"""


def test_a_status_read_while_writers_commit_is_one_commits_view(proj: Any) -> None:
    """Every response charges overall and its command in one commit: a status (read without the
    lock, parts read as they are used) must never show one without the other — overall is exactly
    /alpha plus /beta in every snapshot, however the writers' commits fall between its reads."""
    import budget_state

    proj.command("alpha", "1B")
    proj.command("beta", "1B")
    writers = [
        subprocess.Popen(
            [kit.PYTHON, "-c", WRITER, str(proj.root)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=proj.env,
        )
        for _ in range(2)
    ]
    try:
        for w in writers:
            assert w.stdout is not None and w.stdout.read(1) == b"."  # recording
        seen = set()
        deadline = time.monotonic() + 3  # a bound on the attack, not a timing check
        while time.monotonic() < deadline:
            snap = budget_state.snapshot(proj.root, env=proj.env)
            parts = snap.commands["/alpha"].used + snap.commands["/beta"].used
            assert snap.overall.used == parts, (snap.overall.used, parts)
            seen.add(snap.overall.used)
    finally:
        for w in writers:
            w.communicate(b"", timeout=kit.TIMEOUT)
    assert len(seen) > 3  # the snapshots did fall among the commits
    assert all(w.returncode == 0 for w in writers), [w.stderr for w in writers]
