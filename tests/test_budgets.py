from __future__ import annotations

from typing import Any

import pytest

from budget_state.budgets._budgets import check_running, check_start, crossed, refusal, threshold_message
from budget_state._model import ScopeStatus


def cmd(used: int, limit: int | None, *, source: str | None = "frontmatter") -> ScopeStatus:
    return ScopeStatus("/review-pr", used, limit, source=source, file=".claude/commands/review-pr.md")


def overall(used: int, limit: int | None, source: str | None = "config") -> ScopeStatus:
    return ScopeStatus("overall", used, limit, source=source)


@pytest.mark.parametrize(
    ("mode", "c", "o", "allowed", "scope"),
    [
        ("warn", cmd(20_000, 10_000), overall(0, None), True, None),
        ("block", cmd(9_999, 10_000), overall(0, None), True, None),
        ("block", cmd(10_000, 10_000), overall(0, None), False, "/review-pr"),
        ("kill", cmd(12_000, 10_000), overall(0, None), False, "/review-pr"),
        ("block", None, overall(5, 5), False, "overall"),
        ("block", cmd(1, None), overall(4, 5), True, None),
        ("block", cmd(1, 10), overall(9, 5), False, "overall"),
    ],
    ids=[
        "warn-never-refuses",
        "under",
        "exactly-spent",
        "kill-also-refuses",
        "plain-prompt-overall",
        "no-budget",
        "overall-trips",
    ],
)
def test_check_start(mode, c, o, allowed, scope) -> None:
    d = check_start(mode, c, o)
    assert (d.allowed, d.scope) == (allowed, scope)


def test_refusal_names_scope_usage_and_fix() -> None:
    assert refusal(cmd(12_345, 10_000)) == (
        "Token budget spent: /review-pr has used 12.3K of 10K tokens (123%). To go on, raise tokenBudget in "
        ".claude/commands/review-pr.md, or start over with: claude-budget reset /review-pr."
    )
    assert refusal(cmd(10_000, 10_000, source="config")) == (
        'Token budget spent: /review-pr has used 10K of 10K tokens (100%). To go on, raise [commands."/review-pr"] '
        "tokens in .claude/budget.toml, or start over with: claude-budget reset /review-pr."
    )
    assert refusal(overall(2_000_000, 1_000_000, "env")) == (
        "Token budget spent: the overall budget has used 2.0M of 1.0M tokens (200%). To go on, raise "
        "CLAUDE_BUDGET_OVERALL, or start over with: claude-budget reset --all."
    )


@pytest.mark.parametrize(
    ("mode", "c", "o", "allowed"),
    [
        ("block", cmd(20_000, 10_000), overall(0, None), True),
        ("kill", cmd(10_000, 10_000), overall(0, None), True),
        ("kill", cmd(10_001, 10_000), overall(0, None), False),
        ("kill", None, overall(6, 5), False),
    ],
    ids=["block-lets-turn-finish", "kill-at-exactly-limit-goes-on", "kill-over", "kill-overall"],
)
def test_check_running(mode, c, o, allowed) -> None:
    assert check_running(mode, c, o).allowed is allowed


@pytest.mark.parametrize(
    ("warned", "used", "expected"),
    [
        (0, None, (0, None)),
        (0, 5_000, (0, None)),
        (0, 7_000, (70, 70)),
        (70, 8_500, (70, None)),
        (70, 9_500, (90, 90)),
        (0, 15_000, (100, 100)),
        (100, 15_000, (100, None)),
        (100, 1_000, (0, None)),
    ],
    ids=["no-limit", "below", "at-70", "already-70", "to-90", "jump-to-100", "already-100", "after-reset"],
)
def test_crossed(warned, used, expected) -> None:
    status = cmd(0, None) if used is None else cmd(used, 10_000)
    assert crossed(warned, status.reached) == expected


def test_threshold_messages() -> None:
    assert threshold_message(cmd(7_000, 10_000), 70) == (
        "claude-budget: /review-pr has passed 70% of its token budget: 7.0K of 10K tokens (70%)."
    )
    assert threshold_message(overall(10_500, 10_000), 100) == (
        "claude-budget: the overall budget has spent its token budget: 10.5K of 10K tokens (105%)."
    )


def test_one_decision_for_every_source_of_limits() -> None:
    """Local, orchestration and team limits are all Standings, and decide() alone rules on them."""
    from budget_state.budgets._budgets import Standing, decide

    def standing(source: Any, scope: str, used: int, limit: int) -> Standing:
        return Standing(
            source, scope, "tokens", used, limit, used >= limit, used > limit, f"no {scope}", f"stop {scope}"
        )

    fine = standing("local", "/a", 10, 100)
    spent = standing("orchestration", "overall", 100, 100)
    over = standing("team", "team:overall", 101, 100)
    assert decide([fine, spent, over], "warn", "start").allowed
    assert decide([fine, spent, over], "block", "start") == (False, "no overall", "overall")
    assert decide([fine, spent, over], "block", "running").allowed  # only kill stops a running turn
    assert decide([fine, spent, over], "kill", "running") == (False, "stop team:overall", "team:overall")
    assert decide([fine], "kill", "start").allowed

    def lazily() -> Any:
        yield spent
        raise AssertionError("read past the limit that decided")

    assert not decide(lazily(), "kill", "start").allowed
