"""Windowed and dollar limits in the real CLI: a rolling hour frees at the right minute, a calendar
day resets at midnight, a dollar budget refuses — with claude-budget's clock moved
(``CLAUDE_BUDGET_TIME_OFFSET``) instead of waiting."""

from __future__ import annotations

import re
import time
from datetime import datetime, timedelta, timezone

import pytest

pytestmark = pytest.mark.e2e

OFFSET = "CLAUDE_BUDGET_TIME_OFFSET"


def _at(when: datetime) -> dict[str, str]:
    """The environment that makes claude-budget's clock read ``when`` (give or take the run's seconds)."""
    return {OFFSET: str(round(when.timestamp() - time.time()))}


def _iso(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def test_a_rolling_window_refuses_and_frees_at_the_right_minute(project, fake_api):
    p = project()
    p.write_config(
        """
        mode = "block"
        [commands."/review-pr"]
        usd_per_1h = 0.001
        """
    )
    p.write_command("review-pr", "Review PR $ARGUMENTS. SCRIPT: bash, text")

    first = p.run_claude("/review-pr 1")  # two responses: more than a tenth of a cent
    assert not first.blocked and first.requests == 2, first.describe()
    usd = p.status()["commands"]["/review-pr"]["windows"][0]["usd"]
    assert usd["limit"] == 0.001 and usd["used"] > 0.001
    # Our dollars are Claude Code's, to the micro-dollar a request.
    assert abs(usd["used"] - first.result["total_cost_usd"]) <= 2e-6, (usd, first.result["total_cost_usd"])

    second = p.run_claude("/review-pr 2")
    assert second.blocked and second.requests == 0, second.describe()
    assert "Budget spent: /review-pr has used $0." in second.text, second.text
    assert "in the last hour" in second.text and "frees up at" in second.text, second.text

    window = p.status()["commands"]["/review-pr"]["windows"][0]
    frees = _iso(window["resets_at"])
    # The minute buckets say when: the last minute that holds this run's usage, plus the span.
    minutes = re.findall(r"(\d+):", " ".join(p.state().minutes.values()))
    assert frees == datetime.fromtimestamp((max(map(int, minutes)) + 60) * 60, timezone.utc) or frees == (
        datetime.fromtimestamp((min(map(int, minutes)) + 60) * 60, timezone.utc)
    )

    just_before = p.run_claude("/review-pr 3", extra_env=_at(frees - timedelta(seconds=40)))
    assert just_before.blocked and just_before.requests == 0, just_before.describe()

    at_the_minute = p.run_claude("/review-pr 4", extra_env=_at(frees + timedelta(seconds=5)))
    assert not at_the_minute.blocked and at_the_minute.requests == 2, at_the_minute.describe()
    status = p.status(extra_env=_at(frees + timedelta(seconds=30)))
    cmd = status["commands"]["/review-pr"]
    assert cmd["tokens"] == fake_api.totals()  # every run still counted in all
    # the window holds the last run only: its dollars are that run's, as Claude Code priced it (the
    # fake API's usage is random per request, so two runs' costs may differ twofold)
    in_window = cmd["windows"][0]["usd"]["used"]
    assert abs(in_window - at_the_minute.result["total_cost_usd"]) <= 2e-6 * at_the_minute.requests, (
        frees,
        cmd["windows"],
        at_the_minute.result["total_cost_usd"],
    )


def test_a_calendar_day_resets_at_midnight(project, fake_api):
    p = project()
    p.write_config('mode = "block"\ntimezone = "UTC"\n')
    path = p.write_command("digest", "Digest $ARGUMENTS. SCRIPT: text")
    text = path.read_text().replace("---\n", "---\ntokenBudget: 1000\nbudgetWindow: day\n", 1)
    path.write_text(text)

    midnight = (datetime.now(timezone.utc) + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    late = p.run_claude("/digest 1", extra_env=_at(midnight - timedelta(minutes=3)))
    assert not late.blocked and late.requests == 1, late.describe()

    refused = p.run_claude("/digest 2", extra_env=_at(midnight - timedelta(seconds=80)))
    assert refused.blocked and refused.requests == 0, refused.describe()
    assert "today" in refused.text and "resets at 00:00 (in 2m)" in refused.text, refused.text

    next_day = p.run_claude("/digest 3", extra_env=_at(midnight + timedelta(seconds=20)))
    assert not next_day.blocked and next_day.requests == 1, next_day.describe()
    day = p.status(extra_env=_at(midnight + timedelta(minutes=1)))["commands"]["/digest"]["windows"][0]
    assert day["span"] == "day" and day["tokens"]["used"] == sum(fake_api.sent[-1].usage.values())
    assert _iso(day["resets_at"]) == midnight + timedelta(days=1)


def test_a_dollar_budget_in_the_frontmatter_refuses(project, fake_api):
    p = project()
    p.write_config('mode = "block"\n')
    path = p.write_command("review-pr", "Review PR $ARGUMENTS. SCRIPT: text")
    path.write_text(path.read_text().replace("---\n", '---\ncostBudget: "$0.0005"\n', 1))

    first = p.run_claude("/review-pr 1")
    assert not first.blocked and first.requests == 1, first.describe()
    second = p.run_claude("/review-pr 2")
    assert second.blocked and second.requests == 0, second.describe()
    assert "of $0.0005 (" in second.text and "costBudget in .claude/commands/review-pr.md" in second.text, second.text
    cmd = p.status()["commands"]["/review-pr"]
    assert cmd["usd"]["limit"] == 0.0005 and cmd["level"] == "none" and cmd["windows"] == []


def test_preflight_refuses_a_run_that_would_not_fit(project, fake_api):
    fake_api.stable_usage = True  # every run of the command costs the same
    p = project()
    p.write_config('mode = "block"\npreflight = "p90"\n')
    p.write_command("lint", "Lint $ARGUMENTS. SCRIPT: text")
    for i in range(3):
        assert not p.run_claude(f"/lint {i}").blocked
    per_run = p.status()["commands"]["/lint"]["per_run"]
    assert per_run["runs"] == 3 and per_run["p50_tokens"] == per_run["p90_tokens"] > 0, per_run
    one = per_run["p90_tokens"]
    # Room for 1.5 more runs: the fourth fits, the fifth would not (it is refused before it starts).
    p.write_config(f'mode = "block"\npreflight = "p90"\n[commands."/lint"]\ntokens = {int(4.5 * one)}\n')
    fourth = p.run_claude("/lint 4")
    assert not fourth.blocked and fourth.requests == 1, fourth.describe()
    fifth = p.run_claude("/lint 5")
    assert fifth.blocked and fifth.requests == 0, fifth.describe()
    assert "Pre-flight: a run of /lint is estimated at" in fifth.text and "(p90 of its last 4 runs)" in fifth.text
    assert "left of" in fifth.text, fifth.text
