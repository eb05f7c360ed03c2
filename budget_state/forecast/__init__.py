"""Forecasts: burn rate, time to exhaustion with a P10–P90 band, cost per run.

Pure arithmetic over ``(epoch minute, value)`` series (the ledger's minute buckets); time is passed
in; standard library only, cheap to import. How the rate and the band are made, and why: the
docstrings of ``_rate`` and ``_exhaust``; how well they do: BENCHMARKS.md, "Forecast quality".
"""

from __future__ import annotations

from .._model import per_run, quantile
from ._exhaust import Exhaustion, exhaustion
from ._plan import Planned, plan_exhaustion
from ._rate import Rate, burn_rate
from ._scope import forecast_scope

__all__ = [
    "Exhaustion",
    "Planned",
    "Rate",
    "burn_rate",
    "exhaustion",
    "forecast_scope",
    "per_run",
    "plan_exhaustion",
    "quantile",
]
