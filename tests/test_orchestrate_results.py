"""What an instance did, the exit code of the whole, and the ``--json-out`` shape the README documents."""

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


def test_the_readme_example_has_the_shape_of_the_results() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("**Results** (`--json-out FILE`") :]
    block = re.search(r"```json\n(.*?)```", section, re.DOTALL)
    assert block is not None
    example = json.loads(block.group(1))
    real = to_json(
        [DONE._replace(reported={"tokens": Usage().as_dict(), "usd": 0.03, "terminal_reason": "completed", "num_turns": 1})],
        orchestration="o",
        counted=CATEGORIES,
        code=0,
        ledger="/l",
    )
    real["instances"][0].update(name=None, log=None, reason=None)
    assert shape(example) == shape(real)


@pytest.mark.parametrize(
    ("code", "result", "signals", "why", "expected"),
    [
        (0, {"result": "ok", "is_error": False}, [], None, ("done", None)),
        (0, {"result": f"{BLOCKED}\nToken budget spent: x.\n\nOriginal prompt: /a"}, [], None, ("skipped", "Token budget spent: x.")),
        (0, {"result": "", "terminal_reason": "hook_stopped"}, [], "over", ("stopped", "over")),
        (130, None, ["SIGINT"], "stopped: interrupted (Ctrl-C)", ("stopped", "stopped: interrupted (Ctrl-C) (SIGINT)")),
        (1, {"result": "API Error: 500", "is_error": True}, [], None, ("failed", "exit code 1: API Error: 500")),
        (1, None, [], None, ("failed", "exit code 1, no JSON result (see its log)")),
    ],
    ids=["done", "refused-by-its-hook", "stopped-by-its-hook", "stopped-by-us", "failed", "no-output"],
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
