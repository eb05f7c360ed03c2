"""Single values of the flags and the configuration file: checked, converted, or one clear :class:`UsageError`."""

from __future__ import annotations

from typing import Any

from .._errors import ConfigError
from ..budgets._commands import command_from_prompt, is_command_name
from ..budgets._config import MODES
from ..budgets._units import TokenValueError, describe_value, parse_tokens

DASHBOARD_MODES = ("live", "report", "off")
PARAMETER_TYPES = ("tokens", "cost", "mixed")
MAX_PERIOD = 24 * 60  # minutes; = _windows.MINUTES_KEPT
MAX_USD = 1_000_000.0  # a million dollars: anything above is a typo


class UsageError(ConfigError):
    """A flag or the configuration file is not valid: exit 2 before anything starts."""


def tokens(value: object, where: str) -> int:
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
        raise UsageError(f"{where} {describe_value(value)} is not an amount of dollars above 0 — write e.g. 5.00")
    return round(number * 1_000_000)


def whole(value: object, where: str, *, fix: str) -> int:
    number = value if isinstance(value, int) and not isinstance(value, bool) else None
    if isinstance(value, str) and value.strip().isdigit():
        number = int(value.strip())
    if number is None or number <= 0:
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
        raise UsageError(f"{where} {describe_value(value)} is not a number of seconds above 0 — write e.g. 10")
    return number


def mode(value: object, where: str) -> str:
    found = MODES.get(value.strip().lower()) if isinstance(value, str) else None
    if found is None:
        raise UsageError(
            f"{where} {describe_value(value)} is not a mode — use warn, block or kill (stop-new, kill-running)"
        )
    return found


def parameter_type(value: object, where: str) -> str:
    """``--budget-parameter-type``: which of the budgets given apply (mixed = both)."""
    if not (isinstance(value, str) and value.strip().lower() in PARAMETER_TYPES):
        raise UsageError(f"{where} {describe_value(value)} is not a budget type — use tokens, cost or mixed (both)")
    return value.strip().lower()


def dashboard(value: object, where: str) -> str:
    if not (isinstance(value, str) and value.strip().lower() in DASHBOARD_MODES):
        raise UsageError(f"{where} {describe_value(value)} is not a dashboard mode — use live, report or off")
    return value.strip().lower()


def command(value: object, where: str) -> tuple[str, str]:
    """``"/cmd args"`` -> ``("/cmd", "args")``; the command must be a slash command."""

    text = value.strip() if isinstance(value, str) else ""
    name = command_from_prompt(text) if text.startswith("/") else None
    if name is None:
        raise UsageError(f'{where} {describe_value(value)} is not a slash command — write e.g. "/gitcommitgardener"')
    return name, text[len(name) :].strip()


def pair(value: str, flag: str, parse: Any, example: str) -> tuple[str, int]:
    """``"/cmd=N"`` (``--command-budget``, ``--command-cost-budget``)."""
    name, sep, amount = value.partition("=")
    name = name.strip()

    if not sep or not name.startswith("/") or not is_command_name(name):
        raise UsageError(f'{flag} "{value}" is not /command=amount — write e.g. {flag} "{example}"')
    return name, parse(amount.strip(), f'{flag} "{value}": the amount')
