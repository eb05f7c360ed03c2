"""An orchestration's scope in the ledger: its limits, what its instances spent, its decisions.

The orchestrator writes ``[orchestrations."<id>"]`` (limits, mode, one entry per instance's
session id) before it starts anything, and sets :data:`ENV` for its instances. Their hooks tag
the session on its first prompt (:func:`tag`); from then on ``settle`` charges every response
of that session to the orchestration too (:func:`charger`), and the hooks decide with
:func:`check` — the same numbers the orchestrator's report shows, read from the same table.

Layout (inside the ledger file; typed as :class:`Orchestrations`, read once per state)::

    [orchestrations."<id>"]    started, ended, mode, persistent, period (minutes),
                               input, output, cache_creation, cache_read, usd_micros, models
    [orchestrations."<id>".limits]     tokens, usd_micros, hourly_tokens, hourly_usd_micros
    [orchestrations."<id>".commands."/c"]   what its instances of /c spent
    [orchestrations."<id>".instances."<session>"]  command, limit, usd_limit, exempt, requests + what it spent
    [minutes]."@<id>", [quarters]."@<id>"   its time buckets, as every scope's (budget_state.ledger._windows)

On the hook path: imports nothing beyond what the hook has already loaded.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from .._model import CATEGORIES, LimitStatus, Usage, Window, count_value, dollars, time_value
from ..budgets._budgets import Decision, Standing, decide
from ..ledger import _records as records
from ..ledger._ledger import State
from ..ledger._runs import forget_buckets, join_orchestration
from ..ledger._state import Tally

if TYPE_CHECKING:
    from .._model import Mode

ENV = "CLAUDE_BUDGET_ORCHESTRATION"
KEEP = 10  # orchestrations kept in the ledger; the oldest finished ones go first
_BUCKET = (*CATEGORIES, "usd_micros")


def _opt_count(value: object) -> int | None:
    return count_value(value) or None


class Instance(Tally):
    """One instance of the orchestration (its session): the per-command limits it runs under and what it spent."""

    __slots__ = ("command", "exempt", "extra", "finished", "limit", "requests", "usd_limit")

    def __init__(self) -> None:
        super().__init__()
        self.command: str | None = None
        self.limit: int | None = None  # tokens
        self.usd_limit: int | None = None  # micro-dollars
        self.exempt = False
        self.requests = 0  # API responses charged
        self.finished = False
        self.extra: dict[str, Any] = {}

    @classmethod
    def load(cls, table: Mapping[str, Any]) -> Instance:
        i = cls()
        i.read_counts(table)
        command = table.get("command")
        i.command = command if isinstance(command, str) else None
        i.limit, i.usd_limit = _opt_count(table.get("limit")), _opt_count(table.get("usd_limit"))
        i.exempt, i.finished = table.get("exempt") is True, table.get("finished") is True
        i.requests = count_value(table.get("requests"))
        i.extra = {k: v for k, v in table.items() if k not in _INSTANCE_KEYS}
        return i

    def dump(self) -> dict[str, Any]:
        out: dict[str, Any] = {"exempt": self.exempt}
        for key in ("command", "limit", "usd_limit"):
            if getattr(self, key) is not None:
                out[key] = getattr(self, key)
        if self.requests:
            out["requests"] = self.requests
        if self.finished:
            out["finished"] = True
        self.dump_counts(out)
        out.update(self.extra)
        return out


_INSTANCE_KEYS = frozenset(("command", "limit", "usd_limit", "exempt", "requests", "finished", "models", *_BUCKET))


class Orchestration(Tally):
    """An orchestration's scope: its limits, what its instances spent (overall, per command, per instance)."""

    __slots__ = ("commands", "ended", "extra", "instances", "limits", "mode", "period", "persistent", "started")

    def __init__(self) -> None:
        super().__init__()
        self.started: datetime | None = None
        self.ended: datetime | None = None
        self.mode = "block"
        self.persistent = False  # its budgets count the ledger's own totals (everyone's spending)
        self.period = 60  # minutes of its rolling ("hourly") budgets
        #: tokens, usd_micros, hourly_tokens, hourly_usd_micros
        self.limits: dict[str, int] = {}
        self.commands: dict[str, Tally] = {}
        self.instances: dict[str, Instance] = {}  # by session id; dropped when it finishes
        self.extra: dict[str, Any] = {}

    @classmethod
    def load(cls, table: Mapping[str, Any]) -> Orchestration:
        """As the ledger keeps it; what a hand edit broke reads as its empty value."""
        o = cls()
        o.read_counts(table)
        o.started, o.ended = time_value(table.get("started")), time_value(table.get("ended"))
        mode, limits, commands, instances = (table.get(k) for k in ("mode", "limits", "commands", "instances"))
        o.mode = mode if isinstance(mode, str) else "block"
        o.persistent = table.get("persistent") is True
        o.period = count_value(table.get("period")) or 60
        if isinstance(limits, dict):
            o.limits = {str(k): count_value(v) for k, v in limits.items() if count_value(v)}
        if isinstance(commands, dict):
            for name, counts in commands.items():
                if isinstance(counts, dict):
                    o.commands[str(name)] = tally = Tally()
                    tally.read_counts(counts)
        if isinstance(instances, dict):
            o.instances = {str(k): Instance.load(v) for k, v in instances.items() if isinstance(v, dict)}
        o.extra = {k: v for k, v in table.items() if k not in _ORCHESTRATION_KEYS}
        return o

    def dump(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key in ("started", "ended"):
            if getattr(self, key) is not None:
                out[key] = getattr(self, key)
        out.update(mode=self.mode, persistent=self.persistent, period=self.period)
        self.dump_counts(out)
        out["limits"] = dict(self.limits)
        if self.commands:
            out["commands"] = {}
            for name, tally in self.commands.items():
                counts: dict[str, Any] = {}
                tally.dump_counts(counts)
                out["commands"][name] = counts
        if self.instances:
            out["instances"] = {sid: i.dump() for sid, i in self.instances.items()}
        out.update(self.extra)
        return out


_ORCHESTRATION_KEYS = frozenset(
    ("started", "ended", "mode", "persistent", "period", "limits", "commands", "instances", "models", *_BUCKET)
)


class Orchestrations:
    """The ledger's ``[orchestrations]`` table, typed (``_records.feature_value``): each by its id, oldest first."""

    __slots__ = ("by_id",)

    def __init__(self) -> None:
        self.by_id: dict[str, Orchestration] = {}

    @classmethod
    def load(cls, table: Mapping[str, Any] | None) -> Orchestrations | None:
        if not isinstance(table, Mapping):
            return None
        found = cls()
        found.by_id = {str(k): Orchestration.load(v) for k, v in table.items() if isinstance(v, dict)}
        return found

    def dump(self) -> dict[str, Any]:
        return {oid: o.dump() for oid, o in self.by_id.items()}


def _all(state: State, /, *, made: bool = False) -> Orchestrations | None:
    found = records.feature_value(state, "orchestrations", Orchestrations.load)
    if found is None and made:
        found = records.feature_value(state, "orchestrations", Orchestrations.load, replace=Orchestrations())
    return found


def _limit(scope: str, metric: str, used: int, limit: int, flag: str, minutes: int | None = None) -> LimitStatus:
    """One budget an instance draws on: ``used``/``limit`` in tokens or micro-dollars; ``minutes``
    for the rolling ("hourly") budgets."""
    window = Window("rolling", minutes) if minutes is not None else None
    return LimitStatus(metric, used, limit, window, source="orchestrator", scope=scope, flag=flag)


def amount(lim: LimitStatus, value: int | None = None, /) -> str:
    """``$1.20`` or ``12k tokens``: the limit's use, or ``value`` in its metric."""
    from ..budgets._units import humanize

    n = lim.used if value is None else value
    return dollars(n) if lim.metric == "usd" else f"{humanize(n)} tokens"


def label(lim: LimitStatus, /) -> str:
    """What the user calls it: ``the orchestration's overall token budget``."""
    what = "dollar" if lim.metric == "usd" else "token"
    if lim.scope == "overall":
        return f"the orchestration's overall {what} budget"
    if lim.scope == "hourly":
        minutes = lim.window.minutes if lim.window is not None else None
        return f"the orchestration's {what} budget per {minutes} min"
    return f"{lim.scope}'s {what} budget in this orchestration"


def describe(lim: LimitStatus, /) -> str:
    return f"{label(lim)} has used {amount(lim)} of {amount(lim, lim.limit)} ({lim.whole_percent}%)"


def table(state: State, oid: str, /) -> Orchestration | None:
    found = _all(state)
    return found.by_id.get(oid) if found is not None else None


def register(
    state: State,
    oid: str,
    /,
    *,
    mode: str,
    persistent: bool,
    period: int,
    limits: Mapping[str, int | None],
    now: datetime,
) -> Orchestration:
    """Open the orchestration's table (the orchestrator, before any instance starts)."""
    everyone = _all(state, made=True)
    assert everyone is not None  # made
    _prune(state, everyone)
    o = everyone.by_id.get(oid)
    if o is None:
        o = everyone.by_id[oid] = Orchestration()
    o.started, o.mode, o.persistent, o.period = now, mode, persistent, period
    o.limits = {k: v for k, v in limits.items() if v is not None}
    return o


def _prune(state: State, everyone: Orchestrations) -> None:
    """Keep the ledger bounded: past :data:`KEEP`, drop the oldest finished orchestrations (and their buckets)."""
    done = [k for k, o in everyone.by_id.items() if o.ended is not None]
    while len(everyone.by_id) >= KEEP and done:
        oid = done.pop(0)
        del everyone.by_id[oid]
        forget_buckets(state, bucket_scope(oid))


def add_instance(
    state: State,
    oid: str,
    session: str,
    /,
    *,
    command: str | None,
    limit: int | None,
    usd_limit: int | None,
    exempt: bool,
) -> None:
    """Announce an instance (its session id) with the per-command limits it runs under here."""
    o = table(state, oid)
    if o is None:
        return
    entry = o.instances.setdefault(session, Instance())
    entry.exempt = exempt
    if command is not None:
        entry.command = command
    if limit is not None:
        entry.limit = limit
    if usd_limit is not None:
        entry.usd_limit = usd_limit


def finish(state: State, oid: str, /, *, now: datetime) -> None:
    """The orchestrator is done: keep the totals (overall, per command), drop the per-instance
    detail — every hook parses this part of the ledger, and the results file has it."""
    o = table(state, oid)
    if o is not None:
        o.ended = now
        o.instances = {}


def tag(state: State, session: str, env: Mapping[str, str], /) -> str | None:
    """The prompt hook: mark the session as the orchestration's (named by :data:`ENV`), if it is one."""
    oid = env.get(ENV)
    if not oid or table(state, oid) is None:
        return None
    join_orchestration(state, session, oid)
    return oid


def of_session(state: State, session: str, /) -> str | None:
    s = records.session(state, session)
    oid = s.orchestration if s is not None else None
    return oid if oid is not None and table(state, oid) is not None else None


Charge = Callable[[Mapping[str, int], "str | None", "str | None"], None]


def charger(state: State, session: str, now: datetime, /) -> Charge | None:
    """For ``settle``: a function that charges one response to the session's orchestration, or None.

    Called with (usage incl. ``usd_micros``, model, the run's command or None); a correction
    (Claude Code's own totals beyond the transcript) may carry negative values.
    """
    oid = of_session(state, session)
    o = table(state, oid) if oid is not None else None
    if o is None:
        return None
    from ..ledger._windows import charge as charge_buckets

    def charge(usage: Mapping[str, int], model: str | None, command: str | None, correction: bool = False) -> None:
        o.add(usage, model, correction=correction)
        if command:
            o.commands.setdefault(command, Tally()).add(usage, model, correction=correction)
        entry = o.instances.setdefault(session, Instance())
        entry.add(usage, model, correction=correction)
        if not correction:  # one API response (a correction is Claude Code's totals beyond the transcript)
            entry.requests += 1
        charge_buckets(state, [bucket_scope(str(oid))], now, dict(usage))  # the ledger's [minutes]."@<id>"

    return charge


def bucket_scope(oid: str, /) -> str:
    """The orchestration's key in the ledger's time buckets (``[minutes]``, ``[quarters]``)."""
    return f"@{oid}"


def _buckets(state: State, oid: str) -> Any:
    """The minute buckets the "hourly" budgets count: the orchestration's, or with
    ``--persistent-budgets`` the ledger's overall ones (everyone's spending)."""
    from ..ledger._windows import scope_buckets

    o = table(state, oid)
    return scope_buckets(state, "overall" if o is not None and o.persistent else bucket_scope(oid))


def window_usage(state: State, oid: str, /, *, now: datetime, minutes: int) -> tuple[Usage, int]:
    """Tokens and micro-dollars of the last ``minutes`` (rolling, per minute)."""
    since = int(now.timestamp()) // 60 - minutes + 1
    usage, usd = _buckets(state, oid).total(since)
    return Usage(*usage), usd


def next_reset(state: State, oid: str, /, *, now: datetime, minutes: int) -> int | None:
    """Minutes until the oldest spending in the window leaves it (None when the window is empty)."""
    current = int(now.timestamp()) // 60
    keys = [m for m in _buckets(state, oid).rows if m >= current - minutes + 1]
    return min(keys) + minutes - current if keys else None


def limits(
    state: State,
    oid: str,
    /,
    *,
    command: str | None,
    session: str | None,
    counted: tuple[str, ...],
    now: datetime,
) -> list[LimitStatus]:
    """Every orchestration budget that an instance of ``command`` (session ``session``) draws on."""
    o = table(state, oid)
    if o is None:
        return []
    lim = o.limits
    overall: Spent = records.scope(state, "overall") if o.persistent else o
    out: list[LimitStatus] = []

    def add(scope: str, metric: str, source: Spent | None, key: str, flag: str) -> None:
        limit = lim.get(key, 0)
        if not limit:
            return
        used = source.amount(metric, counted) if source is not None else 0
        out.append(_limit(scope, metric, used, limit, flag))

    add("overall", "tokens", overall, "tokens", "--overall-token-budget")
    add("overall", "usd", overall, "usd_micros", "--overall-cost-budget")
    period = o.period
    if lim.get("hourly_tokens") or lim.get("hourly_usd_micros"):
        usage, usd = window_usage(state, oid, now=now, minutes=period)
        for metric, key, used, flag in (
            ("tokens", "hourly_tokens", usage.total(counted), "--hourly-token-budget"),
            ("usd", "hourly_usd_micros", usd, "--hourly-cost-budget"),
        ):
            if lim.get(key):
                out.append(_limit("hourly", metric, used, lim[key], flag, period))
    entry = o.instances.get(session) if session else None
    if command and entry is not None and not entry.exempt:
        source: Spent | None = records.scope(state, command) if o.persistent else o.commands.get(command)
        for metric, limit, flag in (
            ("tokens", entry.limit, "--command-budget"),
            ("usd", entry.usd_limit, "--command-cost-budget"),
        ):
            if limit:
                out.append(_limit(command, metric, source.amount(metric, counted) if source else 0, limit, flag))
    return out


class Spent(Protocol):
    """What a budget counts from: a scope's totals (``_records.ScopeTotals``) or an orchestration's (a ``Tally``)."""

    def amount(self, metric: str, counted: tuple[str, ...], /) -> int: ...


def overrides(state: State, session: str, /) -> bool:
    """Whether the orchestration sets this session's per-command limit (or exempts it): the
    frontmatter's and ``budget.toml``'s then do not apply to it (command line > config file > frontmatter)."""
    oid = of_session(state, session)
    o = table(state, oid) if oid else None
    entry = o.instances.get(session) if o is not None else None
    return entry is not None and bool(entry.exempt or entry.limit or entry.usd_limit)


def check(
    state: State,
    session: str,
    /,
    *,
    mode: Mode,
    command: str | None,
    counted: tuple[str, ...],
    now: datetime,
    running: bool,
) -> Decision:
    """The hooks' decision for an orchestrated session: block refuses a start once a budget is
    spent; kill stops a running turn once one is over. Anything else (or no orchestration): allowed."""
    oid = of_session(state, session)
    if oid is None:
        return Decision(True)
    found = limits(state, oid, command=command, session=session, counted=counted, now=now)
    return decide(standings(found), mode, "running" if running else "start")


def standings(
    found: Iterable[LimitStatus], /, *, estimate: Callable[[LimitStatus], int] | None = None
) -> Iterator[Standing]:
    """The orchestration's limits as :func:`budget_state.budgets._budgets.decide` reads them. With
    ``estimate`` (what a start would add to a limit: a typical run), each limit is followed by
    whether that start would overspend it."""
    for lim in found:
        scope = lim.scope or "orchestration"  # every limit of limits() has one
        yield Standing(
            "orchestration",
            scope,
            lim.metric,
            lim.used,
            lim.limit,
            lim.spent,
            lim.over,
            f"Orchestration budget spent: {describe(lim)}. To go on, raise {lim.flag}.",
            f"Orchestration budget exceeded: {describe(lim)}; claude-budget (kill mode) stopped this turn. "
            f"To go on, raise {lim.flag}.",
        )
        guess = estimate(lim) if estimate is not None else 0
        if guess:
            would = (
                f"Orchestration budget would be exceeded: {describe(lim)}, and this run with those still "
                f"running would add about {amount(lim, guess)}. To go on, raise {lim.flag}."
            )
            over = lim.used + guess > lim.limit
            yield Standing("orchestration", scope, lim.metric, lim.used + guess, lim.limit, over, False, would, would)
