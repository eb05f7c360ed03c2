"""The plan-aware forecast (``budget_state.forecast.plan_exhaustion``): a fleet whose instances are known."""

from __future__ import annotations

import math

import pytest

from budget_state.ledger._windows import parse_window
from budget_state.forecast import Planned, exhaustion, plan_exhaustion

NOW = 10_000  # epoch minute


def steady(minutes: int, per_min: int, instances: int = 1) -> list[tuple[int, int]]:
    return [(NOW - a, per_min * instances) for a in range(minutes)]


def test_one_running_instance_at_a_steady_rate() -> None:
    e = plan_exhaustion(
        steady(30, 1000), used=30_000, limit=40_000, now=NOW, plan=[Planned(-30)], spent=30_000, behind=30,
        active=[(NOW - 29, NOW + 1)],
    )  # fmt: skip
    assert e.minutes == pytest.approx(10.0)
    assert e.p10_minutes is not None and e.p90_minutes is not None
    assert e.p10_minutes < e.minutes < e.p90_minutes


def test_an_instance_that_starts_later_is_counted_from_its_start() -> None:
    e = plan_exhaustion(
        steady(30, 1000), used=30_000, limit=50_000, now=NOW, plan=[Planned(-30), Planned(5.0)], spent=30_000,
        behind=30,
    )  # fmt: skip
    assert e.minutes == pytest.approx(5 + 15 / 2)  # 5k alone, then 15k at 2k/min


def test_queued_instances_take_the_first_free_slot_and_runs_end_with_their_estimate() -> None:
    plan = [Planned(-10, amount=3000), Planned(None, amount=10_000)]
    e = plan_exhaustion(
        steady(10, 1000), used=10_000, limit=18_000, now=NOW, plan=plan, spent=10_000, behind=10, slots=1
    )
    assert e.minutes == pytest.approx(3 + 5)  # the first ends after 3k; the queued one spends the next 5k
    two = plan_exhaustion(
        steady(10, 1000), used=10_000, limit=18_000, now=NOW, plan=plan, spent=10_000, behind=10, slots=2
    )
    assert two.minutes == pytest.approx(3 + 2)  # both at once: 6k by minute 3, then 2k at 1k/min


def test_a_plan_that_ends_below_the_limit_never_exhausts_it() -> None:
    plan = [Planned(-10, amount=3000), Planned(None, amount=2000)]
    e = plan_exhaustion(
        steady(10, 1000), used=10_000, limit=20_000, now=NOW, plan=plan, spent=10_000, behind=10, slots=1
    )
    assert e.minutes is None and e.p90_minutes is None


def test_a_prior_rate_counts_as_evidence_and_narrows_the_band() -> None:
    args = dict(used=5_000, limit=50_000, now=NOW, plan=[Planned(-5)], spent=5_000, behind=5)
    alone = plan_exhaustion(steady(5, 1000), **args)  # type: ignore[arg-type]
    helped = plan_exhaustion(steady(5, 1000), **args, prior_rate=2000.0, prior_minutes=5.0)  # type: ignore[arg-type]
    assert alone.minutes == pytest.approx(45.0)
    assert helped.minutes == pytest.approx(45_000 / 1500)  # (5k + 2k × 5) / 10 instance-minutes
    wide = math.log(alone.p90_minutes / alone.p10_minutes)  # type: ignore[operator]
    narrow = math.log(helped.p90_minutes / helped.p10_minutes)  # type: ignore[operator]
    assert narrow < wide


def test_rolling_window_fills_only_when_the_fleet_grows() -> None:
    window = parse_window("1h")
    series = steady(60, 1000)
    one = plan_exhaustion(
        series, used=60_000, limit=70_000, now=NOW, plan=[Planned(-60)], spent=60_000, behind=60, window=window
    )
    assert one.minutes is None  # 1k/min in, 1k/min out: the window holds 60k
    two = plan_exhaustion(
        series, used=60_000, limit=70_000, now=NOW, plan=[Planned(-60), Planned(0.0)], spent=60_000, behind=60,
        window=window,
    )  # fmt: skip
    assert two.minutes == pytest.approx(10.0, abs=1.01)  # net +1k/min (within the minute the buckets leave)


def test_spent_and_no_evidence() -> None:
    spent = plan_exhaustion([], used=5, limit=5, now=NOW, plan=[Planned(0.0)], spent=5, behind=1)
    assert spent.minutes == 0.0
    assert plan_exhaustion([], used=0, limit=5, now=NOW, plan=[Planned(0.0)], spent=0, behind=0).minutes is None


def test_a_ramp_is_seen_coming() -> None:
    """Six instances, one more every 10 minutes, 1k tokens a minute each: history alone is late."""
    starts = [NOW - 25 + 10 * i for i in range(6)]  # three have started
    series = [(m, 1000 * sum(1 for s in starts if s <= m)) for m in range(NOW - 25, NOW + 1)]
    used = sum(v for _, v in series)
    limit = used + 200_000
    plan = [Planned(s - (NOW + 1)) for s in starts]
    behind = sum(max(0, NOW + 1 - s) for s in starts)
    e = plan_exhaustion(series, used=used, limit=limit, now=NOW, plan=plan, spent=used, behind=behind,
                        active=[(s, NOW + 1) for s in starts if s <= NOW])  # fmt: skip
    # truth: 3k/min until +4 (12k), 4k/min to +14 (52k), 5k/min to +24 (102k), then 6k/min: 98k more
    assert e.minutes == pytest.approx(24 + 98 / 6, rel=0.02)
    history = exhaustion(series, used=used, limit=limit, now=NOW)
    assert history.minutes is None or history.minutes > e.minutes * 1.3
