"""Windows and limits: bucket strings, window arithmetic (DST included), evaluation, config keys, messages."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from budget_state._errors import ConfigError
from budget_state._model import LimitStatus, PerRun, ScopeStatus, Window
from budget_state.budgets._budgets import check_running, check_start, preflight, refusal, threshold_message
from budget_state.budgets._config import load_config
from budget_state.budgets._limits import LimitSpec, evaluate, merge, per_run
from budget_state.ledger._ledger import new_state
from budget_state.ledger._state import FieldError, Run, Scope
from budget_state.ledger._windows import (
    Buckets,
    WindowError,
    _add_last,
    charge,
    frees_at,
    minute_of,
    next_boundary,
    parse_window,
    period_start,
    scope_buckets,
    start_minute,
    trim_buckets,
)

NOW = datetime(2026, 12, 2, 15, 30, 20, tzinfo=timezone.utc)
HOUR = Window("rolling", 60)
DAY = Window("calendar", unit="day")


@pytest.mark.parametrize(
    ("text", "window"),
    [
        ("1h", HOUR),
        ("hour", HOUR),
        ("90m", Window("rolling", 90)),
        ("1.5h", Window("rolling", 90)),
        (" 5H ", Window("rolling", 300)),
        ("7d", Window("rolling", 7 * 1440)),
        ("day", DAY),
        ("Week", Window("calendar", unit="week")),
        ("month", Window("calendar", unit="month")),
    ],
)
def test_parse_window(text: str, window: Window) -> None:
    assert parse_window(text) == window


@pytest.mark.parametrize("text", ["", "0m", "1.25m", "32d", "fortnight", "1 hour", 5, None])
def test_parse_window_refuses(text: object) -> None:
    with pytest.raises(WindowError):
        parse_window(text)


def test_labels_round_trip() -> None:
    for w in (HOUR, Window("rolling", 90), Window("rolling", 2880), DAY):
        assert parse_window(w.label) == w


def test_bucket_strings_round_trip_and_survive_hand_edits() -> None:
    b = Buckets()
    b.add(10, {"input": 1, "usd_micros": 5})
    b.add(12, {"output": 2})
    b.add(10, {"input": 1})
    assert b.format() == "10:2,0,0,0,5 12:0,2,0,0,0"
    assert Buckets.parse(b.format()).rows == b.rows
    assert Buckets.parse("10:1,2,3,4,5 junk 11:1,2 12:-1,0,0,0,0 13:1,0,0,0,0").rows == {
        10: [1, 2, 3, 4, 5],
        13: [1, 0, 0, 0, 0],
    }
    assert Buckets.parse(7).rows == {}


def test_usage_is_added_to_the_last_bucket_without_reparsing() -> None:
    text = _add_last(None, 100, {"input": 5})
    text = _add_last(text, 100, {"input": 5})
    text = _add_last(text, 101, {"output": 2})
    text = _add_last(text, 99, {"cache_read": 1})  # the clock went back: a whole parse, still sorted
    assert text == "99:0,0,0,1,0 100:10,0,0,0,0 101:0,2,0,0,0"
    assert _add_last("5:1,0,0,0,0", 5, {"input": -1}) == ""  # a correction that empties the bucket


def test_a_rolling_window_is_exact_to_the_minute() -> None:
    state = new_state(NOW)
    first = NOW - timedelta(minutes=59)
    charge(state, ["overall"], first, {"input": 100})  # 59 minutes ago: still inside the last hour
    charge(state, ["overall"], NOW - timedelta(minutes=60), {"input": 1000})  # 60 minutes ago: outside
    charge(state, ["overall"], NOW, {"input": 1, "usd_micros": 3})
    (status,) = evaluate([LimitSpec("tokens", 100, HOUR)], state, "overall", NOW)
    assert (status.used, status.spent, status.over) == (101, True, True)
    assert status.resets_at == datetime.fromtimestamp((minute_of(first) + 60) * 60, timezone.utc)
    assert status.spent_in_window == (101, 3)
    (later,) = evaluate([LimitSpec("tokens", 100, HOUR)], state, "overall", status.resets_at)
    assert (later.used, later.spent, later.resets_at) == (1, False, None)


def test_frees_at_waits_for_enough_usage_to_leave() -> None:
    b = Buckets()
    for m, n in ((0, 50), (10, 50), (20, 50)):
        b.add(m, {"input": n})
    now = datetime.fromtimestamp(30 * 60, timezone.utc)
    w = Window("rolling", 60)
    # 150 used, limit 60: the first two buckets must leave (minutes 60 and 70)
    assert frees_at(w, b, 150, 60, "tokens", ("input",), now) == datetime.fromtimestamp(70 * 60, timezone.utc)
    assert frees_at(w, b, 150, 200, "tokens", ("input",), now) is None


def test_calendar_windows_in_a_zone_with_dst() -> None:
    paris = ZoneInfo("Europe/Paris")
    # 2026-10-25 is the night Paris goes from UTC+2 to UTC+1
    now = datetime(2026, 10, 25, 12, 0, tzinfo=timezone.utc)
    assert period_start(DAY, now, paris) == datetime(2026, 10, 24, 22, 0, tzinfo=timezone.utc)
    assert next_boundary(DAY, now, paris) == datetime(2026, 10, 25, 23, 0, tzinfo=timezone.utc)
    week = Window("calendar", unit="week")
    assert period_start(week, now, paris) == datetime(2026, 10, 18, 22, 0, tzinfo=timezone.utc)  # Monday 19th
    assert next_boundary(week, now, paris) == datetime(2026, 10, 25, 23, 0, tzinfo=timezone.utc)
    month = Window("calendar", unit="month")
    assert period_start(month, now, paris) == datetime(2026, 9, 30, 22, 0, tzinfo=timezone.utc)
    assert next_boundary(month, datetime(2026, 12, 31, 23, 30, tzinfo=timezone.utc), paris) == datetime(
        2027, 1, 31, 23, 0, tzinfo=timezone.utc
    )  # already January the 1st in Paris: the next boundary is February's
    kolkata = ZoneInfo("Asia/Kolkata")  # UTC+5:30: day starts on a quarter hour, so quarter buckets are exact
    assert start_minute(DAY, now, kolkata) % 15 == 0


def test_a_calendar_day_counts_from_its_boundary() -> None:
    state = new_state(NOW)
    utc = timezone.utc
    charge(state, ["/x"], datetime(2026, 12, 1, 23, 59, tzinfo=utc), {"input": 7})
    charge(state, ["/x"], datetime(2026, 12, 2, 0, 0, 30, tzinfo=utc), {"input": 5})
    state.command("/x")
    (day,) = evaluate([LimitSpec("tokens", 10, DAY)], state, "/x", NOW, zone=utc)
    assert (day.used, day.resets_at) == (5, datetime(2026, 12, 3, tzinfo=utc))


def test_trim_keeps_what_windows_need() -> None:
    state = new_state(NOW)
    charge(state, ["a"], NOW - timedelta(days=2), {"input": 1})
    charge(state, ["a"], NOW, {"input": 2})
    trim_buckets(state, NOW)
    assert scope_buckets(state, "a").total(0)[0].input == 2
    assert scope_buckets(state, "a", table="quarters").total(0)[0].input == 3
    trim_buckets(state, NOW, minutes_kept=3 * 1440)  # a 3-day rolling window keeps more (nothing to restore)
    trim_buckets(state, NOW + timedelta(days=40))
    assert "a" not in state.minutes and "a" not in state.quarters


def test_config_keys(tmp_path: Path) -> None:
    (tmp_path / ".claude").mkdir()
    (tmp_path / ".claude" / "budget.toml").write_text(
        'overall_usd = "$40"\noverall_tokens_per_day = "2M"\ntimezone = "UTC"\npreflight = "P90"\n'
        '[window.hour]\nspan = "1h"\ntokens = "1M"\nusd = 5\n'
        '[commands."/review-pr"]\nusd = 2.5\nusd_per_day = 10\ntokens_per_5h = "500k"\n'
    )
    config = load_config(tmp_path, {})
    assert config.warnings == ()
    assert [(s.key, s.amount) for s in config.overall_limits] == [
        ("tokens/day", 2_000_000),
        ("usd", 40_000_000),
        ("tokens/1h", 1_000_000),
        ("usd/1h", 5_000_000),
    ]
    assert [(s.key, s.amount) for s in config.command_limits["/review-pr"]] == [
        ("usd", 2_500_000),
        ("usd/day", 10_000_000),
        ("tokens/5h", 500_000),
    ]
    assert "/review-pr" not in config.commands and config.budgeted("/review-pr")
    assert (config.timezone, config.preflight, config.longest_rolling()) == ("UTC", "p90", 300)
    env = load_config(tmp_path, {"CLAUDE_BUDGET_OVERALL_USD": "12"})
    assert [s for s in env.overall_limits if s.key == "usd"] == [
        LimitSpec("usd", 12_000_000, None, "env", "CLAUDE_BUDGET_OVERALL_USD")
    ]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("overall_usd = -1\n", "overall_usd -1 in .claude/budget.toml is not an amount of dollars"),
        ("overall_usd = 0\n", "overall_usd 0 in .claude/budget.toml is not a positive amount of dollars"),
        ('timezone = "Mars/Olympus"\n', 'timezone "Mars/Olympus" in .claude/budget.toml is not a known time zone'),
        ('preflight = "p99"\n', 'preflight "p99" in .claude/budget.toml is not a choice — use p90, p50 or off'),
        ("[window.h]\ntokens = 5\n", '[window.h] in .claude/budget.toml has no span — add span = "1h"'),
        ('[window.h]\nspan = "fortnight"\ntokens = 5\n', '[window.h] span "fortnight" in .claude/budget.toml is not'),
        ('[window.h]\nspan = "1h"\n', "[window.h] in .claude/budget.toml has no limit"),
        ('[commands."/x"]\nusd_per_eon = 1\n', '[commands."/x"] usd_per_eon "eon" in .claude/budget.toml is not'),
    ],
)
def test_config_errors_name_the_key_the_file_and_the_fix(tmp_path: Path, text: str, message: str) -> None:
    (tmp_path / ".claude").mkdir()
    (tmp_path / ".claude" / "budget.toml").write_text(text)
    with pytest.raises(ConfigError) as info:
        config = load_config(tmp_path, {})
        for name in config.command_limits:  # a command's limits are checked when first asked for
            config.command_limits[name]
    assert message in str(info.value)


def test_config_beats_frontmatter_limit_by_limit() -> None:
    front = [LimitSpec("tokens", 5, None, "frontmatter"), LimitSpec("usd", 7, DAY, "frontmatter")]
    config = [LimitSpec("tokens", 9, None, "config")]
    assert merge(front, config) == (LimitSpec("tokens", 9, None, "config"), LimitSpec("usd", 7, DAY, "frontmatter"))


def _scope(name: str, *limits: LimitStatus, file: str | None = None, per: PerRun | None = None) -> ScopeStatus:
    return ScopeStatus(name, 0, None, limits=limits, file=file, per_run=per)


def test_a_refusal_names_the_limit_its_window_and_when_it_frees_up() -> None:
    resets = NOW.replace(hour=0, minute=0, second=0) + timedelta(days=1)
    day = LimitStatus("usd", 2_610_000, 2_500_000, DAY, resets, "config")
    cmd = _scope("/review-pr", day)
    decision = check_start("block", cmd, _scope("overall"), now=NOW, zone=timezone.utc)
    assert decision.reason == (
        "Budget spent: /review-pr has used $2.61 of $2.50 today (104%); resets at 00:00 (in 8h 30m). "
        'To go on, wait, or raise usd_per_day in [commands."/review-pr"] in .claude/budget.toml.'
    )
    assert check_running("kill", cmd, _scope("overall"), now=NOW, zone=timezone.utc).allowed is False
    hour = LimitStatus("tokens", 1_200_000, 1_000_000, HOUR, NOW + timedelta(minutes=7), "config")
    over = check_start("block", None, _scope("overall", hour), now=NOW, zone=timezone.utc)
    assert over.reason is not None and "1.2M of 1.0M tokens in the last hour (120%); frees up at 15:37 (in 7m)" in (
        over.reason
    )
    assert check_start("warn", cmd, _scope("overall")).allowed


def test_thresholds_are_announced_per_limit() -> None:
    day = LimitStatus("usd", 1_800_000, 2_000_000, DAY, None, "frontmatter")
    msg = threshold_message(_scope("/x", day, file="f.md"), day, 90)
    assert msg == "claude-budget: /x has passed 90% of its dollar budget for today: $1.80 of $2.00 today (90%)."
    assert refusal(_scope("/x", day, file="f.md"), day).endswith("To go on, wait, or raise costBudget in f.md.")


def test_preflight_refuses_a_run_that_would_not_fit() -> None:
    per = PerRun(5, 40_000, 48_000, 100, 200)
    tokens = LimitStatus("tokens", 60_000, 100_000, None, None, "frontmatter")
    cmd = _scope("/r", tokens, file="r.md", per=per)
    refused = preflight("block", "p90", cmd, _scope("overall"))
    assert refused.reason == (
        "Pre-flight: a run of /r is estimated at 48K tokens (p90 of its last 5 runs), but /r has only 40K left "
        "of 100K. To go on, raise tokenBudget in r.md, or start over with: claude-budget reset /r, "
        'or set preflight = "off" in .claude/budget.toml.'
    )
    assert preflight("block", "p50", cmd, _scope("overall")).allowed  # 40K fits in 40K
    assert preflight("warn", "p90", cmd, _scope("overall")).allowed
    assert preflight("block", "p90", cmd._replace(per_run=PerRun(2, 1, 10**9, 0, 0)), _scope("overall")).allowed


def test_per_run_figures_come_from_recent_and_finished_runs() -> None:
    state = new_state(NOW)
    state.command("/r").recent = [[10, 0, 0, 0, 1], [20, 0, 0, 0, 2]]
    finished, running = Run("p1", "/r"), Run("p2", "/r")
    finished.add({"input": 30, "usd_micros": 3})
    finished.ended = NOW
    running.add({"input": 999})  # still running: not a finished run
    state.runs = [finished, running]
    assert per_run(state, "/r") == PerRun(3, 20, 30, 2, 3)
    assert per_run(state, "/other") is None
    # as schema 2 wrote it: one string, read as the same runs
    problems: list[FieldError] = []
    state.commands["/r"] = Scope.load({"recent": "10,0,0,0,1 20,0,0,0,2"}, "commands./r", problems)
    assert problems == [] and per_run(state, "/r") == PerRun(3, 20, 30, 2, 3)
    # a broken item (a hand edit's): left out and named (the ledger then drops it at its next write,
    # keeping the file as it was beside it); the other rows and the finished run still count
    cases: list[tuple[object, list[int]]] = [
        ("10,0,0,0,1 20,0,0,0,2 x,1,0,0,0 1,2", [2, 3]),
        ([[10, 0, 0, 0, 1], [20, 0, 0, 0, 2], "junk"], [2]),
    ]
    for broken, bad in cases:
        problems = []
        state.commands["/r"] = Scope.load({"recent": broken}, "commands./r", problems)
        assert [p.where for p in problems] == [f"commands./r.recent[{n}]" for n in bad]
        assert per_run(state, "/r") == PerRun(3, 20, 30, 2, 3)


def test_a_commands_limits_are_checked_when_first_asked_for(tmp_path: Path) -> None:
    (tmp_path / ".claude").mkdir()
    (tmp_path / ".claude" / "budget.toml").write_text(
        '[commands."/good"]\nusd = 1\n[commands."/bad"]\nusd = "lots"\ntokens_per_7d = 5\n'
    )
    config = load_config(tmp_path, {})  # a hook of /good never pays for (nor trips on) /bad
    assert config.command_limits["/good"] == (LimitSpec("usd", 1_000_000, None, "config", ANY_WHERE),)
    assert config.budgeted("/bad") and config.longest_rolling() == 7 * 1440
    with pytest.raises(ConfigError, match=r'usd "lots" in \.claude/budget\.toml is not an amount of dollars'):
        config.command_limits["/bad"]


class _AnyWhere(str):
    def __eq__(self, other: object) -> bool:
        return isinstance(other, str)

    __hash__ = str.__hash__


ANY_WHERE = _AnyWhere()


def test_parsing_from_a_minute_skips_the_older_buckets_only() -> None:
    text = "100:1,0,0,0,5 160:2,0,0,0,0 161:x 220:4,0,0,0,1"
    assert Buckets.parse(text, 160).rows == {160: [2, 0, 0, 0, 0], 220: [4, 0, 0, 0, 1]}
    assert Buckets.parse(text).rows.keys() == {100, 160, 220}
