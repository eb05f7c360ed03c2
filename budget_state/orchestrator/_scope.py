"""An orchestration's scope in the ledger: its limits, what its instances spent, its decisions.

The orchestrator writes ``[orchestrations."<id>"]`` (limits, mode, one entry per instance's
session id) before it starts anything, and sets :data:`ENV` for its instances. Their hooks tag
the session on its first prompt (:func:`tag`); from then on ``settle`` charges every response
of that session to the orchestration too (:func:`charger`), and the hooks decide with
:func:`check` — the same numbers the orchestrator's report shows, read from the same table.

Layout (inside the ledger, above the history line)::

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
from typing import TYPE_CHECKING, Any

from .._model import CATEGORIES, LimitStatus, Usage, Window, count_value, dollars
from ..budgets._budgets import Decision, Standing, decide
from ..ledger import _records as records
from ..ledger._ledger import State, add_usage, subtable
from ..ledger._runs import forget_buckets, join_orchestration

if TYPE_CHECKING:
    from .._model import Mode

ENV = "CLAUDE_BUDGET_ORCHESTRATION"
KEEP = 10  # orchestrations kept in the ledger; the oldest finished ones go first
_BUCKET = (*CATEGORIES, "usd_micros")


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


def table(state: State, oid: str, /) -> dict[str, Any] | None:
    found: dict[str, Any] | None = records.feature_table(state, "orchestrations", oid)
    return found


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
) -> dict[str, Any]:
    """Open the orchestration's table (the orchestrator, before any instance starts)."""
    orchestrations = records.made_table(state, "orchestrations")
    _prune(state, orchestrations)
    t = records.made_table(state, "orchestrations", oid)
    t.update(started=now, mode=mode, persistent=persistent, period=period)
    t["limits"] = {k: v for k, v in limits.items() if v is not None}
    return t


def _prune(state: State, orchestrations: dict[str, Any]) -> None:
    """Keep the ledger bounded: past :data:`KEEP`, drop the oldest finished orchestrations (and their buckets)."""
    done = [k for k, v in orchestrations.items() if not isinstance(v, dict) or v.get("ended") is not None]
    while len(orchestrations) >= KEEP and done:
        oid = done.pop(0)
        del orchestrations[oid]
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
    t = subtable(records.made_table(state, "orchestrations", oid), "instances")
    entry = subtable(t, session)
    entry.update(exempt=exempt)
    if command is not None:
        entry["command"] = command
    for key, value in (("limit", limit), ("usd_limit", usd_limit)):
        if value is not None:
            entry[key] = value


def finish(state: State, oid: str, /, *, now: datetime) -> None:
    """The orchestrator is done: keep the totals (overall, per command), drop the per-instance
    detail — every hook parses this part of the ledger, and the results file has it."""
    t = table(state, oid)
    if t is not None:
        t["ended"] = now
        t.pop("instances", None)


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
    t = table(state, oid) if oid is not None else None
    if t is None:
        return None
    from ..ledger._windows import charge as charge_buckets

    def charge(usage: Mapping[str, int], model: str | None, command: str | None, correction: bool = False) -> None:
        counts = dict(usage)
        add_usage(t, counts, model, correction=correction)
        if command:
            add_usage(subtable(subtable(t, "commands"), command), counts, model, correction=correction)
        entry = subtable(subtable(t, "instances"), session)
        add_usage(entry, counts, model, correction=correction)
        if not correction:  # one API response (a correction is Claude Code's totals beyond the transcript)
            entry["requests"] = count_value(entry.get("requests")) + 1
        charge_buckets(state, [bucket_scope(str(oid))], now, counts)  # the ledger's [minutes]."@<id>"

    return charge


def bucket_scope(oid: str, /) -> str:
    """The orchestration's key in the ledger's time buckets (``[minutes]``, ``[quarters]``)."""
    return f"@{oid}"


def _buckets(state: State, oid: str) -> Any:
    """The minute buckets the "hourly" budgets count: the orchestration's, or with
    ``--persistent-budgets`` the ledger's overall ones (everyone's spending)."""
    from ..ledger._windows import scope_buckets

    t = table(state, oid) or {}
    return scope_buckets(state, "overall" if t.get("persistent") else bucket_scope(oid))


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
    t = table(state, oid)
    if t is None:
        return []
    found = t.get("limits")
    lim: Mapping[str, Any] = found if isinstance(found, dict) else {}
    persistent = bool(t.get("persistent"))
    overall = records.scope(state, "overall").counters() if persistent else t
    out: list[LimitStatus] = []

    def add(scope: str, metric: str, source: Mapping[str, Any] | None, key: str, flag: str) -> None:
        limit = count_value(lim.get(key))
        if not limit:
            return
        used = used_by(source or {}, metric, counted)
        out.append(_limit(scope, metric, used, limit, flag))

    add("overall", "tokens", overall, "tokens", "--overall-token-budget")
    add("overall", "usd", overall, "usd_micros", "--overall-cost-budget")
    period = count_value(t.get("period")) or 60
    if lim.get("hourly_tokens") or lim.get("hourly_usd_micros"):
        usage, usd = window_usage(state, oid, now=now, minutes=period)
        for metric, key, used, flag in (
            ("tokens", "hourly_tokens", usage.total(counted), "--hourly-token-budget"),
            ("usd", "hourly_usd_micros", usd, "--hourly-cost-budget"),
        ):
            if count_value(lim.get(key)):
                out.append(_limit("hourly", metric, used, count_value(lim.get(key)), flag, period))
    entry = t.get("instances", {}).get(session) if session else None
    if command and isinstance(entry, dict) and not entry.get("exempt"):
        if persistent:
            source: Mapping[str, Any] | None = records.scope(state, command).counters()
        else:
            scopes = t.get("commands", {})
            source = scopes.get(command) if isinstance(scopes, dict) else None
        per_command = (("tokens", "limit", "--command-budget"), ("usd", "usd_limit", "--command-cost-budget"))
        for metric, key, flag in per_command:
            limit = count_value(entry.get(key))
            if limit:
                out.append(_limit(command, metric, used_by(source or {}, metric, counted), limit, flag))
    return out


def used_by(table_: Mapping[str, Any], metric: str, counted: tuple[str, ...]) -> int:
    if metric == "usd":
        return count_value(table_.get("usd_micros"))
    return Usage.from_mapping(table_).total(counted)


def overrides(state: State, session: str, /) -> bool:
    """Whether the orchestration sets this session's per-command limit (or exempts it): the
    frontmatter's and ``budget.toml``'s then do not apply to it (command line > config file > frontmatter)."""
    oid = of_session(state, session)
    t = table(state, oid) if oid else None
    entry = t.get("instances", {}).get(session) if t else None
    return isinstance(entry, dict) and bool(entry.get("exempt") or entry.get("limit") or entry.get("usd_limit"))


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
