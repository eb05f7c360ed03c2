"""Claude Code 2.1.332, captured: a command whose subagent runs in the background, replayed.

``tests/data/cc2.1.332/`` holds every hook payload of one ``claude -p "/review-pr 42"`` session
(script ``bash, agent, bash, text``) and its transcripts (see ``tests/data/README.md``). The
subagent is backgrounded; its turn's Stop says so (``background_tasks``); when it finishes Claude
Code starts a follow-up turn (``<task-notification>``, a new prompt id). Replayed in the captured
order with the transcripts growing as they did, the whole session — 7 requests — is the command's.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any, Dict, List

from test_captured import _relocate, _retimed

from budget_state import hook
from budget_state.hook._event import Event
from budget_state._api import snapshot

DATA = Path(__file__).parent / "data" / "cc2.1.332"
HOOKS = sorted((DATA / "hooks").glob("*.json"))
EXPECTED = json.loads((DATA / "transcripts" / "background_expected.json").read_text())
NOTIFICATION = "<task-notification>"


def _run(payload: Dict[str, Any], env: Dict[str, str]) -> str:
    out = io.StringIO()
    hook.main([], stdin=io.BytesIO(json.dumps(payload).encode()), stdout=out, env=env)
    return out.getvalue()


def _upto(lines: List[str], marker: str) -> int:
    return next(i for i, line in enumerate(lines) if marker in line)


def test_the_background_subagent_and_the_followup_turn_are_the_commands(tmp_path: Path) -> None:
    home, proj = tmp_path / "home", tmp_path / "proj"
    (proj / ".claude" / "commands").mkdir(parents=True)
    (proj / ".claude" / "commands" / "review-pr.md").write_text("---\ntokenBudget: 500000\n---\nReview PR.\n")
    env = {"CLAUDE_PROJECT_DIR": str(proj), "HOME": str(home)}
    payloads = [_relocate(json.loads(p.read_text()), home, proj) for p in HOOKS]
    transcript = Path(payloads[1]["transcript_path"])
    stop = next(p for p in payloads if p["hook_event_name"] == "SubagentStop")
    subagent = Path(stop["agent_transcript_path"])
    subagent.parent.mkdir(parents=True)
    main = (DATA / "transcripts" / "background_main.jsonl").read_text().splitlines()
    sub = (DATA / "transcripts" / "background_subagent.jsonl").read_text().splitlines()

    replied = False
    for payload in payloads:
        event = payload["hook_event_name"]
        if event in ("SessionStart", "UserPromptExpansion", "PostToolUse", "SubagentStart"):
            continue  # not registered by install
        if event == "UserPromptSubmit" and not replied:
            transcript.write_text("")  # the first prompt's hook runs before anything is answered
            assert _run(payload, env) == ""
            main, sub = _retimed(main), _retimed(sub)  # answered after that hook
            # up to Claude Code queueing the task notification: the first turn and its subagent
            first_turn = main[: _upto(main, NOTIFICATION)]
            transcript.write_text("".join(first_turn))
            subagent.write_text("".join(sub))
            replied = True
            continue
        if event == "UserPromptSubmit":
            assert payload["prompt"].startswith(NOTIFICATION)
            transcript.write_text("".join(main))  # the follow-up turn's records
        assert _run(payload, env) == "", event

    totals = EXPECTED["api_totals"]
    snap = snapshot(proj, env=env)
    assert snap.commands["/review-pr"].usage.as_dict() == totals
    assert snap.commands["/review-pr"].runs == 1
    assert snap.overall.usage.as_dict() == totals
    usage = EXPECTED["model_usage"]["claude-opus-5-5"]
    assert (usage["inputTokens"], usage["outputTokens"]) == (totals["input"], totals["output"])


def test_a_stop_with_background_work_running_leaves_the_run_open(tmp_path: Path) -> None:
    stop = json.loads((DATA / "hooks" / "13_stop.json").read_text())
    assert stop["background_tasks"][0]["status"] == "running"
    assert Event.of(stop).leaves_work is True
    assert Event.of(json.loads((DATA / "hooks" / "16_stop.json").read_text())).leaves_work is False
