"""Burn rate, time to exhaustion (cumulative, rolling, calendar) with its band, per-run quantiles."""

from __future__ import annotations

import math
import random
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from budget_state._model import Forecast, LimitStatus, PerRun, Window
from budget_state.forecast import Rate, burn_rate, exhaustion, forecast_scope, per_run, quantile
from budget_state.forecast._exhaust import HORIZON, Z90, t90
from budget_state.forecast._rate import MAX_MEMORY

NOW = 29_000_000  # an epoch minute (2025-02-20)
HOUR = Window("rolling", 60)
DAY = Window("calendar", unit="day")


def steady(value: int, minutes: int, *, end: int = NOW) -> list[tuple[int, int]]:
    return [(m, value) for m in range(end - minutes + 1, end + 1)]


def moment(minute: int) -> datetime:
    """The moment an epoch minute stands for: its end (the minute in progress, taken as complete)."""
    return datetime.fromtimestamp((minute + 1) * 60, timezone.utc)


# --- burn rate ----------------------------------------------------------------------------------


def test_no_usage_no_rate() -> None:
    assert burn_rate([], NOW) == Rate()
    assert not burn_rate([(NOW, 0)], NOW).enough
    assert not burn_rate([], NOW).enough
    assert burn_rate([], NOW).rel_error == math.inf


def test_steady_rate_is_exact_and_keeps_a_long_memory() -> None:
    r = burn_rate(steady(500, 120), NOW)
    assert r.per_min == pytest.approx(500)
    assert math.isinf(r.half_life)  # every shorter memory agrees: the plain mean of all 120 minutes
    assert r.n_eff == pytest.approx(120)
    assert (r.minutes, r.active) == (120, 120)
    assert r.dispersion < 0.01 and r.enough


def test_idle_minutes_count_as_zero() -> None:
    series = [(m, 600) for m in range(NOW - 119, NOW + 1, 2)]  # every other minute
    assert burn_rate(series, NOW).per_min == pytest.approx(300, rel=0.02)


def test_repeated_minutes_add_up_and_future_and_old_are_ignored() -> None:
    series = [*steady(100, 30), *steady(100, 30), (NOW + 5, 10**9), (NOW - MAX_MEMORY - 10, 10**9)]
    r = burn_rate(series, NOW)
    assert r.per_min == pytest.approx(200)
    assert r.minutes == 30


def test_a_change_of_rate_is_followed() -> None:
    rng = random.Random(3)
    old = [(m, rng.randint(80, 120)) for m in range(NOW - 299, NOW - 19)]
    new = [(m, rng.randint(800, 1200)) for m in range(NOW - 19, NOW + 1)]
    r = burn_rate(old + new, NOW)
    long_mean = sum(v for _, v in old + new) / 300  # ~160
    assert r.half_life <= 30
    assert 2.5 * long_mean < r.per_min < 1100
    forced = burn_rate(old + new, NOW, half_life=math.inf)
    assert forced.per_min == pytest.approx(sum(v for _, v in old + new) / 300)


def test_drift_is_what_the_noise_does_not_explain() -> None:
    assert burn_rate(steady(500, 240), NOW).drift == 0
    rng = random.Random(2)
    noisy = [(m, rng.randint(0, 1000)) for m in range(NOW - 239, NOW + 1)]
    on_off = [(m, rng.randint(0, 1000)) for m in range(NOW - 239, NOW + 1) if (m // 40) % 2]
    assert burn_rate(noisy, NOW).drift < 0.0005
    assert burn_rate(on_off, NOW).drift > 20 * max(burn_rate(noisy, NOW).drift, 0.0005)


def test_too_little_history_is_not_enough() -> None:
    assert not burn_rate(steady(500, 9), NOW).enough
    assert not burn_rate([(NOW - 30, 5), (NOW, 5)], NOW).enough  # two active minutes
    assert burn_rate(steady(500, 10), NOW).enough


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(NOW - 600, NOW), st.integers(0, 10**9)), max_size=80))
def test_rate_is_bounded_by_the_data(series: list[tuple[int, int]]) -> None:
    r = burn_rate(series, NOW)
    assert r.per_min >= 0 and r.dispersion >= 0 and r.n_eff >= 0
    per_minute: dict[int, int] = {}
    for m, v in series:
        per_minute[m] = per_minute.get(m, 0) + v
    if r.per_min > 0:
        assert r.per_min <= max(per_minute.values()) * (1 + 1e-9)
        assert r.n_eff <= r.minutes + 1e-9


# --- time to exhaustion -------------------------------------------------------------------------


def test_cumulative_point_and_band() -> None:
    e = exhaustion(steady(1000, 60), used=60_000, limit=100_000, now=NOW)
    assert e.minutes == pytest.approx(40)
    assert e.at == moment(NOW) + timedelta(minutes=40)
    assert e.p10_minutes is not None and e.p90_minutes is not None
    assert e.p10_minutes < 40 < e.p90_minutes
    assert e.p10 is not None and e.p90 is not None and e.p10 < e.at < e.p90  # type: ignore[operator]
    # log-symmetric around the point, as the model says
    assert math.log(40 / e.p10_minutes) == pytest.approx(math.log(e.p90_minutes / 40))


def test_the_band_widens_with_noise() -> None:
    rng = random.Random(1)
    calm = [(m, 1000 + rng.randint(-50, 50)) for m in range(NOW - 59, NOW + 1)]
    wild = [(m, rng.choice((0, 0, 0, 4000))) for m in range(NOW - 59, NOW + 1)]
    widths = []
    for series in (calm, wild):
        used = sum(v for _, v in series)
        e = exhaustion(series, used=used, limit=used * 2, now=NOW)
        assert e.p10_minutes is not None and e.p90_minutes is not None
        widths.append(e.p90_minutes / e.p10_minutes)
    assert math.log(widths[1]) > 4 * math.log(widths[0])


def test_datetime_now() -> None:
    now = datetime(2026, 12, 2, 10, 30, 20, tzinfo=timezone.utc)
    minute = int(now.timestamp() // 60)
    e = exhaustion(steady(1000, 60, end=minute), used=0, limit=30_000, now=now)
    assert e.at == now + timedelta(minutes=30)
    naive = exhaustion(steady(1000, 60, end=minute), used=0, limit=30_000, now=now.replace(tzinfo=None))
    assert naive.at == e.at


def test_spent_limit_is_exhausted_now() -> None:
    e = exhaustion(steady(1000, 60), used=5000, limit=5000, now=NOW)
    assert (e.minutes, e.p10_minutes, e.p90_minutes) == (0.0, 0.0, 0.0)
    assert e.at == e.p10 == e.p90 == moment(NOW)


@pytest.mark.parametrize(
    "series",
    [[], steady(1000, 5), [(NOW - 100, 5000)]],
    ids=["no usage", "five minutes", "idle for long"],
)
def test_no_forecast_without_enough_data(series: list[tuple[int, int]]) -> None:
    e = exhaustion(series, used=100, limit=10**9, now=NOW)
    assert (e.minutes, e.at, e.p10, e.p90) == (None, None, None, None)


def test_no_limit_no_forecast() -> None:
    assert exhaustion(steady(1000, 60), used=0, limit=0, now=NOW).minutes is None


def test_calendar_window_resets_before_exhaustion() -> None:
    rng = random.Random(5)
    series = [(m, rng.randint(0, 2000)) for m in range(NOW - 59, NOW + 1)]
    free = exhaustion(series, used=0, limit=40_000, now=NOW)
    assert free.minutes is not None and free.p10_minutes is not None and free.p90_minutes is not None
    end_soon = moment(NOW) + timedelta(minutes=free.minutes * 0.9)
    assert exhaustion(series, used=0, limit=40_000, now=NOW, window=DAY, window_end=end_soon).minutes is None
    # the window ends between the point and the slow end of the band
    end = moment(NOW) + timedelta(minutes=(free.minutes + free.p90_minutes) / 2)
    e = exhaustion(series, used=0, limit=40_000, now=NOW, window=DAY, window_end=end)
    assert e.minutes == pytest.approx(free.minutes)
    assert e.p10_minutes == pytest.approx(free.p10_minutes)
    assert e.p90_minutes is None  # the slow end of the band is past the reset
    assert exhaustion(series, used=0, limit=40_000, now=NOW, window=DAY).minutes is None  # no end given


def test_rolling_window_below_limit_per_span_never_exhausts() -> None:
    series = steady(1000, 240)
    e = exhaustion(series, used=60_000, limit=60_001, now=NOW, window=HOUR)
    assert e.minutes is None and e.p90_minutes is None


def test_rolling_window_frees_then_fills() -> None:
    # A burst 50 minutes ago fills most of the hour, and 100/min for the last 30 minutes: 53,000 of
    # 55,000 used. The burst leaves the window 9 minutes from now (60 minutes after its minute).
    series = [(NOW - 50, 50_000), *steady(100, 30)]

    def at(per_min: float) -> float | None:
        rate = Rate(per_min, math.inf, 30, 0.01, 30, 30)
        return exhaustion(series, used=53_000, limit=55_000, now=NOW, window=HOUR, rate=rate).minutes

    assert at(1000) == pytest.approx(2)  # 2,000 more before the burst leaves
    assert at(300) == pytest.approx(20 / 3)  # still before minute 9
    # At 100/min only 900 more come in before the burst leaves; after, the window holds ~6,000.
    assert at(100) is None
    # At 1,000/min for an hour the window would hold 60,000 >= 55,000: after the burst leaves, it
    # fills again: 3,000 + 900 + 1,000/min (the 100/min minutes leave from minute 30 on) ...
    assert at(900) == pytest.approx(2000 / 900)


def test_far_future_is_none() -> None:
    e = exhaustion(steady(1, 60), used=0, limit=10**12, now=NOW)
    assert e.minutes is None and e.at is None


def _brute_rolling(series: list[tuple[int, int]], limit: int, rate: float, span: int) -> float | None:
    step = 1 / 64
    for k in range(int(span / step) + 2):
        tau = k * step
        held = sum(v for m, v in series if m + span > NOW + 1 + tau and m > NOW - span)
        if held + rate * min(tau, span) >= limit:
            return tau
    return None


@settings(max_examples=150, deadline=None)
@given(
    # as the buckets give them: one value per minute, oldest first
    st.dictionaries(st.integers(NOW - 70, NOW), st.integers(1, 5000), max_size=30).map(lambda d: sorted(d.items())),
    st.integers(1, 200_000),
    st.floats(1, 5000),
)
def test_rolling_walk_matches_a_brute_force_walk(series: list[tuple[int, int]], limit: int, rate: float) -> None:
    used = sum(v for m, v in series if m > NOW - 60)
    r = Rate(rate, math.inf, 100, 0.01, 100, 100)
    e = exhaustion(series, used=used, limit=limit, now=NOW, window=HOUR, rate=r)
    want = _brute_rolling(series, limit, rate, 60)
    if used >= limit:
        assert e.minutes == 0
        return
    if e.minutes is None:
        assert want is None
        return
    # A real crossing: just before e.minutes the window holds what it held, plus what came in. (The
    # brute force walks a 1/64-minute grid, so it can miss a crossing that lasts less than a step,
    # just before a bucket leaves; it never finds one earlier than the true first.)
    tau = e.minutes
    held = sum(v for m, v in series if m + 60 > NOW + 1 + tau - 1e-9 and m > NOW - 60)
    assert held + rate * min(tau, 60) >= limit * (1 - 1e-9)
    assert want is None or tau <= want + 1 / 64 + 1e-9


@settings(max_examples=150, deadline=None)
@given(st.integers(0, 10**7), st.integers(1, 10**7), st.floats(1, 10**5), st.floats(0.001, 50), st.floats(1, 500))
def test_band_brackets_the_point(used: int, extra: int, per_min: float, dispersion: float, n_eff: float) -> None:
    r = Rate(per_min, math.inf, n_eff, dispersion, 60, 60)
    e = exhaustion([], used=used, limit=used + extra, now=NOW, rate=r)
    if e.minutes is None:
        assert extra / per_min >= HORIZON  # not in any foreseeable time
        return
    assert e.minutes == pytest.approx(extra / per_min)
    assert e.p10_minutes is not None and e.p10_minutes <= e.minutes
    assert e.p90_minutes is None or e.p90_minutes >= e.minutes
    if e.p90_minutes is None:  # the slow end is past the horizon (the spread is capped at e**50, as there)
        spread = min(t90(r.df) * math.sqrt(dispersion * (1 / n_eff + 1 / max(e.minutes, 1.0))), 50.0)
        assert math.log(e.minutes) + spread >= math.log(HORIZON) - 1e-9


def test_t_quantile() -> None:
    # Student's t, 90th percentile (tables): df 2: 1.886, 3: 1.638, 5: 1.476, 10: 1.372, 30: 1.310
    for df, want in ((2, 1.886), (3, 1.638), (5, 1.476), (10, 1.372), (30, 1.310)):
        assert t90(df) == pytest.approx(want, abs=0.008)
    assert t90(math.inf) == Z90


def _poisson_minute(rng: random.Random, per_min: float, size: float) -> int:
    """Tokens in one minute of Poisson arrivals with lognormal sizes."""
    n = 0
    t = rng.expovariate(per_min)
    while t < 1:
        n += int(rng.lognormvariate(math.log(size), 0.8))
        t += rng.expovariate(per_min)
    return n


def test_band_holds_about_eighty_percent_on_steady_poisson_use() -> None:
    """A smoke check of the calibration (the benchmark measures it properly): seeded, steady use."""
    held = 0
    trials = 200
    for seed in range(trials):
        rng = random.Random(seed)
        per_min = rng.uniform(2, 20)  # responses a minute
        size = rng.uniform(20_000, 80_000)

        past = [(m, _poisson_minute(rng, per_min, size)) for m in range(NOW - 59, NOW + 1)]
        used = sum(v for _, v in past)
        limit = used * 2
        e = exhaustion(past, used=used, limit=limit, now=NOW)
        total, t = used, 0
        while total < limit:
            total += _poisson_minute(rng, per_min, size)
            t += 1
        assert e.p10_minutes is not None and e.p90_minutes is not None
        held += e.p10_minutes - 1 <= t <= e.p90_minutes + 1  # the truth is known to the minute
    assert 0.70 <= held / trials <= 0.97


# --- a scope, per run ---------------------------------------------------------------------------


def test_forecast_scope_takes_the_earliest_limit() -> None:
    tokens = steady(1000, 120)
    usd = steady(2000, 120)  # micro-dollars: $0.002 a minute = $0.12 an hour
    limits = (
        LimitStatus("tokens", 100_000, 1_000_000),  # 900 min
        LimitStatus("tokens", 50_000, 60_001, HOUR),  # never (1,000/min * 60 < 60,001)
        LimitStatus("usd", 100_000, 200_000, DAY, resets_at=moment(NOW) + timedelta(hours=5)),  # 50 min
        LimitStatus("usd", 0, 0),  # no limit
    )
    f = forecast_scope(limits, tokens=tokens, usd=usd, now=NOW)
    assert f.limit_key == "usd/day"
    assert f.tokens_per_min == pytest.approx(1000)
    assert f.usd_per_hour == pytest.approx(0.12)
    assert f.exhausts_at == moment(NOW) + timedelta(minutes=50)
    assert f.exhausts_p10 is not None and f.exhausts_p90 is not None
    assert f.exhausts_p10 < f.exhausts_at < f.exhausts_p90


def test_forecast_scope_without_limits_or_usage() -> None:
    assert forecast_scope((), tokens=steady(10, 30), usd=[], now=NOW) == Forecast(tokens_per_min=pytest.approx(10))
    empty = forecast_scope((LimitStatus("tokens", 0, 100),), tokens=[], usd=[], now=NOW)
    assert empty == Forecast()


@pytest.mark.parametrize(
    ("values", "q", "want"),
    [
        ([], 0.5, 0),
        ([7], 0.9, 7),
        ([1, 2, 3, 4], 0.5, 2),
        (list(range(1, 11)), 0.9, 9),
        (list(range(1, 11)), 0.5, 5),
        ([5, 1, 3], 0.9, 5),
        (list(range(1, 43)), 0.9, 38),
    ],
)
def test_quantile_is_nearest_rank(values: list[int], q: float, want: int) -> None:
    assert quantile(values, q) == want


def test_per_run_uses_the_recent_runs() -> None:
    old = [(10**9, 10**9)] * 30
    recent = [(1000 * i, 10 * i) for i in range(1, 21)]
    assert per_run(old + recent) == PerRun(20, 10_000, 18_000, 100, 180)
    assert per_run([]) == PerRun()
    assert per_run(recent, recent=5) == PerRun(5, 18_000, 20_000, 180, 200)


def test_import_is_cheap() -> None:
    code = (
        "import sys; import budget_state.forecast; "
        "heavy = {'statistics', 'random', 'dataclasses', 'numpy', 'decimal', 'fractions', 'inspect'}; "
        "print(sorted(heavy & set(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_with_the_ledgers_buckets_and_limits() -> None:
    """The way status wires it: limits from _limits.evaluate, series from the ledger's minute buckets."""
    from budget_state.budgets._limits import LimitSpec, evaluate
    from budget_state.ledger._ledger import new_state
    from budget_state.ledger._windows import charge as charge_minute
    from budget_state.ledger._windows import minute_of, parse_window, scope_buckets

    now = datetime(2026, 12, 2, 10, 30, 30, tzinfo=timezone.utc)
    state = new_state(now)
    state.overall.add({"input": 60_000, "usd_micros": 120_000})
    for back in range(60):
        charge_minute(state, ["overall"], now - timedelta(minutes=back), {"input": 1000, "usd_micros": 2000})
    specs = [
        LimitSpec("tokens", 100_000),
        LimitSpec("tokens", 80_000, parse_window("1h")),
        LimitSpec("usd", 200_000, parse_window("day")),
    ]
    limits = evaluate(specs, state, "overall", now, zone=timezone.utc)
    assert [(s.key, s.used) for s in limits] == [("tokens", 60_000), ("tokens/1h", 60_000), ("usd/day", 120_000)]
    buckets = scope_buckets(state, "overall")
    since = minute_of(now) - 24 * 60
    f = forecast_scope(limits, tokens=buckets.series(since, "tokens"), usd=buckets.series(since, "usd"), now=now)
    assert f.tokens_per_min == pytest.approx(1000)
    assert f.usd_per_hour == pytest.approx(0.12)
    # tokens: 40 min; the hour never fills (1,000/min * 60 < 80,000); $0.08 more at $0.002/min: 40 min
    assert f.limit_key in ("tokens", "usd/day")
    assert f.exhausts_at == now + timedelta(minutes=40)


def test_a_scope_idle_for_an_hour_gets_no_forecast_without_its_buckets_being_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """status of 200 commands: an idle one's counters say when it last spent (``spent_at``, set with
    every charge), so its bucket file is not opened; an active one's is, and it gets its forecast."""
    from budget_state import _api
    from budget_state._api import Context
    from budget_state.ledger import _records
    from budget_state.ledger._ledger import new_state
    from budget_state.ledger._windows import charge as charge_minute

    now = datetime(2026, 12, 2, 10, 30, 30, tzinfo=timezone.utc)
    state = new_state(now)
    for name, last in (("/idle", now - timedelta(minutes=61)), ("/busy", now - timedelta(minutes=1))):
        state.command(name).add({"input": 30_000})
        for back in range(30):
            charge_minute(state, [name], last - timedelta(minutes=back), {"input": 1000})
    assert _records.scope(state, "/idle").spent_at == now - timedelta(minutes=61)
    (tmp_path / ".claude").mkdir()
    ctx = Context.load(tmp_path, env={"HOME": str(tmp_path)})
    read: list[str] = []
    real = _api_scope_buckets()
    monkeypatch.setattr(
        "budget_state.ledger._windows.scope_buckets", lambda s, n, **kw: read.append(n) or real(s, n, **kw)
    )
    statuses = {
        name: _api.with_forecast(
            ctx, state, _api.scope_status(ctx, state, name, budget=None, file=None, now=now), now
        )
        for name in ("/idle", "/busy", "/never-run")
    }
    assert read == ["/busy"]  # nor is a command's that never spent (no counters: no buckets either)
    assert statuses["/idle"].forecast is None and statuses["/never-run"].forecast is None
    assert statuses["/busy"].forecast is not None and statuses["/busy"].forecast.tokens_per_min > 0


def _api_scope_buckets():  # type: ignore[no-untyped-def]
    from budget_state.ledger._windows import scope_buckets

    return scope_buckets
