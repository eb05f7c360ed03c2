"""A session's life as the hooks see it: resumed, forked, background work, follow-up turns, rewrites."""

from __future__ import annotations

import json
import os
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Dict, List

import kit
import pytest
from kit import Project, totals

from budget_state._accounting import read_new, transcript_time
from budget_state.ledger import _ledger, _records
from budget_state.ledger._state import Cursor


@pytest.fixture
def proj(tmp_path: Path) -> Project:
    return Project(tmp_path)


def _lines(path: Path, *records: Dict[str, Any]) -> None:
    kit.append_lines(path, *records)


def _user(pid: str, content: Any, ts: str, **extra: Any) -> Dict[str, Any]:
    return kit.user_record(pid, content, timestamp=ts, **extra)


def _response(n: int, tokens: int, ts: str, content: List[Dict[str, Any]] | None = None) -> Dict[str, Any]:
    return kit.response_record({"input": tokens}, n=n, timestamp=ts, content=content or [])


def _cost_state(proj: Project, input_tokens: int, usd: float = 0.1) -> None:
    """Claude Code's own totals at the end of an invocation (cumulative over a resumed session)."""
    cost = {"inputTokens": input_tokens, "outputTokens": 0, "cacheReadInputTokens": 0, "cacheCreationInputTokens": 0}
    _lines(proj.transcript, {"type": "cost-state", "modelUsage": {"claude-sonnet-4-5": cost}, "totalCostUSD": usd})


def _review_pr_run(proj: Project, tokens: int) -> str:
    """``/review-pr 1`` as prompt p1 with one response of ``tokens``; the transcripts' time."""
    proj.command("review-pr", 50000)
    proj.run("UserPromptSubmit", prompt="/review-pr 1", prompt_id="p1")
    now = transcript_time(datetime.now(timezone.utc))
    _lines(proj.transcript, _user("p1", "<command-name>/review-pr</command-name>", now), _response(1, tokens, now))
    return now


def test_a_resumed_session_keeps_its_run_when_another_session_compacts_the_ledger(
    proj: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Regression (failed before): ``end_session`` marked the session ended and nothing cleared it,
    so 10 minutes into its resumed turn another session's write dropped it; its next hook counted
    the turn again from its prompt (110 -> 170 here) and kill mode no longer saw the run."""
    clock = [datetime(2026, 12, 1, 12, 0, tzinfo=timezone.utc)]
    monkeypatch.setattr(_ledger, "utcnow", lambda: clock[0])
    proj.env["CLAUDE_BUDGET_MODE"] = "kill"
    proj.command("review-pr", 150)
    proj.run("UserPromptSubmit", prompt="/review-pr 1", prompt_id="p1")
    proj.spend("p1", 50)
    proj.run("Stop", prompt_id="p1")
    proj.run("SessionEnd", prompt_id="p1")

    clock[0] += timedelta(hours=1)  # claude --resume: the same session, a new prompt
    proj.run("UserPromptSubmit", prompt="/review-pr 2", prompt_id="p2")
    proj.spend("p2", 60)
    reply = proj.run("PreToolUse", prompt_id="p2", tool_name="Bash")  # 110 of 150: goes on
    assert reply is None or "continue" not in reply, reply
    clock[0] += timedelta(minutes=11)  # a long tool call; meanwhile another session writes
    proj.run("UserPromptSubmit", prompt="hello", prompt_id="q1", session_id="sess-2")
    proj.spend("p2", 60)

    reply = proj.run("PreToolUse", prompt_id="p2", tool_name="Bash")

    assert reply is not None and reply.get("continue") is False, reply
    assert proj.totals("/review-pr")["input"] == 170


def test_a_rewritten_transcript_does_not_bring_old_command_prompts_back(tmp_path: Path) -> None:
    """Regression (failed before): reading a replaced file again collected ``<command-name>`` from
    every user record, ignoring what was already seen, so settle re-opened runs for old prompts."""
    path = tmp_path / "t.jsonl"
    t1, t2 = "2026-12-01T12:00:00.000Z", "2026-12-01T12:05:00.000Z"
    cmd = "<command-message>review-pr</command-message>\n<command-name>/review-pr</command-name>"
    _lines(path, _user("p1", cmd, t1), _response(1, 10, t1))
    cursor = Cursor()
    assert read_new(path, cursor).commands == {"p1": "/review-pr"}

    replaced = tmp_path / "t.new"
    _lines(replaced, _user("p1", cmd, t1), _response(1, 10, t1))
    _lines(replaced, _user("p2", cmd.replace("review-pr", "other"), t2), _response(2, 5, t2))
    os.replace(replaced, path)  # a new inode

    again = read_new(path, cursor)

    assert again.commands == {"p2": "/other"}
    assert [e.usage["input"] for e in again.entries] == [5]


def test_a_followup_turn_continues_the_run_that_started_the_background_work(proj: Project) -> None:
    proj.command("beta", 50000)
    proj.run("UserPromptSubmit", prompt="/beta", prompt_id="p1")
    now = datetime.now(timezone.utc)  # responses come after the prompt hook
    cmd = "<command-name>/beta</command-name>"
    agent = [{"type": "tool_use", "id": "toolu_1", "name": "Agent", "input": {"prompt": "x"}}]
    _lines(proj.transcript, _user("p1", cmd, transcript_time(now)), _response(1, 100, transcript_time(now), agent))
    sub = proj.transcript.with_suffix("") / "subagents" / "agent-a1.jsonl"
    _lines(sub, _user("p1", "x", transcript_time(now)), _response(2, 40, transcript_time(now)))
    proj.run("Stop", prompt_id="p1", background_tasks=[{"id": "a1", "type": "subagent", "status": "running"}])
    _lines(sub, _response(3, 7, transcript_time(now)))  # the subagent goes on after the turn's Stop

    note = "<task-notification>\n<task-id>a1</task-id>\n<tool-use-id>toolu_1</tool-use-id>\n</task-notification>"
    assert proj.run("UserPromptSubmit", prompt=note, prompt_id="p2") is None
    origin = {"kind": "task-notification", "producer": "session-task"}
    _lines(
        proj.transcript, _user("p2", note, transcript_time(now), origin=origin), _response(4, 3, transcript_time(now))
    )
    proj.run("Stop", prompt_id="p2", background_tasks=[])
    proj.run("SessionEnd", prompt_id="p2")

    state = proj.ledger()
    assert totals(state, "/beta")["input"] == 150
    assert totals(state, "/beta")["runs"] == 1
    assert totals(state, "overall")["input"] == 150


def test_block_mode_refuses_a_followup_turn_of_a_spent_command(proj: Project) -> None:
    proj.env["CLAUDE_BUDGET_MODE"] = "block"
    proj.command("beta", 100)
    proj.run("UserPromptSubmit", prompt="/beta", prompt_id="p1")
    now = transcript_time(datetime.now(timezone.utc))
    agent = [{"type": "tool_use", "id": "toolu_1", "name": "Agent", "input": {"prompt": "x"}}]
    _lines(proj.transcript, _user("p1", "<command-name>/beta</command-name>", now), _response(1, 500, now, agent))
    proj.run("Stop", prompt_id="p1", background_tasks=[{"id": "a1", "type": "subagent", "status": "running"}])

    note = "<task-notification>\n<task-id>a1</task-id>\n<tool-use-id>toolu_1</tool-use-id>\n</task-notification>"
    reply = proj.run("UserPromptSubmit", prompt=note, prompt_id="p2")

    assert reply is not None and reply["decision"] == "block", reply
    assert "/beta" in reply["reason"]


def test_a_fork_subagents_copy_of_the_parent_is_not_counted(proj: Project) -> None:
    proj.command("split", 50000)
    proj.run("UserPromptSubmit", prompt="/split", prompt_id="p1")
    now = transcript_time(datetime.now(timezone.utc))
    fork = [{"type": "tool_use", "id": "toolu_9", "name": "Agent", "input": {"subagent_type": "fork"}}]
    _lines(proj.transcript, _user("p1", "<command-name>/split</command-name>", now), _response(1, 100, now, fork))
    sub = proj.transcript.with_suffix("") / "subagents" / "agent-f1.jsonl"
    sub.parent.mkdir(parents=True)
    sub.with_suffix(".meta.json").write_text(json.dumps({"isFork": True, "toolUseId": "toolu_9"}))
    with open(sub, "w") as f:
        f.write(json.dumps({"type": "fork-context-ref", "agentId": "f1", "contextLength": 3}) + "\n")
    result = [{"type": "tool_result", "tool_use_id": "toolu_9", "content": "Fork started"}]
    _lines(sub, _response(1, 100, now, fork), _user("p1", result, now), _response(2, 30, now))
    proj.run("Stop", prompt_id="p1")

    assert proj.totals("/split")["input"] == 130


def test_a_forked_sessions_copied_history_is_not_counted(proj: Project) -> None:
    """``--fork-session``: the first prompt hook runs before the file exists; Claude Code then
    copies the parent's records (2.1.332: under the new prompt id, with their old times)."""
    proj.command("review-pr", 50000)
    assert not proj.transcript.exists()
    proj.run("UserPromptSubmit", prompt="/review-pr 2", prompt_id="p9")
    old = "2026-11-30T09:00:00.000Z"
    _lines(proj.transcript, _user("p9", "<command-name>/review-pr</command-name>", old), _response(1, 1000, old))
    now = transcript_time(datetime.now(timezone.utc) + timedelta(seconds=1))
    _lines(proj.transcript, _user("p9", "<command-name>/review-pr</command-name>", now), _response(2, 25, now))
    proj.run("Stop", prompt_id="p9")

    state = proj.ledger()
    assert totals(state, "/review-pr")["input"] == 25
    assert totals(state, "overall")["input"] == 25


def test_cost_state_charges_overall_with_what_no_transcript_shows(proj: Project) -> None:
    proj.run("UserPromptSubmit", prompt="hello", prompt_id="p1")
    now = transcript_time(datetime.now(timezone.utc))
    _lines(proj.transcript, _user("p1", "hello", now), _response(1, 100, now))
    _cost_state(proj, 130)
    proj.run("Stop", prompt_id="p1")
    proj.run("SessionEnd", prompt_id="p1")
    proj.run("SessionEnd", prompt_id="p1")  # settling again adds nothing

    state = proj.ledger()
    assert totals(state, "overall")["input"] == 130
    assert state.overall.models["claude-sonnet-4-5"]["input"] == 130


def test_cost_state_extra_of_a_session_that_was_one_command_run_is_that_commands(proj: Project) -> None:
    """``claude -p "/review-pr …"``: a request Claude Code charged that no transcript shows (a stream
    cut and retried, compaction) belonged to the one run the session was — its command gets it too,
    once, whatever the number of settles."""
    _review_pr_run(proj, 100)
    _cost_state(proj, 130)
    proj.run("Stop", prompt_id="p1")
    proj.run("SessionEnd", prompt_id="p1")
    proj.run("SessionEnd", prompt_id="p1")  # settling again adds nothing

    state = proj.ledger()
    assert totals(state, "overall")["input"] == 130
    assert totals(state, "/review-pr")["input"] == 130


def test_cost_state_extra_of_a_session_of_several_runs_stays_overalls(proj: Project) -> None:
    """Two runs in one session: nothing says which one the extra request was, so only overall has it."""
    proj.command("deploy", 50000)
    now = _review_pr_run(proj, 100)
    proj.run("Stop", prompt_id="p1")
    proj.run("UserPromptSubmit", prompt="/deploy", prompt_id="p2")
    _lines(proj.transcript, _user("p2", "<command-name>/deploy</command-name>", now), _response(2, 10, now))
    _cost_state(proj, 150)
    proj.run("Stop", prompt_id="p2")
    proj.run("SessionEnd", prompt_id="p2")

    state = proj.ledger()
    assert totals(state, "overall")["input"] == 150
    assert {n: totals(state, n)["input"] for n in _records.command_names(state)} == {"/review-pr": 100, "/deploy": 10}


def test_cost_state_extra_of_a_later_invocation_is_not_the_earlier_runs(proj: Project) -> None:
    """``--resume`` then ``/compact``: the compaction is in the session's next totals, but the
    session's one run belonged to the invocation before; only overall gets it."""
    _review_pr_run(proj, 100)
    _cost_state(proj, 100)
    proj.run("Stop", prompt_id="p1")
    proj.run("SessionEnd", prompt_id="p1")
    _cost_state(proj, 160, 0.2)  # the resumed invocation's /compact, cumulative
    proj.run("SessionEnd", prompt_id="p1")

    state = proj.ledger()
    assert totals(state, "overall")["input"] == 160
    assert totals(state, "/review-pr")["input"] == 100


def test_cost_state_extra_of_a_later_invocation_is_not_the_earlier_runs_even_when_it_had_some(
    proj: Project,
) -> None:
    """The first invocation's own extra (here 30 tokens; in the real CLI often one micro-dollar of
    Claude Code's rounding) is its run's; a later invocation's is still overall's only (found by
    the ``--resume`` then ``/compact`` e2e test, which failed whenever the first run was given a
    micro-dollar)."""
    _review_pr_run(proj, 100)
    _cost_state(proj, 130)
    proj.run("Stop", prompt_id="p1")
    proj.run("SessionEnd", prompt_id="p1")
    assert totals(proj.ledger(), "/review-pr")["input"] == 130
    _cost_state(proj, 190, 0.2)  # the resumed invocation's /compact, cumulative
    proj.run("SessionEnd", prompt_id="p1")

    state = proj.ledger()
    assert totals(state, "overall")["input"] == 190
    assert totals(state, "/review-pr")["input"] == 130
    assert state.sessions[proj.session].run_share("p1")[0] == 30


def test_an_earlier_runs_extra_is_given_back_when_claude_codes_totals_later_say_less(proj: Project) -> None:
    """What a run was given from Claude Code's totals is a correction: when a later count shows
    that part of it was a response the transcripts now have, the run gives that part back (never
    more than it was given), so it is not counted twice."""
    now = _review_pr_run(proj, 100)
    _cost_state(proj, 130)
    proj.run("SessionEnd", prompt_id="p1")
    # a response of the run written after that count, then a count that has it
    _lines(proj.transcript, _response(2, 20, now))
    _cost_state(proj, 140, 0.2)
    proj.run("SessionEnd", prompt_id="p1")

    state = proj.ledger()
    assert totals(state, "overall")["input"] == 140
    assert totals(state, "/review-pr")["input"] == 140
    assert state.sessions[proj.session].run_share("p1")[0] == 20
