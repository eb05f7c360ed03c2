"""Settings, with one precedence: environment > ``.claude/budget.toml`` > frontmatter > defaults.

The file is parsed (and ``tomllib``/``tomli`` imported) only when it exists.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, NamedTuple

from budget_state._errors import ConfigError
from budget_state._model import CATEGORIES, slash_name
from budget_state._paths import config_path, display
from budget_state._toml import loads
from budget_state.budgets._limits import LimitSpec

if TYPE_CHECKING:
    from datetime import tzinfo
    from typing import Literal

    from budget_state._model import Mode

    OnError = Literal["open", "closed"]

MODES: dict[str, Mode] = {
    "warn": "warn",
    "block": "block",
    "kill": "kill",
    "stop-new": "block",  # the names the original plans used
    "kill-running": "kill",
}
KNOWN_KEYS: tuple[str, ...] = (
    "mode",
    "overall_tokens",
    "overall_usd",
    "window",
    "timezone",
    "preflight",
    "count",
    "on_error",
    "lock_timeout",
    "ledger",
    "commands",
    "prices",
    "quota_guard",
)
TEAM_KEYS = ("team_url", "team", "on_team_unreachable")  # team budgets: budget_state.team
KNOWN_KEYS += TEAM_KEYS
COMMAND_KEYS = ("tokens", "usd", "tokens_per_<window>", "usd_per_<window>")
PREFLIGHT = ("off", "p50", "p90")
_NO_OVERALL = ("none", "off")  # an empty value is unset, like every variable
_OVERALL_FIX = 'write e.g. overall_tokens = "2M"'


class Config(NamedTuple):
    """Every setting, already validated. ``sources`` says where mode and overall_tokens came from."""

    mode: Mode = "warn"
    overall_tokens: int | None = None
    commands: Mapping[str, int] = MappingProxyType({})
    counted: tuple[str, ...] = CATEGORIES  # the `count` key: which categories a budget counts
    on_error: OnError = "open"
    lock_timeout: float = 5.0
    ledger: str | None = None
    warnings: tuple[str, ...] = ()
    path: Path | None = None
    sources: Mapping[str, str] = MappingProxyType({"mode": "default", "overall_tokens": "default"})
    #: ``[prices."model"]`` tables as written (checked when first needed: budget_state.pricing)
    prices: Mapping[str, object] = MappingProxyType({})
    #: team budgets: the PostgreSQL URL (never with a password from a file), the team's name, and
    #: what to do when the database cannot be reached ("use-lease-then-warn" or "block")
    team_url: str | None = None
    team: str | None = None
    on_team_unreachable: str = "use-lease-then-warn"
    #: the overall scope's limits besides overall_tokens: overall_usd, [window.*], overall_*_per_*
    overall_limits: tuple[LimitSpec, ...] = ()
    #: per command, its limits besides ``tokens``: usd, tokens_per_*, usd_per_*
    command_limits: Mapping[str, tuple[LimitSpec, ...]] = MappingProxyType({})
    timezone: str | None = None  # calendar windows' zone (IANA name); None: the machine's own
    preflight: str = "off"  # "p50" | "p90": block mode refuses a start whose estimated run does not fit
    #: block mode refuses a command's start when the plan's 5-hour window is at or above this % (None: off)
    quota_guard: float | None = None

    def budgeted(self, command: str, /) -> bool:
        """Whether the config gives ``command`` any limit (then it is budgeted even as a built-in)."""
        return command in self.commands or command in self.command_limits

    def longest_rolling(self) -> int:
        """The longest rolling window configured, in minutes (0 when none): buckets are kept that long."""
        overall = [s.window.minutes for s in self.overall_limits if s.window is not None and s.window.kind == "rolling"]
        lazy = self.command_limits
        per_command = lazy.longest_rolling() if isinstance(lazy, LazyLimits) else 0
        return max([*overall, per_command, 0])

    def zone(self) -> tzinfo | None:
        """The calendar windows' time zone (``zoneinfo`` only when one is named), None for the machine's."""
        if self.timezone is None:
            return None
        from zoneinfo import ZoneInfo

        return ZoneInfo(self.timezone)


def _describe(value: object) -> str:
    from budget_state.budgets._units import describe_value  # lazy: only error messages need it

    return describe_value(value)


def normalize_mode(value: str, /, *, where: str, path: Path | None = None) -> Mode:
    """``"warn"``, ``"block"`` or ``"kill"`` (also "stop-new"/"kill-running", any case).

    :param where: the file or environment variable the value came from, for the message.
    :param path: the file, kept on the error as ``ConfigError.path``.
    :raises ConfigError: naming the value, ``where`` and the modes there are.
    """
    return _mode(value, where, path)


def _mode(value: object, where: str, path: Path | None) -> Mode:
    mode = MODES.get(value.strip().lower()) if isinstance(value, str) else None
    if mode is None:
        raise ConfigError(f"mode {_describe(value)} in {where} is not a mode — use warn, block or kill", path=path)
    return mode


def _on_error(value: object, where: str, path: Path | None) -> OnError:
    text = value.strip().lower() if isinstance(value, str) else None
    if text == "open":
        return "open"
    if text == "closed":
        return "closed"
    raise ConfigError(f"on_error {_describe(value)} in {where} is not a choice — use open or closed", path=path)


def _lock_timeout(value: object, where: str, path: Path | None) -> float:
    number: float | None = None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            pass
    if number is None or not 0 < number < float("inf"):  # also refuses NaN
        raise ConfigError(
            f"lock_timeout {_describe(value)} in {where} is not a number of seconds above 0 — use e.g. 5",
            path=path,
        )
    return number


def _tokens(key: str, value: object, where: str, path: Path | None, fix: str) -> int:
    from budget_state.budgets._units import TokenValueError, parse_tokens

    try:
        return parse_tokens(value, what=key)
    except TokenValueError as exc:
        shown = f" {exc.shown}" if exc.shown else ""
        raise ConfigError(f"{key}{shown} in {where} {exc.reason} — {exc.fix or fix}", path=path) from None


def _count(value: object, where: str, path: Path) -> tuple[str, ...]:
    fix = f'use a list of {", ".join(CATEGORIES)}, e.g. count = ["input", "output"]'
    if not isinstance(value, list) or not value:
        raise ConfigError(f"count {_describe(value)} in {where} is not a list of categories — {fix}", path=path)
    for item in value:
        if item not in CATEGORIES:
            raise ConfigError(f"count {_describe(item)} in {where} is not a token category — {fix}", path=path)
    return tuple(c for c in CATEGORIES if c in value)


def _commands(value: object, where: str, path: Path, warnings: list[str], lazy: LazyLimits) -> dict[str, int]:
    from budget_state.budgets._commands import is_command_name  # lazy: most configs have no [commands]

    if not isinstance(value, dict):
        raise ConfigError(
            f'commands in {where} is not a table — write [commands."/review-pr"] with tokens = 50000', path=path
        )
    out: dict[str, int] = {}
    seen: set[str] = set()
    for key, table in value.items():
        name = slash_name(key)
        header = f'[commands."{name}"]'
        if not is_command_name(name):
            raise ConfigError(
                f"command {_describe(key)} in {where} is not a command name"
                ' — use the name you type, e.g. [commands."/review-pr"]',
                path=path,
            )
        if name in seen:
            raise ConfigError(f"{header} appears twice in {where} (with and without /) — keep one", path=path)
        seen.add(name)
        if not isinstance(table, dict):
            raise ConfigError(f"{header} in {where} is not a table — write {header} with tokens = 50000", path=path)
        others = {}
        for key, raw in table.items():
            if key == "tokens":
                out[name] = _tokens(f"{header} tokens", raw, where, path, "write e.g. tokens = 50000")
            elif _is_limit_key(key):
                others[key] = raw
            else:
                warnings.append(f'unknown key "{key}" in {header} in {where} — known keys: {", ".join(COMMAND_KEYS)}')
        if name not in out and not others:
            nested = [k for k, v in table.items() if isinstance(v, dict)]
            hint = f' (for a namespaced command quote its name: [commands."{name}:{nested[0]}"])' if nested else ""
            raise ConfigError(f"{header} in {where} has no tokens — add tokens = 50000{hint}", path=path)
        if others:
            lazy.raw[name] = others
    return out


def _is_limit_key(key: str) -> bool:
    metric, sep, span = key.partition("_per_")
    return metric in ("tokens", "usd") and (not sep or bool(span))


class LazyLimits(Mapping[str, "tuple[LimitSpec, ...]"]):
    """Per command, its limits besides ``tokens`` — each command's values checked when first asked for.

    A hook evaluates one command: with hundreds configured, checking every value on every hook
    would cost more than the rest of the hook. ``claude-budget status`` asks for all of them, so a
    bad value anywhere is still reported there (and by the hook of the command it belongs to).
    """

    def __init__(self, where: str = "", path: Path | None = None) -> None:
        self.where, self.path = where, path
        self.raw: dict[str, dict[str, object]] = {}
        self._done: dict[str, tuple[LimitSpec, ...]] = {}

    def __getitem__(self, name: str) -> tuple[LimitSpec, ...]:
        if name not in self._done:
            header = f'[commands."{name}"]'
            specs = []
            for key, value in self.raw[name].items():
                spec = _limit_key(
                    key, value, f"{header} {key}", self.where, self.path, f"{key} in {header} in {self.where}"
                )
                if spec is not None:
                    specs.append(spec)
            self._done[name] = tuple(specs)
        return self._done[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self.raw)

    def __contains__(self, name: object) -> bool:  # without checking the values (Mapping's would)
        return name in self.raw

    def __len__(self) -> int:
        return len(self.raw)

    def longest_rolling(self) -> int:
        """The longest rolling window among these, reading only the keys (values unchecked)."""
        from budget_state.ledger._windows import WindowError, parse_window

        longest = 0
        for table in self.raw.values():
            for key in table:
                span = key.partition("_per_")[2]
                if span:
                    try:
                        window = parse_window(span)
                    except WindowError:
                        continue
                    if window.kind == "rolling":
                        longest = max(longest, window.minutes)
        return longest


def _usd(key: str, value: object, where: str | None, path: Path | None) -> int:
    from budget_state.budgets._units import TokenValueError, parse_usd

    try:
        return parse_usd(value, what=key)
    except TokenValueError as exc:
        shown = f" {exc.shown}" if exc.shown else ""
        place = f" in {where}" if where else ""
        raise ConfigError(f"{key}{shown}{place} {exc.reason} — {exc.fix}", path=path) from None


def _window(key: str, value: object, where: str, path: Path | None) -> Any:
    from budget_state.ledger._windows import WindowError, parse_window

    try:
        return parse_window(value)
    except WindowError as exc:
        raise ConfigError(f"{key} {_describe(value)} in {where} {exc}", path=path) from None


def _limit_key(key: str, value: object, what: str, where: str, path: Path | None, raise_at: str) -> LimitSpec | None:
    """``tokens``/``usd`` (cumulative) or ``tokens_per_<w>``/``usd_per_<w>`` as a limit; None for another key."""
    metric, sep, span = key.partition("_per_")
    if metric not in ("tokens", "usd") or (sep and not span):
        return None
    window = _window(what, span, where, path) if sep else None
    if metric == "usd":
        amount = _usd(what, value, where, path)
    else:
        amount = _tokens(what, value, where, path, f"write e.g. {key} = 50000")
    return LimitSpec(metric, amount, window, "config", raise_at)


def _windows_table(value: object, where: str, path: Path, warnings: list[str]) -> list[LimitSpec]:
    """``[window.NAME]`` tables: a span and a tokens and/or usd limit over the overall scope."""
    fix = 'write e.g. [window.hour] with span = "1h" and tokens = "1M" or usd = 5'
    if not isinstance(value, dict):
        raise ConfigError(f"window in {where} is not a table — {fix}", path=path)
    out: list[LimitSpec] = []
    for name, table in value.items():
        header = f"[window.{name}]"
        if not isinstance(table, dict):
            raise ConfigError(f"{header} in {where} is not a table — {fix}", path=path)
        if "span" not in table:
            raise ConfigError(
                f'{header} in {where} has no span — add span = "1h" (or "day", "week", "month")', path=path
            )
        window = _window(f"{header} span", table["span"], where, path)
        found = False
        for key, raw in table.items():
            if key == "span":
                continue
            if key == "tokens":
                amount = _tokens(f"{header} tokens", raw, where, path, 'write e.g. tokens = "1M"')
            elif key == "usd":
                amount = _usd(f"{header} usd", raw, where, path)
            else:
                warnings.append(f'unknown key "{key}" in {header} in {where} — known keys: span, tokens, usd')
                continue
            found = True
            out.append(LimitSpec(key, amount, window, "config", f"{key} in {header} in {where}"))
        if not found:
            raise ConfigError(f'{header} in {where} has no limit — add tokens = "1M" or usd = 5', path=path)
    return out


def _read_file(path: Path, where: str) -> dict[str, object] | None:
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ConfigError(f"cannot read {where} ({exc.strerror}) — make it a readable file", path=path) from None
    try:
        return loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise ConfigError(f"{where} is not UTF-8 text — save it as UTF-8", path=path) from None
    except ValueError as exc:  # tomllib.TOMLDecodeError
        raise ConfigError(f"{where} is not valid TOML: {exc} — fix it or delete the file", path=path) from None


def on_error_alone(project: Path, env: Mapping[str, str]) -> OnError:
    """``on_error`` alone, read tolerantly: for the hook when the settings as a whole did not load.

    The rest of the settings may be what failed, so nothing else is looked at. A valid
    ``CLAUDE_BUDGET_ON_ERROR`` wins; else ``on_error`` at the top level of ``.claude/budget.toml``,
    whatever is wrong with its other keys; and if the file is not TOML at all, a plain
    ``on_error = "closed"`` line above its first ``[table]`` still counts — whoever asked to fail
    closed wants it most when the file is broken. Anything else is ``"open"``. Never raises.
    """
    raw = (env.get("CLAUDE_BUDGET_ON_ERROR") or "").strip().lower()
    if raw in ("open", "closed"):
        return "closed" if raw == "closed" else "open"
    try:
        with open(config_path(project), "rb") as f:
            text = f.read().decode("utf-8", "replace")
        try:
            value = loads(text).get("on_error")
        except (ValueError, RecursionError):  # TOMLDecodeError is a ValueError
            value = _on_error_line(text)
    except (OSError, ValueError):
        return "open"
    return "closed" if isinstance(value, str) and value.strip().lower() == "closed" else "open"


def _on_error_line(text: str) -> str | None:
    """The value of a top-level ``on_error = "…"`` line in text that is not valid TOML, or None."""
    import re  # Lazy: only reached when the hook already failed on a broken file.

    line_re = re.compile(r"""[ \t]*on_error[ \t]*=[ \t]*(?:"([^"\\\n]*)"|'([^'\n]*)')[ \t]*(?:#.*)?""")
    for line in text.splitlines():
        if line.lstrip().startswith("["):
            return None  # a table: keys below it are not the top-level on_error
        match = line_re.fullmatch(line)
        if match:
            return match.group(1) if match.group(1) is not None else match.group(2)
    return None


def load_config(project: Path, env: Mapping[str, str]) -> Config:
    """The settings for ``project``: ``env`` first, then ``<project>/.claude/budget.toml``, then defaults.

    :raises ConfigError: for a value that is not valid (naming the file or variable and the fix) or a
        file that is not TOML. Unknown keys only add a line to ``Config.warnings``.
    """
    path = config_path(project)
    where = display(path, project)
    data = _read_file(path, where)
    return _from_env(env, Config() if data is None else _from_file(data, where, path))


def _from_file(data: Mapping[str, object], where: str, path: Path) -> Config:
    known = ", ".join(KNOWN_KEYS)
    warnings = [f'unknown key "{key}" in {where} — known keys: {known}' for key in data if key not in KNOWN_KEYS]
    config = Config(path=path)
    sources = dict(config.sources)
    if "mode" in data:
        config = config._replace(mode=_mode(data["mode"], where, path))
        sources["mode"] = "config"
    if "overall_tokens" in data:
        tokens = _tokens("overall_tokens", data["overall_tokens"], where, path, 'write e.g. overall_tokens = "2M"')
        config = config._replace(overall_tokens=tokens)
        sources["overall_tokens"] = "config"
    if "count" in data:
        config = config._replace(counted=_count(data["count"], where, path))
    if "on_error" in data:
        config = config._replace(on_error=_on_error(data["on_error"], where, path))
    if "lock_timeout" in data:
        config = config._replace(lock_timeout=_lock_timeout(data["lock_timeout"], where, path))
    if "ledger" in data:
        ledger = data["ledger"]
        if not isinstance(ledger, str) or not ledger.strip():
            raise ConfigError(
                f"ledger {_describe(ledger)} in {where} is not a path"
                ' — write e.g. ledger = "~/.claude/budget-ledger.toml"',
                path=path,
            )
        config = config._replace(ledger=ledger)
    overall: list[LimitSpec] = []
    for key, raw in data.items():
        if key.startswith("overall_") and key != "overall_tokens" and key not in KNOWN_KEYS:
            spec = _limit_key(key.removeprefix("overall_"), raw, key, where, path, f"{key} in {where}")
            if spec is not None:
                overall.append(spec)
                warnings[:] = [w for w in warnings if f'"{key}"' not in w]
    if "overall_usd" in data:
        overall.append(
            LimitSpec(
                "usd", _usd("overall_usd", data["overall_usd"], where, path), None, "config", f"overall_usd in {where}"
            )
        )
    if "window" in data:
        overall += _windows_table(data["window"], where, path, warnings)
    if "timezone" in data:
        config = config._replace(timezone=_timezone(data["timezone"], where, path))
    if "preflight" in data:
        raw = data["preflight"]
        choice = raw.strip().lower() if isinstance(raw, str) else None
        if choice not in PREFLIGHT:
            raise ConfigError(f"preflight {_describe(raw)} in {where} is not a choice — use p90, p50 or off", path=path)
        config = config._replace(preflight=choice)
    if "quota_guard" in data:
        config = config._replace(quota_guard=_quota_guard(data["quota_guard"], f"quota_guard in {where}", path))
    lazy = LazyLimits(where, path)
    if "commands" in data:
        config = config._replace(commands=_commands(data["commands"], where, path, warnings, lazy))
    config = config._replace(overall_limits=tuple(overall), command_limits=lazy)
    if "prices" in data:
        prices = data["prices"]
        if not isinstance(prices, dict):
            raise ConfigError(
                f"prices {_describe(prices)} in {where} is not a table"
                ' — write e.g. [prices."claude-x"] with input = 3 and output = 15 (USD per million tokens)',
                path=path,
            )
        config = config._replace(prices=MappingProxyType(prices))
    config = _team_keys(data, where, path, config)
    return config._replace(warnings=tuple(warnings), sources=sources)


def _team_keys(data: Mapping[str, object], where: str, path: Path | None, config: Config) -> Config:
    """``team_url``, ``team`` and ``on_team_unreachable`` (from the file, or the environment with path None)."""
    if not any(k in data for k in TEAM_KEYS):
        return config
    from budget_state.budgets._teamconfig import (
        team_setting,
    )  # lazy (urllib.parse, ipaddress: ~2 ms): only a team's config has these keys

    return config._replace(**team_setting(data, where, path))


def _quota_guard(value: object, where: str, path: Path | None) -> float:
    """``quota_guard = 90`` (or ``"90%"``): a percent of the plan's 5-hour window."""
    from budget_state.budgets._units import TokenValueError, parse_percent

    try:
        return parse_percent(value, what="quota_guard")
    except TokenValueError as exc:
        shown = f" {exc.shown}" if exc.shown else ""
        raise ConfigError(
            f"{where}{shown} {exc.reason} — write e.g. quota_guard = 90 (percent of the 5-hour window), "
            "or off in CLAUDE_BUDGET_QUOTA_GUARD",
            path=path,
        ) from None


def _timezone(value: object, where: str, path: Path) -> str | None:
    """An IANA zone name (checked now, so a typo is said at once), or None for "local"."""
    fix = 'use a zone name like "Europe/Paris" or "UTC", or "local" for this machine\'s'
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"timezone {_describe(value)} in {where} is not a time zone — {fix}", path=path)
    name = value.strip()
    if name.lower() == "local":
        return None
    from zoneinfo import ZoneInfo

    try:
        ZoneInfo(name)
    except (ValueError, OSError, LookupError):  # ZoneInfoNotFoundError is a KeyError
        raise ConfigError(
            f"timezone {_describe(value)} in {where} is not a known time zone — {fix}", path=path
        ) from None
    return name


def pricer(config: Config) -> Callable[[str, Mapping[str, object]], int | None]:
    """Micro-dollars for one API response (model, raw usage), with the config's ``[prices]``; None if unknown.

    The price table is read on first use: a hook that counts nothing never loads it.
    """
    table: list[Any] = []

    def price(model: str, usage: Mapping[str, object]) -> int | None:
        if not table:
            from budget_state.pricing import prices_for

            table.append(prices_for({"prices": dict(config.prices)} if config.prices else None))
        result: int | None = table[0].price(model, usage)
        return result

    return price


def _from_env(env: Mapping[str, str], config: Config) -> Config:
    """Environment variables beat the file; an empty one counts as unset (``none``/``off`` lift the overall cap)."""
    sources = dict(config.sources)
    if env.get("CLAUDE_BUDGET_MODE"):
        config = config._replace(mode=normalize_mode(env["CLAUDE_BUDGET_MODE"], where="CLAUDE_BUDGET_MODE"))
        sources["mode"] = "env"
    raw = env.get("CLAUDE_BUDGET_OVERALL")
    if raw:
        fix = "write e.g. CLAUDE_BUDGET_OVERALL=2M, or none for no overall budget"
        where = "CLAUDE_BUDGET_OVERALL"
        tokens = None if raw.strip().lower() in _NO_OVERALL else _tokens("overall_tokens", raw, where, None, fix)
        config = config._replace(overall_tokens=tokens)
        sources["overall_tokens"] = "env"
    raw_usd = (env.get("CLAUDE_BUDGET_OVERALL_USD") or "").strip()
    if raw_usd:
        kept = tuple(s for s in config.overall_limits if s.key != "usd")
        if raw_usd.lower() not in _NO_OVERALL:
            amount = _usd("CLAUDE_BUDGET_OVERALL_USD", raw_usd, None, None)
            kept += (LimitSpec("usd", amount, None, "env", "CLAUDE_BUDGET_OVERALL_USD"),)
        config = config._replace(overall_limits=kept)
    if env.get("CLAUDE_BUDGET_ON_ERROR"):
        config = config._replace(on_error=_on_error(env["CLAUDE_BUDGET_ON_ERROR"], "CLAUDE_BUDGET_ON_ERROR", None))
    if env.get("CLAUDE_BUDGET_LOCK_TIMEOUT"):
        seconds = _lock_timeout(env["CLAUDE_BUDGET_LOCK_TIMEOUT"], "CLAUDE_BUDGET_LOCK_TIMEOUT", None)
        config = config._replace(lock_timeout=seconds)
    raw_guard = (env.get("CLAUDE_BUDGET_QUOTA_GUARD") or "").strip()
    if raw_guard:
        off = raw_guard.lower() in _NO_OVERALL
        config = config._replace(
            quota_guard=None if off else _quota_guard(raw_guard, "CLAUDE_BUDGET_QUOTA_GUARD", None)
        )
    team = {k: env[v] for k, v in _TEAM_ENV.items() if env.get(v)}
    if team:
        config = _team_keys(team, "the environment (CLAUDE_BUDGET_TEAM*)", None, config)
    return config._replace(sources=sources)


_TEAM_ENV = {
    "team_url": "CLAUDE_BUDGET_TEAM_URL",
    "team": "CLAUDE_BUDGET_TEAM",
    "on_team_unreachable": "CLAUDE_BUDGET_ON_TEAM_UNREACHABLE",
}
