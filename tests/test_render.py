from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from budget_state.budgets._budgets import when
from budget_state._model import Forecast, LimitStatus, PerRun, ScopeStatus, Snapshot
from budget_state._render import render_status
from budget_state.ledger._windows import parse_window

S = ScopeStatus
LEDGER = ".claude/budget-ledger.toml"
ERROR = 'tokenBudget "fifty" in .claude/commands/summarize.md is not a number — write e.g. tokenBudget: 50000'

MIXED = Snapshot(
    mode="block",
    overall=S("overall", 113_450, 200_000),
    commands={
        "/review-pr": S("/review-pr", 8000, 10_000, runs=3),
        "/deploy": S("/deploy", 12_000, 10_000, runs=1),
        "/lint": S("/lint", 950, 50_000, runs=1),
        "/test": S("/test", 95_000, 100_000, runs=12),
    },
    ledger=LEDGER,
)


def test_mixed_levels_and_exceeded() -> None:
    assert (
        render_status(MIXED)
        == """\
Token budgets — mode: block

  overall     [###############-------------]  113K/200K   56%
  /deploy     [############################]    12K/10K  120%  EXCEEDED  (1 run)
  /lint       [----------------------------]    950/50K    1%  (1 run)
  /review-pr  [######################------]   8.0K/10K   80%  (3 runs)
  /test       [##########################--]   95K/100K   95%  (12 runs)

Ledger: .claude/budget-ledger.toml
Reset a command with: claude-budget reset /name
"""
    )


def test_no_budget_error_line_warnings_and_counted_categories() -> None:
    snap = Snapshot(
        mode="warn",
        overall=S("overall", 4500, None),
        commands={
            "/summarize": S("/summarize", 4500, None, runs=2, error=ERROR),
            "/review-pr": S("/review-pr", 0, 50_000),
        },
        ledger="/home/u/.claude/budget-ledger.toml",
        counted=("input", "output"),
        warnings=('unknown key "moed" in .claude/budget.toml — known keys: mode',),
    )
    assert (
        render_status(snap)
        == """\
Token budgets — mode: warn — counting input, output

  overall     no budget                                  4.5K used
  /review-pr  [---------------------------------------]      0/50K  0%
  /summarize  no budget                                  4.5K used      (2 runs)
      tokenBudget "fifty" in .claude/commands/summarize.md is not a number — write e.g. tokenBudget: 50000

warning: unknown key "moed" in .claude/budget.toml — known keys: mode

Ledger: /home/u/.claude/budget-ledger.toml
Reset a command with: claude-budget reset /name
"""
    )


def test_empty_state_says_how_to_add_a_budget() -> None:
    snap = Snapshot(mode="warn", overall=S("overall", 0, None), commands={}, ledger=LEDGER)
    assert (
        render_status(snap)
        == """\
Token budgets — mode: warn

  overall  no budget                                   0 used

No command has a budget yet — add tokenBudget: 50000 to the frontmatter of a command (.claude/commands/<name>.md)

Ledger: .claude/budget-ledger.toml
Reset a command with: claude-budget reset /name
"""
    )


def test_usage_without_any_budget_still_gets_the_hint() -> None:
    snap = Snapshot(
        mode="warn",
        overall=S("overall", 1200, 1_000_000),
        commands={"/x": S("/x", 1200, None, runs=1)},
        ledger=LEDGER,
    )
    assert (
        render_status(snap)
        == """\
Token budgets — mode: warn

  overall  [----------------------------------------]  1.2K/1.0M  0%
  /x       no budget                                   1.2K used      (1 run)

No command has a budget yet — add tokenBudget: 50000 to the frontmatter of a command (.claude/commands/<name>.md)

Ledger: .claude/budget-ledger.toml
Reset a command with: claude-budget reset /name
"""
    )


@pytest.mark.parametrize("only", ["/deploy", "deploy"], ids=["with-slash", "without-slash"])
def test_only_one_command(only: str) -> None:
    assert (
        render_status(MIXED, only=only)
        == """\
Token budgets — mode: block

  overall  [#################--------------]  113K/200K   56%
  /deploy  [###############################]    12K/10K  120%  EXCEEDED  (1 run)

Ledger: .claude/budget-ledger.toml
Reset a command with: claude-budget reset /name
"""
    )


def test_only_an_unknown_command() -> None:
    assert (
        render_status(MIXED, only="/nope")
        == """\
Token budgets — mode: block

  overall  [######################------------------]  113K/200K  56%

/nope has no budget and no recorded usage

Ledger: .claude/budget-ledger.toml
Reset a command with: claude-budget reset /name
"""
    )


def test_color() -> None:
    assert render_status(MIXED, color=True) == (
        "Token budgets — mode: block\n"
        "\n"
        "  overall     [\x1b[32m###############\x1b[0m-------------]  113K/200K   \x1b[32m56%\x1b[0m\n"
        "  /deploy     [\x1b[31m############################\x1b[0m]    12K/10K  \x1b[31m120%\x1b[0m"
        "  \x1b[1;31mEXCEEDED\x1b[0m  (1 run)\n"
        "  /lint       [----------------------------]    950/50K    \x1b[32m1%\x1b[0m  (1 run)\n"
        "  /review-pr  [\x1b[33m######################\x1b[0m------]   8.0K/10K   \x1b[33m80%\x1b[0m  (3 runs)\n"
        "  /test       [\x1b[31m##########################\x1b[0m--]   95K/100K   \x1b[31m95%\x1b[0m  (12 runs)\n"
        "\n"
        "Ledger: .claude/budget-ledger.toml\n"
        "Reset a command with: claude-budget reset /name\n"
    )


def test_color_on_errors_and_warnings() -> None:
    snap = Snapshot(
        mode="warn",
        overall=S("overall", 10, None),
        commands={"/s": S("/s", 10, 20, error="broken")},
        ledger=LEDGER,
        warnings=("odd",),
    )
    assert render_status(snap, color=True).splitlines()[2:7] == [
        "  overall  no budget                                   10 used",
        "  /s       [\x1b[32m####################\x1b[0m--------------------]    10/20  \x1b[32m50%\x1b[0m",
        "      \x1b[33mbroken\x1b[0m",
        "",
        "\x1b[33mwarning: odd\x1b[0m",
    ]


def test_no_ansi_without_color() -> None:
    assert "\x1b" not in render_status(MIXED, color=False)


@pytest.mark.parametrize(
    ("width", "bar"),
    [(0, 10), (40, 10), (80, 28), (90, 38), (92, 40), (300, 40)],
    ids=["zero", "narrow", "default", "wide", "just-max", "huge"],
)
def test_bar_width_follows_the_terminal(width: int, bar: int) -> None:
    lines = render_status(MIXED, width=width).splitlines()
    assert lines[3].startswith("  /deploy     [" + "#" * bar + "]")
    if 10 < bar < 40:  # the widest row fills the terminal exactly
        assert max(len(line) for line in lines[:8]) == width


def test_pads_by_display_width_and_neutralises_control_characters() -> None:
    snap = Snapshot(
        mode="kill",
        overall=S("overall", 10, 100),
        commands={"/レビュー": S("/レビュー", 50, 100, runs=1), "/x\x1b[2J": S("/x\x1b[2J", 1, None, error="a\x07b")},
        ledger="l\n",
    )
    assert (
        render_status(snap)
        == """\
Token budgets — mode: kill

  overall    [####------------------------------------]  10/100  10%
  /x?[2J     no budget                                   1 used
      a?b
  /レビュー  [####################--------------------]  50/100  50%  (1 run)

Ledger: l?
Reset a command with: claude-budget reset /name
"""
    )


def test_exactly_at_the_limit_is_spent_not_exceeded() -> None:
    """Block mode refuses at exactly the limit, so /budget must say so; EXCEEDED is for past it."""
    snap = Snapshot(mode="block", overall=S("overall", 100, 100), commands={}, ledger="l")
    assert render_status(snap, width=60).splitlines()[2] == "  overall  [" + "#" * 25 + "]  100/100  100%  SPENT"


def test_bars_clamp_at_both_ends() -> None:
    snap = Snapshot(
        mode="warn",
        overall=S("overall", -5, 100),
        commands={"/x": S("/x", 10**9, 10, runs=2)},
        ledger="l",
    )
    assert render_status(snap, width=0).splitlines()[2:4] == [
        "  overall  [----------]   -5/100            0%",
        "  /x       [##########]  1.0B/10  10000000000%  EXCEEDED  (2 runs)",
    ]


def _outlook_snapshot() -> tuple[Snapshot, datetime]:
    now = datetime(2026, 12, 3, 20, 48, tzinfo=timezone.utc)
    hour = parse_window("1h")
    overall = ScopeStatus(
        "overall",
        61_300,
        None,
        usd_micros=2_410_000,
        limits=(LimitStatus("usd", 1_020_000, 5_000_000, hour),),
        forecast=Forecast(
            1240.0,
            2.05,
            now + timedelta(minutes=112),
            now + timedelta(minutes=85),
            now + timedelta(minutes=150),
            "usd/1h",
        ),
    )
    spent = ScopeStatus(
        "/review-pr",
        57_500,
        50_000,
        runs=3,
        limits=(LimitStatus("tokens", 57_500, 50_000),),
        per_run=PerRun(3, 18_200, 21_000, 780_000, 840_000),
        forecast=Forecast(610.0, 1.9, now, now, now, "tokens"),
    )
    return Snapshot("block", overall, {"/review-pr": spent}, "/l"), now


def test_outlook_lines_give_the_rate_when_the_tightest_limit_runs_out_and_the_cost_per_run() -> None:
    snap, now = _outlook_snapshot()
    text = render_status(snap, width=100, now=now)
    eta = when(now + timedelta(minutes=112), now, None)
    assert f"burning 1.2K tokens/min, $2.05/h — $ in the last hour runs out at {eta}, likely " in text
    assert "(in 1h 52m)" in text
    # a limit already spent has no "runs out at": its row says EXCEEDED
    assert "      burning 610 tokens/min, $1.90/h\n" in text
    assert "per run: 18.2K tokens, $0.78 typical (p50); 21K, $0.84 at p90 — last 3 runs" in text


def test_outlook_lines_need_the_clock() -> None:
    snap, _ = _outlook_snapshot()
    text = render_status(snap, width=100)
    assert "burning" not in text and "per run" not in text
