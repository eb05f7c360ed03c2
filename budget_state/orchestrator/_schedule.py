"""Which instance starts next, and whether it may: pure, the ledger state and the time passed in.

Order: priority (1 first), then the order given. A start is decided as the instance's own
prompt hook would decide it — the project's budgets (frontmatter, ``budget.toml``) and the
orchestration's — plus, in block mode only, a pre-flight estimate: a typical run of the
command (the median of its finished runs) must still fit, so that a skipped instance makes no
API request at all rather than one that goes past the budget. Kill mode starts whatever has
budget left and stops it at the crossing: a run goes as far as its budgets allow.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, NamedTuple

from .._api import command_status, overall_status
from .._paths import cache_path, claude_home
from ..budgets._budgets import Decision, check_running, check_start, decide
from ..budgets._commands import BudgetCache, find_command_file, read_budget
from ..ledger import _records as records
from . import _scope

if TYPE_CHECKING:
    from .._api import Context
    from .._model import LimitStatus
    from ..ledger._state import LedgerState
    from ._options import Instance


class Slot(NamedTuple):
    """An instance and the session id it runs (or would run) under."""

    position: int
    instance: Instance
    session: str


def order(instances: Sequence[Instance], /) -> list[int]:
    """Indexes in start order: priority, then the order given."""
    return sorted(range(len(instances)), key=lambda i: (instances[i].priority, instances[i].order, i))


def _median(values: list[int]) -> int:
    if not values:
        return 0
    values = sorted(values)
    return values[(len(values) - 1) // 2]


def estimate(state: LedgerState, oid: str, command: str, counted: tuple[str, ...], /) -> dict[str, int]:
    """A typical run of ``command``: the median (lower) of its finished runs, tokens and micro-dollars.

    This orchestration's finished instances of it first; else the command's recent runs in the
    ledger; else any finished run of this orchestration's (a fleet's runs tend to be alike) — an
    instance that just ended is in the ledger's runs (its SessionEnd closed its run) before the
    orchestrator marks it finished. Nothing known: no estimate (0), and only a spent budget refuses.
    """
    o = _scope.table(state, oid)
    entries = o.instances if o is not None else {}
    finished = [e for e in entries.values() if e.finished]
    ended = [r for r in records.runs(state) if r.ended is not None]
    # (tokens, micro-dollars) of each run that says what a typical one costs
    mine = [(e.amount("tokens", counted), e.usd_micros) for e in finished if e.command == command]
    if not mine:
        mine = [(r.usage.total(counted), r.usd_micros) for r in ended if r.command == command]
    if not mine:
        running = [r for r in ended if r.session in entries and not entries[r.session].finished]
        mine = [(e.amount("tokens", counted), e.usd_micros) for e in finished]
        mine += [(r.usage.total(counted), r.usd_micros) for r in running]
    return {"tokens": _median([t for t, _ in mine]), "usd": _median([u for _, u in mine])}


def may_start(
    ctx: Context,
    state: LedgerState,
    oid: str,
    slot: Slot,
    /,
    *,
    mode: str,
    now: datetime,
    inflight: Sequence[tuple[str, str]] = (),
) -> Decision:
    """Would the instance's prompt hook let it start — and would a typical run of it still fit,
    beside what the instances still running (``inflight``: command, session) are likely to add?"""
    if mode == "warn":
        return Decision(True)

    cmd, overall = project_statuses(ctx, state, slot, now=now)
    decision = check_start(mode, cmd, overall, now=now, zone=ctx.config.zone())  # type: ignore[arg-type]  # a checked Mode
    if not decision.allowed:
        return Decision(False, decision.reason, decision.scope)
    counted = ctx.config.counted
    found = _scope.limits(state, oid, command=slot.instance.command, session=slot.session, counted=counted, now=now)
    if mode != "block":  # kill: what is not spent starts, and is stopped at the crossing
        return decide(_scope.standings(found), "kill", "start")
    guess = preflight(state, oid, slot.instance.command, inflight, counted)
    return decide(_scope.standings(found, estimate=guess), "block", "start")


def preflight(
    state: LedgerState, oid: str, command: str, inflight: Sequence[tuple[str, str]], counted: tuple[str, ...], /
) -> Any:
    """What starting ``command`` would add to a limit: a typical run of it, plus what each running
    instance drawing on that limit has yet to spend of its own typical run."""
    o = _scope.table(state, oid)
    entries = o.instances if o is not None else {}
    typical: dict[str, dict[str, int]] = {}

    def typical_of(cmd: str) -> dict[str, int]:
        if cmd not in typical:
            typical[cmd] = estimate(state, oid, cmd, counted)
        return typical[cmd]

    def guess(lim: LimitStatus) -> int:
        total = typical_of(command)[lim.metric]
        for cmd, session in inflight:
            if lim.scope in ("overall", "hourly") or lim.scope == cmd:
                entry = entries.get(session)
                spent = entry.amount(lim.metric, counted) if entry is not None else 0
                total += max(0, typical_of(cmd)[lim.metric] - spent)
        return total

    return guess


def must_stop(ctx: Context, state: LedgerState, oid: str, slot: Slot, /, *, now: datetime) -> Decision:
    """Kill mode: is a budget that the running instance draws on over?"""

    cmd, overall = project_statuses(ctx, state, slot, now=now)
    decision = check_running("kill", cmd, overall, now=now, zone=ctx.config.zone())
    if not decision.allowed:
        return Decision(False, decision.reason, decision.scope)
    counted = ctx.config.counted
    found = _scope.limits(state, oid, command=slot.instance.command, session=slot.session, counted=counted, now=now)
    return decide(_scope.standings(found), "kill", "running")


def project_statuses(
    ctx: Context, state: LedgerState, slot: Slot, /, *, now: datetime | None = None
) -> tuple[Any, Any]:
    """The command's and the overall budgets as the project sets them (frontmatter, budget.toml),
    the command's left out when the orchestrator sets its limit instead (or exempts it)."""

    inst = slot.instance
    overall = overall_status(ctx, state, now=now)
    if inst.tokens is not None or inst.usd_micros is not None or not inst.budget_enabled:
        return None, overall
    path = find_command_file(inst.command, project=ctx.project, home=claude_home(ctx.env))
    budget = None
    if path is not None:
        budget = read_budget(path, project=ctx.project, cache=BudgetCache.load(cache_path(ctx.ledger.path)))
    return command_status(ctx, state, inst.command, path=path, budget=budget, now=now), overall
