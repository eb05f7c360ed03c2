"""The orchestrator's status report: golden files, with and without visuals, colour and no colour.

Regenerate after a deliberate change with ``CLAUDE_BUDGET_UPDATE_GOLDEN=1 pytest tests/test_orchestrate_report.py``
and read the diff.
"""

from __future__ import annotations

import os
from datetime import datetime, timezone
from pathlib import Path

import pytest

from budget_state._model import LimitStatus, Window
from budget_state.ledger._ledger import new_state
from budget_state.ledger._runs import join_orchestration
from budget_state.ledger._state import LedgerState
from budget_state.orchestrator._report import Row, View, duration, render

GOLDEN = Path(__file__).parent / "data" / "orchestrate"
NOW = datetime(2026, 12, 3, 14, 30, 15, tzinfo=timezone.utc)
REASON = (
    "Orchestration budget spent: the orchestration's overall token budget has used 8.0K tokens of 10K tokens (80%). "
    "To go on, raise --overall-token-budget."
)


def limit(scope: str, metric: str, used: int, amount: int, flag: str, minutes: int | None = None) -> LimitStatus:
    """An orchestration's limit, as _scope.limits gives it."""
    window = Window("rolling", minutes) if minutes is not None else None
    return LimitStatus(metric, used, amount, window, source="orchestrator", scope=scope, flag=flag)


FLEET = View(
    now=NOW,
    elapsed=754.0,
    orchestration="20261203-141800-a1b2c3",
    mode="block",
    used=8000,
    usd_micros=6_500_000,
    overall=(
        limit("overall", "tokens", 8000, 10_000, "--overall-token-budget"),
        limit("overall", "usd", 6_500_000, 20_000_000, "--overall-cost-budget"),
    ),
    hourly=(limit("hourly", "tokens", 600, 1000, "--hourly-token-budget", 60),),
    period=60,
    window_used=600,
    next_reset=30,
    rate=20.0,
    rows=(
        Row(
            "/gitcommitgardener",
            1,
            "done",
            300,
            1_000_000,
            limit("/gitcommitgardener", "tokens", 300, 1000, "--command-budget"),
        ),
        Row(
            "/refreshgardener",
            2,
            "stopped",
            500,
            2_000_000,
            limit("/refreshgardener", "tokens", 500, 500, "--command-budget"),
            REASON,
        ),
        Row(
            "/gcploggardener",
            1,
            "running",
            450,
            1_500_000,
            limit("/gcploggardener", "tokens", 450, 500, "--command-budget"),
        ),
        Row("/testgardener", 3, "skipped", 0, 0, None, REASON),
        Row("/docsgardener", 3, "queued", 0, 0, None),
    ),
)
QUIET = FLEET._replace(
    used=950, usd_micros=0, overall=(), hourly=(), window_used=950, next_reset=None, rate=0.0,
    rows=(Row("/gitcommitgardener --fast", 1, "running", 950, 0, None),),
)  # fmt: skip

CASES = {
    "fleet-visuals": (FLEET, True, False),
    "fleet-visuals-color": (FLEET, True, True),
    "fleet-plain": (FLEET, False, False),
    "quiet-visuals": (QUIET, True, False),
    "quiet-plain": (QUIET, False, False),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_report_golden(name: str) -> None:
    view, visuals, color = CASES[name]
    text = render(view, width=100, color=color, visuals=visuals)
    path = GOLDEN / f"{name}.txt"
    if os.environ.get("CLAUDE_BUDGET_UPDATE_GOLDEN"):
        path.write_text(text, encoding="utf-8")
    assert path.exists(), f"{path} not found (regenerate: CLAUDE_BUDGET_UPDATE_GOLDEN=1)"
    assert text == path.read_text(encoding="utf-8")


def test_plain_lines_never_carry_colour() -> None:
    assert render(FLEET, color=True, visuals=False) == render(FLEET, color=False, visuals=False)
    assert "\x1b[" not in render(FLEET, color=False, visuals=True)
    assert "\x1b[" in render(FLEET, color=True, visuals=True)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0, "0s"), (59, "59s"), (60, "1m"), (3599, "59m"), (3600, "1h"), (8100, "2h 15m"), (200_000, "2d 7h")],
)
def test_duration(seconds: float, text: str) -> None:
    assert duration(seconds) == text


def _fleet_state(limit: int) -> tuple[LedgerState, list, datetime]:
    """A ledger with an orchestration: /a 1 done (20k over 20 min), /a 2 running (10k in 10 min), /a 3 queued."""
    from datetime import timedelta

    from budget_state._model import Usage
    from budget_state.orchestrator import _scope
    from budget_state.orchestrator._results import Result

    start = datetime(2026, 12, 3, 14, 0, 30, tzinfo=timezone.utc)
    state = new_state(start)
    _scope.register(state, "o", mode="kill", persistent=False, period=60, limits={"tokens": limit}, now=start)
    for session in ("s1", "s2", "s3"):
        _scope.add_instance(state, "o", session, command="/a", limit=None, usd_limit=None, exempt=False)
        join_orchestration(state, session, "o")
    for minute in range(30):
        session = "s1" if minute < 20 else "s2"
        charge = _scope.charger(state, session, start + timedelta(minutes=minute))
        assert charge is not None
        charge({"output": 1000}, "m", "/a")
    _scope.table(state, "o").instances["s1"].finished = True  # type: ignore[union-attr]
    results = [
        Result("/a", "1", 1, "s1", "done", 0, Usage(output=20_000), started=0.0, seconds=1200.0),
        Result("/a", "2", 1, "s2", "running", started=1200.0),
        Result("/a", "3", 1, "s3", "queued"),
    ]
    return state, results, start + timedelta(minutes=30)


def test_the_forecast_knows_the_plan() -> None:
    """One slot: /a 2 has 10k of a typical 20k run left, then /a 3 runs 20k, at 1k a minute."""
    from budget_state._model import CATEGORIES
    from budget_state.orchestrator._report import build

    state, results, now = _fleet_state(50_000)  # 30k used: 20k left = /a 2's 10 min + 10 min of /a 3
    view = build(state, "o", results, now=now, elapsed=1800.0, counted=CATEGORIES, mode="kill-running", slots=1)
    assert view.plan_overall is not None and view.plan_overall.minutes == pytest.approx(20.0, abs=0.6)
    assert view.plan_overall.p10_minutes < view.plan_overall.minutes < view.plan_overall.p90_minutes
    text = render(view, width=100)
    assert "Est. exhaustion: 20m (P10–P90" in text, text
    assert "mode kill-running" in text
    assert (
        "With the plan (1 running, 1 queued, each a typical run) the overall token budget is spent in about 20m" in text
    )

    state, results, now = _fleet_state(100_000)  # the plan needs 30k more: it ends with 40k left
    view = build(state, "o", results, now=now, elapsed=1800.0, counted=CATEGORIES, mode="kill", slots=1)
    assert view.plan_overall is not None and view.plan_overall.minutes is None
    assert "is not expected to run out" in render(view, width=100)
