"""The team part of ``/budget`` and ``claude-budget status``: what this machine holds, as its ledger
last heard from the database. Pure (no network: ``claude-budget team status`` asks the database)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from budget_state.team import local


def _iso(v: object) -> str | None:
    return v.isoformat() if isinstance(v, datetime) else None


def machine_json(t: local.Team | None, team: str) -> dict[str, Any]:
    """The ``team`` key of ``status --json`` (version 1 of its shape, docs/team.md)."""
    t = t or local.Team("", "")
    budgets = []
    for bid, b in sorted(t.budgets.items(), key=lambda kv: int(kv[0])):
        budgets.append(
            {
                "id": int(bid),
                "scope": b.scope,
                "metric": b.metric,
                "window": _window_label(b.window or ("total", 0, "")),
                "limit": b.limit,
                "team_used": b.team_used,
                "team_leased": b.team_leased,
                "lease": {
                    "id": b.lease,
                    "granted": b.granted,
                    "used": b.used,
                    "settled": b.settled,
                    "left": b.left(),
                    "valid_until": _iso(b.valid_until),
                },
            }
        )
    return {
        "team": team,
        "synced": _iso(t.synced),
        "unreachable_since": _iso(t.unreachable),
        "error": t.error,
        "budgets": budgets,
        "closing": len(t.closing),
        "outages": t.outages,
    }


def _window_label(w: tuple[str, int, str]) -> str:
    from budget_state.team.windows import from_row, label

    return label(from_row(str(w[0]), int(w[1]), str(w[2])))


def lines(t: local.Team | None, team: str, *, on_unreachable: str) -> list[str]:
    """A few plain lines for the status text."""
    data = machine_json(t, team)
    out = [f'Team "{team}"']
    if data["unreachable_since"]:
        out.append(
            f"  database UNREACHABLE since {data['unreachable_since']} ({data['error']}); "
            f"enforcing on the lease held, then {on_unreachable}"
        )
    elif data["synced"] is None:
        out.append("  not yet in touch with the team database")
    if not data["budgets"] and data["synced"] is not None:
        out.append("  no team budgets (claude-budget team set overall --usd 300 --per day)")
    for b in data["budgets"]:
        unit = _fmt(b["metric"])
        lease = b["lease"]
        pct = f" ({b['team_used'] * 100 // b['limit']}%)" if b["limit"] else ""
        out.append(
            f"  {b['scope']} {b['metric']}/{b['window']}: team used {unit(b['team_used'])} of {unit(b['limit'])}{pct}; "
            f"this machine's lease {unit(max(lease['left'], 0))} left of {unit(lease['granted'])}"
        )
    if data["closing"]:
        out.append(f"  {data['closing']} ended lease(s) still to settle")
    return out


def _fmt(metric: object) -> Any:
    from budget_state._model import dollars
    from budget_state.budgets._units import humanize

    return dollars if metric == "usd" else humanize
