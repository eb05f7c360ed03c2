"""Replays what the real Claude Code 2.1.197 sent and wrote (tests/data) through the reader and the hook."""

from __future__ import annotations

import io
import json
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Dict, List

import pytest
from kit import tokens

from budget_state import hook
from budget_state._accounting import read_new, transcript_time
from budget_state._api import snapshot
from budget_state.ledger import _records
from budget_state.ledger._ledger import Ledger
from budget_state.ledger._state import Cursor

DATA = Path(__file__).parent / "data"
HOOKS = sorted((DATA / "hooks").glob("*.json"))
TRANSCRIPTS = DATA / "transcripts"
assert HOOKS, f"no captured hook payloads in {DATA / 'hooks'}"


def totals(entries) -> Dict[str, int]:
    out = {"input": 0, "output": 0, "cache_creation": 0, "cache_read": 0}
    for e in entries:
        for k, v in e.usage.items():
            out[k] += v
    return out


@pytest.mark.parametrize(
    ("name", "key"),
    [
        ("review_pr_main.jsonl", "main_transcript_totals"),
        ("review_pr_subagent.jsonl", "subagent_transcript_totals"),
    ],
    ids=["main", "subagent"],
)
def test_reader_matches_what_claude_code_reported(name: str, key: str) -> None:
    expected = json.loads((TRANSCRIPTS / "review_pr_expected.json").read_text())
    assert totals(read_new(TRANSCRIPTS / name, Cursor()).entries) == expected[key]


def test_reader_skips_the_synthetic_error_record() -> None:
    expected = json.loads((TRANSCRIPTS / "stop_failure_expected.json").read_text())
    assert totals(read_new(TRANSCRIPTS / "stop_failure_main.jsonl", Cursor()).entries) == expected["model_usage_totals"]


def _relocate(obj: Any, home: Path, proj: Path) -> Any:
    if isinstance(obj, str):
        return obj.replace("/home/user/proj", str(proj)).replace("/home/user", str(home))
    if isinstance(obj, dict):
        return {k: _relocate(v, home, proj) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_relocate(v, home, proj) for v in obj]
    return obj


def _retimed(lines: List[str]) -> List[str]:
    """The captured lines as if written now: every timestamp moved by the same amount.

    The hook takes responses older than a session's first prompt hook for copied history (a
    ``--fork-session``), so a replay must happen at the time its transcript says.
    """
    stamps = [json.loads(line)["timestamp"] for line in lines if '"timestamp"' in line]
    first = min(datetime.fromisoformat(t.replace("Z", "+00:00")) for t in stamps)
    shift = datetime.now(timezone.utc) + timedelta(seconds=1) - first
    out = []
    for line in lines:
        rec = json.loads(line)
        if "timestamp" in rec:
            t = datetime.fromisoformat(rec["timestamp"].replace("Z", "+00:00")) + shift
            rec["timestamp"] = transcript_time(t)
        out.append(json.dumps(rec, separators=(",", ":")) + "\n")
    return out


def _run(payload: Dict[str, Any], env: Dict[str, str]) -> str:
    """What the hook printed (its return value is always 0: what it prints is the reply)."""
    out = io.StringIO()
    hook.main([], stdin=io.BytesIO(json.dumps(payload).encode()), stdout=out, env=env)
    return out.getvalue()


def test_captured_session_replayed_through_the_hook_counts_exactly(tmp_path: Path) -> None:
    """The hooks fire in the captured order while the transcripts grow as they did."""
    home, proj = tmp_path / "home", tmp_path / "proj"
    (proj / ".claude" / "commands").mkdir(parents=True)
    (proj / ".claude" / "commands" / "review-pr.md").write_text(
        "---\ntokenBudget: 500000\n---\nReview PR $ARGUMENTS.\n"
    )
    env = {"CLAUDE_PROJECT_DIR": str(proj), "HOME": str(home)}
    payloads = {p.stem: _relocate(json.loads(p.read_text()), home, proj) for p in HOOKS}
    transcript = Path(payloads["user_prompt_submit_command"]["transcript_path"])
    subagent = Path(payloads["subagent_stop"]["agent_transcript_path"])
    subagent.parent.mkdir(parents=True)
    captured = [TRANSCRIPTS / "review_pr_main.jsonl", TRANSCRIPTS / "review_pr_subagent.jsonl"]
    retimed = _retimed([line for path in captured for line in path.read_text().splitlines()])
    split = len(captured[0].read_text().splitlines())
    main_lines, sub_lines = retimed[:split], retimed[split:]
    first_response = next(i for i, line in enumerate(main_lines) if '"type":"assistant"' in line)
    transcript.write_text("".join(main_lines[:first_response]))

    assert _run(payloads["user_prompt_submit_command"], env) == ""
    with open(transcript, "a") as f:
        f.write("".join(main_lines[first_response:]))
    subagent.write_text("".join(sub_lines))
    for name in (
        "pre_tool_use_bash",
        "pre_tool_use_agent",
        "pre_tool_use_subagent_bash",
        "subagent_stop",
        "stop",
        "session_end",
    ):
        assert _run(payloads[name], env) == "", name

    expected = json.loads((TRANSCRIPTS / "review_pr_expected.json").read_text())["model_usage_totals"]
    snap = snapshot(proj, env=env)
    assert snap.commands["/review-pr"].usage.as_dict() == expected
    assert snap.commands["/review-pr"].runs == 1
    assert snap.overall.usage.as_dict() == expected


# session id -> (file stem in transcripts/, its *_expected.json)
SESSIONS = {
    e["session_id"]: (stem, e)
    for stem in ("review_pr", "plain", "stop_failure")
    for e in [json.loads((TRANSCRIPTS / f"{stem}_expected.json").read_text())]
}
PROMPTS = {
    p["session_id"]: p for p in (json.loads(h.read_text()) for h in HOOKS) if p["hook_event_name"] == "UserPromptSubmit"
}
SUBAGENT = json.loads((DATA / "hooks" / "subagent_stop.json").read_text())["agent_transcript_path"]
TOKENS = ("input", "output", "cache_creation", "cache_read")


def _prompt_of(payload: Dict[str, Any]) -> Dict[str, Any]:
    """The session's UserPromptSubmit: captured, or (the StopFailure session's was not) made from its fields."""
    session = payload["session_id"]
    if session in PROMPTS:
        return PROMPTS[session]
    made = dict(PROMPTS[next(iter(PROMPTS))])
    made.update(
        session_id=session,
        transcript_path=payload["transcript_path"],
        prompt_id=payload["prompt_id"],
        prompt=SESSIONS[session][1]["prompt"],
    )
    return made


@pytest.mark.parametrize("path", HOOKS, ids=[p.stem for p in HOOKS])
def test_every_captured_payload_counts_its_real_transcript(path: Path, tmp_path: Path) -> None:
    """Each payload after its session's prompt, with the captured transcripts at the paths it names."""
    home, proj = tmp_path / "home", tmp_path / "proj"
    (proj / ".claude" / "commands").mkdir(parents=True)
    (proj / ".claude" / "commands" / "review-pr.md").write_text("---\ntokenBudget: 500000\n---\nReview PR.\n")
    env = {"CLAUDE_PROJECT_DIR": str(proj), "HOME": str(home)}
    original = json.loads(path.read_text())
    payload = _relocate(original, home, proj)
    prompt = _relocate(_prompt_of(original), home, proj)
    stem, expected = SESSIONS[original["session_id"]]
    transcript = Path(payload["transcript_path"])
    transcript.parent.mkdir(parents=True)
    lines = (TRANSCRIPTS / f"{stem}_main.jsonl").read_text().splitlines(keepends=True)
    first_response = next(i for i, line in enumerate(lines) if '"type":"assistant"' in line)
    transcript.write_text("".join(lines[:first_response]))  # as it was when the prompt's hook ran

    assert _run(prompt, env) == ""
    lines = _retimed([line.rstrip("\n") for line in lines])  # answered after the prompt's hook
    if payload["hook_event_name"] == "UserPromptSubmit":
        state = Ledger(proj / ".claude" / "budget-ledger.toml").read()
        session = _records.session(state, payload["session_id"])
        assert session is not None
        assert session.run == (payload["prompt_id"] if stem == "review_pr" else None)  # only a command is a run
        assert tokens(state, "overall") == dict.fromkeys(TOKENS, 0)  # nothing answered yet
        return
    transcript.write_text("".join(lines))
    if stem == "review_pr":
        subagent = Path(_relocate(SUBAGENT, home, proj))
        subagent.parent.mkdir(parents=True)
        subagent.write_text("".join(_retimed((TRANSCRIPTS / "review_pr_subagent.jsonl").read_text().splitlines())))

    assert _run(payload, env) == ""

    snap = snapshot(proj, env=env)
    assert snap.overall.usage.as_dict() == expected["model_usage_totals"]
    assert snap.overall.used == expected["total_tokens"]
    if stem == "review_pr":
        assert snap.commands["/review-pr"].usage.as_dict() == expected["model_usage_totals"]
        assert snap.commands["/review-pr"].runs == 1
    else:
        assert snap.commands["/review-pr"].runs == 0
