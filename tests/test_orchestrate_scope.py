"""An orchestration's scope in the ledger: charged like overall, decided with the same numbers."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from budget_state._model import CATEGORIES, Usage, Window
from budget_state._steps import ORCHESTRATION_ENV
from budget_state.budgets._budgets import decide
from budget_state.ledger import _records
from budget_state.ledger._ledger import new_state
from budget_state.ledger._runs import join_orchestration
from budget_state.ledger._state import LedgerState
from budget_state.orchestrator import _scope
from budget_state.orchestrator._schedule import estimate

NOW = datetime(2026, 12, 3, 1, 0, tzinfo=timezone.utc)
OID = "o1"


def fleet(limits: dict[str, int], *, persistent: bool = False, mode: str = "block") -> dict[str, Any]:
    state = new_state(NOW)
    _scope.register(state, OID, mode=mode, persistent=persistent, period=60, limits=limits, now=NOW)
    _scope.add_instance(state, OID, "s1", command="/a", limit=5000, usd_limit=None, exempt=False)
    _scope.add_instance(state, OID, "s2", command="/b", limit=None, usd_limit=None, exempt=True)
    assert _scope.tag(state, "s1", {ORCHESTRATION_ENV: OID}) == OID
    assert _scope.tag(state, "s2", {ORCHESTRATION_ENV: OID}) == OID
    return state


def spend(
    state: LedgerState, session: str, tokens: int, *, command: str | None, at: datetime = NOW, usd: int = 0
) -> None:
    charge = _scope.charger(state, session, at)
    assert charge is not None
    charge({"input": tokens, "output": 0, "cache_creation": 0, "cache_read": 0, "usd_micros": usd}, "m", command)


def test_the_hook_env_name_is_the_scope_one() -> None:
    assert ORCHESTRATION_ENV == _scope.ENV


def test_untagged_sessions_and_unknown_orchestrations_are_left_alone() -> None:
    state = fleet({"tokens": 10})
    assert _scope.tag(state, "s3", {}) is None
    assert _scope.tag(state, "s3", {ORCHESTRATION_ENV: "nope"}) is None
    assert _scope.charger(state, "s3", NOW) is None
    assert _scope.check(state, "s3", mode="block", command="/a", counted=CATEGORIES, now=NOW, running=False).allowed


def test_charges_land_in_the_orchestration_its_command_and_its_instance() -> None:
    state = fleet({"tokens": 10_000})
    spend(state, "s1", 3000, command="/a", usd=1500)
    spend(state, "s2", 500, command=None)
    t = _records.feature_table(state, "orchestrations", OID)
    assert t is not None
    assert (t["input"], t["usd_micros"], t["models"]["m"]["input"]) == (3500, 1500, 3500)
    assert t["commands"]["/a"]["input"] == 3000
    assert (t["instances"]["s1"]["input"], t["instances"]["s2"]["input"]) == (3000, 500)
    assert state.minutes["@o1"] == f"{int(NOW.timestamp()) // 60}:3500,0,0,0,1500"  # the ledger's buckets


def test_block_refuses_a_spent_budget_and_kill_stops_one_that_is_over() -> None:
    state = fleet({"tokens": 10_000})
    spend(state, "s1", 10_000, command="/a")

    start = _scope.check(state, "s2", mode="block", command="/b", counted=CATEGORIES, now=NOW, running=False)
    assert start == (
        False,
        "Orchestration budget spent: the orchestration's overall token budget has used 10K tokens of 10K tokens "
        "(100%). To go on, raise --overall-token-budget.",
        "overall",
    )
    assert _scope.check(state, "s2", mode="kill", command="/b", counted=CATEGORIES, now=NOW, running=True).allowed
    spend(state, "s2", 1, command=None)
    stop = _scope.check(state, "s2", mode="kill", command="/b", counted=CATEGORIES, now=NOW, running=True)
    assert not stop.allowed and "kill mode" in (stop.reason or "")
    assert _scope.check(state, "s2", mode="warn", command="/b", counted=CATEGORIES, now=NOW, running=False).allowed


def test_a_per_command_limit_applies_to_its_instance_and_an_exempt_one_has_none() -> None:
    state = fleet({})
    spend(state, "s1", 5000, command="/a")
    verdict = _scope.check(state, "s1", mode="block", command="/a", counted=CATEGORIES, now=NOW, running=False)
    assert verdict.scope == "/a" and "/a's token budget in this orchestration" in (verdict.reason or "")
    assert _scope.overrides(state, "s1") and _scope.overrides(state, "s2")
    assert _scope.limits(state, OID, command="/b", session="s2", counted=CATEGORIES, now=NOW) == []


def test_the_hourly_budget_is_a_rolling_window_of_minutes() -> None:
    state = fleet({"hourly_tokens": 1000})
    spend(state, "s2", 900, command=None, at=NOW - timedelta(minutes=59))
    spend(state, "s2", 200, command=None, at=NOW)
    (hourly,) = _scope.limits(state, OID, command=None, session=None, counted=CATEGORIES, now=NOW)
    assert (hourly.scope, hourly.used, hourly.limit, hourly.window) == ("hourly", 1100, 1000, Window("rolling", 60))
    assert _scope.next_reset(state, OID, now=NOW, minutes=60) == 1
    later = NOW + timedelta(minutes=1)
    (hourly,) = _scope.limits(state, OID, command=None, session=None, counted=CATEGORIES, now=later)
    assert hourly.used == 200


def test_an_orchestrations_limits_are_the_shared_limit_status_and_say_the_same() -> None:
    from budget_state._model import LimitStatus

    state = fleet({"tokens": 1000, "hourly_usd_micros": 2_000_000})
    spend(state, "s2", 1000, command=None)
    overall, hourly = _scope.limits(state, OID, command=None, session=None, counted=CATEGORIES, now=NOW)
    assert overall == LimitStatus(
        "tokens", 1000, 1000, None, source="orchestrator", scope="overall", flag="--overall-token-budget"
    )
    assert (overall.spent, overall.over, overall.left, overall.whole_percent) == (True, False, 0, 100)
    assert (hourly.scope, hourly.metric, hourly.window, hourly.flag) == (
        "hourly",
        "usd",
        Window("rolling", 60),
        "--hourly-cost-budget",
    )
    assert (
        _scope.describe(overall)
        == "the orchestration's overall token budget has used 1.0K tokens of 1.0K tokens (100%)"
    )
    assert _scope.describe(hourly) == "the orchestration's dollar budget per 60 min has used $0.0000 of $2.00 (0%)"
    verdict = decide(_scope.standings([overall, hourly]), "block", "start")
    assert verdict.reason == (
        "Orchestration budget spent: the orchestration's overall token budget has used 1.0K tokens of 1.0K tokens "
        "(100%). To go on, raise --overall-token-budget."
    )


def test_persistent_budgets_count_the_ledgers_own_totals() -> None:
    from budget_state.ledger._windows import charge

    state = fleet({"tokens": 1000, "hourly_tokens": 600}, persistent=True)
    state.overall.input = 1500  # spent by anyone: an interactive session, an earlier fleet
    charge(state, ["overall"], NOW - timedelta(minutes=5), {"input": 700})
    charge(state, ["overall"], NOW - timedelta(minutes=61), {"input": 800})
    overall, hourly = _scope.limits(state, OID, command=None, session=None, counted=CATEGORIES, now=NOW)
    assert (overall.used, overall.spent) == (1500, True)
    assert (hourly.used, hourly.spent) == (700, True)


def test_the_preflight_estimate_refuses_a_start_that_would_not_fit() -> None:
    state = fleet({"tokens": 10_000})
    spend(state, "s1", 6000, command="/a")
    _scope.table(state, OID).instances["s1"].finished = True  # type: ignore[union-attr]
    assert estimate(state, OID, "/a", CATEGORIES) == {"tokens": 6000, "usd": 0}
    assert estimate(state, OID, "/new", CATEGORIES) == {"tokens": 6000, "usd": 0}  # the fleet's typical run
    found = _scope.limits(state, OID, command="/b", session="s2", counted=CATEGORIES, now=NOW)
    verdict = decide(_scope.standings(found, estimate=lambda lim: 6000), "block", "start")
    assert not verdict.allowed and "would be exceeded" in (verdict.reason or "")
    assert decide(_scope.standings(found, estimate=lambda lim: 4000), "block", "start").allowed


def test_old_finished_orchestrations_are_pruned_with_their_buckets() -> None:
    from budget_state.ledger._windows import charge

    state = new_state(NOW)
    for i in range(_scope.KEEP + 5):
        _scope.register(state, f"o{i}", mode="warn", persistent=False, period=60, limits={}, now=NOW)
        charge(state, [f"@o{i}"], NOW, {"input": 1})
        _scope.finish(state, f"o{i}", now=NOW)
    orchestrations = _records.feature_table(state, "orchestrations") or {}
    assert len(orchestrations) == _scope.KEEP
    assert f"o{_scope.KEEP + 4}" in orchestrations and "o0" not in orchestrations
    minutes, quarters = _records.bucket_scopes(state, "minutes"), _records.bucket_scopes(state, "quarters")
    assert "@o0" not in minutes and "@o0" not in quarters and f"@o{_scope.KEEP + 4}" in minutes


def test_persistent_budgets_reset_on_restart_starts_those_scopes_over(tmp_path: Any) -> None:
    import io

    from budget_state._api import Context
    from budget_state.ledger._runs import record
    from budget_state.ledger._windows import charge
    from budget_state.orchestrator._options import Instance, Options
    from budget_state.orchestrator._run import Orchestration

    (tmp_path / ".claude").mkdir()
    env = {"CLAUDE_PROJECT_DIR": str(tmp_path)}
    ctx = Context.load(tmp_path, env=env)
    with ctx.ledger.transaction() as state:
        for command in ("/a", "/other"):
            record(state, Usage(500), command=command, model=None, session=None, prompt=command, now=NOW)
        charge(state, ["overall", "/a"], NOW, {"input": 1000})
    options = Options((Instance("/a", order=0),), overall_tokens=5000, persistent=True, reset=True, project=tmp_path)

    orch = Orchestration(options, env=env, out=io.StringIO(), err=io.StringIO())
    orch.register()

    state = ctx.ledger.read()
    assert _records.scope(state, "overall").usage == Usage() and _records.scope(state, "/a").usage == Usage()
    assert _records.scope(state, "/other").usage.input == 500  # not the fleet's: left alone
    assert "overall" not in _records.bucket_scopes(state, "minutes") and "/a" not in _records.bucket_scopes(
        state, "minutes"
    )
    table = _records.feature_table(state, "orchestrations", orch.id)
    assert table is not None
    assert (table["persistent"], table["limits"], list(table["instances"])) == (
        True,
        {"tokens": 5000},
        [orch.slots[0].session],
    )


def test_the_max_budget_usd_is_what_is_left_of_the_tightest_dollar_budget(tmp_path: Any) -> None:
    """Claude Code's own cap for an instance: the least left of its command's, the orchestration's
    and the project's overall dollar budgets, named."""
    import os

    from budget_state._api import Context
    from budget_state.orchestrator._options import Instance
    from budget_state.orchestrator._run import dollar_cap, usd_arg
    from budget_state.orchestrator._schedule import Slot

    (tmp_path / ".claude").mkdir()
    (tmp_path / ".claude" / "budget.toml").write_text("overall_usd = 3\n", encoding="utf-8")
    ctx = Context.load(tmp_path, env={**os.environ, "HOME": str(tmp_path / "home")})
    now = datetime(2026, 12, 3, 14, 0, tzinfo=timezone.utc)

    def cap(limits: dict[str, int | None], usd_limit: int | None) -> Any:
        state = new_state(now)
        _scope.register(state, "o", mode="kill", persistent=False, period=60, limits=limits, now=now)
        _scope.add_instance(state, "o", "s", command="/a", limit=None, usd_limit=usd_limit, exempt=False)
        join_orchestration(state, "s", "o")
        charge = _scope.charger(state, "s", now)
        assert charge is not None
        charge({"output": 10, "usd_micros": 250_000}, "m", "/a")
        return dollar_cap(ctx, state, "o", Slot(0, Instance("/a", usd_micros=usd_limit), "s"), now=now)

    assert cap({"usd_micros": 2_000_000}, 1_000_000) == (750_000, "/a's dollar budget in this orchestration")
    assert cap({"usd_micros": 500_000}, 1_000_000) == (250_000, "the orchestration's overall dollar budget")
    assert cap({}, None) == (3_000_000, "the project's overall dollar budget")  # its ledger spent nothing
    assert usd_arg(750_000) == "0.75" and usd_arg(1) == "0.000001" and usd_arg(3_000_000) == "3"


def test_an_orchestrations_table_reads_back_what_it_wrote_and_a_hand_edit_reads_as_empty() -> None:
    state = new_state(NOW)
    _scope.register(state, "o", mode="kill", persistent=False, period=30, limits={"tokens": 5000}, now=NOW)
    _scope.add_instance(state, "o", "s1", command="/a", limit=100, usd_limit=None, exempt=False)
    join_orchestration(state, "s1", "o")
    charge = _scope.charger(state, "s1", NOW)
    assert charge is not None
    charge({"input": 10, "usd_micros": 3}, "m", "/a")
    written = state.dump()["orchestrations"]
    again = _scope.Orchestrations.load(written)
    assert again is not None and again.dump() == written
    o = again.by_id["o"]
    assert (o.period, o.limits, o.instances["s1"].requests, o.commands["/a"].input) == (30, {"tokens": 5000}, 1, 10)
    broken = _scope.Orchestrations.load({"o": {"period": "soon", "limits": {"tokens": "lots"}, "input": -4}, "x": 3})
    assert broken is not None and list(broken.by_id) == ["o"]
    assert (broken.by_id["o"].period, broken.by_id["o"].limits, broken.by_id["o"].input) == (60, {}, 0)
