"""The hook in-process: protocol replies for each event, and bad input never breaking a session."""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Callable, Dict

import pytest
from kit import Project, totals

from budget_state.ledger import _records


@pytest.fixture
def proj(tmp_path: Path) -> Project:
    return Project(tmp_path)


def test_plain_prompt_is_silent_and_counts_overall_only(proj: Project) -> None:
    assert proj.run("UserPromptSubmit", prompt="hello", prompt_id="p1") is None
    proj.spend("p1", 100)
    assert proj.run("Stop", prompt_id="p1") is None
    state = proj.ledger()
    assert totals(state, "overall")["input"] == 100
    assert _records.command_names(state) == []


def test_command_run_is_counted_once_per_response(proj: Project) -> None:
    proj.command("review-pr", 50000)
    assert proj.run("UserPromptSubmit", prompt="/review-pr 42", prompt_id="p1") is None
    proj.spend("p1", 100)
    assert proj.run("PreToolUse", prompt_id="p1", tool_name="Bash") is None
    proj.spend("p1", 50)
    assert proj.run("Stop", prompt_id="p1") is None
    assert proj.run("SessionEnd", prompt_id="p1") is None
    state = proj.ledger()
    assert totals(state, "/review-pr")["input"] == 150
    assert totals(state, "/review-pr")["runs"] == 1
    assert totals(state, "overall")["input"] == 150
    run = _records.runs(state)[0]
    assert run.command == "/review-pr" and run.ended is not None


def test_subagent_usage_counts_toward_the_command(proj: Project) -> None:
    proj.command("review-pr", 50000)
    proj.run("UserPromptSubmit", prompt="/review-pr", prompt_id="p1")
    sub = proj.transcript.with_suffix("") / "subagents" / "agent-a1.jsonl"
    proj.spend("p1", 70, path=sub)
    proj.run("SubagentStop", prompt_id="p1", agent_transcript_path=str(sub))
    proj.spend("p1", 30)
    proj.run("Stop", prompt_id="p1")
    assert proj.totals("/review-pr")["input"] == 100


def test_late_lines_after_stop_still_reach_the_run(proj: Project) -> None:
    proj.command("review-pr", 50000)
    proj.run("UserPromptSubmit", prompt="/review-pr", prompt_id="p1")
    proj.run("Stop", prompt_id="p1")
    proj.spend("p1", 40)  # written after Stop fired
    proj.run("SessionEnd")
    assert proj.totals("/review-pr")["input"] == 40


def test_block_mode_refuses_a_spent_command(proj: Project) -> None:
    proj.command("review-pr", 100)
    proj.config('mode = "block"\n')
    proj.run("UserPromptSubmit", prompt="/review-pr", prompt_id="p1")
    proj.spend("p1", 150)
    proj.run("Stop", prompt_id="p1")
    reply = proj.run("UserPromptSubmit", prompt="/review-pr again", prompt_id="p2")
    assert reply == {
        "decision": "block",
        "reason": "Token budget spent: /review-pr has used 150 of 100 tokens (150%). To go on, raise tokenBudget in "
        ".claude/commands/review-pr.md, or start over with: claude-budget reset /review-pr.",
    }
    assert proj.totals("/review-pr")["runs"] == 1
    assert proj.run("UserPromptSubmit", prompt="hello", prompt_id="p3") is None  # other prompts go on


def test_warn_mode_tells_each_threshold_once(proj: Project) -> None:
    proj.command("review-pr", 100)
    proj.run("UserPromptSubmit", prompt="/review-pr", prompt_id="p1")
    proj.spend("p1", 75)
    assert proj.run("PostToolUse", prompt_id="p1") == {
        "systemMessage": "claude-budget: /review-pr has passed 70% of its token budget: 75 of 100 tokens (75%)."
    }
    assert proj.run("PreToolUse", prompt_id="p1") is None
    proj.spend("p1", 30)
    assert proj.run("Stop", prompt_id="p1") == {
        "systemMessage": "claude-budget: /review-pr has spent its token budget: 105 of 100 tokens (105%)."
    }
    assert proj.run("UserPromptSubmit", prompt="/review-pr", prompt_id="p2") is None  # warn never refuses


def test_kill_mode_stops_the_turn_at_the_next_tool(proj: Project) -> None:
    proj.command("review-pr", 100)
    proj.config('mode = "kill-running"\n')
    proj.run("UserPromptSubmit", prompt="/review-pr", prompt_id="p1")
    proj.spend("p1", 101)
    reply = proj.run("PreToolUse", prompt_id="p1", tool_name="Bash")
    assert reply == {
        "continue": False,
        "stopReason": "Token budget exceeded: /review-pr has used 101 of 100 tokens (101%); claude-budget (kill mode) "
        "stopped this turn. To go on, raise tokenBudget in .claude/commands/review-pr.md, or start over with: "
        "claude-budget reset /review-pr.",
    }


def test_kill_mode_waits_for_the_response_that_asked_for_the_tool(
    proj: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    proj.command("review-pr", 100)
    proj.config('mode = "kill"\n')
    proj.run("UserPromptSubmit", prompt="/review-pr", prompt_id="p1")

    def late_write() -> None:
        proj.spend("p1", 101)
        with open(proj.transcript, "a") as f:
            f.write(
                json.dumps({"type": "assistant", "message": {"content": [{"type": "tool_use", "id": "toolu_9"}]}})
                + "\n"
            )

    with _written_during_the_first_pause(monkeypatch, late_write) as pauses:
        reply = proj.run("PreToolUse", prompt_id="p1", tool_name="Bash", tool_use_id="toolu_9")
    assert len(pauses) == 1  # it waited, and stopped waiting once the response was there
    assert reply is not None and reply["continue"] is False


@contextlib.contextmanager
def _written_during_the_first_pause(monkeypatch: pytest.MonkeyPatch, write: Callable[[], None]) -> Iterator[list]:
    """Claude Code writes a line while the hook waits for it: a fake clock, not a thread racing a timeout.

    ``time.sleep`` advances the clock instead of sleeping and runs ``write`` on its first call, so
    the outcome is the same on any machine however loaded. Yields the pauses the hook took.
    """
    import time

    now, pauses = [1000.0], []

    def sleep(seconds: float) -> None:
        pauses.append(seconds)
        now[0] += seconds
        if len(pauses) == 1:
            write()

    with monkeypatch.context() as m:
        m.setattr(time, "monotonic", lambda: now[0])
        m.setattr(time, "sleep", sleep)
        yield pauses


def test_overall_budget_refuses_plain_prompts_in_block_mode(proj: Project) -> None:
    proj.env["CLAUDE_BUDGET_OVERALL"] = "100"
    proj.env["CLAUDE_BUDGET_MODE"] = "stop-new"
    proj.run("UserPromptSubmit", prompt="hi", prompt_id="p1")
    proj.spend("p1", 100)
    proj.run("Stop", prompt_id="p1")
    reply = proj.run("UserPromptSubmit", prompt="hi again", prompt_id="p2")
    assert reply is not None and reply["decision"] == "block"
    assert reply["reason"].startswith("Token budget spent: the overall budget has used 100 of 100 tokens (100%).")


def test_budget_command_is_never_refused(proj: Project) -> None:
    proj.env["CLAUDE_BUDGET_OVERALL"] = "1"
    proj.env["CLAUDE_BUDGET_MODE"] = "block"
    proj.run("UserPromptSubmit", prompt="hi", prompt_id="p1")
    proj.spend("p1", 5)
    reply = proj.run("UserPromptSubmit", prompt="/budget", prompt_id="p2")
    assert reply is not None and reply["decision"] == "block"
    assert "overall" in reply["reason"] and "Token budget spent" not in reply["reason"]


def test_first_sight_of_a_session_counts_nothing_from_before(proj: Project) -> None:
    proj.spend("old", 1000)  # history from before the hooks were installed
    proj.run("UserPromptSubmit", prompt="hi", prompt_id="p1")
    proj.spend("p1", 10)
    proj.run("Stop", prompt_id="p1")
    assert proj.totals("overall")["input"] == 10


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (
            b"not json",
            "claude-budget: the hook input is not JSON (Expecting value: line 1 column 1 (char 0)) (budgets not enforced for this step)",
        ),
        (b"[1, 2]", "claude-budget: the hook input is a JSON list, not an object (budgets not enforced for this step)"),
        (
            b'{"hook_event_name": "Stop"}',
            "claude-budget: the Stop hook input has no session_id (budgets not enforced for this step)",
        ),
    ],
    ids=["not-json", "not-object", "no-session"],
)
def test_bad_input_is_one_line_and_fails_open(proj: Project, raw: bytes, message: str) -> None:
    assert proj.run("Stop", raw=raw) == {"systemMessage": message}


def test_corrupt_ledger_is_moved_aside_and_reported(proj: Project) -> None:
    ledger = proj.root / ".claude" / "budget-ledger.toml"
    ledger.write_text("schema_version = 3\nthis is [not toml\n")  # ours (a bad hand edit): moved aside
    reply = proj.run("UserPromptSubmit", prompt="hi", prompt_id="p1")
    assert reply is not None
    assert reply["systemMessage"].startswith(f"claude-budget: the ledger {ledger} was corrupt (")
    aside = list(ledger.parent.glob("budget-ledger.corrupt-*.toml"))
    assert len(aside) == 1 and aside[0].read_text() == "schema_version = 3\nthis is [not toml\n"
    assert proj.ledger().version == 3


@pytest.mark.parametrize("foreign", ["export PATH=$HOME/bin:$PATH\n", "[tool.poetry]\nname = 'x'\n", "\x00\xff"])
def test_a_file_that_is_not_a_ledger_is_refused_never_moved_or_overwritten(proj: Project, foreign: str) -> None:
    """CLAUDE_BUDGET_STATE (or ledger =) naming the wrong file: one line, the file untouched."""
    other = proj.root / "not-a-ledger.toml"
    other.write_bytes(foreign.encode("latin-1"))
    proj.env["CLAUDE_BUDGET_STATE"] = str(other)

    reply = proj.run("UserPromptSubmit", prompt="hi", prompt_id="p1")

    assert reply is not None and "does not look like a claude-budget ledger" in reply["systemMessage"]
    assert other.read_bytes() == foreign.encode("latin-1")
    assert not list(proj.root.glob("not-a-ledger.corrupt-*"))  # not moved aside either


def test_bad_frontmatter_warns_and_does_not_block(proj: Project) -> None:
    proj.command("review-pr", "fifty")
    proj.config('mode = "block"\n')
    reply = proj.run("UserPromptSubmit", prompt="/review-pr", prompt_id="p1")
    assert reply == {
        "systemMessage": 'claude-budget: tokenBudget "fifty" in .claude/commands/review-pr.md is not a number — write e.g. '
        "tokenBudget: 50000 (no budget enforced for /review-pr until then)"
    }
    assert proj.totals("/review-pr")["runs"] == 1


@pytest.mark.parametrize(
    "prompt",
    ["/../../etc/passwd", "/\x1b[31mred", "/a\x00b", "/", "//x"],
    ids=["traversal", "ansi", "nul", "slash", "double"],
)
def test_hostile_prompts_are_plain_prompts(proj: Project, prompt: str) -> None:
    assert proj.run("UserPromptSubmit", prompt=prompt, prompt_id="p1") is None
    assert _records.command_names(proj.ledger()) == []


CLOSED = "claude-budget could not check the budgets, and on_error is closed: "


@pytest.mark.parametrize(
    "text",
    [
        'mode = "block"\non_error = "closed"\nlock_timeout = "soon"\n',
        'on_error = "CLOSED"\nmode = "blok"\n',
        'on_error = "closed"  # refuse when unsure\nmode = [not toml\n',
        "on_error = 'closed'\n[commands]\nx = \n",
    ],
    ids=["bad-value", "bad-mode-uppercase", "not-toml", "not-toml-single-quotes"],
)
def test_on_error_closed_in_the_file_is_honoured_when_the_config_is_broken(proj: Project, text: str) -> None:
    proj.config(text)
    reply = proj.run("UserPromptSubmit", prompt="hi", prompt_id="p1")
    assert reply is not None and reply["decision"] == "block", reply
    assert reply["reason"].startswith(CLOSED)
    assert "budget.toml" in reply["reason"]
    stop = proj.run("PreToolUse", prompt_id="p1", tool_name="Bash", tool_use_id="t1")
    assert stop is not None and stop["continue"] is False and stop["stopReason"].startswith(CLOSED)


@pytest.mark.parametrize(
    ("text", "env"),
    [
        ('on_error = "open"\nmode = "blok"\n', {}),
        ('mode = "blok"\n', {}),
        ("mode = [not toml\n", {}),
        ('[commands."/x"]\non_error = "closed"\nmode = "blok"\n', {}),  # not the top-level key
        ('on_error = "closed"\nmode = "blok"\n', {"CLAUDE_BUDGET_ON_ERROR": "open"}),  # the environment wins
    ],
    ids=["open", "unset", "not-toml-unset", "in-a-table", "env-open"],
)
def test_a_broken_config_without_on_error_closed_fails_open(proj: Project, text: str, env: Dict[str, str]) -> None:
    proj.config(text)
    proj.env.update(env)
    reply = proj.run("UserPromptSubmit", prompt="hi", prompt_id="p1")
    assert reply is not None and set(reply) == {"systemMessage"}, reply


def test_broken_config_fails_open_with_a_clear_line(proj: Project) -> None:
    proj.config('mode = "blok"\n')
    reply = proj.run("UserPromptSubmit", prompt="hi", prompt_id="p1")
    assert reply is not None
    assert reply["systemMessage"].startswith('claude-budget: mode "blok" in .claude/budget.toml is not a mode')


def test_stop_waits_for_the_final_response(proj: Project, monkeypatch: pytest.MonkeyPatch) -> None:
    proj.command("review-pr", 50000)
    proj.run("UserPromptSubmit", prompt="/review-pr", prompt_id="p1")

    def late_write() -> None:
        proj.spend("p1", 30)
        with open(proj.transcript, "a") as f:
            line = {"type": "assistant", "message": {"content": [{"type": "text", "text": 'All "done" ✓'}]}}
            f.write(json.dumps(line, ensure_ascii=False) + "\n")

    with _written_during_the_first_pause(monkeypatch, late_write) as pauses:
        assert proj.run("Stop", prompt_id="p1", last_assistant_message='All "done" ✓') is None
    assert len(pauses) == 1  # it waited, and stopped waiting once the response was there
    assert proj.totals("/review-pr")["input"] == 30


def test_a_limit_beyond_tomls_integers_is_refused_and_never_written(proj: Project) -> None:
    proj.command("big", "999999999999B")
    reply = proj.run("UserPromptSubmit", prompt="/big", prompt_id="p1")
    assert reply == {
        "systemMessage": 'claude-budget: tokenBudget "999999999999B" in .claude/commands/big.md is too large — the '
        "largest is 9223372036854775807 (no budget enforced for /big until then)"
    }
    text = (proj.root / ".claude" / "budget-ledger.toml").read_text()
    assert "999999999999000000000" not in text
    assert proj.ledger().sessions["sess-1"].dump().get("limit") is None


def test_a_non_ascii_command_is_budgeted_listed_and_refused(proj: Project) -> None:
    """/rév-iew runs in Claude Code like /review (checked on 2.1.197 and 2.1.332): it is budgeted the same."""
    proj.command("rév-iew", 10000)
    proj.config('mode = "block"\n')
    assert proj.run("UserPromptSubmit", prompt="/rév-iew 42", prompt_id="p1") is None
    proj.spend("p1", 10000)
    assert proj.run("Stop", prompt_id="p1") == {
        "systemMessage": "claude-budget: /rév-iew has spent its token budget: 10K of 10K tokens (100%)."
    }
    assert proj.totals("/rév-iew")["input"] == 10000

    reply = proj.run("UserPromptSubmit", prompt="/rév-iew 43", prompt_id="p2")
    assert reply == {
        "decision": "block",
        "reason": "Token budget spent: /rév-iew has used 10K of 10K tokens (100%). To go on, raise tokenBudget in "
        ".claude/commands/rév-iew.md, or start over with: claude-budget reset /rév-iew.",
    }
    status = proj.run("UserPromptSubmit", prompt="/budget", prompt_id="p3")
    assert status is not None
    assert "  /rév-iew  [" in status["reason"] and re.search(
        r"10K/10K  100%  SPENT  \$[0-9.]+  \(1 run\)", status["reason"]
    )


def test_the_input_is_read_once_into_a_typed_event() -> None:
    """Every field the use cases read is checked where stdin is read: the wrong type, an empty
    string or a NUL byte is None; no session id is one line naming the event."""
    from budget_state.hook._event import BadInput, Event, read

    payload = read(
        json.dumps(
            {
                "hook_event_name": "Stop",
                "session_id": "s1",
                "transcript_path": "/t/s1.jsonl",
                "prompt_id": 7,
                "cwd": "a\x00b",
                "prompt": ["not", "text"],
                "last_assistant_message": "",
                "background_tasks": [{"status": "running"}],
            }
        ).encode()
    )
    event = Event.of(payload, background=True)
    assert (event.name, event.session, event.transcript) == ("Stop", "s1", Path("/t/s1.jsonl"))
    assert (event.prompt_id, event.cwd, event.prompt, event.last_message) == (None, None, "", None)
    assert event.leaves_work and event.background
    with pytest.raises(BadInput, match="^the PreToolUse hook input has no session_id$"):
        Event.of({"hook_event_name": "PreToolUse", "session_id": ""})
    for raw, says in ((b"[1]", "a JSON list, not an object"), (b"{", "is not JSON"), (b"[" * 100_000, "is not JSON")):
        with pytest.raises(BadInput, match=re.escape(says)):
            read(raw)


def test_importing_the_hook_loads_only_its_protocol() -> None:
    """``python -I -m budget_state.hook`` starts with the protocol and the event alone; the use case
    an event needs (and the ledger, the config, the features) is loaded by that event."""
    import subprocess
    import sys

    code = "import sys, budget_state.hook; print(' '.join(sorted(m for m in sys.modules if 'budget_state' in m)))"
    out = subprocess.run([sys.executable, "-I", "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == [
        "budget_state",
        "budget_state._extensions",
        "budget_state._version",
        "budget_state.hook",
        "budget_state.hook._event",
        "budget_state.hook._protocol",
    ]
