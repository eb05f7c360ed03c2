"""A machine's side of its team leases, as its ledger holds them (the ``[team]`` table). Pure.

Per team budget the ledger keeps the lease this machine holds (``lease``, ``granted``), what it
has charged to it (``used``, cumulative), what the database has acknowledged (``settled``) and a
watermark of the local scope total already charged (``seen``), so each hook charges only what its
settle added. A lease that ends (given back, its window over, swept) moves to ``closing`` until
its last spend is acknowledged: nothing is dropped before the database has counted it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any

from budget_state._model import CATEGORIES, count_value, time_value
from budget_state.ledger import _records as records
from budget_state.ledger._ledger import State

CHUNK_MINUTES = 2.0  # a top-up asks for about this long of use at the recent burn rate
RATE_TAU_MIN = 10.0  # the burn rate's memory (EWMA time constant, minutes)
MIN_CHUNK_PART = 50  # a chunk is at least 1/50 of the limit ...
MAX_CHUNK_PART = 5  # ... and at most 1/5 of it
SETTLE_EVERY = timedelta(seconds=10)  # unsettled spend older than this is sent by the next background hook
VALID_MARGIN = timedelta(seconds=60)  # a lease is trusted until this long before the sweeper may take it
RETRY_AFTER = timedelta(seconds=5)  # after a failed attempt, hooks do not wait on the network again for this long


def _int(value: object) -> int:
    return count_value(value)


class Lease:
    """One team budget as this machine holds it: the lease, what was charged to it and acknowledged,
    the watermark of the local scope total already charged, and the budget's definition."""

    __slots__ = (
        "asking",
        "counted",
        "extra",
        "full",
        "granted",
        "lease",
        "limit",
        "metric",
        "period",
        "period_end",
        "rate",
        "rate_at",
        "scope",
        "seen",
        "seq",
        "settled",
        "team_leased",
        "team_used",
        "told",
        "tz",
        "used",
        "valid_until",
        "want",
        "window",
    )

    def __init__(self, lease: str) -> None:
        self.lease = lease
        self.granted = self.used = self.settled = self.seen = self.seq = self.want = 0
        self.asking: int | None = None  # the number of the top-up asked for and not yet answered
        self.full = False  # the budget could lease no more
        self.rate = 0.0  # the burn rate, per minute (an EWMA)
        self.rate_at: datetime | None = None
        self.scope = ""
        self.metric = "tokens"
        self.window: tuple[str, int, str] | None = None  # (kind, minutes, unit), as the database has it
        self.tz = "UTC"
        self.limit = 0
        self.counted = list(CATEGORIES)
        self.period: datetime | None = None
        self.period_end: datetime | None = None
        self.valid_until: datetime | None = None
        self.team_used = self.team_leased = 0
        self.told: str | None = None  # the lease whose spent budget warn mode announced
        self.extra: dict[str, Any] = {}

    @classmethod
    def load(cls, table: Mapping[str, Any]) -> Lease:
        """A lease as the ledger keeps it; what a hand edit broke reads as its empty value."""
        b = cls(str(table.get("lease") or ""))
        for key in ("granted", "used", "settled", "seen", "seq", "want", "limit", "team_used", "team_leased"):
            setattr(b, key, _int(table.get(key)))
        asking = table.get("asking")
        b.asking = _int(asking) if asking else None
        b.full = table.get("full") is True
        rate = table.get("rate")
        b.rate = float(rate) if isinstance(rate, (int, float)) and not isinstance(rate, bool) else 0.0
        for key in ("rate_at", "period", "period_end", "valid_until"):
            setattr(b, key, time_value(table.get(key)))
        b.scope, b.metric = str(table.get("scope") or ""), str(table.get("metric") or "tokens")
        w = table.get("window")
        if isinstance(w, list) and len(w) == 3 and isinstance(w[1], int):
            b.window = (str(w[0]), w[1], str(w[2]))
        b.tz = str(table.get("tz") or "UTC")
        counted = table.get("counted")
        b.counted = [c for c in counted if c in CATEGORIES] if isinstance(counted, list) else list(CATEGORIES)
        told = table.get("told")
        b.told = told if isinstance(told, str) else None
        b.extra = {k: v for k, v in table.items() if k not in cls.__slots__}
        return b

    def dump(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "lease": self.lease,
            "granted": self.granted,
            "used": self.used,
            "settled": self.settled,
            "seen": self.seen,
            "seq": self.seq,
            "scope": self.scope,
            "metric": self.metric,
            "tz": self.tz,
            "limit": self.limit,
            "counted": list(self.counted),
            "team_used": self.team_used,
            "team_leased": self.team_leased,
            "rate": self.rate,
        }
        if self.window is not None:
            out["window"] = list(self.window)
        for key in ("asking", "rate_at", "period", "period_end", "valid_until", "told"):
            value = getattr(self, key)
            if value is not None:
                out[key] = value
        if self.asking is not None:
            out["want"] = self.want
        if self.full:
            out["full"] = True
        out.update(self.extra)
        return out

    def left(self) -> int:
        """What the lease still allows (negative: spent past it)."""
        return self.granted - self.used

    def applies(self, scopes: Iterable[str]) -> bool:
        return self.scope in set(scopes)

    def valid(self, now: datetime) -> bool:
        if self.valid_until is None or now >= self.valid_until:
            return False
        return not (self.period_end is not None and now >= self.period_end)

    def chunk(self) -> int:
        """How much to ask for: about CHUNK_MINUTES of use at the burn rate, within 1/50–1/5 of the limit."""
        lo = max(1, self.limit // MIN_CHUNK_PART)
        hi = max(lo, self.limit // MAX_CHUNK_PART)
        return min(max(int(self.rate * CHUNK_MINUTES), lo), hi)


class Team:
    """The ``[team]`` table: this machine's leases of one team's budgets, and how the database answered."""

    __slots__ = (
        "base",
        "budgets",
        "closing",
        "error",
        "extra",
        "holder",
        "key",
        "outages",
        "previous",
        "synced",
        "tried",
        "unreachable",
    )

    def __init__(self, key: str, holder: str) -> None:
        self.key = key  # team @ database
        self.holder = holder  # this machine's id in the database
        #: the scopes' totals when the team was configured, until the database is first reached
        self.base: dict[str, Any] | None = None
        self.previous: str | None = None  # the team this ledger drew on before (its leases expire)
        self.budgets: dict[str, Lease] = {}  # by budget id
        #: ended leases whose last spend the database has not acknowledged: lease -> (budget id, used)
        self.closing: dict[str, tuple[int, int]] = {}
        self.synced: datetime | None = None  # the last answer
        self.tried: datetime | None = None  # the last attempt
        self.unreachable: datetime | None = None  # since when, while it is
        self.error: str | None = None
        self.outages = 0
        self.extra: dict[str, Any] = {}

    @classmethod
    def load(cls, table: Mapping[str, Any] | None) -> Team | None:
        """The table as the ledger keeps it (None: there is none); what a hand edit broke reads as empty."""
        if not isinstance(table, Mapping):
            return None
        t = cls(str(table.get("key") or ""), str(table.get("holder") or ""))
        base, previous, error = table.get("base"), table.get("previous"), table.get("error")
        t.base = base if isinstance(base, dict) else None
        t.previous = previous if isinstance(previous, str) else None
        budgets = table.get("budgets")
        if isinstance(budgets, dict):
            t.budgets = {str(k): Lease.load(v) for k, v in budgets.items() if isinstance(v, dict)}
        closing = table.get("closing")
        if isinstance(closing, dict):
            t.closing = {
                str(k): (_int(v.get("budget")), _int(v.get("used"))) for k, v in closing.items() if isinstance(v, dict)
            }
        t.synced, t.tried, t.unreachable = (time_value(table.get(k)) for k in ("synced", "tried", "unreachable"))
        t.error = error if isinstance(error, str) else None
        t.outages = _int(table.get("outages"))
        t.extra = {k: v for k, v in table.items() if k not in cls.__slots__}
        return t

    def dump(self) -> dict[str, Any]:
        out: dict[str, Any] = {"key": self.key, "holder": self.holder}
        if self.base is not None:
            out["base"] = self.base
        if self.previous is not None:
            out["previous"] = self.previous
        out["budgets"] = {bid: b.dump() for bid, b in self.budgets.items()}
        out["closing"] = {lease: {"budget": bid, "used": used} for lease, (bid, used) in self.closing.items()}
        for key in ("synced", "tried", "unreachable", "error"):
            value = getattr(self, key)
            if value is not None:
                out[key] = value
        if self.outages:
            out["outages"] = self.outages
        out.update(self.extra)
        return out


def _new_id() -> str:
    import uuid  # lazy: ~4 ms (it imports platform), needed only when a lease is made

    return str(uuid.uuid4())


def table(state: State, key: str) -> Team:
    """The ``[team]`` table for ``key`` (team @ database); a new one if the ledger's is for another team."""
    t = records.feature_value(state, "team", Team.load)
    if t is None or t.key != key:
        new = Team(key, _new_id())
        new.base = _totals(state)
        if t is not None and t.key:
            new.previous = t.key  # its leases expire and are swept
        records.feature_value(state, "team", Team.load, replace=new)
        return new
    return t


def held(state: State) -> Team | None:
    """The ``[team]`` table as the ledger holds it, for reading; None when there is none."""
    return records.feature_value(state, "team", Team.load)


def _totals(state: State) -> dict[str, Any]:
    """The scopes' cumulative totals when the team was configured: until the database is first
    reached, budgets learned then are charged from here, so spending while it was unreachable counts."""
    overall, *commands = records.scopes(state)
    return {"overall": overall.counters(), "commands": {c.name: c.counters() for c in commands}}


def scope_amount(state: State, scope: str, metric: str, counted: Iterable[str]) -> int:
    """The local cumulative total of a scope: counted tokens, or micro-dollars."""
    return records.scope(state, scope).amount(metric, tuple(c for c in CATEGORIES if c in counted))


def _base_amount(base: Mapping[str, Any], scope: str, metric: str, counted: Iterable[str]) -> int:
    """:func:`scope_amount` as of when the team was configured (the totals :func:`_totals` kept)."""
    commands = base.get("commands")
    found = base.get("overall") if scope == "overall" else commands.get(scope) if isinstance(commands, dict) else None
    if not isinstance(found, dict):
        return 0
    names = ["usd_micros"] if metric == "usd" else [c for c in CATEGORIES if c in counted]
    return sum(count_value(found.get(n)) for n in names)


def charge(t: Team, state: State, now: datetime) -> None:
    """Charge each lease with what its scope gained locally since the last charge."""
    for b in t.budgets.values():
        current = scope_amount(state, b.scope, b.metric, b.counted)
        delta = current - b.seen
        b.seen = current  # below the watermark: a local reset, which refunds nothing
        _rate(b, max(delta, 0), now)
        if delta > 0:
            b.used += delta


def _rate(b: Lease, delta: int, now: datetime) -> None:
    """An exponentially weighted burn rate (per minute): what the next chunk is sized from."""
    rate = b.rate
    if b.rate_at is not None:
        minutes = max((now - b.rate_at).total_seconds() / 60.0, 0.0)
        rate *= math.exp(-minutes / RATE_TAU_MIN)
    b.rate = rate + delta / RATE_TAU_MIN
    b.rate_at = now


def needs_sync(t: Team, now: datetime, scopes: Iterable[str] | None) -> str | None:
    """``"now"`` when a decision about ``scopes`` cannot be made on what is held, ``"soon"`` when a
    background hook should top up, settle or extend; None when nothing is due.

    ``scopes`` None: only the "soon" reasons (a hook that decides nothing).
    """
    if t.synced is None:
        return "now" if scopes is not None else "soon"
    due = None
    for b in t.budgets.values():
        if scopes is not None and b.applies(scopes) and (b.left() <= 0 or not b.valid(now)):
            return "now"
        low = b.left() < b.chunk() // 2 or not b.valid(now + VALID_MARGIN * 4)
        if low or (b.used > b.settled and now - t.synced >= SETTLE_EVERY):  # unsettled spend, sent now and then
            due = "soon"
    if t.closing:
        due = "soon"
    return due


def may_try(t: Team, now: datetime) -> bool:
    """False while a recent attempt failed: hooks do not wait on a database that is down."""
    return not (t.unreachable is not None and t.tried is not None and now - t.tried < RETRY_AFTER)


def requests(t: Team, *, release: bool) -> list[dict[str, Any]]:
    """What to send: every lease's cumulative spend, a numbered top-up where one is due, and the
    final settle of each closing lease. ``release``: give every lease back."""
    items: list[dict[str, Any]] = []
    for bid, b in t.budgets.items():
        if not b.lease:
            b.lease = _new_id()
        item: dict[str, Any] = {"budget": int(bid), "lease": b.lease, "used": b.used}
        if release:
            item["close"] = True
        elif b.left() < b.chunk():
            # The same number until the database has answered: a lost answer is asked again, never
            # granted twice.
            if not b.asking:
                b.asking = b.seq + 1
                b.want = b.chunk()  # what was spent past the lease is absorbed by the settle
            item["seq"], item["want"] = b.asking, b.want
        items.append(item)
    for lease, (budget, used) in t.closing.items():
        items.append({"budget": budget, "lease": lease, "used": used, "close": True})
    return items


def apply(t: Team, answer: Mapping[str, Any], *, state: State, now: datetime, ttl_s: int) -> bool:
    """Record the database's answer: budget definitions, acknowledged spend, grants, ended leases.

    True when a budget needs its first lease now (one first heard of, or a lease that ended with
    its calendar window): the caller asks again at once rather than refuse on an empty lease.
    """
    again = False
    leases: Mapping[str, Any] = answer.get("leases", {})
    for lease in list(t.closing):
        got = leases.get(lease)
        if isinstance(got, dict) and (
            got.get("state") == "gone" or count_value(got.get("spent")) >= t.closing[lease][1]
        ):
            del t.closing[lease]
    known = t.budgets
    current: dict[str, Lease] = {}
    for row in answer.get("budgets", []):
        bid = str(row["id"])
        b = known.get(bid)
        scope, metric, counted = str(row["scope"]), str(row["metric"]), str(row["counted"]).split(",")
        if b is None:  # a budget this machine has not drawn on yet: what it spent before is not the team's ...
            b = Lease(_new_id())
            # ... unless it spent it since the team was configured, while the database was out of reach
            if t.base is not None and t.synced is None:
                b.seen = _base_amount(t.base, scope, metric, counted)
            else:
                b.seen = scope_amount(state, scope, metric, counted)
            again = True
        b.scope, b.metric = scope, metric
        b.window = (str(row["window_kind"]), int(row["window_minutes"]), str(row["window_unit"]))
        b.tz, b.limit = str(row["tz"]), int(row["limit_amount"])
        b.counted = [c for c in counted if c]
        b.period = row["period"]
        b.period_end = row.get("period_end")
        current[bid] = b
    for bid, b in known.items():
        got = leases.get(b.lease)
        if not isinstance(got, dict):
            if bid not in current:
                _close(t, bid, b)
            continue
        b.settled = count_value(got.get("spent"))
        if got.get("state") == "active":
            b.granted = max(b.granted, count_value(got.get("granted")))
            if b.asking:
                b.seq, b.full, b.asking = b.asking, bool(got.get("full")), None
            b.valid_until = now + timedelta(seconds=ttl_s) - VALID_MARGIN
            b.team_used = count_value(got.get("team_used"))
            b.team_leased = count_value(got.get("team_leased"))
        else:
            _close(t, bid, b)
            if bid in current:  # a fresh lease for the budget's current window
                again = again or got.get("state") != "closed" or bool(got.get("rotated"))
                fresh = current[bid]
                fresh.lease, fresh.granted, fresh.used, fresh.settled, fresh.seq = _new_id(), 0, 0, 0, 0
                fresh.asking, fresh.valid_until, fresh.full = None, None, False
                fresh.team_used = count_value(got.get("team_used"))
    t.budgets = current
    t.synced = now
    t.base = t.unreachable = t.error = None
    return again


def _close(t: Team, bid: str, b: Lease) -> None:
    """Keep an ended lease until the database has all of its spend."""
    if b.used > b.settled and b.lease:
        t.closing[b.lease] = (int(bid), b.used)


def failed(t: Team, error: str, now: datetime) -> bool:
    """Note a failed attempt; True when it starts an outage (the first failure since the last success)."""
    t.tried = now
    t.error = error[:300]
    if t.unreachable is not None:
        return False
    t.unreachable = now
    t.outages += 1  # kept: status says how often it happened
    return True
