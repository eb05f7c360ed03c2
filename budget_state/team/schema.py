"""The team tables, versioned: ``claude-budget team init`` creates them and applies newer versions.

Every table is prefixed ``claude_budget_`` so the tool can share a database. Amounts are integers:
tokens, or micro-dollars (never floats for money). Migrations are forward-only and named; each runs
in one transaction under an advisory lock, so two ``team init`` at once apply each exactly once.

The role the machines use needs only (docs/team.md has the lines)::

    GRANT SELECT, INSERT, UPDATE ON claude_budget_budget, claude_budget_counter, claude_budget_lease,
        claude_budget_bucket TO claude_budget;
    GRANT DELETE ON claude_budget_bucket TO claude_budget;          -- the sweeper drops old minutes
    GRANT SELECT ON claude_budget_schema TO claude_budget;
    GRANT USAGE ON SEQUENCE claude_budget_budget_id_seq TO claude_budget;   -- team set, if machines run it
"""

from __future__ import annotations

from typing import Final

SCHEMA_TABLE: Final = "claude_budget_schema"
LOCK_KEY: Final = 748_211_903  # pg_advisory_xact_lock key for migrations (any constant of ours)

# (version, name, statements)
MIGRATIONS: Final[tuple[tuple[int, str, tuple[str, ...]], ...]] = (
    (
        1,
        "budgets, counters, leases and rolling minutes",
        (
            # One row per team budget: a scope (overall or "/command"), a metric, a window.
            """CREATE TABLE claude_budget_budget (
                id bigserial PRIMARY KEY,
                team text NOT NULL,
                scope text NOT NULL,
                metric text NOT NULL CHECK (metric IN ('tokens', 'usd')),
                window_kind text NOT NULL CHECK (window_kind IN ('total', 'calendar', 'rolling')),
                window_minutes integer NOT NULL DEFAULT 0,
                window_unit text NOT NULL DEFAULT '',
                tz text NOT NULL DEFAULT 'UTC',
                limit_amount bigint NOT NULL CHECK (limit_amount > 0),
                counted text NOT NULL DEFAULT 'input,output,cache_creation,cache_read',
                updated timestamptz NOT NULL DEFAULT now(),
                UNIQUE (team, scope, metric, window_kind, window_minutes, window_unit)
            )""",
            # What a budget has spent and has leased out, per period: the calendar window's start,
            # or the epoch for total and rolling budgets. leased = sum over its active leases of
            # max(granted - spent, 0). last_grant: what the last conditional UPDATE granted (PG15
            # has no RETURNING OLD, so the grant is computed once in SET and read back).
            """CREATE TABLE claude_budget_counter (
                budget_id bigint NOT NULL REFERENCES claude_budget_budget (id) ON DELETE CASCADE,
                period timestamptz NOT NULL,
                spent bigint NOT NULL DEFAULT 0,
                leased bigint NOT NULL DEFAULT 0,
                last_grant bigint NOT NULL DEFAULT 0,
                PRIMARY KEY (budget_id, period)
            )""",
            # A machine's lease, by an id the machine chose (so creating it is idempotent).
            # spent is the lease's cumulative settled spend: a settle sends the cumulative amount
            # and counts only what is above it, so a retried or reordered settle counts once.
            # grant_seq: the last top-up request applied (a retried request grants nothing more).
            """CREATE TABLE claude_budget_lease (
                id uuid PRIMARY KEY,
                budget_id bigint NOT NULL REFERENCES claude_budget_budget (id) ON DELETE CASCADE,
                period timestamptz NOT NULL,
                holder text NOT NULL,
                granted bigint NOT NULL DEFAULT 0,
                spent bigint NOT NULL DEFAULT 0,
                grant_seq integer NOT NULL DEFAULT 0,
                state text NOT NULL DEFAULT 'active' CHECK (state IN ('active', 'closed', 'expired')),
                created timestamptz NOT NULL DEFAULT now(),
                settled timestamptz NOT NULL DEFAULT now(),
                expires_at timestamptz NOT NULL
            )""",
            "CREATE INDEX claude_budget_lease_active ON claude_budget_lease (expires_at) WHERE state = 'active'",
            # Rolling budgets: what was settled per minute.
            """CREATE TABLE claude_budget_bucket (
                budget_id bigint NOT NULL REFERENCES claude_budget_budget (id) ON DELETE CASCADE,
                minute timestamptz NOT NULL,
                spent bigint NOT NULL DEFAULT 0,
                PRIMARY KEY (budget_id, minute)
            )""",
        ),
    ),
)
VERSION: Final = MIGRATIONS[-1][0]
