"""What the hooks (and the API) call when a team is configured; psycopg is imported only here, lazily.

- :func:`after_settle`: charge what the hook just counted to the leases held; sync when due
  (a background hook tops up and settles; a foreground one only when it must); in kill mode, may
  the running turn go on? At SessionEnd with no session left open, give the leases back.
- :func:`may_start`: may this prompt start under the team's leases? Syncs first only when what
  is held cannot answer (a dry or stale lease).

Every network call is bounded (:data:`TIMEOUT_S`); when the database cannot be reached the
machine enforces on what it holds, then does what ``on_team_unreachable`` says.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from budget_state.budgets._teamconfig import redact, team_name
from budget_state.team import local

if TYPE_CHECKING:
    from budget_state._api import Context
    from budget_state.budgets._budgets import Decision, Standing
    from budget_state.ledger._ledger import State

TIMEOUT_S = 0.5  # the longest a hook waits on the database (CLAUDE_BUDGET_TEAM_TIMEOUT overrides)
STATEMENT_MS = 400
LEASE_TTL_S = 600
# Sessions idle this long no longer keep the leases: a machine whose last session never sent
# SessionEnd gives them back at the next session's end, or the sweeper takes them.
_FOREGROUND_STALE_S = 60


def key(config: Any) -> str:
    """Which team and database a ledger's leases are for (no user, no password)."""
    parts = urlsplit(str(config.team_url))
    return f"{team_name(config)}@{parts.hostname or 'local'}:{parts.port or 5432}{parts.path or '/'}"


def holder(t: local.Team) -> str:
    import socket

    return f"{socket.gethostname()}/{t.holder[:8]}"


def timeout(env: Mapping[str, str]) -> float:
    try:
        value = float(env.get("CLAUDE_BUDGET_TEAM_TIMEOUT") or TIMEOUT_S)
    except ValueError:
        return TIMEOUT_S
    return value if 0 < value < 60 else TIMEOUT_S


def team_table(ctx: Context, state: State) -> local.Team:
    return local.table(state, key(ctx.config))


def sync(ctx: Context, state: State, now: datetime, *, release: bool = False, wait: float | None = None) -> list[str]:
    """One bounded round of settle / give back / top up; notes for the user (outage begun or over).

    A budget seen for the first time gets its first lease in a second round, in the same bound.
    """
    import time

    t = team_table(ctx, state)
    if not local.may_try(t, now) and wait is None:
        return []
    was_down = t.unreachable is not None
    try:
        from budget_state.team import db  # noqa: F401 (psycopg, imported before the clock starts: the bound is the network's)
    except ImportError as e:
        local.failed(t, _describe(e), now)
        return [f"claude-budget: {_describe(e)} (team budgets not enforced)"]
    deadline = time.monotonic() + (wait if wait is not None else timeout(ctx.env))
    for round_no in range(2):
        left_s = deadline - time.monotonic()
        if round_no and left_s < 0.05:
            break  # no time for the new budgets' first leases: the next hook asks for them
        try:
            answer = _exchange(ctx, t, local.requests(t, release=release), left_s)
        except Exception as e:  # noqa: BLE001 (unreachable, refused, or psycopg missing: enforce on what is held)
            text = redact(_describe(e), ctx.config.team_url)
            if local.failed(t, text, now):
                return [
                    f"claude-budget: the team database is unreachable ({text}) — enforcing on the team lease "
                    "held; spending is reconciled when it is back"
                ]
            return []
        if not local.apply(t, answer, state=state, now=now, ttl_s=LEASE_TTL_S):
            break
        local.charge(t, state, now)  # budgets first heard of: what they already owe (see local.apply)
    return ["claude-budget: the team database is reachable again; team spending reconciled"] if was_down else []


def _exchange(ctx: Context, t: local.Team, items: list[dict[str, Any]], seconds: float) -> dict[str, Any]:
    from budget_state.team import db  # psycopg: only now, and only for a project with a team

    url, team, who = str(ctx.config.team_url), team_name(ctx.config), holder(t)

    def call() -> dict[str, Any]:
        # Connected and closed inside the bounded call: an abandoned one closes its own connection.
        with db.session(url, statement_ms=STATEMENT_MS) as conn:
            return db.sync(conn, team=team, holder=who, items=items, ttl=LEASE_TTL_S)

    return db.bounded(call, max(seconds, 0.001))


def _describe(e: BaseException) -> str:
    if isinstance(e, ImportError):
        return "psycopg is not installed — pip install 'claude-budget[team]'"
    from budget_state._errors import BudgetError

    return str(e) if isinstance(e, BudgetError) else f"{type(e).__name__}: {e}"


def _open_sessions(state: State) -> bool:
    from budget_state.ledger import _records

    return _records.any_open_session(state)


def after_settle(
    ctx: Context, state: State, event: str, command: str | None, now: datetime, *, background: bool
) -> tuple[list[str], Decision | None]:
    """Charge the leases with what this hook settled; sync if due; kill mode: may the turn go on?"""
    t = team_table(ctx, state)
    local.charge(t, state, now)
    notes: list[str] = []
    if event == "SessionEnd" and not _open_sessions(state):
        notes += sync(ctx, state, now, release=True)
        return notes, None
    kill = event == "PreToolUse" and not background and ctx.config.mode == "kill"
    scopes = _scopes(command)
    due = local.needs_sync(t, now, None)
    over = kill and any(b.left() < 0 for b in t.budgets.values() if b.applies(scopes))
    stale = t.synced is None or (now - t.synced).total_seconds() > _FOREGROUND_STALE_S
    if over or (due and (background or stale)):
        notes += sync(ctx, state, now)
    if not kill:
        return notes, None
    return notes, _decide(ctx, t, scopes, running=True)


def _scopes(command: str | None) -> tuple[str, ...]:
    return ("overall",) if command is None else ("overall", command)


def may_start(ctx: Context, state: State, command: str | None, now: datetime) -> tuple[list[str], Decision | None]:
    """None when the team's leases allow ``command`` (None: a plain prompt) to start, else a refusal."""
    t = team_table(ctx, state)
    local.charge(t, state, now)
    notes: list[str] = []
    scopes = _scopes(command)
    if local.needs_sync(t, now, scopes) == "now":
        notes += sync(ctx, state, now)
    decision = _decide(ctx, t, scopes, running=False)
    if decision is None:
        notes += warnings(ctx, state, command)
    return notes, decision


def _decide(ctx: Context, t: local.Team, scopes: Iterable[str], *, running: bool) -> Decision | None:
    from budget_state.budgets._budgets import decide

    decision = decide(standings(ctx, t, scopes), ctx.config.mode, "running" if running else "start")
    return None if decision.allowed else decision


def standings(ctx: Context, t: local.Team, scopes: Iterable[str]) -> Iterator[Standing]:
    """The team's leases for ``scopes`` as :func:`budget_state.budgets._budgets.decide` reads them.

    A lease is spent once used up; a running turn is over once it spent past its lease and no more
    could be leased (the settle makes the lease absorb what was spent past it). While the database
    is unreachable, ``on_team_unreachable`` says: block refuses on a used-up lease (or on none
    held at all); use-lease-then-warn goes on, with a warning (see :func:`warnings`).
    """
    from budget_state.budgets._budgets import Standing

    down = t.unreachable is not None
    block = ctx.config.on_team_unreachable == "block"
    if t.synced is None:
        if down and block:
            why = _unreachable_reason(t, ctx)
            yield Standing("team", "team", "tokens", 0, 0, True, True, why, why)
        return
    scopes = tuple(scopes)
    for b in t.budgets.values():
        if not b.applies(scopes) or (down and not block):
            continue
        left, metric, used, limit = b.left(), b.metric, b.team_used, b.limit
        spent, over = left <= 0, left < 0 or (left <= 0 and b.full)
        if down:
            why = _unreachable_reason(t, ctx)
            yield Standing("team", "team", metric, used, limit, spent, over, why, why)
        else:
            name = team_name(ctx.config)
            start, stop = refusal(b, name, running=False), refusal(b, name, running=True)
            yield Standing("team", f"team:{b.scope}", metric, used, limit, spent, over, start, stop)


def warnings(ctx: Context, state: State, command: str | None) -> list[str]:
    """What a prompt that goes on past a used-up lease is told: in warn mode once per lease, that the
    team budget is spent; during an outage under use-lease-then-warn, every time."""
    t = local.held(state)
    if t is None:
        return []
    dry = [b for b in t.budgets.values() if b.applies(_scopes(command)) and b.left() <= 0]
    if not dry:
        return []
    if t.unreachable is not None:
        if ctx.config.on_team_unreachable != "use-lease-then-warn":
            return []
        return [
            "claude-budget: the team database is unreachable and this machine's team lease for "
            f"{_label(dry[0])} is used up — going on (on_team_unreachable = use-lease-then-warn); "
            "spending is reconciled when it is back"
        ]
    notes = []
    for b in dry:
        if ctx.config.mode == "warn" and b.told != b.lease:
            b.told = b.lease
            notes.append(
                "claude-budget: " + refusal(b, team_name(ctx.config), running=False) + " (warn mode: going on)"
            )
    return notes


def _label(b: local.Lease) -> str:
    from budget_state.team.windows import from_row, label

    window = from_row(*b.window) if b.window is not None else None
    scope = "the overall team budget" if b.scope == "overall" else f"the team budget of {b.scope}"
    return f"{scope} ({b.metric}/{label(window)})"


def _amount(metric: object, n: int) -> str:
    from budget_state._model import dollars
    from budget_state.budgets._units import humanize

    return dollars(n) if metric == "usd" else f"{humanize(n)} tokens"


def refusal(b: local.Lease, team: str, *, running: bool) -> str:
    used, limit = b.team_used, b.limit
    others = max(0, b.team_leased - max(0, b.left()))
    held = f"; {_amount(b.metric, others)} of it is leased to machines still running" if others else ""
    head = "Team budget exceeded" if running else "Team budget spent"
    tail = "; claude-budget (kill mode) stopped this turn" if running else ""
    return (
        f'{head}: {_label(b)} of team "{team}" has used {_amount(b.metric, used)} of '
        f"{_amount(b.metric, limit)}{held}{tail}. To go on, raise it with: claude-budget team set "
        f"{b.scope} --{b.metric} <more>"
    )


def _unreachable_reason(t: local.Team, ctx: Context) -> str:
    return (
        f"claude-budget could not reach the team database ({t.error or 'no answer'}), and this machine holds "
        "no team lease for it; on_team_unreachable is block. Check team_url, or set "
        'on_team_unreachable = "use-lease-then-warn"'
    )


def status_lines(ctx: Context, state: State) -> list[str]:
    """The team lines of ``/budget`` and ``claude-budget status``."""
    from budget_state.team.view import lines

    t = local.held(state)
    mine = t if t is not None and t.key == key(ctx.config) else None
    return lines(mine, team_name(ctx.config), on_unreachable=str(ctx.config.on_team_unreachable))


def api_may_start(ctx: Context, command: str | None) -> Decision:
    """``budget_state.may_start`` with a team: the local answer was yes; now the team's leases."""
    from budget_state.budgets._budgets import ALLOW
    from budget_state.ledger._ledger import utcnow

    with ctx.ledger.transaction() as state:
        _, decision = may_start(ctx, state, command, utcnow())
    return decision or ALLOW


def status_json(ctx: Context, state: State) -> dict[str, Any]:
    """The ``team`` key of ``claude-budget status --json``."""
    from budget_state.team.view import machine_json

    t = local.held(state)
    mine = t if t is not None and t.key == key(ctx.config) else None
    return machine_json(mine, team_name(ctx.config))
