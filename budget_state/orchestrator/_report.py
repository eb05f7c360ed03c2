"""The orchestrator's status report, in the original plans' layout. Pure: the time, width and colour come in.

``build`` gathers the facts from the ledger state (the same limits the hooks decide with);
``render`` draws them: with visuals, a box with bars; without, the same facts as plain lines.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, NamedTuple

from .._model import LimitStatus, dollars
from .._render import _COLORS, _EXCEEDED_COLOR, _ljust, _paint, _safe, _width
from ..budgets._units import humanize
from ..forecast import Planned, plan_exhaustion
from ..ledger import _records as records
from . import _scope
from ._results import STATES, Result
from ._schedule import estimate

if TYPE_CHECKING:
    from ..forecast import Exhaustion
    from ..ledger._state import LedgerState

BIG_BAR, SMALL_BAR = 20, 10
_NOTE = "\x1b[33m"


class Row(NamedTuple):
    label: str
    priority: int
    state: str
    used: int  # tokens the instance spent
    usd_micros: int
    limit: LimitStatus | None  # its per-command budget in this orchestration, if any
    reason: str | None = None


class View(NamedTuple):
    now: datetime
    elapsed: float  # seconds since the orchestration started
    orchestration: str
    mode: str
    used: int  # tokens (the counted categories) the budgets see: the orchestration's, or the ledger's
    usd_micros: int
    overall: tuple[LimitStatus, ...]  # tokens and/or usd
    hourly: tuple[LimitStatus, ...]
    period: int
    window_used: int
    next_reset: int | None  # minutes
    rate: float  # tokens per minute, over the last period (or since the start)
    rows: tuple[Row, ...]
    persistent: bool = False
    #: the plan-aware forecasts (running and queued instances × their per-run estimates), when there is one
    plan_overall: Exhaustion | None = None
    plan_hourly: Exhaustion | None = None


def build(
    state: LedgerState,
    oid: str,
    results: Sequence[Result],
    /,
    *,
    now: datetime,
    elapsed: float,
    counted: tuple[str, ...],
    mode: str,
    slots: int | None = None,
) -> View:
    """The report's facts. ``slots``: instances at once (the plan-aware forecast starts queued ones in them)."""
    st = state
    o = _scope.table(st, oid)
    persistent = o is not None and o.persistent
    period = o.period if o is not None else 60
    everything = _scope.limits(st, oid, command=None, session=None, counted=counted, now=now)
    overall = tuple(lim for lim in everything if lim.scope == "overall")
    hourly = tuple(lim for lim in everything if lim.scope == "hourly")
    source: _scope.Spent | None = records.scope(st, "overall") if persistent else o
    window, _ = _scope.window_usage(st, oid, now=now, minutes=period)
    minutes = max(1.0, min(float(period), elapsed / 60))
    rows = []
    for r in results:
        mine = _scope.limits(st, oid, command=r.command, session=r.session, counted=counted, now=now)
        per = [lim for lim in mine if lim.scope == r.command and lim.metric == "tokens"]
        rows.append(
            Row(r.label, r.priority, r.state, r.usage.total(counted), r.usd_micros, per[0] if per else None, r.reason)
        )
    tok_overall = next((lim for lim in overall if lim.metric == "tokens"), None)
    tok_hourly = next((lim for lim in hourly if lim.metric == "tokens"), None)
    plan_overall = plan_hourly = None
    if tok_overall is not None or tok_hourly is not None:
        planned = fleet_plan(st, oid, results, now=now, elapsed=elapsed, counted=counted)
        if planned is not None:
            plan_overall = _planned(planned, st, oid, tok_overall, now=now, counted=counted, slots=slots)
            plan_hourly = _planned(planned, st, oid, tok_hourly, now=now, counted=counted, slots=slots)
    return View(
        now=now,
        elapsed=elapsed,
        orchestration=oid,
        mode=mode,
        used=source.amount("tokens", counted) if source is not None else 0,
        usd_micros=source.amount("usd", counted) if source is not None else 0,
        overall=overall,
        hourly=hourly,
        period=period,
        window_used=window.total(counted),
        next_reset=_scope.next_reset(st, oid, now=now, minutes=period),
        rate=window.total(counted) / minutes,
        rows=tuple(rows),
        persistent=persistent,
        plan_overall=plan_overall,
        plan_hourly=plan_hourly,
    )


class FleetPlan(NamedTuple):
    """What the plan-aware forecast needs, from the results and the ledger."""

    plan: list[Any]  # forecast.Planned, running and queued
    spent: int  # tokens the orchestration's instances spent
    behind: float  # instance-minutes they ran
    active: list[tuple[float, float]]  # epoch-minute intervals they ran in


def fleet_plan(
    state: LedgerState,
    oid: str,
    results: Sequence[Result],
    /,
    *,
    now: datetime,
    elapsed: float,
    counted: tuple[str, ...],
) -> FleetPlan | None:
    """Running instances (what each has yet to spend of a typical run) and queued ones (a typical run
    each), with what the fleet ran so far; None before any instance has started."""

    st = state
    o = _scope.table(st, oid)
    entries = o.instances if o is not None else {}
    typical: dict[str, int] = {}
    now_min = now.timestamp() / 60
    plan: list[Any] = []
    behind = 0.0
    active: list[tuple[float, float]] = []
    for r in results:
        if r.command not in typical:
            typical[r.command] = estimate(st, oid, r.command, counted)["tokens"]
        run = typical[r.command] or None
        if r.state == "queued":
            plan.append(Planned(None, run))
            continue
        if r.started is None:
            continue
        ran = (r.seconds if r.state != "running" and r.seconds is not None else max(0.0, elapsed - r.started)) / 60
        start = now_min - (elapsed - r.started) / 60
        behind += ran
        active.append((start, start + ran))
        if r.state == "running":
            entry = entries.get(r.session) if r.session is not None else None
            so_far = entry.amount("tokens", counted) if entry is not None else 0
            plan.append(Planned(start - now_min, None if run is None else max(0, run - so_far)))
    if behind <= 0:
        return None
    return FleetPlan(plan, o.amount("tokens", counted) if o is not None else 0, behind, active)


def _planned(
    fleet: FleetPlan,
    state: LedgerState,
    oid: str,
    lim: LimitStatus | None,
    /,
    *,
    now: datetime,
    counted: tuple[str, ...],
    slots: int | None,
) -> Exhaustion | None:
    """The plan-aware forecast of one token limit of the orchestration (overall, or per period)."""
    if lim is None or lim.spent:
        return None
    series = _scope._buckets(state, oid).series(0, "tokens", counted)
    return plan_exhaustion(
        series,
        used=lim.used,
        limit=lim.limit,
        now=now,
        plan=fleet.plan,
        spent=fleet.spent,
        behind=fleet.behind,
        active=fleet.active,
        slots=slots,
        window=lim.window,
    )


def duration(seconds: float, /) -> str:
    """``45s``, ``12m``, ``2h 15m``, ``3d 4h``."""
    s = max(0, int(seconds))
    if s < 60:
        return f"{s}s"
    m = s // 60
    if m < 60:
        return f"{m}m"
    h, m = divmod(m, 60)
    if h < 48:
        return f"{h}h {m}m" if m else f"{h}h"
    d, h = divmod(h, 24)
    return f"{d}d {h}h" if h else f"{d}d"


def _bar(lim: LimitStatus | None, width: int, color: bool) -> str:
    if lim is None:
        return "[" + " " * width + "]"
    fill = max(0, min(width, lim.used * width // lim.limit)) if lim.limit else 0
    return "[" + _paint("#" * fill, _COLORS.get(lim.level), color) + "-" * (width - fill) + "]"


def _pct(lim: LimitStatus, color: bool) -> str:
    text = f"{lim.whole_percent}%"
    code = _EXCEEDED_COLOR if lim.spent else _COLORS.get(lim.level)
    return " " * (4 - len(text)) + _paint(text, code, color)


def _short(lim: LimitStatus, value: int) -> str:
    return dollars(value) if lim.metric == "usd" else humanize(value)


def _counts(view: View) -> str:
    return ", ".join(
        f"{sum(r.state == s for r in view.rows)} {s}" for s in STATES if any(r.state == s for r in view.rows)
    )


def _tokens_limit(limits: Sequence[LimitStatus]) -> LimitStatus | None:
    return next((lim for lim in limits if lim.metric == "tokens"), None)


def _usd_limit(limits: Sequence[LimitStatus]) -> LimitStatus | None:
    return next((lim for lim in limits if lim.metric == "usd"), None)


def _eta(view: View, lim: LimitStatus | None) -> str | None:
    """When the token budget ``lim`` is spent ("12m", with the plan "12m (P10–P90 9m–16m)"), None if it
    cannot be told. With a plan-aware forecast, its answer; else the current rate's."""
    if lim is None or lim.metric != "tokens" or lim.spent:
        return None
    planned = view.plan_hourly if lim.scope == "hourly" else view.plan_overall
    if planned is not None and planned.minutes is not None:
        band = ""
        if planned.p10_minutes is not None:
            late = duration(planned.p90_minutes * 60) if planned.p90_minutes is not None else "never"
            band = f" (P10–P90 {duration(planned.p10_minutes * 60)}–{late})"
        return duration(math.ceil(planned.minutes) * 60) + band
    if planned is not None:
        return None  # what is running and queued ends before the budget does
    if view.rate <= 0:
        return None
    return duration(math.ceil(lim.left / view.rate) * 60)


def _plan_note(view: View, lim: LimitStatus | None) -> str | None:
    """The plan ends before the budget does: say so (the rate alone would say when it runs out)."""
    planned = view.plan_hourly if lim is not None and lim.scope == "hourly" else view.plan_overall
    if lim is None or lim.spent or planned is None or planned.minutes is not None or planned.rate.per_min <= 0:
        return None
    return f"With the instances running and queued, {_scope.label(lim)} is not expected to run out"


def _efficiency(view: View) -> str:
    if view.usd_micros <= 0:
        return "n/a"
    return f"{humanize(view.used * 1_000_000 // view.usd_micros)} tok/$"


def forecasts(view: View) -> list[str]:
    """Predictions and alerts: instances held back or stopped, budgets near their end, when they run out."""
    out: list[str] = []
    for r in view.rows:
        if r.state in ("waiting", "skipped", "stopped", "failed") and r.reason:
            out.append(f"{r.label} {r.state}: {' '.join(r.reason.split())}")
    for lim in (*view.overall, *view.hourly):
        if lim.spent:
            out.append(f"{_scope.label(lim)} is spent ({lim.whole_percent}%)")
        elif lim.reached >= 90:
            out.append(f"{_scope.label(lim)} is at {lim.whole_percent}%")
    rate = f"{humanize(round(view.rate))} tok/min"
    eta = _eta(view, _tokens_limit(view.overall))
    if eta and view.plan_overall is not None:
        running = sum(r.state == "running" for r in view.rows)
        queued = sum(r.state == "queued" for r in view.rows)
        out.append(
            f"With the plan ({running} running, {queued} queued, each a typical run) the overall token budget "
            f"is spent in about {eta}; now {rate}"
        )
    elif eta:
        out.append(f"At the current rate ({rate}) the overall token budget is spent in about {eta}")
    hourly = _tokens_limit(view.hourly)
    if hourly is not None and view.plan_hourly is not None:
        eta = _eta(view, hourly)
        if eta:
            out.append(f"With the plan the budget per {view.period} min is spent in about {eta}")
    elif hourly is not None and view.rate > 0 and not hourly.spent:
        minutes = hourly.left / view.rate
        if minutes < view.period:
            out.append(
                f"At the current rate ({rate}) the budget per {view.period} min is spent "
                f"in about {duration(minutes * 60)}"
            )
    for token_limit in (_tokens_limit(view.overall), hourly):
        note = _plan_note(view, token_limit)
        if note:
            out.append(note)
    return out


def render(view: View, /, *, width: int = 80, color: bool = False, visuals: bool = True) -> str:
    """The report, ending with a newline. ``visuals``: the box and bars; else plain lines."""
    return _boxed(view, width, color) if visuals else _plain(view)


def _header(view: View) -> str:
    scope = "persistent budgets" if view.persistent else f"orchestration {view.orchestration}"
    return f"{scope} · mode {view.mode} · elapsed {duration(view.elapsed)} · {_counts(view)}"


def _boxed(view: View, width: int, color: bool) -> str:
    title = f"= TOKEN BUDGET STATUS [{view.now:%H:%M:%S}] "
    lines = ["+=" + title + "=" * max(3, width - 3 - len(title))]
    body = [_header(view)]
    tok, usd = _tokens_limit(view.overall), _usd_limit(view.overall)
    pad = " " * len("Overall Budget: ")
    if tok is not None:
        body.append(
            f"Overall Budget: {_bar(tok, BIG_BAR, color)} {_pct(tok, color)} "
            f"({humanize(tok.used)}/{humanize(tok.limit)} tokens)"
        )
        body.append(
            f"{pad}Remaining: {humanize(tok.left)} | "
            f"Est. exhaustion: {_eta(view, tok) or ('now' if tok.spent else 'n/a')}"
        )
    else:
        body.append(f"Overall Budget: no token budget ({humanize(view.used)} tokens used)")
    htok = _tokens_limit(view.hourly)
    reset = f"{view.next_reset}m" if view.next_reset is not None else "n/a"
    rate = f"{humanize(round(view.rate))} tok/min"
    if htok is not None:
        body.append(
            f"Hourly Budget:  {_bar(htok, BIG_BAR, color)} {_pct(htok, color)} "
            f"({humanize(htok.used)}/{humanize(htok.limit)} tokens per {view.period} min)"
        )
    else:
        body.append(
            f"Hourly Budget:  no token budget ({humanize(view.window_used)} tokens in the last {view.period} min)"
        )
    body.append(f"{pad}Next reset: {reset} | Rate: {rate}")
    body.append("")
    body.append("Command Budgets:")
    name_w = max((_width(_safe(r.label)) for r in view.rows), default=0)
    amounts = [_amount(r) for r in view.rows]
    amount_w = max((len(a) for a in amounts), default=0)
    for r, amount in zip(view.rows, amounts):
        pct = _pct(r.limit, color) if r.limit is not None else "    "
        state = _paint(r.state, _STATE_COLORS.get(r.state), color)
        body.append(
            f"  {_ljust(_safe(r.label), name_w)}  {_bar(r.limit, SMALL_BAR, color)} {pct} {amount.ljust(amount_w)}"
            f"  Priority: {r.priority}  {state}"
        )
    body.append("")
    husd = _usd_limit(view.hourly)
    cost = f"Cost Summary: {dollars(view.usd_micros)} spent"
    if usd is not None:
        cost += f" | {dollars(usd.left)} remaining of {dollars(usd.limit)}"
    if husd is not None:
        cost += f" | {dollars(husd.used)} of {dollars(husd.limit)} per {view.period} min"
    body.append(f"{cost} | Efficiency: {_efficiency(view)}")
    alerts = forecasts(view)
    if alerts:
        body.append("")
        body.append("Predictions & Alerts:")
        body.extend(_paint(f"  ! {_safe(a)}", _NOTE, color) for a in alerts)
    lines.extend(("| " + b).rstrip() for b in body)
    lines.append("+" + "=" * (width - 1))
    return "\n".join(lines) + "\n"


_STATE_COLORS = {"done": "\x1b[32m", "skipped": "\x1b[33m", "stopped": "\x1b[31m", "failed": "\x1b[1;31m"}


def _amount(r: Row) -> str:
    if r.limit is None:
        return f"({humanize(r.used)} used)"
    return f"({humanize(r.limit.used)}/{humanize(r.limit.limit)})"


def _plain(view: View) -> str:
    lines = [f"Budget status at {view.now:%H:%M:%S} — {_header(view)}"]
    tok, usd = _tokens_limit(view.overall), _usd_limit(view.overall)
    rate = f"{humanize(round(view.rate))} tokens/min"
    if tok is not None:
        eta = _eta(view, tok)
        lines.append(
            f"Overall: {humanize(tok.used)} of {humanize(tok.limit)} tokens ({tok.whole_percent}%), "
            f"{humanize(tok.left)} left"
            + (f", spent in about {eta} {'with the plan' if view.plan_overall else 'at this rate'}" if eta else "")
        )
    else:
        lines.append(f"Overall: {humanize(view.used)} tokens used, no token budget")
    htok = _tokens_limit(view.hourly)
    reset = f"next reset in {view.next_reset}m" if view.next_reset is not None else "nothing in the window"
    if htok is not None:
        lines.append(
            f"Hourly: {humanize(htok.used)} of {humanize(htok.limit)} tokens in the last {view.period} min "
            f"({htok.whole_percent}%), {reset}, rate {rate}"
        )
    else:
        lines.append(
            f"Hourly: {humanize(view.window_used)} tokens in the last {view.period} min, no budget, rate {rate}"
        )
    for r in view.rows:
        amount = (
            f"{humanize(r.limit.used)} of {humanize(r.limit.limit)} tokens ({r.limit.whole_percent}%)"
            if r.limit is not None
            else f"{humanize(r.used)} tokens, no budget of its own here"
        )
        lines.append(f"{_safe(r.label)}: {r.state}, priority {r.priority}, {amount}")
    cost = f"Cost: {dollars(view.usd_micros)} spent"
    if usd is not None:
        cost += f", {dollars(usd.left)} left of {dollars(usd.limit)}"
    husd = _usd_limit(view.hourly)
    if husd is not None:
        cost += f", {dollars(husd.used)} of {dollars(husd.limit)} in the last {view.period} min"
    lines.append(f"{cost}, efficiency {_efficiency(view).replace('tok/$', 'tokens per dollar')}")
    lines.extend(f"Alert: {_safe(a)}" for a in forecasts(view))
    return "\n".join(lines) + "\n"
