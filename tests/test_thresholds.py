"""One meaning of "spent" for every caller: at limit-1, at the limit and at limit+1."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import budget_state
from budget_state.budgets._budgets import check_running, check_start, crossed
from budget_state.cli._cli import main
from budget_state._model import ScopeStatus, Snapshot
from budget_state._render import render_status

LIMIT = 10_000
CASES = [
    # used, block may start, kill lets the turn go on, level, the /budget row's flag, percent shown
    (LIMIT - 1, True, True, "critical", "", "99%"),
    (LIMIT, False, True, "exceeded", "SPENT", "100%"),
    (LIMIT + 1, False, False, "exceeded", "EXCEEDED", "100%"),
]
IDS = ["limit-1", "limit", "limit+1"]


def _cmd(used: int) -> ScopeStatus:
    return ScopeStatus("/review-pr", used, LIMIT, runs=1, source="frontmatter", file=".claude/commands/review-pr.md")


def _row(text: str) -> str:
    return next(line for line in text.splitlines() if "/review-pr" in line)


@pytest.mark.parametrize(("used", "starts", "goes_on", "level", "flag", "shown"), CASES, ids=IDS)
def test_the_decisions_and_the_status_agree_at_the_limit(
    used: int, starts: bool, goes_on: bool, level: str, flag: str, shown: str
) -> None:
    none = ScopeStatus("overall", used, None)
    status = _cmd(used)
    assert check_start("block", status, none).allowed is starts
    assert check_running("kill", status, none).allowed is goes_on
    assert status.level == level
    assert status.spent is not starts
    assert crossed(90, status.reached) == ((100, 100) if not starts else (90, None))
    snap = Snapshot(mode="block", overall=none, commands={"/review-pr": status}, ledger="/l")
    assert snap.to_json()["commands"]["/review-pr"]["level"] == level  # type: ignore[index]
    row = _row(render_status(snap, width=80))
    assert row.endswith(f"  {shown}  {flag}  (1 run)" if flag else f"  {shown}  (1 run)"), row


@pytest.mark.parametrize(
    ("used", "level"),
    [(6_999, "ok"), (7_000, "warning"), (8_999, "warning"), (9_000, "critical")],
    ids=["below-70", "at-70", "below-90", "at-90"],
)
def test_levels_start_at_their_threshold(used: int, level: str) -> None:
    assert _cmd(used).level == level
    assert crossed(0, _cmd(used).reached)[0] == {"ok": 0, "warning": 70, "critical": 90}[level]


def test_exact_at_the_limit_for_counts_floats_cannot_hold() -> None:
    big = 2**62 + 1  # 100.0 * big / big is not exactly 100 in floating point
    assert ScopeStatus("/x", big, big).spent and ScopeStatus("/x", big - 1, big).level == "critical"
    assert not ScopeStatus("/x", big, big).over and ScopeStatus("/x", big + 1, big).over


@pytest.mark.parametrize(("used", "starts", "goes_on", "level", "flag", "shown"), CASES, ids=IDS)
def test_status_json_and_may_start_at_the_limit(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    used: int,
    starts: bool,
    goes_on: bool,
    level: str,
    flag: str,
    shown: str,
) -> None:
    (tmp_path / ".claude").mkdir()
    (tmp_path / ".claude" / "budget.toml").write_text(f'mode = "block"\n[commands."/review-pr"]\ntokens = {LIMIT}\n')
    env = {"HOME": str(tmp_path / "home")}
    budget_state.record_usage({"input": used}, command="/review-pr", project=tmp_path, env=env)

    assert budget_state.may_start("/review-pr", tmp_path, env=env).allowed is starts
    assert main(["status", "--json", "--project", str(tmp_path)]) == 0
    data = json.loads(capsys.readouterr().out)["commands"]["/review-pr"]
    assert (data["used"], data["limit"], data["level"]) == (used, LIMIT, level)
