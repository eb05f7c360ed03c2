"""What to run and under which budgets: the flags and the configuration file, checked and merged.

Precedence, as the original plans decided: command line > configuration file > a command's
frontmatter (applied by the hooks) > defaults. Everything is checked before anything starts: a
bad value is one :class:`UsageError` naming the flag (or the file, key and line) and the fix.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

from .._errors import ConfigError

DASHBOARD_MODES = ("live", "report", "off")
DEFAULT_CONCURRENCY = 4
DEFAULT_INTERVAL = 30.0
DEFAULT_PERIOD = 60
MAX_PERIOD = 24 * 60  # minutes; = _windows.MINUTES_KEPT
MAX_USD = 1_000_000.0  # a million dollars: anything above is a typo

BUDGET_KEYS = (
    "overall_token_budget",
    "hourly_token_budget",
    "budget_period_minutes",
    "enforcement_mode",
    "enable_visuals",
    "cost_budgets",
    "command_budgets",
    "command_cost_budgets",
    "dashboard_mode",
    "report_interval",
    "persistent_budgets",
    "budget_reset_on_restart",
)
COST_KEYS = ("overall_usd", "hourly_usd")
INSTANCE_KEYS = (
    "command",
    "args",
    "name",
    "max_tokens_per_command",
    "cost_budget_usd",
    "priority",
    "token_budget_enabled",
)
TOP_KEYS = ("budget_config", "instances", "max_concurrent")


class UsageError(ConfigError):
    """A flag or the configuration file is not valid: exit 2 before anything starts."""


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

    def limits(self) -> dict[str, int | None]:
        """The orchestration's own limits, as the ledger keeps them (orchestrator._scope)."""
        return {
            "tokens": self.overall_tokens,
            "usd_micros": self.overall_usd_micros,
            "hourly_tokens": self.hourly_tokens,
            "hourly_usd_micros": self.hourly_usd_micros,
        }


# --- single values ---------------------------------------------------------------------------------


def tokens(value: object, where: str) -> int:
    from .._units import TokenValueError, parse_tokens

    try:
        return parse_tokens(value)
    except TokenValueError as e:
        shown = f" {e.shown}" if e.shown else ""
        raise UsageError(f"{where}{shown} {e.reason} — {e.fix or 'write e.g. 10000, 50k or 1.5M'}") from None


def usd(value: object, where: str) -> int:
    """Micro-dollars from ``5``, ``5.00`` or ``"$0.25"``."""
    number: float | None = None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value.strip().removeprefix("$").replace("_", ""))
        except ValueError:
            pass
    if number is None or not 0 < number <= MAX_USD:  # also refuses NaN
        from .._units import describe_value

        raise UsageError(f"{where} {describe_value(value)} is not an amount of dollars above 0 — write e.g. 5.00")
    return round(number * 1_000_000)


def whole(value: object, where: str, *, fix: str) -> int:
    number = value if isinstance(value, int) and not isinstance(value, bool) else None
    if isinstance(value, str) and value.strip().isdigit():
        number = int(value.strip())
    if number is None or number <= 0:
        from .._units import describe_value

        raise UsageError(f"{where} {describe_value(value)} is not a whole number above 0 — {fix}")
    return number


def period(value: object, where: str) -> int:
    """Minutes of the "hourly" budgets' rolling window: at most a day (the ledger keeps minute buckets that long)."""
    minutes = whole(value, where, fix="write e.g. 60")
    if minutes > MAX_PERIOD:
        raise UsageError(f"{where} {minutes} is longer than a day — use at most {MAX_PERIOD} minutes")
    return minutes


def seconds(value: object, where: str) -> float:
    try:
        number = float(value) if isinstance(value, (int, float, str)) and not isinstance(value, bool) else None
    except ValueError:
        number = None
    if number is None or not 0 < number < 86_400:
        from .._units import describe_value

        raise UsageError(f"{where} {describe_value(value)} is not a number of seconds above 0 — write e.g. 10")
    return number


def mode(value: object, where: str) -> str:
    from .._config import MODES

    found = MODES.get(value.strip().lower()) if isinstance(value, str) else None
    if found is None:
        from .._units import describe_value

        raise UsageError(
            f"{where} {describe_value(value)} is not a mode — use warn, block or kill (stop-new, kill-running)"
        )
    return found


def dashboard(value: object, where: str) -> str:
    if not (isinstance(value, str) and value.strip().lower() in DASHBOARD_MODES):
        from .._units import describe_value

        raise UsageError(f"{where} {describe_value(value)} is not a dashboard mode — use live, report or off")
    return value.strip().lower()


def command(value: object, where: str) -> tuple[str, str]:
    """``"/cmd args"`` -> ``("/cmd", "args")``; the command must be a slash command."""
    from .._commands import command_from_prompt

    text = value.strip() if isinstance(value, str) else ""
    name = command_from_prompt(text) if text.startswith("/") else None
    if name is None:
        from .._units import describe_value

        raise UsageError(f'{where} {describe_value(value)} is not a slash command — write e.g. "/gitcommitgardener"')
    return name, text[len(name) :].strip()


def pair(value: str, flag: str, parse: Any, example: str) -> tuple[str, int]:
    """``"/cmd=N"`` (``--command-budget``, ``--command-cost-budget``)."""
    name, sep, amount = value.partition("=")
    name = name.strip()
    from .._commands import is_command_name

    if not sep or not name.startswith("/") or not is_command_name(name):
        raise UsageError(f'{flag} "{value}" is not /command=amount — write e.g. {flag} "{example}"')
    return name, parse(amount.strip(), f'{flag} "{value}": the amount')


# --- the configuration file -------------------------------------------------------------------------


def read_file(path: Path) -> tuple[dict[str, Any], str]:
    """The file's data (JSON, YAML or TOML by extension; JSON otherwise) and its text."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise UsageError(f"cannot read the configuration file {path}: {e.strerror} — pass an existing file") from None
    except UnicodeDecodeError:
        raise UsageError(f"the configuration file {path} is not UTF-8 text — save it as UTF-8") from None
    suffix = path.suffix.lower()
    try:
        if suffix in (".yaml", ".yml"):
            import yaml

            data = yaml.safe_load(text)
        elif suffix == ".toml":
            from .._toml import loads

            data = loads(text)
        else:
            data = json.loads(text)
    except json.JSONDecodeError as e:
        raise UsageError(f"{path} is not valid JSON: {e.msg} (line {e.lineno}, column {e.colno})") from None
    except ValueError as e:  # TOMLDecodeError says the line itself
        raise UsageError(f"{path} is not valid TOML: {e}") from None
    except Exception as e:  # noqa: BLE001 (yaml.YAMLError; yaml is imported only for YAML files)
        raise UsageError(f"{path} is not valid YAML: {' '.join(str(e).split())}") from None
    if not isinstance(data, dict):
        raise UsageError(f'{path} does not hold an object — write {{"budget_config": {{…}}, "instances": [...]}}')
    return data, text


def line_of(text: str, key: str, value: object = None, start: int = 0) -> int:
    """The line where ``key`` is set (to ``value``, when it can tell), from offset ``start``; 0 if not found."""
    pattern = re.compile(rf"""["']?\b{re.escape(key)}\b["']?\s*[:=]""")
    first = None
    for m in pattern.finditer(text, start):
        line = text.count("\n", 0, m.start()) + 1
        first = first or line
        rest = text[m.end() : text.find("\n", m.end()) if "\n" in text[m.end() :] else len(text)]
        if value is None or str(value).lower() in rest.lower() or json.dumps(value) in rest:
            return line
    return first or 0


class _File:
    """The configuration file while it is read: every message names it, the key and the line."""

    def __init__(self, path: Path, text: str) -> None:
        self.path = path
        self.text = text
        self.warnings: list[str] = []

    def where(self, key: str, value: object = None, start: int = 0) -> str:
        line = line_of(self.text, key.rsplit(".", 1)[-1].split("]")[-1], value, start)
        return f"{key} in {self.path}" + (f" (line {line})" if line else "")

    def unknown(self, table: Mapping[str, Any], known: Sequence[str], prefix: str) -> None:
        for key in table:
            if key not in known:
                self.warnings.append(
                    f"unknown key {prefix}{key} in {self.where(str(key))} — known keys: {', '.join(known)}"
                )


def from_file(path: Path) -> tuple[dict[str, Any], list[Instance], list[str]]:
    """Settings (flag names as keys) and instances from the file, and warnings for unknown keys."""
    data, text = read_file(path)
    f = _File(path, text)
    f.unknown(data, TOP_KEYS, "")
    out: dict[str, Any] = {}
    budget = data.get("budget_config", {})
    if not isinstance(budget, dict):
        raise UsageError(f'{f.where("budget_config")} is not an object — write "budget_config": {{…}}')
    f.unknown(budget, BUDGET_KEYS, "budget_config.")
    simple: tuple[tuple[str, str, Any], ...] = (
        ("overall_token_budget", "overall_tokens", tokens),
        ("hourly_token_budget", "hourly_tokens", tokens),
        ("budget_period_minutes", "period", period),
        ("enforcement_mode", "mode", mode),
        ("dashboard_mode", "dashboard", dashboard),
        ("report_interval", "interval", seconds),
    )
    for key, name, parse in simple:
        if key in budget:
            out[name] = parse(budget[key], f.where(f"budget_config.{key}", budget[key]))
    for key, name in (
        ("enable_visuals", "visuals"),
        ("persistent_budgets", "persistent"),
        ("budget_reset_on_restart", "reset"),
    ):
        if key in budget:
            if not isinstance(budget[key], bool):
                raise UsageError(f"{f.where('budget_config.' + key, budget[key])} is not true or false")
            out[name] = budget[key]
    costs = budget.get("cost_budgets", {})
    if not isinstance(costs, dict):
        raise UsageError(f'{f.where("budget_config.cost_budgets")} is not an object — write {{"overall_usd": 5.00}}')
    f.unknown(costs, COST_KEYS, "budget_config.cost_budgets.")
    for key, name in (("overall_usd", "overall_usd_micros"), ("hourly_usd", "hourly_usd_micros")):
        if key in costs:
            out[name] = usd(costs[key], f.where(f"budget_config.cost_budgets.{key}", costs[key]))
    for key, parse in (("command_budgets", tokens), ("command_cost_budgets", usd)):
        table = budget.get(key, {})
        if not isinstance(table, dict):
            raise UsageError(f'{f.where("budget_config." + key)} is not an object — write {{"/cmd": …}}')
        out[key] = {
            _name(k, f.where(f"budget_config.{key}")): parse(v, f.where(f"budget_config.{key}.{k}", v))
            for k, v in table.items()
        }
    if "max_concurrent" in data:
        out["max_concurrent"] = whole(data["max_concurrent"], f.where("max_concurrent"), fix="write e.g. 4")
    items = data.get("instances", [])
    if not isinstance(items, list):
        raise UsageError(f'{f.where("instances")} is not a list — write "instances": [{{"command": "/name"}}]')
    found: list[Instance] = []
    cursor = 0
    for i, item in enumerate(items):
        found.append(_instance(f, item, i, cursor))
        cursor = _after(text, "command", cursor)
    return out, found, f.warnings


def _after(text: str, key: str, start: int) -> int:
    m = re.compile(rf"""["']?\b{re.escape(key)}\b["']?\s*[:=]""").search(text, start)
    return m.end() if m else start


def _name(key: object, where: str) -> str:
    from .._commands import is_command_name

    if not isinstance(key, str) or not key.startswith("/") or not is_command_name(key):
        raise UsageError(f'command {key!r} in {where} is not a slash command name — write e.g. "/gitcommitgardener"')
    return key


def _instance(f: _File, item: object, i: int, start: int) -> Instance:
    here = f"instances[{i}]"
    if not isinstance(item, dict):
        raise UsageError(f'{f.where("instances")}: item {i + 1} is not an object — write {{"command": "/name"}}')
    f.unknown(item, INSTANCE_KEYS, f"{here}.")
    if "command" not in item:
        raise UsageError(f'{here} in {f.path} has no command — add "command": "/name"')
    name, args = command(item["command"], f.where(f"{here}.command", item["command"], start))
    extra = item.get("args", "")
    if isinstance(extra, list) and all(isinstance(a, str) for a in extra):
        extra = " ".join(extra)
    if not isinstance(extra, str):
        raise UsageError(f'{f.where(here + ".args", extra, start)} is not a string — write e.g. "args": "--fast"')
    args = f"{args} {extra}".strip()
    limit = item.get("max_tokens_per_command")
    cost = item.get("cost_budget_usd")
    priority = item.get("priority", 1)
    enabled = item.get("token_budget_enabled", True)
    if not isinstance(enabled, bool):
        raise UsageError(f"{f.where(here + '.token_budget_enabled', enabled, start)} is not true or false")
    label = item.get("name")
    return Instance(
        name,
        args,
        priority=whole(priority, f.where(f"{here}.priority", priority, start), fix="write e.g. 1 (1 starts first)"),
        order=i,
        tokens=tokens(limit, f.where(f"{here}.max_tokens_per_command", limit, start)) if limit is not None else None,
        usd_micros=usd(cost, f.where(f"{here}.cost_budget_usd", cost, start)) if cost is not None else None,
        budget_enabled=enabled,
        name=label if isinstance(label, str) and label else None,
    )


# --- merging ---------------------------------------------------------------------------------------


def build(args: Any) -> Options:
    """The options from the parsed arguments (``_command``) and, under them, the configuration file."""
    settings: dict[str, Any] = {}
    instances: list[Instance] = []
    warnings: list[str] = []
    if args.config is not None:
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
    if args.disable_budget_visuals:
        cli["visuals"] = False
    if args.persistent_budgets:
        cli["persistent"] = True
    if args.budget_reset_on_restart:
        cli["reset"] = True
    options = Options(tuple(merged), **{**settings, **cli})
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
