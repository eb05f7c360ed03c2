"""The configuration file (JSON, or YAML / TOML with the same keys): read, checked, every message
naming the file, the key and the line; unknown keys become warnings."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ..budgets._commands import is_command_name
from ..budgets._units import TokenValueError, parse_percent
from ._instance import Instance
from ._values import UsageError, command, dashboard, mode, parameter_type, period, seconds, tokens, usd, whole

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
    "budget_parameter_type",
    "quota_guard",
    "wait_for_reset",
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
                self.warnings.append(f"unknown {self.where(prefix + str(key))} — known keys: {', '.join(known)}")


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
        ("budget_parameter_type", "parameter_type", parameter_type),
    )
    for key, name, parse in simple:
        if key in budget:
            out[name] = parse(budget[key], f.where(f"budget_config.{key}", budget[key]))
    if "mode" in out:
        out["mode_label"] = str(budget["enforcement_mode"]).strip().lower()
    for key, name in (
        ("enable_visuals", "visuals"),
        ("persistent_budgets", "persistent"),
        ("budget_reset_on_restart", "reset"),
        ("wait_for_reset", "wait_for_reset"),
    ):
        if key in budget:
            if not isinstance(budget[key], bool):
                raise UsageError(f"{f.where('budget_config.' + key, budget[key])} is not true or false")
            out[name] = budget[key]
    if "quota_guard" in budget:
        try:
            out["quota_guard"] = parse_percent(budget["quota_guard"], what="quota_guard")
        except TokenValueError as e:
            where = f.where("budget_config.quota_guard", budget["quota_guard"])
            raise UsageError(f"{where} {e.reason} — write e.g. 90 (percent of the 5-hour window)") from None
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
