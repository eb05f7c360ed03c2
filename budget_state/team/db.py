"""The database side of team budgets: the only module that imports psycopg (3).

Every change to a counter is one atomic statement or runs under the row lock of the lease it
settles; nothing is read, computed in Python and written back. Time comes from the database
(``now()``), never from a machine's clock.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar

import psycopg
from psycopg.rows import dict_row

from budget_state._errors import BudgetError
from budget_state.team.schema import LOCK_KEY, MIGRATIONS, SCHEMA_TABLE, VERSION

T = TypeVar("T")
LEASE_TTL_S = 600  # a lease not settled for this long is returned by the sweeper
KEEP_MINUTES_DAYS = 36  # rolling minutes kept (the longest rolling span is 35 days)

Row = dict[str, Any]


class TeamError(BudgetError):
    """The team database could not be reached or answered with an error."""


class Unreachable(TeamError, ConnectionError):
    """No answer within the time a hook may wait (or no connection at all)."""


class SchemaMismatch(TeamError):
    """The database has no claude-budget tables yet, or tables of a newer version."""


def connect(url: str, *, statement_ms: int) -> psycopg.Connection[Row]:
    """A connection with a short statement and lock timeout, so no statement can hang a hook."""
    options = (
        f"-c statement_timeout={statement_ms} -c lock_timeout={statement_ms}"
        " -c idle_in_transaction_session_timeout=10000"
    )
    try:
        return psycopg.connect(
            url,
            connect_timeout=2,  # libpq's minimum; the hook's real bound is bounded() below
            options=options,
            application_name="claude-budget",
            autocommit=True,
            row_factory=dict_row,
        )
    except psycopg.Error as e:
        from budget_state.budgets._teamconfig import redact

        raise Unreachable(f"cannot connect to the team database ({redact(_short(e), url)})") from None


def _short(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return text[0][:200] if text else type(e).__name__


def bounded(fn: Callable[[], T], seconds: float) -> T:
    """``fn()``, or :class:`Unreachable` once ``seconds`` have passed (it goes on in a daemon thread).

    libpq will not time a connect out in under 2 s, so the hook's bound is kept here. Whatever the
    abandoned call still commits is safe: grants are keyed by request number and settles are
    cumulative, so the next sync learns of it instead of repeating it.
    """
    box: list[Any] = []

    def run() -> None:
        try:
            box.append((True, fn()))
        except BaseException as e:  # noqa: BLE001 (handed to the waiting thread, which raises it)
            box.append((False, e))

    thread = threading.Thread(target=run, name="claude-budget-team", daemon=True)
    thread.start()
    thread.join(seconds)
    if not box:
        raise Unreachable(f"the team database did not answer within {seconds:.2g} s")
    ok, value = box[0]
    if ok:
        return value  # type: ignore[no-any-return]  # fn's result
    if isinstance(value, TeamError):
        raise value
    if isinstance(value, psycopg.OperationalError):
        raise Unreachable(f"lost the team database ({_short(value)})") from None
    if isinstance(value, psycopg.Error):
        raise TeamError(f"the team database refused a request ({_short(value)})") from None
    raise value


@contextmanager
def session(url: str, *, statement_ms: int = 5000) -> Iterator[psycopg.Connection[Row]]:
    conn = connect(url, statement_ms=statement_ms)
    try:
        yield conn
    finally:
        conn.close()


# --- schema -----------------------------------------------------------------------------------


def schema_version(conn: psycopg.Connection[Row]) -> int:
    """0 when the tables are not there yet."""
    row = conn.execute("SELECT to_regclass(%s) IS NOT NULL AS present", (SCHEMA_TABLE,)).fetchone()
    if not row or not row["present"]:
        return 0
    found = conn.execute(f"SELECT max(version) AS v FROM {SCHEMA_TABLE}").fetchone()
    return int(found["v"] or 0) if found else 0


def migrate(conn: psycopg.Connection[Row]) -> tuple[int, int]:
    """Apply every migration newer than the database's; ``(version before, version now)``."""
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (LOCK_KEY,))
        conn.execute(
            f"CREATE TABLE IF NOT EXISTS {SCHEMA_TABLE} (version integer PRIMARY KEY, name text NOT NULL,"
            " applied timestamptz NOT NULL DEFAULT now())"
        )
        before = schema_version(conn)
        if before > VERSION:
            raise SchemaMismatch(
                f"the team database has schema version {before}, newer than this claude-budget's {VERSION} — "
                "upgrade claude-budget (pip install -U claude-budget)"
            )
        for version, name, statements in MIGRATIONS:
            if version > before:
                for sql in statements:
                    conn.execute(sql)
                conn.execute(f"INSERT INTO {SCHEMA_TABLE} (version, name) VALUES (%s, %s)", (version, name))
    return before, VERSION


def require_schema(conn: psycopg.Connection[Row]) -> None:
    version = schema_version(conn)
    if version == VERSION:
        return
    if version == 0:
        raise SchemaMismatch("the team database has no claude-budget tables — run: claude-budget team init")
    if version < VERSION:
        raise SchemaMismatch(
            f"the team database has schema version {version}, older than {VERSION} — run: claude-budget team init"
        )
    raise SchemaMismatch(
        f"the team database has schema version {version}, newer than this claude-budget's {VERSION} — "
        "upgrade claude-budget (pip install -U claude-budget)"
    )


# --- budgets ----------------------------------------------------------------------------------

# The current period of each budget, computed by the database in the budget's time zone.
_BUDGETS = """
SELECT b.id, b.scope, b.metric, b.window_kind, b.window_minutes, b.window_unit, b.tz, b.limit_amount,
       b.counted,
       CASE b.window_kind WHEN 'calendar'
            THEN date_trunc(b.window_unit, now() AT TIME ZONE b.tz) AT TIME ZONE b.tz
            ELSE 'epoch'::timestamptz END AS period,
       CASE b.window_kind WHEN 'calendar'
            THEN (date_trunc(b.window_unit, now() AT TIME ZONE b.tz) + ('1 ' || b.window_unit)::interval)
                 AT TIME ZONE b.tz END AS period_end
FROM claude_budget_budget b WHERE b.team = %s ORDER BY b.id
"""


def budgets(conn: psycopg.Connection[Row], team: str) -> list[Row]:
    return list(conn.execute(_BUDGETS, (team,)).fetchall())


def set_budget(
    conn: psycopg.Connection[Row],
    *,
    team: str,
    scope: str,
    metric: str,
    window: tuple[str, int, str],
    tz: str,
    limit: int,
    counted: str,
) -> int:
    """Create or change a budget (its limit, time zone, counted categories); returns its id."""
    kind, minutes, unit = window
    with conn.transaction():
        conn.execute("SELECT now() AT TIME ZONE %s", (tz,))  # refuses an unknown time zone, with its name
        row = conn.execute(
            """INSERT INTO claude_budget_budget
                 (team, scope, metric, window_kind, window_minutes, window_unit, tz, limit_amount, counted)
               VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)
               ON CONFLICT (team, scope, metric, window_kind, window_minutes, window_unit)
               DO UPDATE SET tz = EXCLUDED.tz, limit_amount = EXCLUDED.limit_amount,
                             counted = EXCLUDED.counted, updated = now()
               RETURNING id""",
            (team, scope, metric, kind, minutes, unit, tz, limit, counted),
        ).fetchone()
    assert row is not None
    return int(row["id"])


def remove_budget(
    conn: psycopg.Connection[Row], *, team: str, scope: str, metric: str, window: tuple[str, int, str]
) -> bool:
    kind, minutes, unit = window
    cur = conn.execute(
        """DELETE FROM claude_budget_budget WHERE team = %s AND scope = %s AND metric = %s
           AND window_kind = %s AND window_minutes = %s AND window_unit = %s""",
        (team, scope, metric, kind, minutes, unit),
    )
    return cur.rowcount > 0


# --- leases -----------------------------------------------------------------------------------


def _used_in_window(conn: psycopg.Connection[Row], budget: Row) -> int:
    """What a budget has spent in its current window (rolling: the sum of its last minutes)."""
    if budget["window_kind"] == "rolling":
        row = conn.execute(
            """SELECT coalesce(sum(spent), 0) AS s FROM claude_budget_bucket
               WHERE budget_id = %s AND minute > now() - make_interval(mins => %s)""",
            (budget["id"], budget["window_minutes"]),
        ).fetchone()
    else:
        row = conn.execute(
            "SELECT spent AS s FROM claude_budget_counter WHERE budget_id = %s AND period = %s",
            (budget["id"], budget["period"]),
        ).fetchone()
    return int(row["s"]) if row else 0


def _one(conn: psycopg.Connection[Row], budget: Row, item: Row, holder: str, ttl: int) -> Row:
    """Settle, close or top up one lease, in the caller's transaction; its state afterwards."""
    bid, lease = budget["id"], item["lease"]
    conn.execute(
        "INSERT INTO claude_budget_counter (budget_id, period) VALUES (%s, %s) ON CONFLICT DO NOTHING",
        (bid, budget["period"]),
    )
    conn.execute(
        """INSERT INTO claude_budget_lease (id, budget_id, period, holder, expires_at)
           VALUES (%s, %s, %s, %s, now() + make_interval(secs => %s)) ON CONFLICT (id) DO NOTHING""",
        (lease, bid, budget["period"], holder, ttl),
    )
    row = conn.execute(
        "SELECT budget_id, period, granted, spent, grant_seq, state FROM claude_budget_lease WHERE id = %s FOR UPDATE",
        (lease,),
    ).fetchone()
    assert row is not None
    if row["budget_id"] != bid:
        return {"lease": lease, "state": "gone"}
    granted, spent, state, period = int(row["granted"]), int(row["spent"]), row["state"], row["period"]
    used = int(item.get("used", 0))
    if used > spent:
        # Settle: count only what is above what this lease already settled.
        delta = used - spent
        released = max(granted - spent, 0) - max(granted - used, 0) if state == "active" else 0
        conn.execute(
            """UPDATE claude_budget_counter SET spent = spent + %s, leased = leased - %s
               WHERE budget_id = %s AND period = %s""",
            (delta, released, bid, period),
        )
        if budget["window_kind"] == "rolling":
            conn.execute(
                """INSERT INTO claude_budget_bucket (budget_id, minute, spent)
                   VALUES (%s, date_trunc('minute', now()), %s)
                   ON CONFLICT (budget_id, minute) DO UPDATE SET spent = claude_budget_bucket.spent + EXCLUDED.spent""",
                (bid, delta),
            )
        spent = used
        # Spent past the lease (a response in flight when it ran dry): the lease absorbs it, so a
        # top-up adds only above what is spent and leased stays the sum of max(granted - spent, 0).
        granted = max(granted, spent)
        conn.execute(
            "UPDATE claude_budget_lease SET spent = %s, granted = %s, settled = now() WHERE id = %s",
            (spent, granted, lease),
        )
    rotated = state == "active" and period != budget["period"]
    if state == "active" and (item.get("close") or rotated):
        # Given back (its sessions ended), or its calendar window is over: what is left returns.
        conn.execute(
            "UPDATE claude_budget_counter SET leased = leased - %s WHERE budget_id = %s AND period = %s",
            (max(granted - spent, 0), bid, period),
        )
        conn.execute("UPDATE claude_budget_lease SET state = 'closed' WHERE id = %s", (lease,))
        state = "closed"
    want, seq = int(item.get("want", 0)), int(item.get("seq", 0))
    full = False
    if state == "active":
        conn.execute(
            "UPDATE claude_budget_lease SET expires_at = now() + make_interval(secs => %s) WHERE id = %s",
            (ttl, lease),
        )
        if want > 0 and seq > int(row["grant_seq"]):
            grant = _grant(conn, budget, want)
            full = grant < want
            granted += grant
            conn.execute(
                "UPDATE claude_budget_lease SET granted = %s, grant_seq = %s WHERE id = %s", (granted, seq, lease)
            )
    counter = conn.execute(
        "SELECT spent, leased FROM claude_budget_counter WHERE budget_id = %s AND period = %s",
        (bid, budget["period"]),
    ).fetchone()
    return {
        "lease": lease,
        "state": state,
        "rotated": rotated,  # closed because its calendar window ended: the machine takes a new one now
        "granted": granted,
        "spent": spent,
        "full": full,
        "team_used": _used_in_window(conn, budget),
        "team_leased": int(counter["leased"]) if counter else 0,
    }


def _grant(conn: psycopg.Connection[Row], budget: Row, want: int) -> int:
    """Take up to ``want`` from what the budget has left, atomically; what was granted (maybe 0)."""
    limit, bid, period = int(budget["limit_amount"]), budget["id"], budget["period"]
    if budget["window_kind"] == "rolling":
        # Several rows (the minutes) make up what is spent: lock the counter first, then sum with a
        # fresh snapshot (READ COMMITTED: a new statement sees every settle committed before it;
        # a settle takes the same row lock before it adds a minute).
        conn.execute(
            "SELECT 1 FROM claude_budget_counter WHERE budget_id = %s AND period = %s FOR UPDATE", (bid, period)
        )
        used = _used_in_window(conn, budget)
        row = conn.execute(
            """UPDATE claude_budget_counter
               SET last_grant = LEAST(%(want)s, %(limit)s - %(used)s - leased),
                   leased = leased + LEAST(%(want)s, %(limit)s - %(used)s - leased)
               WHERE budget_id = %(bid)s AND period = %(period)s AND %(used)s + leased < %(limit)s
               RETURNING last_grant""",
            {"want": want, "limit": limit, "used": used, "bid": bid, "period": period},
        ).fetchone()
    else:
        # One conditional UPDATE: the row lock and READ COMMITTED's re-check of WHERE on the newest
        # row make concurrent grants add up to at most the limit, with no retries.
        row = conn.execute(
            """UPDATE claude_budget_counter
               SET last_grant = LEAST(%(want)s, %(limit)s - spent - leased),
                   leased = leased + LEAST(%(want)s, %(limit)s - spent - leased)
               WHERE budget_id = %(bid)s AND period = %(period)s AND spent + leased < %(limit)s
               RETURNING last_grant""",
            {"want": want, "limit": limit, "bid": bid, "period": period},
        ).fetchone()
    return int(row["last_grant"]) if row else 0


def sync(conn: psycopg.Connection[Row], *, team: str, holder: str, items: Sequence[Row], ttl: int = LEASE_TTL_S) -> Row:
    """Settle, give back and top up a machine's leases in one transaction.

    ``items``: ``{"budget", "lease", "used", "want", "seq", "close"}`` — ``used`` is the lease's
    cumulative spend, ``want``/``seq`` a numbered top-up request. Returns ``{"budgets": [...],
    "leases": {lease: state}}`` with the team's budget definitions as they are now.
    """
    require_schema(conn)
    if any(int(i.get("want", 0)) > 0 for i in items):
        sweep(conn, team=team, limit=20)  # opportunistic: an expired lease may hold what this top-up needs
    with conn.transaction():
        found = {int(b["id"]): b for b in budgets(conn, team)}
        leases: dict[str, Row] = {}
        for item in sorted(items, key=lambda i: (int(i["budget"]), str(i["lease"]))):  # one lock order
            budget = found.get(int(item["budget"]))
            if budget is None:
                # The budget was removed: its leases went with it (ON DELETE CASCADE).
                leases[str(item["lease"])] = {"lease": item["lease"], "state": "gone"}
                continue
            leases[str(item["lease"])] = _one(conn, budget, item, holder, ttl)
    return {"budgets": list(found.values()), "leases": leases}


def sweep(conn: psycopg.Connection[Row], *, team: str | None = None, limit: int | None = None) -> int:
    """Return the unspent part of every expired lease; how many were returned.

    One lease per transaction, locked in the same order as a settle (lease, then counter).
    """
    require_schema(conn)
    rows = conn.execute(
        """SELECT l.id FROM claude_budget_lease l JOIN claude_budget_budget b ON b.id = l.budget_id
           WHERE l.state = 'active' AND l.expires_at < now() AND (%s::text IS NULL OR b.team = %s)
           ORDER BY l.expires_at LIMIT %s""",
        (team, team, limit),
    ).fetchall()
    swept = 0
    for r in rows:
        with conn.transaction():
            gone = conn.execute(
                """UPDATE claude_budget_lease SET state = 'expired'
                   WHERE id = %s AND state = 'active' AND expires_at < now()
                   RETURNING budget_id, period, GREATEST(granted - spent, 0) AS free""",
                (r["id"],),
            ).fetchone()
            if gone is not None:
                conn.execute(
                    "UPDATE claude_budget_counter SET leased = leased - %s WHERE budget_id = %s AND period = %s",
                    (gone["free"], gone["budget_id"], gone["period"]),
                )
                swept += 1
    if limit is None:  # a full sweep (team status, team sweep) also drops rolling minutes nobody reads
        conn.execute(
            "DELETE FROM claude_budget_bucket WHERE minute < now() - make_interval(days => %s)", (KEEP_MINUTES_DAYS,)
        )
    return swept


def status(conn: psycopg.Connection[Row], team: str) -> list[Row]:
    """Every budget of the team with what it has spent in its window, what is leased out, and to whom."""
    require_schema(conn)
    out = []
    for b in budgets(conn, team):
        counter = conn.execute(
            "SELECT spent, leased FROM claude_budget_counter WHERE budget_id = %s AND period = %s",
            (b["id"], b["period"]),
        ).fetchone()
        holders = conn.execute(
            """SELECT holder, count(*) AS leases, sum(GREATEST(granted - spent, 0)) AS held
               FROM claude_budget_lease WHERE budget_id = %s AND state = 'active' AND period = %s
               GROUP BY holder ORDER BY holder""",
            (b["id"], b["period"]),
        ).fetchall()
        expired = conn.execute(
            """SELECT count(*) AS n FROM claude_budget_lease
               WHERE budget_id = %s AND state = 'active' AND expires_at < now()""",
            (b["id"],),
        ).fetchone()
        out.append(
            {
                **b,
                "used": _used_in_window(conn, b),
                "leased": int(counter["leased"]) if counter else 0,
                "holders": [dict(h) for h in holders],
                "expired_leases": int(expired["n"]) if expired else 0,
            }
        )
    return out
