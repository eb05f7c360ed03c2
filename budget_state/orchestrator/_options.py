"""What to run and under which budgets: the flags and the configuration file, checked and merged.

Precedence, as the original plans decided: command line > configuration file > a command's
frontmatter (applied by the hooks) > defaults. Everything is checked before anything starts: a
bad value is one :class:`UsageError` naming the flag (or the file, key and line) and the fix.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, NamedTuple

from ..budgets._units import TokenValueError, parse_percent
from ._configfile import from_file
from ._instance import Instance
from ._values import UsageError, command, dashboard, mode, pair, parameter_type, period, seconds, tokens, usd, whole

DEFAULT_CONCURRENCY = 4
DEFAULT_INTERVAL = 30.0
DEFAULT_PERIOD = 60

__all__ = ["Instance", "Options", "UsageError", "build"]


class Options(NamedTuple):
    instances: tuple[Instance, ...]
    overall_tokens: int | None = None
    overall_usd_micros: int | None = None
    hourly_tokens: int | None = None
    hourly_usd_micros: int | None = None
    period: int = DEFAULT_PERIOD
    mode: str | None = None  # None: the project's mode (budget.toml / CLAUDE_BUDGET_MODE)
    dashboard: str = "report"
    interval: float = DEFAULT_INTERVAL
    visuals: bool = True
    persistent: bool = False
    reset: bool = False
    max_concurrent: int = DEFAULT_CONCURRENCY
    project: Path | None = None
    claude: str = "claude"
    logs: Path | None = None
    json_out: Path | None = None
    extra: tuple[str, ...] = ()
    temporary_hooks: bool = False
    warnings: tuple[str, ...] = ()
    mode_label: str | None = None  # the mode as the user spelled it ("stop-new"), for the report
    parameter_type: str = "mixed"  # which of the budgets given apply: tokens, cost or mixed
    sources: Mapping[str, str] = {}  # option -> where it was set ("--overall-token-budget", "config file x.json")
    #: every per-command budget given (command, metric, amount, where), instances of it or not
    command_budgets: tuple[tuple[str, str, int, str], ...] = ()

    @property
    def shown_mode(self) -> str | None:
        """The mode as the user gave it (``stop-new``, ``kill-running``), else its canonical name."""
        return self.mode_label or self.mode

    quota_guard: float | None = None  # --quota-guard: hold instances back while the 5-hour window is at/above it
    wait_for_reset: bool = False  # --wait-for-reset: wait (state "waiting") instead of skipping them

    def limits(self) -> dict[str, int | None]:
        """The orchestration's own limits, as the ledger keeps them (orchestrator._scope)."""
        return {
            "tokens": self.overall_tokens,
            "usd_micros": self.overall_usd_micros,
            "hourly_tokens": self.hourly_tokens,
            "hourly_usd_micros": self.hourly_usd_micros,
        }


# --- merging ---------------------------------------------------------------------------------------


def build(args: Any, *, planning: bool = False) -> Options:
    """The options from the parsed arguments (``_command``) and, under them, the configuration file.

    ``planning`` (``--dry-run``, ``--list-commands``): no instance is needed.
    """
    settings: dict[str, Any] = {}
    instances: list[Instance] = []
    warnings: list[str] = []
    sources: dict[str, str] = {}
    if args.config is not None:
        settings, instances, warnings = from_file(Path(args.config))
        sources = {
            k: f"config file {args.config}" for k in settings if k not in ("command_budgets", "command_cost_budgets")
        }
    for raw in args.instance or ():
        name, rest = command(raw, "--instance")
        instances.append(Instance(name, rest, order=len(instances)))
    if not instances and not planning:
        raise UsageError(
            'nothing to run — give --instance "/command args" (repeatable) or --config FILE with instances'
        )
    cli: dict[str, Any] = {}
    flags: tuple[tuple[str, str, Any], ...] = (
        ("overall_token_budget", "overall_tokens", tokens),
        ("overall_cost_budget", "overall_usd_micros", usd),
        ("hourly_token_budget", "hourly_tokens", tokens),
        ("hourly_cost_budget", "hourly_usd_micros", usd),
        ("budget_period_minutes", "period", period),
        ("budget_enforcement_mode", "mode", mode),
        ("budget_dashboard_mode", "dashboard", dashboard),
        ("budget_report_interval", "interval", seconds),
        ("max_concurrent", "max_concurrent", lambda v, w: whole(v, w, fix="write e.g. 4")),
        ("budget_parameter_type", "parameter_type", parameter_type),
    )
    for attr, name, parse in flags:
        value = getattr(args, attr, None)
        if value is not None:
            flag = "--" + attr.replace("_", "-")
            cli[name] = parse(value, flag)
            sources[name] = flag
    if "mode" in cli:
        cli["mode_label"] = str(args.budget_enforcement_mode).strip().lower()
    command_tokens = dict(settings.pop("command_budgets", {}))
    command_usd = dict(settings.pop("command_cost_budgets", {}))
    cli_tokens, cli_usd = set(), set()
    for raw in args.command_budget or ():
        name, n = pair(raw, "--command-budget", tokens, "/gitcommitgardener=50k")
        command_tokens[name] = n
        cli_tokens.add(name)
    for raw in args.command_cost_budget or ():
        name, n = pair(raw, "--command-cost-budget", usd, "/gitcommitgardener=0.25")
        command_usd[name] = n
        cli_usd.add(name)
    in_file = f"config file {args.config}"
    merged: list[Instance] = []
    for inst in instances:
        # command line > the instance's own key in the file > budget_config's command_budgets
        t, t_from = inst.tokens, inst.tokens_from or (in_file if inst.tokens is not None else None)
        u, u_from = inst.usd_micros, inst.usd_from or (in_file if inst.usd_micros is not None else None)
        if inst.command in cli_tokens:
            t, t_from = command_tokens[inst.command], "--command-budget"
        elif t is None and inst.command in command_tokens:
            t, t_from = command_tokens[inst.command], in_file
        if inst.command in cli_usd:
            u, u_from = command_usd[inst.command], "--command-cost-budget"
        elif u is None and inst.command in command_usd:
            u, u_from = command_usd[inst.command], in_file
        merged.append(inst._replace(tokens=t, usd_micros=u, tokens_from=t_from, usd_from=u_from))
    if args.visuals is not None:
        cli["visuals"] = args.visuals
        sources["visuals"] = "--enable-budget-visuals" if args.visuals else "--disable-budget-visuals"
    raw_guard = getattr(args, "quota_guard", None)
    if raw_guard is not None:
        try:
            cli["quota_guard"] = parse_percent(raw_guard, what="--quota-guard")
        except TokenValueError as e:
            raise UsageError(f"--quota-guard {e.shown} {e.reason} — write e.g. --quota-guard 90") from None
    if getattr(args, "wait_for_reset", False):
        cli["wait_for_reset"] = True
        sources["wait_for_reset"] = "--wait-for-reset"
    if args.persistent_budgets:
        cli["persistent"] = True
    if args.budget_reset_on_restart:
        cli["reset"] = True
    given = [
        (name, metric, amount, flag if name in on_cli else in_file)
        for metric, table, on_cli, flag in (
            ("tokens", command_tokens, cli_tokens, "--command-budget"),
            ("usd", command_usd, cli_usd, "--command-cost-budget"),
        )
        for name, amount in table.items()
    ]
    options = Options(tuple(merged), **{**settings, **cli}, sources=sources, command_budgets=tuple(given))
    options = by_parameter_type(options, warnings)
    if options.wait_for_reset and options.quota_guard is None:
        warnings.append("--wait-for-reset has no effect without --quota-guard")
    if options.reset and not options.persistent:
        warnings.append(
            "--budget-reset-on-restart has no effect without --persistent-budgets (each orchestration starts at 0)"
        )
    project = Path(args.project).resolve() if args.project is not None else None
    if project is not None and not project.is_dir():
        raise UsageError(f"--project {args.project} is not a folder — pass the project root")
    extra = tuple(args.extra or ())
    if extra and extra[0] != "--":
        raise UsageError(f'unexpected argument "{extra[0]}" — extra arguments for claude go after --')
    extra = extra[1:]
    for reserved in ("-p", "--print", "--session-id", "--output-format"):
        if reserved in extra:
            raise UsageError(f"{reserved} after -- is set by the orchestrator for each instance — leave it out")
    if any(a == "--max-budget-usd" or a.startswith("--max-budget-usd=") for a in extra):
        raise UsageError(
            "--max-budget-usd after -- is set by the orchestrator for each instance (what is left of its tightest "
            "dollar budget) — give a dollar budget instead: --command-cost-budget or --overall-cost-budget"
        )
    return options._replace(
        project=project,
        claude=args.claude or "claude",
        logs=Path(args.logs) if args.logs else None,
        json_out=Path(args.json_out) if args.json_out else None,
        extra=extra,
        temporary_hooks=bool(args.temporary_hooks),
        warnings=tuple(warnings),
    )


_TOKEN_BUDGETS = (("overall_tokens", "--overall-token-budget"), ("hourly_tokens", "--hourly-token-budget"))
_COST_BUDGETS = (("overall_usd_micros", "--overall-cost-budget"), ("hourly_usd_micros", "--hourly-cost-budget"))


def by_parameter_type(options: Options, warnings: list[str], /) -> Options:
    """Keep the budgets ``--budget-parameter-type`` says apply (tokens, cost, or mixed: both); a
    dropped one that was given is warned about. The project's own budgets are not touched."""
    kind = options.parameter_type
    if kind == "mixed":
        return options
    drop = _COST_BUDGETS if kind == "tokens" else _TOKEN_BUDGETS
    dropped = [flag for attr, flag in drop if getattr(options, attr) is not None]
    changes: dict[str, Any] = {attr: None for attr, _ in drop}
    keep = "tokens" if kind == "tokens" else "usd"
    changes["command_budgets"] = tuple(b for b in options.command_budgets if b[1] == keep)
    dropped += [
        f"{b[0]}'s {'dollar' if keep == 'tokens' else 'token'} budget" for b in options.command_budgets if b[1] != keep
    ]
    instances = []
    for inst in options.instances:
        if kind == "tokens" and inst.usd_micros is not None:
            dropped.append(f"{inst.command}'s dollar budget")
            inst = inst._replace(usd_micros=None, usd_from=None)
        elif kind == "cost" and inst.tokens is not None:
            dropped.append(f"{inst.command}'s token budget")
            inst = inst._replace(tokens=None, tokens_from=None)
        instances.append(inst)
    if dropped:
        what = "dollar" if kind == "tokens" else "token"
        warnings.append(
            f"--budget-parameter-type {kind}: the {what} budgets given do not apply here "
            f"({', '.join(dict.fromkeys(dropped))})"
        )
    return options._replace(instances=tuple(instances), **changes)
