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

from budget_state._model import CATEGORIES, count_value
from budget_state.ledger import _records as records
from budget_state.ledger._ledger import State

CHUNK_MINUTES = 2.0  # a top-up asks for about this long of use at the recent burn rate
RATE_TAU_MIN = 10.0  # the burn rate's memory (EWMA time constant, minutes)
MIN_CHUNK_PART = 50  # a chunk is at least 1/50 of the limit ...
MAX_CHUNK_PART = 5  # ... and at most 1/5 of it
SETTLE_EVERY = timedelta(seconds=10)  # unsettled spend older than this is sent by the next background hook
VALID_MARGIN = timedelta(seconds=60)  # a lease is trusted until this long before the sweeper may take it
RETRY_AFTER = timedelta(seconds=5)  # after a failed attempt, hooks do not wait on the network again for this long

Team = dict[str, Any]


def _new_id() -> str:
    import uuid  # lazy: ~4 ms (it imports platform), needed only when a lease is made

    return str(uuid.uuid4())


def table(state: State, key: str) -> Team:
    """The ``[team]`` table for ``key`` (team @ database); a new one if the ledger's is for another team."""
    t = records.feature_table(state, "team")
    if t is None or t.get("key") != key:
        old = t or {}
        t = records.made_table(state, "team", replace={"key": key, "holder": _new_id(), "base": _totals(state)})
        if old.get("key"):
            t["previous"] = str(old.get("key"))  # its leases expire and are swept
    if not isinstance(t.get("budgets"), dict):
        t["budgets"] = {}
    if not isinstance(t.get("closing"), dict):
        t["closing"] = {}
    return t


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


def _counted(b: Mapping[str, Any]) -> list[str]:
    value = b.get("counted")
    return [c for c in value if c in CATEGORIES] if isinstance(value, list) else list(CATEGORIES)


def charge(t: Team, state: State, now: datetime) -> None:
    """Charge each lease with what its scope gained locally since the last charge."""
    for b in t["budgets"].values():
        current = scope_amount(state, str(b.get("scope")), str(b.get("metric")), _counted(b))
        seen = count_value(b.get("seen"))
        delta = current - seen
        b["seen"] = current  # below the watermark: a local reset, which refunds nothing
        _rate(b, max(delta, 0), now)
        if delta > 0:
            b["used"] = count_value(b.get("used")) + delta


def _rate(b: dict[str, Any], delta: int, now: datetime) -> None:
    """An exponentially weighted burn rate (per minute): what the next chunk is sized from."""
    at = b.get("rate_at")
    rate = float(b.get("rate", 0.0)) if isinstance(b.get("rate"), (int, float)) else 0.0
    if isinstance(at, datetime):
        minutes = max((now - at).total_seconds() / 60.0, 0.0)
        rate *= math.exp(-minutes / RATE_TAU_MIN)
    b["rate"] = rate + delta / RATE_TAU_MIN
    b["rate_at"] = now


def chunk(b: Mapping[str, Any]) -> int:
    """How much to ask for: about CHUNK_MINUTES of use at the burn rate, within 1/50–1/5 of the limit."""
    limit = count_value(b.get("limit"))
    lo = max(1, limit // MIN_CHUNK_PART)
    hi = max(lo, limit // MAX_CHUNK_PART)
    rate = b.get("rate")
    burn = int(float(rate) * CHUNK_MINUTES) if isinstance(rate, (int, float)) else 0
    return min(max(burn, lo), hi)


def left(b: Mapping[str, Any]) -> int:
    """What the lease still allows (negative: spent past it)."""
    return count_value(b.get("granted")) - count_value(b.get("used"))


def applies(b: Mapping[str, Any], scopes: Iterable[str]) -> bool:
    return b.get("scope") in set(scopes)


def _valid(b: Mapping[str, Any], now: datetime) -> bool:
    until, end = b.get("valid_until"), b.get("period_end")
    if not isinstance(until, datetime) or now >= until:
        return False
    return not (isinstance(end, datetime) and now >= end)


def needs_sync(t: Team, now: datetime, scopes: Iterable[str] | None) -> str | None:
    """``"now"`` when a decision about ``scopes`` cannot be made on what is held, ``"soon"`` when a
    background hook should top up, settle or extend; None when nothing is due.

    ``scopes`` None: only the "soon" reasons (a hook that decides nothing).
    """
    if not t.get("synced"):
        return "now" if scopes is not None else "soon"
    due = None
    for b in t["budgets"].values():
        if scopes is not None and applies(b, scopes) and (left(b) <= 0 or not _valid(b, now)):
            return "now"
        if left(b) < chunk(b) // 2 or not _valid(b, now + VALID_MARGIN * 4):
            due = "soon"
        elif count_value(b.get("used")) > count_value(b.get("settled")):
            synced = t.get("synced")
            if not isinstance(synced, datetime) or now - synced >= SETTLE_EVERY:
                due = "soon"
    if t["closing"]:
        due = "soon"
    return due


def may_try(t: Team, now: datetime) -> bool:
    """False while a recent attempt failed: hooks do not wait on a database that is down."""
    tried = t.get("tried")
    return not (t.get("unreachable") and isinstance(tried, datetime) and now - tried < RETRY_AFTER)


def requests(t: Team, *, release: bool) -> list[dict[str, Any]]:
    """What to send: every lease's cumulative spend, a numbered top-up where one is due, and the
    final settle of each closing lease. ``release``: give every lease back."""
    items: list[dict[str, Any]] = []
    for bid, b in t["budgets"].items():
        if not b.get("lease"):
            b["lease"] = _new_id()
        item: dict[str, Any] = {"budget": int(bid), "lease": b["lease"], "used": count_value(b.get("used"))}
        if release:
            item["close"] = True
        elif left(b) < chunk(b):
            # The same number until the database has answered: a lost answer is asked again, never
            # granted twice.
            if not b.get("asking"):
                b["asking"] = count_value(b.get("seq")) + 1
                b["want"] = chunk(b)  # what was spent past the lease is absorbed by the settle
            item["seq"], item["want"] = b["asking"], count_value(b.get("want"))
        items.append(item)
    for lease, c in t["closing"].items():
        items.append(
            {"budget": count_value(c.get("budget")), "lease": lease, "used": count_value(c.get("used")), "close": True}
        )
    return items


def apply(t: Team, answer: Mapping[str, Any], *, state: State, now: datetime, ttl_s: int) -> bool:
    """Record the database's answer: budget definitions, acknowledged spend, grants, ended leases.

    True when a budget needs its first lease now (one first heard of, or a lease that ended with
    its calendar window): the caller asks again at once rather than refuse on an empty lease.
    """
    again = False
    leases: Mapping[str, Any] = answer.get("leases", {})
    for lease in list(t["closing"]):
        got = leases.get(lease)
        if isinstance(got, dict) and (
            got.get("state") == "gone" or count_value(got.get("spent")) >= count_value(t["closing"][lease].get("used"))
        ):
            del t["closing"][lease]
    known = t["budgets"]
    current: dict[str, dict[str, Any]] = {}
    for row in answer.get("budgets", []):
        bid = str(row["id"])
        b = known.get(bid)
        if b is None:  # a budget this machine has not drawn on yet: what it spent before is not the team's ...
            b = {"lease": _new_id(), "granted": 0, "used": 0, "settled": 0, "seq": 0}
            # ... unless it spent it since the team was configured, while the database was out of reach
            base = t.get("base")
            scope, metric, counted = str(row["scope"]), str(row["metric"]), str(row["counted"]).split(",")
            if isinstance(base, dict) and not t.get("synced"):
                b["seen"] = _base_amount(base, scope, metric, counted)
            else:
                b["seen"] = scope_amount(state, scope, metric, counted)
            again = True
        b.update(
            scope=str(row["scope"]),
            metric=str(row["metric"]),
            window=[str(row["window_kind"]), int(row["window_minutes"]), str(row["window_unit"])],
            tz=str(row["tz"]),
            limit=int(row["limit_amount"]),
            counted=[c for c in str(row["counted"]).split(",") if c],
            period=row["period"],
        )
        if row.get("period_end") is not None:
            b["period_end"] = row["period_end"]
        else:
            b.pop("period_end", None)
        current[bid] = b
    for bid, b in known.items():
        got = leases.get(str(b.get("lease")))
        if not isinstance(got, dict):
            if bid not in current:
                _close(t, bid, b)
            continue
        b["settled"] = count_value(got.get("spent"))
        if got.get("state") == "active":
            b["granted"] = max(count_value(b.get("granted")), count_value(got.get("granted")))
            if b.get("asking"):
                b["seq"], b["full"] = b.pop("asking"), bool(got.get("full"))
                b.pop("want", None)
            b["valid_until"] = now + timedelta(seconds=ttl_s) - VALID_MARGIN
            b["team_used"] = count_value(got.get("team_used"))
            b["team_leased"] = count_value(got.get("team_leased"))
        else:
            _close(t, bid, b)
            if bid in current:  # a fresh lease for the budget's current window
                again = again or got.get("state") != "closed" or bool(got.get("rotated"))
                current[bid].update(lease=_new_id(), granted=0, used=0, settled=0, seq=0)
                for key in ("asking", "want", "valid_until", "full"):
                    current[bid].pop(key, None)
                current[bid]["team_used"] = count_value(got.get("team_used"))
    t["budgets"] = current
    t["synced"] = now
    t.pop("base", None)
    t.pop("unreachable", None)
    t.pop("error", None)
    return again


def _close(t: Team, bid: str, b: Mapping[str, Any]) -> None:
    """Keep an ended lease until the database has all of its spend."""
    if count_value(b.get("used")) > count_value(b.get("settled")) and b.get("lease"):
        t["closing"][str(b["lease"])] = {"budget": int(bid), "used": count_value(b.get("used"))}


def failed(t: Team, error: str, now: datetime) -> bool:
    """Note a failed attempt; True when it starts an outage (the first failure since the last success)."""
    t["tried"] = now
    t["error"] = error[:300]
    if t.get("unreachable"):
        return False
    t["unreachable"] = now
    t["outages"] = count_value(t.get("outages")) + 1  # kept: status says how often it happened
    return True
