"""When a limit runs out for a fleet whose plan is known: the instances running and still to start.

A rate taken from history alone trails a fleet that keeps adding instances (BENCHMARKS.md,
"Forecast quality", ramping). An orchestrator knows more: which instances run, which are queued,
when each started, and what a run of each typically spends. So the model is per instance:

- every running instance spends at the same rate ``r`` per minute (tokens or micro-dollars);
- ``r`` = what the instances spent / the instance-minutes they ran (``behind``), pooled with a
  prior rate worth ``prior_minutes`` instance-minutes (the per-run estimates of earlier runs);
- the future is the plan: each :class:`Planned` instance runs from its start (now for a running
  one, a known time, or the first free slot of ``slots``) until it has spent ``amount`` (None: on);
- the spend to come over ``A`` instance-minutes is ``r * A`` with relative variance ``D / A``,
  ``D`` the long-run dispersion of one instance-minute (from 5-minute bins of the past, each
  divided by its instance-minutes; shrunk toward :data:`PRIOR_DISPERSION` while there are few).

Point: the first ``t`` at which ``used + r * A(t)`` reaches the limit (for a rolling window, what
is in the window then: what of the past is still inside, plus the spend of the last span).
Band: as in ``_exhaust``, the times at the rates ``r * exp(±t90 * rel)`` with
``rel**2 = D * (1 / (behind + prior_minutes) + 1 / A(point))``.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, NamedTuple

from ._exhaust import HORIZON, Exhaustion, _leaving, as_minute, t90
from ._rate import Rate

if TYPE_CHECKING:
    from .._model import Window

#: Minutes per bin for the per-instance dispersion.
BIN = 5
#: Dispersion of one instance-minute assumed before there is data (about 1 + CV² of a response's
#: size, at a response a minute), and how many bins it is worth.
PRIOR_DISPERSION = 0.4
PRIOR_BINS = 3.0


class Planned(NamedTuple):
    """One instance of the plan. Times in minutes from now."""

    start: float | None  #: when it starts (≤ 0: running; None: at the first free slot, in plan order)
    amount: float | None = None  #: what it has yet to spend (a queued one: its per-run estimate); None: runs on


def _intervals(plan: Sequence[Planned], rate: float, slots: int | None) -> list[tuple[float, float]]:
    """(start, end) from now of each instance at ``rate`` per instance-minute; end inf when it runs on."""
    out: list[tuple[float, float]] = []
    free: list[float] = []  # when each slot frees up
    for p in plan:
        if p.start is not None:
            start = max(0.0, p.start)
            end = math.inf if p.amount is None else start + max(0.0, p.amount) / rate
            out.append((start, end))
            if p.start <= 0:
                heapq.heappush(free, end)
    if slots is not None:
        while len(free) < slots:
            heapq.heappush(free, 0.0)
    for p in plan:
        if p.start is None:
            start = heapq.heappop(free) if free else 0.0
            end = math.inf if p.amount is None else start + max(0.0, p.amount) / rate
            out.append((start, end))
            if slots is not None:
                heapq.heappush(free, end)
    return [(a, b) for a, b in out if b > a and not math.isinf(a)]


def _instance_minutes(intervals: Sequence[tuple[float, float]], t: float) -> float:
    """Instance-minutes from now to ``t``."""
    return sum(max(0.0, min(b, t) - a) for a, b in intervals if a < t)


def dispersion(
    series: Sequence[tuple[int, int]], active: Sequence[tuple[float, float]], /, *, now: int, rate: float
) -> tuple[float, float]:
    """(D, degrees of freedom): the long-run dispersion of one instance-minute, from :data:`BIN`-minute
    bins of ``series`` each against its instance-minutes (``active``: epoch-minute intervals)."""
    if rate <= 0:
        return PRIOR_DISPERSION, PRIOR_BINS
    first = min((a for a, _ in active), default=float(now))
    total = 0.0
    bins = 0
    by_minute: dict[int, int] = {}
    for m, v in series:
        by_minute[m] = by_minute.get(m, 0) + v
    end = now + 1
    while end - BIN >= first:
        lo, hi = end - BIN, end
        k = sum(max(0.0, min(b, hi) - max(a, lo)) for a, b in active)
        if k >= 1:
            x = sum(by_minute.get(m, 0) for m in range(lo, hi))
            total += (x - k * rate) ** 2 / (k * rate * rate)
            bins += 1
        end -= BIN
    measured = total / max(bins - 1, 1) if bins else 0.0
    return (measured * bins + PRIOR_DISPERSION * PRIOR_BINS) / (bins + PRIOR_BINS), bins + PRIOR_BINS


def plan_exhaustion(
    series: Sequence[tuple[int, int]],
    /,
    *,
    used: int,
    limit: int,
    now: int | datetime,
    plan: Sequence[Planned],
    spent: float,
    behind: float,
    active: Sequence[tuple[float, float]] = (),
    slots: int | None = None,
    prior_rate: float | None = None,
    prior_minutes: float = 0.0,
    window: Window | None = None,
) -> Exhaustion:
    """Time to exhaustion of one limit under a known plan (see the module's docstring).

    :param series: the scope's ``(epoch minute, value)`` buckets (for the dispersion, and what of a
        rolling window leaves it when).
    :param used: what the limit counts now; ``limit``: the limit, same unit.
    :param plan: the instances running and to come.
    :param spent: what the plan's instances have spent so far; ``behind``: the instance-minutes they ran.
    :param active: the epoch-minute intervals in which instances ran (for the dispersion's bins).
    :param slots: instances at once (queued ones take the first free slot); None: no cap.
    :param prior_rate: a per-instance rate known beforehand (per-run estimates), worth ``prior_minutes``.
    :param window: None (cumulative) or a rolling window; a calendar one is not planned for (None).
    """
    minute, moment = as_minute(now)
    weight = behind + (prior_minutes if prior_rate is not None else 0.0)
    if limit <= 0 or weight <= 0:
        return Exhaustion()
    if used >= limit:
        return Exhaustion(0.0, 0.0, 0.0, moment, moment, moment)
    if window is not None and window.kind != "rolling":
        return Exhaustion()
    rate = (spent + (prior_rate or 0.0) * (prior_minutes if prior_rate is not None else 0.0)) / weight
    if rate <= 0:
        return Exhaustion()
    d, df = dispersion(series, active, now=minute, rate=rate)
    leaving = _leaving(series, used, minute, moment, window.minutes) if window is not None else []

    def time_at(r: float) -> float | None:
        spans = _intervals(plan, r, slots)
        if window is None:
            return _first_cumulative(spans, r, limit - used)
        return _first_rolling(spans, r, leaving, used, limit, window.minutes)

    point = time_at(rate)
    ahead = _instance_minutes(_intervals(plan, rate, slots), point) if point is not None else 0.0
    ref = ahead if ahead > 0 else max(_instance_minutes(_intervals(plan, rate, slots), 60.0), 1.0)
    rel = math.sqrt(d * (1 / weight + 1 / max(ref, 1.0)))
    spread = min(t90(df) * rel, 50.0)
    early = time_at(rate * math.exp(spread))
    late = time_at(rate * math.exp(-spread)) if point is not None else None

    def when(t: float | None) -> datetime | None:
        return None if t is None else moment + timedelta(minutes=t)

    summary = Rate(per_min=rate * _concurrent(plan, rate, slots), n_eff=weight, dispersion=d, df=df)
    return Exhaustion(point, early, late, when(point), when(early), when(late), summary)


def _concurrent(plan: Sequence[Planned], rate: float, slots: int | None) -> float:
    """Instances running right now (the fleet's rate is this many times the per-instance one)."""
    return float(sum(1 for a, b in _intervals(plan, rate, slots) if a <= 0 < b))


def _breaks(spans: Sequence[tuple[float, float]], extra: Sequence[float] = ()) -> list[float]:
    points = {0.0, *extra}
    for a, b in spans:
        points.add(a)
        if not math.isinf(b):
            points.add(b)
    return sorted(p for p in points if 0 <= p < HORIZON)


def _first_cumulative(spans: Sequence[tuple[float, float]], rate: float, left: float) -> float | None:
    """First ``t`` at which ``rate * A(t)`` reaches ``left``; None if the plan ends first."""
    points = _breaks(spans)
    done = 0.0
    for i, t0 in enumerate(points):
        t1 = points[i + 1] if i + 1 < len(points) else float(HORIZON)
        k = sum(1 for a, b in spans if a <= t0 < b)
        if k:
            need = (left - done) / (rate * k)
            if need <= t1 - t0:
                return t0 + need
            done += rate * k * (t1 - t0)
    return None


def _first_rolling(
    spans: Sequence[tuple[float, float]],
    rate: float,
    leaving: Sequence[tuple[float, int]],
    used: int,
    limit: int,
    span: int,
) -> float | None:
    """First ``t`` at which what the rolling window holds — the past still inside plus the spend of
    ``(t - span, t]`` — reaches ``limit``; None within the horizon.

    Between the break points (instances starting or ending, the same ``span`` later, the past
    leaving) the window's content is linear in ``t``: solved per piece.
    """
    shifted = [p + span for a, b in spans for p in (a, b) if not math.isinf(p)]
    points = _breaks(spans, [max(0.0, t) for t, _ in leaving] + shifted + [float(span)])
    steps = sorted((max(0.0, t), v) for t, v in leaving)

    def held(t: float) -> float:
        return used - sum(v for s, v in steps if s <= t)

    def slope(t: float) -> float:
        """d/dt of the spend in the window just after ``t``: instances in at t, minus those in at t - span."""
        k_now = sum(1 for a, b in spans if a <= t < b)
        k_old = sum(1 for a, b in spans if a <= t - span < b) if t >= span else 0
        return rate * (k_now - k_old)

    def spend(t: float) -> float:
        lo = max(0.0, t - span)
        return rate * sum(max(0.0, min(b, t) - max(a, lo)) for a, b in spans)

    for i, t0 in enumerate(points):
        t1 = points[i + 1] if i + 1 < len(points) else float(HORIZON)
        base = held(t0) + spend(t0)
        if base >= limit:
            return t0
        s = slope(t0)
        if s > 0 and t0 + (limit - base) / s < t1:
            return t0 + (limit - base) / s
    return None
