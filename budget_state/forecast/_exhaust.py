"""When a limit runs out at the current burn rate: a point estimate and a P10–P90 band.

Point estimate: the first time the limit is reached if usage goes on at the rate of
:func:`~budget_state.forecast.burn_rate`.

- cumulative limit: ``left / rate``;
- calendar window: the same, but an exhaustion at or after the window's end does not happen (the
  window resets first): None;
- rolling window of span ``W``: what is in the window leaves it ``W`` minutes after it was spent
  while new usage comes in, so the window holds ``P(t) + rate * min(t, W)`` at ``now + t``, where
  ``P(t)`` is what of today's window is still inside then. We walk the buckets in the order they
  leave; if ``rate * W`` is under the limit the window never fills up (None).

Band. Three things make the real time differ from the point estimate, all from the model of
``_rate``: the rate is an estimate (relative variance ``D / n_eff``); the usage still to come is
random (first passage of a process with mean ``mu`` and long-run variance ``s2`` to a level
``T * mu`` away takes ``T`` with relative variance ``s2 / (mu**2 * T) = D / T``); and the rate
itself wanders (a random walk in its log with variance ``drift`` per minute: the mean rate over
the next ``T`` minutes, and the lag of an estimate averaged over the last ``n_eff``, each add
``drift * length / 3``). Together, by the delta method,
``rel**2 = D * (1 / n_eff + 1 / T) + drift * (T + n_eff) / 3``; the bounds are the exhaustion
times at the rates ``rate * exp(±t * rel)``, with ``t`` the 90th percentile of Student's t for
the degrees of freedom behind ``D`` (:func:`t90`), i.e. a log-normal band around the point for a
cumulative limit. For windows the same two rates go
through the window arithmetic, so a bound may be None (at that rate the window frees up or
resets first). The benchmark (BENCHMARKS.md, "Forecast quality") measures how often the band
holds the real time.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, NamedTuple

from ._rate import Rate, burn_rate

if TYPE_CHECKING:
    from .._model import Window

#: Further out than this is "not in any foreseeable time" (None): a year, in minutes.
HORIZON = 366 * 24 * 60
Z90 = 1.2815515655446004  # the 90th percentile of the standard normal: P10–P90 is ±Z90


class Exhaustion(NamedTuple):
    """When a limit would be spent. Times are minutes from now, and as datetimes (UTC)."""

    minutes: float | None = None  #: the point estimate; None: not at this rate (or no data)
    p10_minutes: float | None = None  #: the early end of the band (a faster burn)
    p90_minutes: float | None = None  #: the late end; None: at that rate, not before the window frees/resets
    at: datetime | None = None
    p10: datetime | None = None
    p90: datetime | None = None
    rate: Rate = Rate()


def t90(df: float, /) -> float:
    """The 90th percentile of Student's t with ``df`` degrees of freedom (Cornish–Fisher, to 1e-3 for df ≥ 2).

    The dispersion behind the band is estimated from a few bins, so the band is a t interval,
    wider than the normal one while the evidence is thin.
    """
    if df <= 0 or math.isinf(df):
        return Z90
    df = max(df, 1.0)
    z = Z90
    return (
        z
        + (z**3 + z) / (4 * df)
        + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * df**2)
        + (3 * z**7 + 19 * z**5 + 17 * z**3 - 15 * z) / (384 * df**3)
    )


def as_minute(now: int | datetime, /) -> tuple[int, datetime]:
    """(epoch minute, the moment) of ``now``: a datetime (naive = UTC), or an epoch minute.

    An epoch minute is the minute in progress taken as complete: the moment is its end, so its
    bucket (which the rate counts as a whole minute) is not in the future.
    """
    if isinstance(now, datetime):
        moment = now if now.tzinfo is not None else now.replace(tzinfo=timezone.utc)
        return int(moment.timestamp() // 60), moment
    return now, datetime.fromtimestamp((now + 1) * 60, timezone.utc)


def exhaustion(
    series: Sequence[tuple[int, int]],
    /,
    *,
    used: int,
    limit: int,
    now: int | datetime,
    window: Window | None = None,
    window_end: datetime | None = None,
    rate: Rate | None = None,
) -> Exhaustion:
    """Time to exhaustion of one limit.

    :param series: the scope's ``(epoch minute, value)`` buckets in the limit's metric (tokens
        counted, or micro-dollars), covering at least the rolling window's span and the last hours.
    :param used: what the limit counts now (in its window); ``limit``: the limit, same unit.
    :param window: the limit's window (None: cumulative).
    :param window_end: for a calendar window, its end (the next boundary).
    :param rate: a rate already computed from ``series`` (saves doing it again per limit).
    """
    minute, moment = as_minute(now)
    if rate is None:
        rate = burn_rate(series, minute)
    if limit <= 0:
        return Exhaustion(rate=rate)
    if used >= limit:
        return Exhaustion(0.0, 0.0, 0.0, moment, moment, moment, rate)
    if not rate.enough:
        return Exhaustion(rate=rate)
    horizon = float(HORIZON)
    if window is not None and window.kind == "calendar":
        if window_end is None:
            return Exhaustion(rate=rate)
        horizon = min(horizon, (window_end - moment).total_seconds() / 60)
    leaving: list[tuple[float, int]] = []
    if window is not None and window.kind == "rolling":
        leaving = _leaving(series, used, minute, moment, window.minutes)

    def time_at(r: float) -> float | None:
        if r <= 0:
            return None
        if window is not None and window.kind == "rolling":
            t = _rolling_time(leaving, used, limit, r, window.minutes)
        else:
            t = (limit - used) / r
        return t if t is not None and t < horizon else None

    point = time_at(rate.per_min)
    # The future-noise term needs a length of time: the point, or failing one the window's span.
    ref = point
    if ref is None:
        ref = min(horizon, float(window.minutes) if window is not None and window.kind == "rolling" else horizon)
    # Under a minute the buckets say nothing finer: the future term stops growing there.
    rel = math.sqrt(
        rate.dispersion * (1 / max(rate.n_eff, 1.0) + 1 / max(ref, 1.0))
        + rate.drift * (min(ref, float(HORIZON)) + rate.n_eff) / 3
    )
    spread = min(t90(rate.df) * rel, 50.0)  # e**50: beyond any horizon anyway
    early = time_at(rate.per_min * math.exp(spread))
    late = time_at(rate.per_min * math.exp(-spread)) if point is not None else None

    def when(t: float | None) -> datetime | None:
        return None if t is None else moment + timedelta(minutes=t)

    return Exhaustion(point, early, late, when(point), when(early), when(late), rate)


def _leaving(
    series: Sequence[tuple[int, int]], used: int, minute: int, moment: datetime, span: int
) -> list[tuple[float, int]]:
    """(minutes from now, amount) at which what the rolling window holds leaves it, in order.

    A bucket of minute ``m`` is in the window until ``m + span``. What ``used`` holds beyond the
    buckets (a charge without a bucket) is taken to leave last, at ``now + span``: the safe side.
    """
    offset = (moment.timestamp() / 60) - minute  # how far into the current minute we are
    out: list[tuple[float, int]] = []
    inside = 0
    for m, v in sorted(series):
        if minute - span < m <= minute and v > 0:
            out.append((m + span - minute - offset, v))
            inside += v
    if inside > used:  # the buckets say more than the limit counts (another metric's rounding): scale down
        out = [(t, v * used // inside) for t, v in out]
    else:
        out.append((float(span), used - inside))
    return out


def _rolling_time(leaving: list[tuple[float, int]], used: int, limit: int, rate: float, span: int) -> float | None:
    """First ``t >= 0`` at which ``held(t) + rate * min(t, span) >= limit``, or None."""
    held = used
    start = 0.0
    for t_leave, amount in [*leaving, (math.inf, 0)]:
        end = min(max(t_leave, 0.0), float(span))
        if end > start or t_leave == math.inf:
            need = (limit - held) / rate
            if need <= start:
                return start
            if need < end or (t_leave == math.inf and need <= span):
                return need
            start = max(start, end)
        held -= amount
    return None
