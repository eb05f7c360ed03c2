"""``claude-budget team init | set | status | sweep | sync``: declare team budgets and look at them.

Registered by ``budget_state.cli._cli`` (:func:`add_parser`); errors are :class:`BudgetError`, so the
one handler there maps them to ``Error: …`` and exit 1.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from budget_state._errors import BudgetError, ConfigError

JSON_VERSION = 1


def add_parser(sub: Any, project_option: Any) -> None:
    team = sub.add_parser(
        "team",
        help="team budgets shared across machines (PostgreSQL)",
        description="Declare and inspect team budgets kept in the PostgreSQL database of team_url.",
    )
    tsub = team.add_subparsers(dest="team_command", metavar="TEAM_COMMAND", required=True)

    p = tsub.add_parser("init", help="create or upgrade the team tables", description="Create or migrate the tables.")
    project_option(p)
    p.set_defaults(func=cmd_init)

    p = tsub.add_parser(
        "set",
        help="create or change a team budget",
        description="Create or change a team budget: e.g. `team set overall --usd 300 --per day`.",
    )
    p.add_argument("scope", metavar="SCOPE", help="overall, or a command such as /release-notes")
    amount = p.add_mutually_exclusive_group(required=True)
    amount.add_argument("--tokens", metavar="N", help="a token limit, e.g. 2M")
    amount.add_argument("--usd", metavar="N", help="a dollar limit, e.g. 300")
    p.add_argument("--per", default="total", metavar="WINDOW", help="day, week, month, a rolling span (5h), or total")
    p.add_argument("--tz", default="UTC", help="the time zone of day/week/month (default UTC), e.g. Europe/Paris")
    p.add_argument(
        "--count", metavar="CATEGORIES", help="token categories counted, e.g. input,output (default: all four)"
    )
    p.add_argument("--remove", action="store_true", help="remove this budget instead (its amount is ignored)")
    project_option(p)
    p.set_defaults(func=cmd_set)

    p = tsub.add_parser(
        "status", help="the team's budgets across machines", description="Show every team budget and its leases."
    )
    p.add_argument("--json", dest="json_", action="store_true", help="print the versioned JSON shape instead")
    project_option(p)
    p.set_defaults(func=cmd_status)

    p = tsub.add_parser("sweep", help="return expired leases", description="Return the unspent part of expired leases.")
    project_option(p)
    p.set_defaults(func=cmd_sweep)

    p = tsub.add_parser(
        "sync",
        help="settle this machine's team spending now",
        description="Settle what this machine spent, and with --release give its leases back.",
    )
    p.add_argument("--release", action="store_true", help="give back what is left of every lease")
    project_option(p)
    p.set_defaults(func=cmd_sync)


def _ctx(args: argparse.Namespace) -> Any:
    from budget_state._api import Context

    project = getattr(args, "project", None)
    ctx = Context.load(os.path.abspath(project) if project is not None else None)
    if not ctx.config.team_url:
        raise ConfigError(
            "no team is configured — set team_url (and team) in .claude/budget.toml, or CLAUDE_BUDGET_TEAM_URL"
        )
    return ctx


@contextmanager
def _session(ctx: Any) -> Iterator[Any]:
    """A connection for a command; a database error becomes one ``Error:`` line naming the database."""
    try:
        import psycopg

        from budget_state.team import db
    except ImportError:
        raise BudgetError("psycopg is not installed — pip install 'claude-budget[team]'") from None
    try:
        with db.session(str(ctx.config.team_url)) as conn:
            yield conn
    except psycopg.Error as e:
        from budget_state.budgets._teamconfig import redact

        first = redact((str(e).strip().splitlines() or [type(e).__name__])[0], ctx.config.team_url)
        raise BudgetError(f"the team database refused: {first} — check the role's permissions (docs/team.md)") from None


def cmd_init(args: argparse.Namespace) -> int:
    from budget_state.team import db

    ctx = _ctx(args)
    with _session(ctx) as conn:
        before, after = db.migrate(conn)
    print(f"Team tables at schema version {after}" + (f" (was {before})." if before != after else " (up to date)."))
    return 0


def _amount(args: argparse.Namespace) -> tuple[str, int]:
    if args.tokens is not None:
        from budget_state.budgets._units import TokenValueError, parse_tokens

        try:
            return "tokens", parse_tokens(args.tokens, what="--tokens")
        except TokenValueError as e:
            raise ConfigError(f"--tokens {e} — write e.g. --tokens 2M") from None
    text = str(args.usd).strip().lstrip("$").replace(",", "")
    try:
        micros = round(float(text) * 1_000_000)
    except ValueError:
        micros = 0
    if not 0 < micros < 2**62:
        raise ConfigError(f'--usd "{args.usd}" is not an amount of dollars above 0 — write e.g. --usd 300')
    return "usd", micros


def cmd_set(args: argparse.Namespace) -> int:
    from budget_state._model import CATEGORIES, slash_name
    from budget_state.budgets._teamconfig import team_name
    from budget_state.team import db
    from budget_state.team.windows import label, parse_window

    ctx = _ctx(args)
    scope = "overall" if args.scope.strip().lower() == "overall" else slash_name(args.scope.strip())
    try:
        window = parse_window(args.per)
    except ValueError as e:
        raise ConfigError(f"--per {e}") from None
    row = ("total", 0, "") if window is None else (window.kind, window.minutes, window.unit)
    counted = list(CATEGORIES)
    if args.count:
        counted = [c.strip() for c in args.count.split(",") if c.strip()]
        bad = [c for c in counted if c not in CATEGORIES]
        if bad or not counted:
            raise ConfigError(f'--count "{args.count}" names no token category — use some of {",".join(CATEGORIES)}')
    metric, amount = _amount(args)
    team = team_name(ctx.config)
    with _session(ctx) as conn:
        from psycopg.errors import InvalidParameterValue  # _session made sure psycopg is there

        db.require_schema(conn)
        if args.remove:
            gone = db.remove_budget(conn, team=team, scope=scope, metric=metric, window=row)
            print(
                f"Removed {scope} {metric}/{label(window)}." if gone else f"No {scope} {metric}/{label(window)} budget."
            )
            return 0
        try:
            db.set_budget(
                conn,
                team=team,
                scope=scope,
                metric=metric,
                window=row,
                tz=args.tz,
                limit=amount,
                counted=",".join(c for c in CATEGORIES if c in counted),
            )
        except InvalidParameterValue:
            raise ConfigError(
                f'--tz "{args.tz}" is not a time zone the database knows — use e.g. Europe/Paris'
            ) from None
    shown = f"${amount / 1e6:,.2f}" if metric == "usd" else f"{amount:,} tokens"
    tz = f" ({args.tz})" if window is not None and window.kind == "calendar" else ""
    print(f'Team "{team}": {scope} {metric}/{label(window)}{tz} = {shown}.')
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    from budget_state.budgets._teamconfig import team_name
    from budget_state.team import db
    from budget_state.team.view import machine_json

    ctx = _ctx(args)
    team = team_name(ctx.config)
    error = None
    rows: list[dict[str, Any]] = []
    try:
        with _session(ctx) as conn:
            swept = db.sweep(conn, team=team)  # the sweeper runs where someone looks
            rows = db.status(conn, team)
    except BudgetError as e:
        error, swept = str(e), 0
    from budget_state.team import local

    machine = machine_json(ctx.ledger.consistent(local.held), team)
    if args.json_:
        out = {
            "version": JSON_VERSION,
            "team": team,
            "reachable": error is None,
            "error": error,
            "swept": swept,
            "budgets": [_row_json(r) for r in rows],
            "machine": machine,
        }
        print(json.dumps(out, indent=2))
    else:
        _print_status(team, rows, machine, error, swept)
    if error is not None:
        print(f"Error: {error}", file=sys.stderr)
        return 1
    return 0


def _row_json(r: dict[str, Any]) -> dict[str, Any]:
    from budget_state.team.windows import from_row, label

    limit, used, leased = int(r["limit_amount"]), int(r["used"]), int(r["leased"])
    return {
        "id": int(r["id"]),
        "scope": r["scope"],
        "metric": r["metric"],
        "window": label(from_row(r["window_kind"], int(r["window_minutes"]), r["window_unit"])),
        "tz": r["tz"],
        "limit": limit,
        "used": used,
        "leased": leased,
        "left": max(0, limit - used - leased),
        "percent": round(100.0 * used / limit, 1),
        "period_start": r["period"].isoformat() if r["window_kind"] == "calendar" else None,
        "period_end": r["period_end"].isoformat() if r.get("period_end") is not None else None,
        "counted": r["counted"].split(","),
        "holders": [{"holder": h["holder"], "held": int(h["held"] or 0)} for h in r["holders"]],
        "expired_leases": r["expired_leases"],
    }


def _print_status(
    team: str, rows: list[dict[str, Any]], machine: dict[str, Any], error: str | None, swept: int
) -> None:
    from budget_state._model import dollars
    from budget_state.budgets._units import humanize

    print(f'Team "{team}"' + (f" — database unreachable: {error}" if error else ""))
    if not rows and error is None:
        print("  no team budgets yet — e.g. claude-budget team set overall --usd 300 --per day")
    for r in map(_row_json, rows):
        fmt = dollars if r["metric"] == "usd" else humanize
        print(
            f"  {r['scope']:<16} {r['metric']}/{r['window']:<6} used {fmt(r['used'])} of {fmt(r['limit'])} "
            f"({r['percent']}%), leased out {fmt(r['leased'])} to {len(r['holders'])} machine(s), {fmt(r['left'])} free"
        )
    if swept:
        print(f"  returned {swept} expired lease(s)")
    if machine["unreachable_since"]:
        print(f"  this machine: unreachable since {machine['unreachable_since']}")
    for b in machine["budgets"]:
        lease = b["lease"]
        print(
            f"  this machine, {b['scope']} {b['metric']}/{b['window']}: "
            f"{lease['used']} used of a {lease['granted']} lease"
        )


def cmd_sweep(args: argparse.Namespace) -> int:
    from budget_state.budgets._teamconfig import team_name
    from budget_state.team import db

    ctx = _ctx(args)
    with _session(ctx) as conn:
        n = db.sweep(conn, team=team_name(ctx.config))
    print(f"Returned {n} expired lease(s).")
    return 0


def cmd_sync(args: argparse.Namespace) -> int:
    from budget_state.ledger._ledger import utcnow
    from budget_state.team import hook

    ctx = _ctx(args)
    with ctx.ledger.transaction() as state:
        now = utcnow()
        t = hook.team_table(ctx, state)
        from budget_state.team import local

        local.charge(t, state, now)
        notes = hook.sync(ctx, state, now, release=args.release, wait=10.0)
        error = t.error if t.unreachable is not None else None
    for n in notes:
        print(n, file=sys.stderr)
    if error:
        raise BudgetError(f"could not sync with the team database: {error}")
    print("Team spending settled" + (" and leases given back." if args.release else "."))
    return 0
