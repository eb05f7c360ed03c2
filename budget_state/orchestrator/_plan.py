"""``orchestrate --dry-run`` (the plan, nothing started) and ``--list-commands`` (what there is to run).

The plan is decided by the same code a run decides with (``_schedule.may_start``, ``_run.dollar_cap``)
on a copy of the ledger with the orchestration registered in it; nothing is written.
"""

from __future__ import annotations

import copy
import json
import os
import uuid
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from .._api import Context, build_snapshot, overall_status
from .._model import dollars
from .._render import _safe
from ..budgets._budgets import decide
from ..budgets._units import humanize
from ..ledger._ledger import utcnow
from . import _scope
from ._run import dollar_cap, hooks_installed
from ._schedule import Slot, estimate, may_start, order, preflight, project_statuses

if TYPE_CHECKING:
    from .._api import Context
    from .._model import ScopeStatus
    from ._options import Instance, Options

PLAN_VERSION = 1
_ORCHESTRATION_BUDGETS = (
    ("overall_tokens", "overall", "tokens", "--overall-token-budget"),
    ("overall_usd_micros", "overall", "usd", "--overall-cost-budget"),
    ("hourly_tokens", "hourly", "tokens", "--hourly-token-budget"),
    ("hourly_usd_micros", "hourly", "usd", "--hourly-cost-budget"),
)


def _context(options: Options) -> Context:
    return Context.load(options.project, env=os.environ)


def _amount(metric: str, value: int) -> str:
    return dollars(value) if metric == "usd" else f"{humanize(value)} tokens"


def _budget(scope: str, metric: str, limit: int, source: str, used: int | None = None, **more: Any) -> dict[str, Any]:
    """One budget of the plan: ``limit`` tokens or micro-dollars, and where it was set."""
    out: dict[str, Any] = {"scope": scope, "metric": metric, "source": source}
    out["limit"] = limit / 1_000_000 if metric == "usd" else limit
    if used is not None:
        out["used"] = used / 1_000_000 if metric == "usd" else used
    out.update(more)
    return out


def orchestration_budgets(options: Options, /) -> list[dict[str, Any]]:
    """The orchestration's own budgets (overall, per period), each with the flag or file that set it."""
    out = []
    for attr, scope, metric, flag in _ORCHESTRATION_BUDGETS:
        value = getattr(options, attr)
        if value is not None:
            source = options.sources.get(attr, flag)
            extra = {"period_minutes": options.period} if scope == "hourly" else {}
            out.append(_budget(scope, metric, value, source, **extra))
    return out


def _project_budgets(status: ScopeStatus | None, command: bool) -> list[dict[str, Any]]:
    """The project's budgets (frontmatter, budget.toml) of one scope, with where each is set."""
    if status is None:
        return []
    out = []
    for lim in status.limits:
        if lim.limit <= 0:
            continue
        if lim.source == "frontmatter":
            source = f"frontmatter ({status.file})" if status.file else "frontmatter"
        elif lim.source == "env":
            source = "environment (CLAUDE_BUDGET_OVERALL)"
        else:
            source = ".claude/budget.toml"
        scope = status.name if command else "project overall"
        extra = {"window": lim.window.label} if lim.window is not None else {}
        out.append(_budget(scope, lim.metric, lim.limit, source, used=lim.used, **extra))
    return out


def _command_budgets(inst: Instance, cmd: ScopeStatus | None) -> list[dict[str, Any]]:
    """The instance's own per-command budgets: set here (flag, file), or the project's (frontmatter, budget.toml)."""
    if not inst.budget_enabled:
        return []
    here = []
    if inst.tokens is not None:
        here.append(_budget(inst.command, "tokens", inst.tokens, inst.tokens_from or "config file"))
    if inst.usd_micros is not None:
        here.append(_budget(inst.command, "usd", inst.usd_micros, inst.usd_from or "config file"))
    return here or _project_budgets(cmd, True)


def plan_data(options: Options, /) -> dict[str, Any]:
    """The plan as data (``--dry-run --json``; the text view renders this)."""

    ctx = _context(options)
    mode = options.mode or ctx.config.mode
    counted = ctx.config.counted
    now = utcnow()
    state = ctx.ledger.consistent(copy.deepcopy)  # every part read, as one commit left them
    oid = "dry-run"
    _scope.register(
        state, oid, mode=mode, persistent=options.persistent, period=options.period, limits=options.limits(), now=now
    )
    slots = [Slot(i, inst, str(uuid.uuid4())) for i, inst in enumerate(options.instances)]
    for slot in slots:
        inst = slot.instance
        _scope.add_instance(
            state,
            oid,
            slot.session,
            command=inst.command,
            limit=inst.tokens if inst.budget_enabled else None,
            usd_limit=inst.usd_micros if inst.budget_enabled else None,
            exempt=not inst.budget_enabled,
        )
    planned: list[tuple[str, str]] = []
    rows = []
    for position, index in enumerate(order(options.instances), 1):
        slot = slots[index]
        inst = slot.instance
        cmd, _ = project_statuses(ctx, state, slot, now=now)  # None when set here (or exempt)
        typical = estimate(state, oid, inst.command, counted)
        verdict = may_start(ctx, state, oid, slot, mode=mode, now=now, inflight=planned)
        note = None
        if verdict.allowed:
            planned.append((inst.command, slot.session))
            if mode != "block":  # what block mode would have held back: kill stops it at the crossing, warn says so
                found = _scope.limits(state, oid, command=inst.command, session=slot.session, counted=counted, now=now)
                would = _scope.standings(found, estimate=preflight(state, oid, inst.command, planned[:-1], counted))
                guess = decide(would, "block", "start")  # what block mode would decide
                if not guess.allowed and guess.reason:
                    then = "stopped when it crosses" if mode == "kill" else "warned about (warn mode)"
                    note = f"may go over, and would be {then}: {guess.reason}"
        cap = dollar_cap(ctx, state, oid, slot, now=now) if mode != "warn" else None
        rows.append(
            {
                "order": position,
                "command": inst.command,
                "args": inst.args,
                "name": inst.name,
                "priority": inst.priority,
                "per_command_budget": inst.budget_enabled,
                "budgets": _command_budgets(inst, cmd),
                "estimate": {
                    "tokens": typical["tokens"] or None,
                    "usd": typical["usd"] / 1_000_000 if typical["usd"] else None,
                    "from": "median of the command's finished runs in the ledger" if typical["tokens"] else None,
                },
                "max_budget_usd": cap[0] / 1_000_000 if cap is not None else None,
                "max_budget_from": cap[1] if cap is not None else None,
                "would": "start" if verdict.allowed else "skip",
                "reason": None if verdict.allowed else verdict.reason,
                "note": note,
            }
        )

    overall = overall_status(ctx, state, now=now)
    warnings = list(options.warnings)
    if not options.temporary_hooks and not hooks_installed(ctx.project, env=os.environ):
        warnings.append(
            "the hooks are not installed in this project: a run would be refused — run claude-budget install, "
            "or pass --temporary-hooks"
        )
    return {
        "version": PLAN_VERSION,
        "project": str(ctx.project),
        "mode": options.mode_label or mode,
        "mode_from": options.sources.get("mode", "the project's mode (.claude/budget.toml or CLAUDE_BUDGET_MODE)"),
        "max_concurrent": options.max_concurrent,
        "budget_parameter_type": options.parameter_type,
        "budgets": orchestration_budgets(options) + _project_budgets(overall, False),
        "command_budgets": [_budget(c, metric, amount, src) for c, metric, amount, src in options.command_budgets],
        "instances": rows,
        "warnings": warnings,
    }


def plan(options: Options, /, *, json_: bool = False) -> str:
    """``--dry-run``: the plan, as text or JSON; nothing is started, nothing written."""
    data = plan_data(options)
    if json_:
        return json.dumps(data, indent=2) + "\n"
    return render_plan(data)


def _budget_text(b: Mapping[str, Any]) -> str:
    limit = b["limit"]
    amount = f"${limit:.2f}" if b["metric"] == "usd" else f"{humanize(int(limit))} tokens"
    span = ""
    if b.get("period_minutes"):
        span = f" per {b['period_minutes']} min"
    elif b.get("window"):
        span = f" per {b['window']}"
    used = ""
    if b.get("used"):
        u = b["used"]
        used = f", {dollars(round(u * 1_000_000)) if b['metric'] == 'usd' else humanize(int(u))} used"
    return f"{amount}{span} (from {b['source']}{used})"


def render_plan(data: Mapping[str, Any], /) -> str:
    lines = [
        f"Dry run — nothing is started. Project {data['project']}",
        f"Mode: {data['mode']} (from {data['mode_from']}) · at most {data['max_concurrent']} at once"
        f" · budget type: {data['budget_parameter_type']}",
    ]
    budgets = data["budgets"]
    if budgets or data["command_budgets"]:
        lines.append("Budgets:")
        for b in budgets:
            lines.append(f"  {b['scope']}: {_budget_text(b)}")
    else:
        lines.append("Budgets: none for the orchestration or the project overall")
    for b in data["command_budgets"]:
        lines.append(f"  {b['scope']}: {_budget_text(b)}")
    instances = data["instances"]
    if not instances:
        lines.append('Instances: none — give --instance "/command args" (repeatable) or --config FILE with instances')
    else:
        lines.append("Instances, in start order:")
    for r in instances:
        label = r["name"] or f"{r['command']} {r['args']}".rstrip()
        lines.append(f"  {r['order']}. {_safe(label)}  priority {r['priority']}  → would {r['would']}")
        if not r["per_command_budget"]:
            lines.append("     command budget: none (token_budget_enabled: false)")
        for b in r["budgets"]:
            lines.append(f"     command budget: {_budget_text(b)}")
        if r["per_command_budget"] and not r["budgets"]:
            lines.append("     command budget: none")
        est = r["estimate"]
        if est["tokens"]:
            usd = f", {dollars(round(est['usd'] * 1_000_000))}" if est["usd"] else ""
            lines.append(f"     estimate per run: {humanize(est['tokens'])} tokens{usd} ({est['from']})")
        else:
            lines.append("     estimate per run: none yet (no finished run of it in the ledger)")
        if r["max_budget_usd"] is not None:
            lines.append(
                f"     claude --max-budget-usd {r['max_budget_usd']:.6g} (what is left of {r['max_budget_from']})"
            )
        if r["reason"]:
            lines.append(f"     skipped: {_safe(' '.join(r['reason'].split()))}")
        if r["note"]:
            lines.append(f"     note: {_safe(' '.join(r['note'].split()))}")
    for w in data["warnings"]:
        lines.append(f"warning: {_safe(w)}")
    skipped = sum(r["would"] == "skip" for r in instances)
    lines.append(f"{len(instances) - skipped} would start, {skipped} would be skipped.")
    return "\n".join(lines) + "\n"


# --- --list-commands -------------------------------------------------------------------------------


def list_data(options: Options, /) -> dict[str, Any]:
    """``status --json``'s shape (overall, commands with budgets, windows, runs, p50/p90 per run), plus
    the orchestration's budgets given here and, per command, the budget given here that replaces its own."""

    ctx = _context(options)
    data = ctx.ledger.consistent(lambda state: build_snapshot(ctx, state)).to_json()
    here: dict[str, list[dict[str, Any]]] = {}
    for inst in options.instances:
        budgets = _command_budgets(inst, None) if inst.budget_enabled else []
        here.setdefault(inst.command, budgets)
    commands = data["commands"]
    assert isinstance(commands, dict)
    for name, budgets in here.items():
        if name in commands:
            commands[name]["orchestration"] = budgets
    data["orchestration"] = {"budgets": orchestration_budgets(options), "instances": len(options.instances)}
    return data


def list_commands(options: Options, /, *, json_: bool = False) -> str:
    data = list_data(options)
    if json_:
        return json.dumps(data, indent=2) + "\n"

    commands: Mapping[str, Any] = data["commands"]
    lines = [f"Commands of the project and the user ({len(commands)}), ledger {data['ledger']}"]
    for b in data["orchestration"]["budgets"]:
        lines.append(f"This orchestration: {b['scope']} {_budget_text(b)}")
    for name, c in commands.items():
        parts = []
        if c["limit"] is not None:
            parts.append(f"{humanize(c['used'])}/{humanize(c['limit'])} tokens")
        else:
            parts.append(f"{humanize(c['used'])} tokens, no token budget")
        usd = c["usd"]
        parts.append(f"${usd['used']:.2f}" + (f"/${usd['limit']:.2f}" if usd["limit"] is not None else ""))
        for w in c["windows"]:
            t, u = w["tokens"], w["usd"]
            lim = [
                f"{humanize(t['limit'])} tokens" if t["limit"] is not None else "",
                f"${u['limit']:.2f}" if u["limit"] is not None else "",
            ]
            parts.append(f"per {w['span']}: {' / '.join(x for x in lim if x)}")
        if c["source"]:
            parts.append(f"from {c['source']}")
        parts.append(f"{c['runs']} runs")
        p = c["per_run"]
        if p:
            parts.append(
                f"per run p50 {humanize(p['p50_tokens'])} / p90 {humanize(p['p90_tokens'])} tokens"
                f" (${p['p50_usd']:.2f} / ${p['p90_usd']:.2f})"
            )
        for b in c.get("orchestration") or []:
            parts.append(f"here: {_budget_text(b)}")
        lines.append(f"  {_safe(name)}  " + " · ".join(parts) + (f"  [{c['file']}]" if c["file"] else ""))
    if not commands:
        lines.append("  none: no .claude/commands/*.md in the project or ~/.claude/commands")
    return "\n".join(lines) + "\n"
