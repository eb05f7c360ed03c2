"""What an instance did, the exit code of the whole, and the ``--json-out`` shape docs/orchestrator.md documents."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from budget_state._model import CATEGORIES, Usage
from budget_state.orchestrator._results import BLOCKED, Result, exit_code, outcome, parse_output, summary, to_json
from json_shape import shape

ROOT = Path(__file__).parents[1]
DONE = Result("/a", "1", 1, "s1", "done", 0, Usage(3, 590, 3939, 5623), 32632, 1.7, started=0.02)


GOLDEN = ROOT / "tests" / "data" / "orchestrate" / "results-v1.json"
REPORTED = {"tokens": Usage(3, 590, 3939, 5623).as_dict(), "usd": 0.0326316, "subtype": "success",
            "terminal_reason": "completed", "num_turns": 1}  # fmt: skip
FLEET = [
    DONE._replace(
        reported=REPORTED, requests=1, started_at="2026-12-03T14:18:00.021Z", ended_at="2026-12-03T14:18:01.764Z",
        max_budget_usd=0.25, log="/logs/01-a.json",
    ),
    Result(
        "/b", "", 2, "s2", "stopped", 1, Usage(6, 1200, 7800, 11000), 65000, 3.1, started=1.8, requests=2,
        started_at="2026-12-03T14:18:01.800Z", ended_at="2026-12-03T14:18:04.900Z", max_budget_usd=0.05,
        reason="stopped by Claude Code at --max-budget-usd 0.05: what was left of /b's dollar budget in this "
        "orchestration. To go on, raise that budget.",
        reported={"tokens": Usage(6, 1200, 7800, 11000).as_dict(), "usd": 0.065, "subtype": "error_max_budget_usd",
                  "terminal_reason": None, "num_turns": 2},
    ),
    Result("/c", "x", 3, "s3", "skipped", reason="Orchestration budget spent: …", name="third"),
]  # fmt: skip


def fleet_json() -> dict:
    return to_json(FLEET, orchestration="o", counted=CATEGORIES, code=3, ledger="/l", mode="stop-new")


def test_results_json_golden() -> None:
    """The --json-out document, version 1, field by field (regenerate: CLAUDE_BUDGET_UPDATE_GOLDEN=1)."""
    import os

    real = fleet_json()
    if os.environ.get("CLAUDE_BUDGET_UPDATE_GOLDEN"):
        GOLDEN.write_text(json.dumps(real, indent=2) + "\n", encoding="utf-8")
    assert real == json.loads(GOLDEN.read_text(encoding="utf-8"))


def test_the_documented_example_has_the_shape_of_the_results() -> None:
    doc = (ROOT / "docs" / "orchestrator.md").read_text(encoding="utf-8")
    section = doc[doc.index("## Results: `--json-out FILE`") :]
    block = re.search(r"```json\n(.*?)```", section, re.DOTALL)
    assert block is not None
    example = json.loads(block.group(1))
    real = fleet_json()
    real["instances"] = real["instances"][:1]
    assert shape(example) == shape(real)


@pytest.mark.parametrize(
    ("code", "result", "signals", "why", "expected"),
    [
        (0, {"result": "ok", "is_error": False}, [], None, ("done", None)),
        (0, {"result": f"{BLOCKED}\nToken budget spent: x.\n\nOriginal prompt: /a"}, [], None, ("skipped", "Token budget spent: x.")),
        (0, {"result": "", "terminal_reason": "hook_stopped"}, [], "over", ("stopped", "over")),
        (1, {"result": "", "subtype": "error_max_budget_usd", "is_error": True}, [], "cap", ("stopped", "cap")),
        (130, None, ["SIGINT"], "stopped: interrupted (Ctrl-C)", ("stopped", "stopped: interrupted (Ctrl-C) (SIGINT)")),
        (1, {"result": "API Error: 500", "is_error": True}, [], None, ("failed", "exit code 1: API Error: 500")),
        (1, None, [], None, ("failed", "exit code 1, no JSON result (see its log)")),
    ],
    ids=["done", "refused-by-its-hook", "stopped-by-its-hook", "stopped-by-claude-code-cap", "stopped-by-us", "failed", "no-output"],
)
def test_outcome(code: int, result: dict | None, signals: list[str], why: str | None, expected: tuple) -> None:
    assert outcome(code, result, signals=signals, why=why) == expected


@pytest.mark.parametrize(
    ("states", "code"),
    [(["done", "done"], 0), (["done", "skipped"], 3), (["stopped"], 3), (["skipped", "failed"], 1), ([], 0)],
)
def test_exit_code(states: list[str], code: int) -> None:
    assert exit_code([DONE._replace(state=s) for s in states]) == code


def test_parse_output_takes_the_last_json_line() -> None:
    assert parse_output('warning: x\n{"a": 1}\n{"result": "r"}\n') == {"result": "r"}
    assert parse_output("not json") is None


def test_summary_table() -> None:
    skipped = Result("/b", "", 2, "s2", "skipped", reason="Orchestration budget spent: …")
    assert summary([DONE, skipped], CATEGORIES) == (
        "instance  state    exit  tokens  cost   time  reason\n"
        "/a 1      done     0     10.2K   $0.03  1.7s\n"
        "/b        skipped        0       $0           Orchestration budget spent: …\n"
        "\n"
        "Total: 10.2K tokens, $0.03 — 1 done, 1 skipped\n"
    )
