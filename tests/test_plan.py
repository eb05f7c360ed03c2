"""The plan's 5-hour and 7-day windows: capture into the account's state file, attribution to runs,
and the decisions (quota_guard, quotaBudget, the p90 fit). The real CLI's path is in
tests/e2e/test_plan_windows.py."""

from __future__ import annotations

import json
import re
import os
import stat
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from budget_state.budgets._plan import (
    NO_PLAN,
    QUOTA_RUNS,
    Marks,
    Plan,
    PlanStateError,
    PlanWindow,
    QuotaUse,
    attribute,
    parse_rate_limits,
    plan_path,
    plan_problem,
    quota_use,
    read_plan,
    record_plan,
    standings,
)
from budget_state.ledger import _records, _runs
from budget_state.ledger._ledger import new_state
from budget_state.ledger._state import LedgerState, Run
from budget_state.mod._observe import observe_plan

NOW = datetime(2026, 12, 7, 10, 0, tzinfo=timezone.utc)
T = int(NOW.timestamp())
COUNTED = ("input", "output", "cache_creation", "cache_read")


def limits(five: float, seven: float = 13, *, five_reset: int = T + 3600, seven_reset: int = T + 86400) -> dict:
    return {
        "five_hour": {"used_percentage": five, "resets_at": five_reset},
        "seven_day": {"used_percentage": seven, "resets_at": seven_reset},
    }


def env_of(tmp_path: Path, **extra: str) -> dict[str, str]:
    return {"HOME": str(tmp_path / "home"), **extra}


def window(pct: float, *, resets: int = T + 3600, name: str = "five_hour") -> PlanWindow:
    at = datetime.fromtimestamp(resets, timezone.utc)
    return PlanWindow(name, pct, at, NOW)


# --- capture ---------------------------------------------------------------------------------------


def test_parse_keeps_the_two_windows_and_drops_what_is_malformed() -> None:
    assert parse_rate_limits(limits(42, 13)) == {"five_hour": (42.0, T + 3600), "seven_day": (13.0, T + 86400)}
    assert parse_rate_limits({"fiveHour": {"usedPercentage": 5, "resetsAt": T}}) == {"five_hour": (5.0, T)}
    bad = {"five_hour": {"used_percentage": "42", "resets_at": T}, "seven_day": {"used_percentage": 1}}
    assert parse_rate_limits(bad) == {}
    assert parse_rate_limits(None) == {} and parse_rate_limits([1]) == {}
    assert parse_rate_limits({"five_hour": {"used_percentage": float("nan"), "resets_at": T}}) == {}


def test_an_observation_is_the_account_state_shared_by_every_project(tmp_path: Path) -> None:
    env = env_of(tmp_path)
    plan = observe_plan(limits(42, 13), env=env, now=NOW)
    assert plan is not None and plan.five_hour is not None and plan.seven_day is not None
    assert (plan.five_hour.used_percentage, plan.seven_day.used_percentage) == (42.0, 13.0)
    path = plan_path(env)
    assert path == tmp_path / "home" / ".local" / "state" / "claude-budget" / "plan.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    # Another project, the same user: the same windows.
    again = read_plan(env)
    assert again is not None and again.five_hour == plan.five_hour
    doc = again.as_json(NOW)
    assert doc["five_hour"] == {
        "used_percentage": 42.0,
        "resets_at": "2026-12-07T11:00:00Z",
        "seen_at": "2026-12-07T10:00:00Z",
        "status": "current",
        "runs_out_at": None,
    }


def test_another_config_folder_is_another_account(tmp_path: Path) -> None:
    env = env_of(tmp_path)
    other = env_of(tmp_path, CLAUDE_CONFIG_DIR=str(tmp_path / "work-login"))
    observe_plan(limits(42), env=env, now=NOW)
    assert plan_path(other) != plan_path(env)
    assert read_plan(other) is None


def test_no_rate_limits_means_no_plan_data_not_zeros(tmp_path: Path) -> None:
    env = env_of(tmp_path)
    observe_plan(limits(95), env=env, now=NOW)
    assert observe_plan(None, env=env, now=NOW) is None  # the newest observation had none
    assert read_plan(env) is None
    assert NO_PLAN == "no plan data"


def test_an_api_key_login_reads_no_plan_whatever_the_file_says(tmp_path: Path) -> None:
    env = env_of(tmp_path)
    observe_plan(limits(95), env=env, now=NOW)
    assert read_plan({**env, "ANTHROPIC_API_KEY": "sk-x"}) is None
    assert read_plan({**env, "ANTHROPIC_API_KEY": "sk-x", "CLAUDE_CODE_OAUTH_TOKEN": "t"}) is not None


def test_a_state_another_user_could_write_is_not_trusted(tmp_path: Path) -> None:
    env = env_of(tmp_path)
    observe_plan(limits(95), env=env, now=NOW)
    path = plan_path(env)
    assert path is not None
    os.chmod(path, 0o666)
    assert read_plan(env) is None
    problem = plan_problem(env)
    assert problem is not None and "may be written by other users" in problem and "chmod go-w" in problem
    with pytest.raises(PlanStateError):
        record_plan(limits(96), env=env, now=NOW)
    os.chmod(path, 0o600)
    os.chmod(path.parent, 0o777)
    assert read_plan(env) is None
    os.chmod(path.parent, 0o700)
    assert read_plan(env) is not None


def test_a_symlinked_state_file_is_refused(tmp_path: Path) -> None:
    env = env_of(tmp_path)
    path = plan_path(env)
    assert path is not None
    path.parent.mkdir(parents=True, mode=0o700)
    target = tmp_path / "elsewhere.json"
    target.write_text(json.dumps({"version": 1, "rate_limits": True}))
    path.symlink_to(target)
    assert read_plan(env) is None
    assert "symbolic link" in (plan_problem(env) or "")


def test_a_torn_or_foreign_file_is_as_if_never_seen(tmp_path: Path) -> None:
    env = env_of(tmp_path)
    observe_plan(limits(42), env=env, now=NOW)
    path = plan_path(env)
    assert path is not None
    path.write_text('{"version": 1, "rate_li')
    assert read_plan(env) is None
    assert observe_plan(limits(43), env=env, now=NOW) is not None  # and the next observation rewrites it


def test_the_same_percentages_again_do_not_rewrite_the_file(tmp_path: Path) -> None:
    env = env_of(tmp_path)
    observe_plan(limits(42), env=env, now=NOW)
    path = plan_path(env)
    assert path is not None
    before = path.stat().st_mtime_ns, path.read_bytes()
    observe_plan(limits(42), env=env, now=NOW + timedelta(minutes=1))
    assert (path.stat().st_mtime_ns, path.read_bytes()) == before


def test_a_window_past_its_reset_is_stale_and_counts_as_zero() -> None:
    w = window(97, resets=T - 1)
    assert w.stale(NOW) and w.status(NOW) == "stale" and w.used_now(NOW) == 0.0
    assert window(97).used_now(NOW) == 97.0


def test_runs_out_at_from_the_burn_rate_of_this_window() -> None:
    at = datetime.fromtimestamp(T + 5 * 3600, timezone.utc)
    w = PlanWindow("five_hour", 60, at, NOW, ((T - 3600, 40.0), (T, 60.0)))  # 20 % an hour
    assert w.runs_out_at(NOW) == NOW + timedelta(hours=2)
    slow = PlanWindow("five_hour", 60, at, NOW, ((T - 3600, 59.0), (T, 60.0)))
    assert slow.runs_out_at(NOW) is None  # not before the reset


# --- attribution -----------------------------------------------------------------------------------


def ledger_with(runs: list[Run], overall: int) -> LedgerState:
    state = new_state(NOW)
    state.overall.add({"input": overall})
    for r in runs:
        state.command(str(r.command))
    state.runs = list(runs)
    return state


def run_of(prompt: str, command: str, tokens: int) -> Run:
    """A run of ``command`` that has counted ``tokens`` input tokens so far."""
    run = Run(prompt, command)
    run.input = tokens
    return run


def plan_at(five: float, seven: float = 10, *, five_reset: int = T + 3600) -> Plan:
    return Plan(window(five, resets=five_reset), window(seven, resets=T + 86400, name="seven_day"))


def test_a_move_is_charged_to_the_runs_by_their_share_of_tokens() -> None:
    a, b = run_of("p1", "/a", 1000), run_of("p2", "/b", 0)
    state = ledger_with([a, b], overall=1000)
    assert attribute(state, plan_at(40, 10), counted=COUNTED, now=NOW) == {}  # the first mark: nothing to charge
    a.input, b.input = 4000, 1000  # /a spent 3000, /b 1000, plain prompts 1000
    state.overall.input = 6000
    moves = attribute(state, plan_at(50, 12), counted=COUNTED, now=NOW)
    assert moves == {"five_hour": 10.0, "seven_day": 2.0}
    assert (a.shares["quota_5h"], b.shares["quota_5h"]) == (6.0, 2.0)  # 3000/5000 and 1000/5000 of 10 points
    assert (a.shares["quota_7d"], b.shares["quota_7d"]) == (1.2, 0.4)
    assert _records.plan_share(state, "/a").charged["five_hour"] == (T + 3600, 6.0)
    assert _records.plan_share(state, "overall").charged["five_hour"] == (T + 3600, 10.0)
    use = quota_use(state, "/a", plan_at(50), NOW)
    assert (use.five_hour, use.runs, use.p50, use.p90) == (6.0, 1, 6.0, 6.0)


def test_a_move_with_no_tokens_here_was_spent_elsewhere() -> None:
    state = ledger_with([run_of("p1", "/a", 10)], overall=10)
    attribute(state, plan_at(40), counted=COUNTED, now=NOW)
    attribute(state, plan_at(45), counted=COUNTED, now=NOW)
    assert "quota_5h" not in state.runs[0].shares
    assert _records.plan_share(state, "overall").unattributed == {"five_hour": 5.0}


def test_after_a_reset_the_move_is_the_new_windows_use_and_old_shares_stop_counting() -> None:
    run = run_of("p1", "/a", 0)
    state = ledger_with([run], overall=0)
    attribute(state, plan_at(90), counted=COUNTED, now=NOW)
    run.input = state.overall.input = 100
    attribute(state, plan_at(95), counted=COUNTED, now=NOW)
    assert quota_use(state, "/a", plan_at(95), NOW).five_hour == 5.0
    new_window = plan_at(3, five_reset=T + 5 * 3600)
    assert quota_use(state, "/a", new_window, NOW).five_hour == 0.0  # charged to the old window
    run.input = state.overall.input = 200
    attribute(state, new_window, counted=COUNTED, now=NOW)
    assert quota_use(state, "/a", new_window, NOW).five_hour == 3.0
    assert run.shares["quota_5h"] == 8.0  # the run's whole share, both windows


def test_p50_and_p90_per_run_over_the_last_runs() -> None:
    state = new_state(NOW)
    for i in range(1, 11):
        _runs.note_run_quota(state, "/a", f"p{i}", float(i), keep=QUOTA_RUNS)
    use = quota_use(state, "/a", None, NOW)
    assert (use.runs, use.p50, use.p90) == (10, 5.0, 9.0)


def test_the_marks_read_back_what_they_wrote_byte_for_byte(tmp_path: Path) -> None:
    from budget_state.budgets._plan import marked
    from budget_state.ledger._ledger import Ledger

    path = tmp_path / "budget-ledger.toml"
    with Ledger(path).transaction() as state:
        state.overall.add({"input": 700})
        state.runs.append(run_of("p1", "/a", 500))
        state.command("/a")
        attribute(state, plan_at(40.0, 10.0), counted=COUNTED, now=NOW)
        written = state.dump()["quota"]
    assert written == {
        "five_hour": [T + 3600, 40.0],
        "seven_day": [T + 86400, 10.0],
        "overall": 700,
        "tokens": {"p1": 500},
        "seen_at": NOW,
    }
    text = path.read_text()
    with Ledger(path).transaction() as state:
        marks = _records.feature_value(state, "quota", Marks.load)
        assert marks is not None and marks.dump() == written
        assert (marks.windows, marks.overall, marks.tokens, marks.seen_at) == (
            {"five_hour": (T + 3600, 40.0), "seven_day": (T + 86400, 10.0)},
            700,
            {"p1": 500},
            NOW,
        )
        assert marked(state, plan_at(40.0, 10.0)) and not marked(state, plan_at(41.0, 10.0))
    assert path.read_text() == text  # typed and written back: the same file
    newer = {**written, "a_note_of_a_newer_version": "kept"}
    again = Marks.load(newer)
    assert again is not None and again.dump() == newer


def test_a_hand_edited_mark_reads_as_empty_and_the_rest_is_kept() -> None:
    table = {
        "five_hour": ["soon", 40.0],
        "seven_day": [T + 86400, 10.0],
        "overall": "many",
        "tokens": {"p1": -5, "p2": 7},
        "seen_at": "yesterday",
        "a_note_of_a_newer_version": 1,
    }
    broken = Marks.load(table)
    assert broken is not None
    assert (broken.windows, broken.overall, broken.tokens, broken.seen_at, broken.extra) == (
        {"seven_day": (T + 86400, 10.0)},
        None,
        {"p2": 7},
        None,
        {"a_note_of_a_newer_version": 1},
    )
    # The next charge: the 5-hour window has no mark and starts one; the 7-day window moved 2 points,
    # all /a's (its run's tokens count from 0, overall's since the mark are not known).
    state = ledger_with([run_of("p1", "/a", 500)], overall=1000)
    state.tables["quota"] = table
    assert attribute(state, plan_at(45, 12), counted=COUNTED, now=NOW) == {"seven_day": 2.0}
    assert _records.plan_share(state, "/a").charged == {"seven_day": (T + 86400, 2.0)}
    assert state.dump()["quota"] == {
        "five_hour": [T + 3600, 45],
        "seven_day": [T + 86400, 12],
        "overall": 1000,
        "tokens": {"p1": 500},
        "seen_at": NOW,
        "a_note_of_a_newer_version": 1,
    }


# --- decisions -------------------------------------------------------------------------------------


NO_USE = QuotaUse()


def decide(mode: Any, plan: Plan | None, use: QuotaUse = NO_USE, **kw: Any) -> tuple[bool, str | None]:
    """A start, as plan_decision decides it: ``(allowed, the refusal or warn mode's note)``."""
    from budget_state.budgets._budgets import decide as the_decision
    from budget_state.budgets._budgets import warn_note

    args: dict[str, Any] = {"guard": 90.0, "quota_5h": None, "quota_7d": None}
    args.update(kw)
    found = list(standings(plan, command="/big", use=use, now=NOW, zone=timezone.utc, **args))
    verdict = the_decision(found, mode, "start")
    return verdict.allowed, verdict.reason if not verdict.allowed else warn_note(found, mode)


def test_the_guard_refuses_at_or_above_it_naming_the_window_its_use_and_reset() -> None:
    allowed, message = decide("block", plan_at(90))
    assert not allowed and message is not None
    assert "/big not started" in message
    assert "the plan's 5-hour window is at 90%" in message
    assert "resets at 11:00 (in 1h 0m)" in message
    assert "quota_guard (90%)" in message
    assert decide("block", plan_at(89.9)) == (True, None)
    assert decide("kill", plan_at(95))[0] is False


def test_warn_mode_only_says_it() -> None:
    allowed, message = decide("warn", plan_at(95))
    assert allowed and message is not None and "5-hour window is at 95%" in message


def test_no_plan_data_and_a_stale_window_block_nothing() -> None:
    assert decide("block", None) == (True, None)
    assert decide("block", plan_at(99, five_reset=T - 60)) == (True, None)
    assert decide("block", plan_at(99), guard=None) == (True, None)


def test_a_run_whose_p90_does_not_fit_before_the_reset_is_refused() -> None:
    use = QuotaUse(runs=5, p50=10.0, p90=25.0)
    allowed, message = decide("block", plan_at(80), use)
    assert not allowed and message is not None and "p90 of its last 5 runs" in message and "20% left" in message
    assert decide("block", plan_at(70), use) == (True, None)
    assert decide("block", plan_at(80), QuotaUse(runs=2, p50=25.0, p90=25.0))[0]  # too few runs to judge


def test_quota_budget_per_window() -> None:
    allowed, message = decide("block", plan_at(50), QuotaUse(five_hour=10.5), guard=None, quota_5h=10.0)
    assert not allowed and message is not None and "quotaBudget is 10%" in message and "5-hour" in message
    assert decide("block", plan_at(50), QuotaUse(five_hour=9.0), guard=None, quota_5h=10.0) == (True, None)
    allowed, message = decide("block", plan_at(50), QuotaUse(seven_day=3.0), guard=None, quota_7d=2.5)
    assert not allowed and message is not None and "quotaBudget7d" in message and "7-day" in message


def test_frontmatter_quota_budgets(tmp_path: Path) -> None:
    from budget_state.budgets._commands import parse_frontmatter

    got = parse_frontmatter(b'---\nquotaBudget: "10%"\nquotaBudget7d: 2.5\n---\nbody\n', where="x.md")
    assert (got.quota_5h, got.quota_7d, got.error) == (10.0, 2.5, None)
    bad = parse_frontmatter(b"---\nquotaBudget: 120%\n---\n", where="x.md")
    assert bad.error is not None and "quotaBudget" in bad.error and "at most 100" in bad.error


def test_quota_guard_in_budget_toml_and_the_environment(tmp_path: Path) -> None:
    from budget_state._errors import ConfigError
    from budget_state.budgets._config import load_config

    (tmp_path / ".claude").mkdir()
    (tmp_path / ".claude" / "budget.toml").write_text("quota_guard = 90\n")
    assert load_config(tmp_path, {}).quota_guard == 90.0
    assert load_config(tmp_path, {"CLAUDE_BUDGET_QUOTA_GUARD": "75%"}).quota_guard == 75.0
    assert load_config(tmp_path, {"CLAUDE_BUDGET_QUOTA_GUARD": "off"}).quota_guard is None
    (tmp_path / ".claude" / "budget.toml").write_text("quota_guard = 0\n")
    with pytest.raises(ConfigError, match="quota_guard"):
        load_config(tmp_path, {})


# --- display ---------------------------------------------------------------------------------------


def snapshot_with(plan: Plan | None, quota: dict[str, QuotaUse], guard: float | None = 90.0) -> Any:
    from budget_state._model import ScopeStatus, Snapshot

    overall = ScopeStatus("overall", 0, None)
    big = ScopeStatus("/big", 0, None)
    return Snapshot("block", overall, {"/big": big}, "/l.toml", plan=plan, quota=quota, taken_at=NOW, quota_guard=guard)


def test_status_shows_the_windows_their_reset_runs_out_and_each_commands_share() -> None:
    from budget_state._render import render_status

    at = datetime.fromtimestamp(T + 5 * 3600, timezone.utc)
    five = PlanWindow("five_hour", 60, at, NOW, ((T - 3600, 40.0), (T, 60.0)))
    plan = Plan(five, window(12, resets=T + 86400, name="seven_day"))
    use = QuotaUse(20.0, 2.0, 4, 5.0, 9.5)
    text = render_status(snapshot_with(plan, {"/big": use, "overall": use}), width=100, now=NOW)
    assert "Plan windows (Claude Code's own figures):" in text
    assert "5-hour 60%, resets at" in text and "runs out at ~" in text and "(quota_guard 90%)" in text
    assert "7-day 12%, resets at" in text
    assert "/big 20.0% of 5-hour, 2.0% of 7-day, per run p50 5% / p90 9.5%" in text
    stale = render_status(snapshot_with(Plan(window(97, resets=T - 10), None), {}), width=100, now=NOW)
    assert "5-hour 97% — stale: it has reset since (counts as 0%)" in stale
    none = render_status(snapshot_with(None, {}), width=100, now=NOW)
    assert "Plan windows: no plan data" in none and "nothing is held back" in none
    assert "Plan windows" not in render_status(snapshot_with(None, {}, guard=None), width=100, now=NOW)


def test_status_json_plan_and_quota() -> None:
    plan = plan_at(60, 12)
    doc = snapshot_with(plan, {"/big": QuotaUse(20.0, 2.0), "overall": QuotaUse(25.0, 3.0)}).to_json()
    assert doc["version"] == 2
    assert doc["plan"]["five_hour"]["used_percentage"] == 60 and doc["plan"]["five_hour"]["status"] == "current"
    assert doc["commands"]["/big"]["quota"] == {"five_hour": 20.0, "seven_day": 2.0, "per_run": None}
    assert doc["overall"]["quota"]["five_hour"] == 25.0
    empty = snapshot_with(None, {}).to_json()
    assert empty["plan"] is None and empty["overall"]["quota"] is None  # never zeros


def test_the_status_line_part() -> None:
    from budget_state.budgets._plan import plan_part

    assert plan_part(None, NOW) == "no plan data"
    text = plan_part(plan_at(42, 13), NOW, share=6.25, zone=timezone.utc)
    assert text == "5h 42% resets 11:00, 7d 13% resets Tue 10:00, cmd ~6.2% of 5h"
    assert plan_part(Plan(window(99, resets=T - 1), None), NOW, zone=timezone.utc) == "5h stale (reset 09:59)"


def test_doctor_names_an_untrusted_state_and_its_fix(tmp_path: Path) -> None:
    from budget_state.cli._doctor import _plan

    env = env_of(tmp_path)
    assert _plan(env).detail.startswith("no plan data")
    now = datetime.now(timezone.utc)  # doctor reads the windows at the real time: they reset after it
    soon = int(now.timestamp())
    observe_plan(limits(42, five_reset=soon + 3600, seven_reset=soon + 86400), env=env, now=now)
    assert _plan(env).status == "ok" and "5-hour 42% (current)" in _plan(env).detail
    path = plan_path(env)
    assert path is not None
    os.chmod(path, 0o620)
    check = _plan(env)
    assert check.status == "problem" and "other users" in check.detail and str(path) in (check.fix or "")


def test_kill_mode_stops_a_run_past_its_quota_budget_not_at_it() -> None:
    from budget_state.budgets._budgets import decide as the_decision

    args: dict[str, Any] = {"command": "/big", "quota_5h": 10.0, "quota_7d": None, "now": NOW, "zone": timezone.utc}

    def quota_running(
        plan: Plan | None, *, use: QuotaUse, mode: Any = "kill", guard: float | None = None
    ) -> str | None:
        verdict = the_decision(standings(plan, use=use, guard=guard, **args), mode, "running")
        assert verdict.allowed == (verdict.reason is None)
        return verdict.reason

    message = quota_running(plan_at(50), use=QuotaUse(five_hour=10.5))
    assert message == (
        "claude-budget (kill mode) stopped this turn: /big has taken about 10.5% of the plan's 5-hour window and "
        "its quotaBudget is 10%; it resets at 11:00 (in 1h 0m). To go on, wait for the reset, or raise quotaBudget "
        "in its command file."
    )
    assert quota_running(plan_at(50), use=QuotaUse(five_hour=10.0)) is None
    assert quota_running(None, use=QuotaUse(five_hour=50.0)) is None
    assert quota_running(plan_at(50, five_reset=T - 1), use=QuotaUse(five_hour=50.0)) is None
    # block and warn mode never stop a running turn; quota_guard and the fit only hold back a start
    assert quota_running(plan_at(50), use=QuotaUse(five_hour=10.5), mode="block") is None
    assert quota_running(plan_at(50), use=QuotaUse(five_hour=10.5), mode="warn") is None
    assert quota_running(plan_at(99), use=QuotaUse(five_hour=1.0, runs=5, p90=30.0), guard=90.0) is None


def test_a_run_keeps_its_quota_budgets(tmp_path: Path) -> None:
    from budget_state._model import Budget

    state = new_state(NOW)
    _runs.open_run(state, session="s", prompt="p", command="/big", budget=Budget(None, None, None, None, 10.0), now=NOW)
    assert state.runs[0].budget == {"quota_5h": 10.0}
    assert _runs.run_for(state, "s", "p").budget == Budget(None, None, None, None, 10.0, None)


def test_the_plan_command_observes_stdin_and_shows_the_windows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import io

    from budget_state.cli._cli import main

    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    monkeypatch.delenv("XDG_STATE_HOME", raising=False)
    monkeypatch.delenv("CLAUDE_BUDGET_PLAN_STATE", raising=False)
    later = int(datetime.now(timezone.utc).timestamp()) + 3600
    payload = {"rate_limits": limits(42, 13, five_reset=later, seven_reset=later + 86400)}
    monkeypatch.setattr("sys.stdin", io.StringIO(json.dumps(payload)))
    assert main(["plan", "observe", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["version"] == 1 and doc["plan"]["five_hour"]["used_percentage"] == 42
    assert main(["plan"]) == 0
    out = capsys.readouterr().out
    assert "5-hour: 42% (current)" in out and "7-day: 13% (current)" in out
    monkeypatch.setattr("sys.stdin", io.StringIO("[1]"))
    assert main(["plan", "observe"]) == 1
    assert "not a JSON object" in capsys.readouterr().err


def test_an_api_key_user_gets_no_state_file(tmp_path: Path) -> None:
    env = env_of(tmp_path)
    assert observe_plan(None, env=env, now=NOW) is None
    path = plan_path(env)
    assert path is not None and not path.exists() and not path.parent.exists()


def test_no_runs_out_at_from_under_ten_minutes_of_samples() -> None:
    at = datetime.fromtimestamp(T + 5 * 3600, timezone.utc)
    w = PlanWindow("five_hour", 60, at, NOW, ((T - 300, 40.0), (T, 60.0)))
    assert w.runs_out_at(NOW) is None


def test_may_start_answers_as_the_hook_with_the_plan(tmp_path: Path) -> None:
    import budget_state

    project = tmp_path / "proj"
    (project / ".claude" / "commands").mkdir(parents=True)
    (project / ".claude" / "commands" / "big.md").write_text("---\ndescription: x\n---\nbody\n")
    (project / ".claude" / "budget.toml").write_text('mode = "block"\nquota_guard = 90\n')
    env = env_of(tmp_path)
    soon = int(datetime.now(timezone.utc).timestamp()) + 3600
    observe_plan(limits(91, five_reset=soon, seven_reset=soon + 86400), env=env)
    decision = budget_state.may_start("/big", project, env=env)
    assert not decision.allowed and "5-hour window is at 91%" in (decision.reason or "")
    assert budget_state.may_start(None, project, env=env).allowed  # a plain prompt is not held back
    assert budget_state.may_start("/big", project, env={**env, "ANTHROPIC_API_KEY": "k"}).allowed


def test_the_status_line_survives_a_busy_ledger_and_charges_later(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import io

    from budget_state import statusline
    from budget_state._errors import LockTimeout
    from budget_state.budgets import _plan

    project = tmp_path / "proj"
    (project / ".claude").mkdir(parents=True)
    (project / ".claude" / "budget.toml").write_text("quota_guard = 90\n")
    env = {**env_of(tmp_path), "NO_COLOR": "1"}
    soon = int(datetime.now(timezone.utc).timestamp()) + 3600
    payload = {"workspace": {"project_dir": str(project)}, "rate_limits": limits(42, 13, five_reset=soon)}

    def busy(*args: Any, **kwargs: Any) -> Any:
        raise LockTimeout("the ledger lock was held", path=project)

    monkeypatch.setattr(_plan, "attribute", busy)
    out = io.StringIO()
    assert statusline.main([], stdin=io.BytesIO(json.dumps(payload).encode()), stdout=out, env=env) == 0
    assert "5h 42%" in out.getvalue(), out.getvalue()


# --- one way to decide: the plan's limits are Standings, and decide() rules on them ----------------

GUARD_NOTE = (
    "the plan's 5-hour window is at 95%; it resets at 11:00 (in 1h 0m) — at or above quota_guard (90%). "
    "To go on, wait for the reset, or raise quota_guard in .claude/budget.toml (or CLAUDE_BUDGET_QUOTA_GUARD)"
)


def ctx_of(tmp_path: Path, mode: str, guard: float | None = 90.0) -> Any:
    from types import SimpleNamespace

    from budget_state.budgets._config import Config

    return SimpleNamespace(config=Config(mode=mode, quota_guard=guard, timezone="UTC"), env=env_of(tmp_path))  # type: ignore[arg-type]  # a Mode


def test_the_plans_limits_are_standings_in_hundredths_of_a_percent() -> None:
    use = QuotaUse(five_hour=10.5, seven_day=1.0, runs=3, p50=5.0, p90=12.5)
    found = list(standings(plan_at(95), command="/big", use=use, guard=90.0, quota_5h=10.0, quota_7d=2.0, now=NOW))
    assert [(s.source, s.scope, s.metric, s.used, s.limit, s.spent, s.over) for s in found] == [
        ("plan", "/big", "percent", 9500, 9000, True, False),  # quota_guard: refuses a start, stops nothing
        ("plan", "/big", "percent", 10750, 10000, True, False),  # the p90 fit: 95% + 12.5% > 100%
        ("plan", "/big", "percent", 1050, 1000, True, True),  # quotaBudget, past it
        ("plan", "/big", "percent", 100, 200, False, False),  # quotaBudget7d
    ]
    assert list(standings(None, command="/big", use=use, guard=90.0, quota_5h=10.0, quota_7d=2.0, now=NOW)) == []


@pytest.mark.parametrize(
    ("mode", "allowed", "reason", "notes"),
    [
        ("warn", True, None, [f"claude-budget: {GUARD_NOTE}."]),
        ("block", False, f"claude-budget: /big not started: {GUARD_NOTE}.", []),
        ("kill", False, f"claude-budget: /big not started: {GUARD_NOTE}.", []),
    ],
    ids=["warn-says-it", "block-refuses", "kill-refuses"],
)
def test_plan_decision_goes_through_decide(tmp_path: Path, mode: str, allowed: bool, reason: Any, notes: Any) -> None:
    from budget_state.budgets._plan import plan_decision

    record_plan(limits(95), env=env_of(tmp_path), now=NOW)
    decision, said = plan_decision(ctx_of(tmp_path, mode), new_state(NOW), "/big", None, NOW)
    assert (decision.allowed, decision.reason, said) == (allowed, reason, notes)
    assert decision.scope == (None if allowed else "/big")
    below, said = plan_decision(ctx_of(tmp_path, mode, guard=96.0), new_state(NOW), "/big", None, NOW)
    assert below.allowed and below.reason is None and said == []


def test_a_running_command_is_stopped_only_in_kill_mode_and_only_past_its_quota_budget(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As the tool-call hook asks: decide() on read_standings, event "running"."""
    from budget_state._model import Budget
    from budget_state.budgets import _plan
    from budget_state.budgets._budgets import decide as the_decision

    record_plan(limits(50), env=env_of(tmp_path), now=NOW)
    budget = Budget(quota_5h=10.0)

    def running(mode: str, pct: float) -> Any:
        state = new_state(NOW)
        _runs.charge_plan(state, "/big", "five_hour", T + 3600, pct)
        found = _plan.read_standings(ctx_of(tmp_path, mode), state, "/big", budget, NOW, timezone.utc)
        return the_decision(found, mode, "running")  # type: ignore[arg-type]  # a Mode

    over = running("kill", 10.5)
    assert not over.allowed and over.scope == "/big"
    assert over.reason is not None and over.reason.startswith("claude-budget (kill mode) stopped this turn: /big")
    assert running("kill", 10.0).allowed
    # outside kill mode decide() does not ask: the account's file is not even read
    monkeypatch.setattr(_plan, "read_plan", lambda env: pytest.fail("read outside kill mode"))
    for mode in ("block", "warn"):
        assert running(mode, 50.0).allowed


@pytest.mark.parametrize("mode", ["kill", "block", "warn"])
def test_the_tool_call_hook_stops_a_command_past_its_quota_budget_in_kill_mode_only(tmp_path: Path, mode: str) -> None:
    """The hook's path: PreToolUse asks decide() with the plan's Standings, event "running"."""
    import time

    from kit import Project

    from budget_state.ledger._ledger import Ledger
    from budget_state.ledger._runs import charge_plan

    proj = Project(tmp_path)
    (proj.root / ".claude" / "commands" / "big.md").write_text('---\nquotaBudget: "10%"\n---\nDo big.\n')
    proj.config(f'mode = "{mode}"\n')
    resets = int(time.time()) + 3600  # the hook decides at the real time
    record_plan(limits(50, five_reset=resets), env={"HOME": str(proj.home)}, now=datetime.now(timezone.utc))
    assert proj.run("UserPromptSubmit", prompt="/big", prompt_id="p1") is None
    with Ledger(proj.ledger_path).transaction() as state:  # what the status line charged to /big since
        charge_plan(state, "/big", "five_hour", resets, 10.5)
    reply = proj.run("PreToolUse", prompt_id="p1", tool_name="Bash")
    if mode != "kill":
        assert reply is None
        return
    assert reply is not None and reply["continue"] is False
    assert re.fullmatch(
        r"claude-budget \(kill mode\) stopped this turn: /big has taken about 10\.5% of the plan's 5-hour window "
        r"and its quotaBudget is 10%; it resets at \d\d:\d\d \(in (59m|1h 0m)\)\. To go on, wait for the reset, "
        r"or raise quotaBudget in its command file\.",
        reply["stopReason"],
    )
