"""Every limit of a scope, and where each stands: cumulative or windowed, tokens or dollars.

A :class:`LimitSpec` is a limit as configured; :func:`evaluate` turns a scope's specs into
:class:`~budget_state._model.LimitStatus` values from the ledger's totals and time buckets. Pure
but for the ``state`` it reads: ``now`` and the time zone are passed in.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any, NamedTuple

from .._model import CATEGORIES, RECENT_RUNS, LimitStatus, PerRun, Window, per_run_of
from ..ledger import _records as records

if TYPE_CHECKING:
    from datetime import tzinfo

    from ..ledger._state import LedgerState


class LimitSpec(NamedTuple):
    """One configured limit: ``amount`` tokens or micro-dollars, cumulative or over ``window``."""

    metric: str  # "tokens" | "usd"
    amount: int
    window: Window | None = None
    source: str | None = None  # env, config, frontmatter, orchestrator
    #: what to change to raise it, e.g. ``usd_per_day in [commands."/x"] in .claude/budget.toml``
    where: str | None = None

    @property
    def key(self) -> str:
        return self.metric if self.window is None else f"{self.metric}/{self.window.label}"


def merge(*layers: Iterable[LimitSpec]) -> tuple[LimitSpec, ...]:
    """Later layers win per limit (metric and window): ``merge(frontmatter, config)``."""
    out: dict[str, LimitSpec] = {}
    for layer in layers:
        for spec in layer:
            out[spec.key] = spec
    return tuple(out.values())


def evaluate(
    specs: Iterable[LimitSpec],
    state: LedgerState,
    scope: str,
    now: datetime,
    /,
    *,
    counted: tuple[str, ...] = CATEGORIES,
    zone: tzinfo | None = None,
    totals: records.ScopeTotals | None = None,
) -> tuple[LimitStatus, ...]:
    """Where each limit of ``scope`` stands at ``now``; ``totals``: its counters, when the caller has them."""
    from ..ledger._windows import MINUTES, QUARTERS, frees_at, minute_of, next_boundary, scope_buckets, start_minute

    specs = tuple(specs)
    if totals is None:
        totals = records.scope(state, scope)
    parsed: dict[str, Any] = {}
    # each window's resolution and first minute, once; a resolution's buckets are parsed from the
    # earliest of its windows' starts (a rolling one's "frees at" looks only inside the window too)
    starts = {
        i: (QUARTERS if spec.window.kind == "calendar" else MINUTES, start_minute(spec.window, now, zone))
        for i, spec in enumerate(specs)
        if spec.window is not None
    }
    earliest: dict[str, int] = {}
    for kind, start in starts.values():
        earliest[kind] = min(start, earliest.get(kind, start))
    out = []
    for i, spec in enumerate(specs):
        if spec.window is None:
            used = totals.amount(spec.metric, counted)
            out.append(LimitStatus(spec.metric, used, spec.amount, None, None, spec.source))
            continue
        kind, start = starts[i]
        if kind not in parsed:
            parsed[kind] = scope_buckets(state, scope, table=kind, since=earliest[kind])
        buckets = parsed[kind]
        # up to now: a clock moved back (or skewed between machines) must not count the future
        usage, usd = buckets.total(start, minute_of(now) + 1)
        used = usd if spec.metric == "usd" else usage.total(counted)
        if spec.window.kind == "calendar":
            resets = next_boundary(spec.window, now, zone)
        else:
            resets = frees_at(spec.window, buckets, used, spec.amount, spec.metric, counted, now)
        both = (usage.total(counted), usd)
        out.append(LimitStatus(spec.metric, used, spec.amount, spec.window, resets, spec.source, both))
    return tuple(out)


def finished_runs(state: LedgerState, /) -> dict[str, list[list[int]]]:
    """Each command's finished runs that the ledger file still holds, as ``RunRecord.totals``, oldest
    first: for :func:`per_run` of every command at once (one pass over the runs, not one per command)."""
    out: dict[str, list[list[int]]] = {}
    for r in records.runs(state):
        if r.ended is not None and r.command is not None:
            out.setdefault(r.command, []).append(r.totals())
    return out


def per_run(
    state: LedgerState,
    command: str,
    /,
    *,
    counted: tuple[str, ...] = CATEGORIES,
    finished: Mapping[str, list[list[int]]] | None = None,
) -> PerRun | None:
    """p50/p90 of a command's recent finished runs (those that left the ledger, and those still in it).

    ``finished``: :func:`finished_runs` of ``state``, when the caller asks for many commands."""
    rows = records.recent(state, command)
    if finished is None:
        rows += [r.totals() for r in records.runs(state, command=command) if r.ended is not None]
    else:
        rows += finished.get(command, ())
    if not rows:
        return None
    # only the last RECENT_RUNS count; their values are counts already (Scope.recent, RunRecord.totals)
    rows = rows[-RECENT_RUNS:]
    if counted == CATEGORIES:
        tokens = [r[0] + r[1] + r[2] + r[3] for r in rows]
    else:
        which = [i for i, c in enumerate(CATEGORIES) if c in counted]
        tokens = [sum([r[i] for i in which]) for r in rows]
    return per_run_of(tokens, [r[4] for r in rows])
