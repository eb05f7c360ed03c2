"""A scope's forecast (its tightest limit) and what one run of a command costs."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from .._model import Forecast, LimitStatus
from ._exhaust import Exhaustion, as_minute, exhaustion
from ._rate import Rate, burn_rate, with_drift


def forecast_scope(
    limits: Sequence[LimitStatus],
    /,
    *,
    tokens: Sequence[tuple[int, int]],
    usd: Sequence[tuple[int, int]],
    now: int | datetime,
) -> Forecast:
    """The scope's burn rates and the limit that runs out first (earliest point estimate).

    :param limits: every limit of the scope (``ScopeStatus.limits``); a calendar one's ``resets_at``
        is its window's end.
    :param tokens: the scope's per-minute counted tokens, ``usd`` its per-minute micro-dollars, as
        ``(epoch minute, value)``, for at least the longest rolling span and the last hours.
    """
    minute, _ = as_minute(now)
    series = {"tokens": tokens, "usd": usd}
    # the rates without their drift, which only a limit that can still run out needs (added below)
    rates = {metric: burn_rate(values, minute, drift=False) for metric, values in series.items()}
    drifting: dict[str, Rate] = {}
    best: tuple[Exhaustion, LimitStatus] | None = None
    for limit in limits:
        if limit.limit <= 0 or limit.metric not in rates or limit.used >= limit.limit:
            continue  # a spent limit has run out already: its row says so, and when it resets
        if limit.metric not in drifting:
            drifting[limit.metric] = with_drift(series[limit.metric], minute, rates[limit.metric])
        calendar = limit.window is not None and limit.window.kind == "calendar"
        e = exhaustion(
            series[limit.metric],
            used=limit.used,
            limit=limit.limit,
            now=now,
            window=limit.window,
            window_end=limit.resets_at if calendar else None,
            rate=drifting[limit.metric],
        )
        if e.minutes is not None and (best is None or e.minutes < (best[0].minutes or 0.0)):
            best = (e, limit)
    out = Forecast(tokens_per_min=rates["tokens"].per_min, usd_per_hour=rates["usd"].per_min * 60 / 1_000_000)
    if best is None:
        return out
    e, limit = best
    return out._replace(exhausts_at=e.at, exhausts_p10=e.p10, exhausts_p90=e.p90, limit_key=limit.key)
