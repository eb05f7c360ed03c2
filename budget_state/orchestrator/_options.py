"""What to run and under which budgets: the flags and the configuration file, checked and merged.

Precedence, as the original plans decided: command line > configuration file > a command's
frontmatter (applied by the hooks) > defaults. Everything is checked before anything starts: a
bad value is one :class:`UsageError` naming the flag (or the file, key and line) and the fix.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, NamedTuple

from ._values import UsageError, command, dashboard, mode, pair, period, seconds, tokens, usd, whole

DEFAULT_CONCURRENCY = 4
DEFAULT_INTERVAL = 30.0
DEFAULT_PERIOD = 60

__all__ = ["Instance", "Options", "UsageError", "build"]


class Instance(NamedTuple):
    """One ``claude -p "/command args"`` to run."""

    command: str  # "/gitcommitgardener"
    args: str = ""
    priority: int = 1  # 1 starts first
    order: int = 0  # position in the file, then on the command line: ties of priority start in it
    tokens: int | None = None  # the per-command token limit the orchestrator sets (None: the frontmatter's)
    usd_micros: int | None = None
    budget_enabled: bool = True  # False: no per-command limit at all (token_budget_enabled: false)
    name: str | None = None

    @property
    def prompt(self) -> str:
        return f"{self.command} {self.args}".rstrip()


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


def build(args: Any) -> Options:
    """The options from the parsed arguments (``_command``) and, under them, the configuration file."""
    settings: dict[str, Any] = {}
    instances: list[Instance] = []
    warnings: list[str] = []
    if args.config is not None:
        from ._configfile import from_file  # it imports Instance from here

        settings, instances, warnings = from_file(Path(args.config))
    for raw in args.instance or ():
        name, rest = command(raw, "--instance")
        instances.append(Instance(name, rest, order=len(instances)))
    if not instances:
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
    )
    for attr, name, parse in flags:
        value = getattr(args, attr, None)
        if value is not None:
            cli[name] = parse(value, "--" + attr.replace("_", "-"))
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
    merged: list[Instance] = []
    for inst in instances:
        # command line > the instance's own key in the file > budget_config's command_budgets
        t = command_tokens.get(inst.command) if inst.command in cli_tokens else inst.tokens
        u = command_usd.get(inst.command) if inst.command in cli_usd else inst.usd_micros
        t = t if t is not None else command_tokens.get(inst.command)
        u = u if u is not None else command_usd.get(inst.command)
        merged.append(inst._replace(tokens=t, usd_micros=u))
    raw_guard = getattr(args, "quota_guard", None)
    if raw_guard is not None:
        from .._units import TokenValueError, parse_percent

        try:
            cli["quota_guard"] = parse_percent(raw_guard, what="--quota-guard")
        except TokenValueError as e:
            raise UsageError(f"--quota-guard {e.shown} {e.reason} — write e.g. --quota-guard 90") from None
    if getattr(args, "wait_for_reset", False):
        cli["wait_for_reset"] = True
    if args.disable_budget_visuals:
        cli["visuals"] = False
    if args.persistent_budgets:
        cli["persistent"] = True
    if args.budget_reset_on_restart:
        cli["reset"] = True
    options = Options(tuple(merged), **{**settings, **cli})
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
    return options._replace(
        project=project,
        claude=args.claude or "claude",
        logs=Path(args.logs) if args.logs else None,
        json_out=Path(args.json_out) if args.json_out else None,
        extra=extra,
        temporary_hooks=bool(args.temporary_hooks),
        warnings=tuple(warnings),
    )
