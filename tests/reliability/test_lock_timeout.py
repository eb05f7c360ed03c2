"""The ledger lock held elsewhere (``filelock``, as an orchestrator holds it) past the hook's patience:
the hook gives up in time — well inside Claude Code's 30 s hook timeout — and fails open with the
documented line, or refuses (UserPromptSubmit) / stops (PreToolUse) when on_error is closed. What
happened meanwhile is counted once the lock is free again.
"""

from __future__ import annotations

import subprocess
import time
from typing import Any

import pytest
import kit

LIMIT = 10.0  # seconds: a third of Claude Code's 30 s UserPromptSubmit timeout
EVENTS: dict[str, dict[str, Any]] = {
    "UserPromptSubmit": {"prompt": "/alpha go", "prompt_id": "p2"},
    "PreToolUse": {"prompt_id": "p1", "tool_name": "Bash"},
    "SubagentStop": {"prompt_id": "p1"},
    "Stop": {"prompt_id": "p1"},
    "SessionEnd": {},
}


def _timeout_text(proj: Any, seconds: str) -> str:
    return (
        f"the ledger lock {proj.lock_path} was held by another process for more than {seconds} s — if nothing is "
        "running, that process is stuck; raise lock_timeout in .claude/budget.toml if this is a busy machine"
    )


def _open_reply(text: str) -> dict[str, Any]:
    return {"systemMessage": f"claude-budget: {text} (budgets not enforced for this step)"}


def _closed_reply(event: str, text: str) -> dict[str, Any]:
    reason = f"claude-budget could not check the budgets, and on_error is closed: {text}"
    if event == "UserPromptSubmit":
        return {"decision": "block", "reason": reason}
    if event == "PreToolUse":
        return {"continue": False, "stopReason": reason}
    return _open_reply(text)  # Stop and the rest cannot refuse anything: they only tell


def _all_events_against_a_held_lock(proj: Any, env: dict[str, str], hold_lock: Any) -> dict[str, tuple[Any, float]]:
    """Start every event's hook at once while the lock is held; each one's reply and wall time."""
    holder = hold_lock(proj.lock_path, proj.env)
    started: list[tuple[str, float, subprocess.Popen[bytes]]] = []
    for event, fields in EVENTS.items():
        started.append((event, time.monotonic(), proj.spawn_hook(event, env=env, **fields)))
    results = {}
    for event, start, proc in started:
        out, err = proc.communicate(timeout=60)
        elapsed = time.monotonic() - start
        assert (proc.returncode, err) == (0, b""), (event, proc.returncode, err)
        results[event] = (out.decode(), elapsed)
    holder.release()
    return results


def _session(proj: Any) -> Any:
    proj.command("alpha", "1M")
    assert proj.hook("UserPromptSubmit", prompt="/alpha first", prompt_id="p1").out == ""
    t = proj.writer("s1")
    t.user("p1")
    return t


def test_hook_gives_up_in_time_and_fails_open(proj: Any, hold_lock: Any) -> None:
    _session(proj)
    env = {**proj.env, "CLAUDE_BUDGET_LOCK_TIMEOUT": "1"}
    results = _all_events_against_a_held_lock(proj, env, hold_lock)
    for event, (out, elapsed) in results.items():
        assert kit.check_reply(out) == _open_reply(_timeout_text(proj, "1")), event
        assert 1.0 <= elapsed < LIMIT, (event, elapsed)


@pytest.mark.parametrize("how", ["env", "env-uppercase", "config"])
def test_hook_gives_up_in_time_and_fails_closed(proj: Any, hold_lock: Any, how: str) -> None:
    _session(proj)
    env = {**proj.env, "CLAUDE_BUDGET_LOCK_TIMEOUT": "1"}
    if how == "config":
        (proj.root / ".claude" / "budget.toml").write_text('on_error = "closed"\n')
    else:
        env["CLAUDE_BUDGET_ON_ERROR"] = "closed" if how == "env" else "CLOSED"  # settings are case-blind
    results = _all_events_against_a_held_lock(proj, env, hold_lock)
    for event, (out, elapsed) in results.items():
        assert kit.check_reply(out) == _closed_reply(event, _timeout_text(proj, "1")), event
        assert 1.0 <= elapsed < LIMIT, (event, elapsed)


def test_default_lock_timeout_is_well_inside_claude_codes_limit(proj: Any, hold_lock: Any) -> None:
    _session(proj)
    holder = hold_lock(proj.lock_path, proj.env)
    reply = proj.hook_proc("UserPromptSubmit", prompt="hi", prompt_id="p2")
    holder.release()
    assert (reply.rc, reply.err) == (0, ""), reply
    assert reply.json == _open_reply(_timeout_text(proj, "5"))
    assert 5.0 <= reply.elapsed < LIMIT, reply


def _timed_out(proj: Any, hold_lock: Any, event: str, session: str = "s1", **fields: Any) -> None:
    holder = hold_lock(proj.lock_path, proj.env)
    try:
        env = {**proj.env, "CLAUDE_BUDGET_LOCK_TIMEOUT": "0.2"}
        reply = proj.hook(event, session, env=env, **fields)
        assert reply.json == _open_reply(_timeout_text(proj, "0.2")), reply
    finally:
        holder.release()


def test_what_a_timed_out_hook_missed_is_counted_later(proj: Any, hold_lock: Any) -> None:
    t = _session(proj)
    spent = t.response({"input": 100, "output": 30, "cache_read": 5})
    _timed_out(proj, hold_lock, "SubagentStop", prompt_id="p1")
    assert proj.hook("Stop", prompt_id="p1").out == ""
    state = proj.ledger()
    assert kit.tokens(state, "overall") == spent
    assert kit.tokens(state, "/alpha") == spent


def test_a_sessions_first_prompt_whose_hook_timed_out_is_still_counted(proj: Any, hold_lock: Any) -> None:
    """The first hook of a session failed: the next one must not take the whole turn as old history."""
    t = proj.writer("s2")
    _timed_out(proj, hold_lock, "UserPromptSubmit", "s2", prompt="hello", prompt_id="q1")
    t.user("q1")
    spent = t.response({"input": 70, "output": 8})
    assert proj.hook("SubagentStop", "s2", prompt_id="q1").out == ""
    assert proj.hook("Stop", "s2", prompt_id="q1").out == ""
    assert proj.tokens("overall") == spent


def test_a_command_whose_prompt_hook_timed_out_is_still_charged_to_it(proj: Any, hold_lock: Any) -> None:
    """The prompt went on (fail open); its run must still count toward /alpha, not only overall."""
    t = _session(proj)
    assert proj.hook("Stop", prompt_id="p1").out == ""
    _timed_out(proj, hold_lock, "UserPromptSubmit", prompt="/alpha again", prompt_id="p2")
    t.user(
        "p2",
        "<command-message>alpha</command-message>\n<command-name>/alpha</command-name>\n<command-args>again</command-args>",
    )
    spent = t.response({"input": 50, "output": 5})
    assert proj.hook("SubagentStop", prompt_id="p2").out == ""
    assert proj.hook("Stop", prompt_id="p2").out == ""
    state = proj.ledger()
    assert kit.tokens(state, "overall") == spent
    assert kit.tokens(state, "/alpha") == spent
    assert kit.totals(state, "/alpha")["runs"] == 2
