"""The price table: ``prices.toml``, a user's ``[prices]`` overrides, Claude Code's ``modelPricing``.

Rates are held as integers so that pricing is exact integer arithmetic: a rate in USD per million
tokens is a number of micro-dollars per token, and is kept in millionths of that (pico-dollars
per token, ``PICO``). A table rate with more than six decimals is refused rather than rounded.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from budget_state._errors import ConfigError
from budget_state.pricing._rates import PICO, ModelRates, Rates

TABLE = Path(__file__).with_name("prices.toml")
RATE_KEYS = ("input", "output", "cache_write_5m", "cache_write_1h", "cache_read")
MODEL_KEYS = (*RATE_KEYS, "web_search", "fast_multiplier", "long_context", "aliases", "note")
# Anthropic's standard cache multipliers on the input rate: what a user-added model gets by default.
_CACHE_DEFAULTS = {"cache_write_5m": 1.25, "cache_write_1h": 2.0, "cache_read": 0.1}
_MODEL_PRICING_KEYS = {"input": "input", "output": "output", "cacheRead": "cache_read", "cacheWrite": "cache_write"}
_MAX_MODEL_PRICING_RATE = 10_000  # Claude Code's bound on a modelPricing rate (USD / Mtok)

# Spellings of one model: Bedrock ("us.anthropic.claude-…-v1:0"), Vertex ("claude-…@20251001"),
# dated first-party ids ("claude-sonnet-4-5-20250929"), "-latest", and the "[1m]" context suffix.
_ONE_M = re.compile(r"\[1m\]$")
_BEDROCK_PREFIX = re.compile(r"^(?:[a-z]{2,6}\.)?anthropic\.")
_BEDROCK_VERSION = re.compile(r"-v\d+(?::\d+)?$")
_VERTEX_VERSION = re.compile(r"@[\w.-]*$")
_DATE = re.compile(r"-(?:\d{8}|latest)$")


def canonical_model(model: str, /) -> str:
    """The table's spelling of a model id: lower case, no ``[1m]``, provider prefix, version or date.

    ``"claude-sonnet-4-5-20250929[1m]"``, ``"us.anthropic.claude-sonnet-4-5-20250929-v1:0"`` and
    ``"claude-sonnet-4-5@20250929"`` all become ``"claude-sonnet-4-5"``.
    """
    name = _ONE_M.sub("", model.strip().lower())
    name = _BEDROCK_PREFIX.sub("", name)
    name = _BEDROCK_VERSION.sub("", name)
    name = _VERTEX_VERSION.sub("", name)
    return _DATE.sub("", name)


def _micro(value: Any, where: str, *, path: Path | None, scale: int = PICO) -> int:
    """A non-negative decimal number as an integer count of 1/``scale`` units, exactly."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise ConfigError(f"{where}: expected a number >= 0, got {value!r}", path=path)
    exact = round(value * scale)
    if abs(value * scale - exact) > 1e-9 * max(1.0, abs(value * scale)):  # float noise only
        raise ConfigError(f"{where}: {value!r} has more decimals than the table keeps (6)", path=path)
    return int(exact)


def _rates(entry: Mapping[str, Any], where: str, *, path: Path | None, base: Rates | None = None) -> Rates:
    values = {}
    for key in RATE_KEYS:
        if key in entry:
            values[key] = _micro(entry[key], f"{where}.{key}", path=path)
        elif base is not None:
            values[key] = getattr(base, key)
        elif key in _CACHE_DEFAULTS and "input" in values:
            values[key] = round(values["input"] * _CACHE_DEFAULTS[key])
        else:
            raise ConfigError(f"{where}: missing {key!r} (USD per million tokens)", path=path)
    return Rates(**values)


def parse_model(
    model: str,
    entry: Mapping[str, Any],
    /,
    *,
    where: str,
    web_search: int,
    path: Path | None = None,
    base: ModelRates | None = None,
    table_keys: tuple[str, ...] = (),
) -> ModelRates:
    """One ``[models."id"]`` / ``[prices."id"]`` table; over ``base`` only the keys given change.

    ``table_keys`` are further keys allowed and ignored (the shipped table's ``differs``).
    """
    if not isinstance(entry, Mapping):
        raise ConfigError(f"{where}: expected a table of rates, got {entry!r}", path=path)
    unknown = sorted(set(entry) - set(MODEL_KEYS) - set(table_keys))
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(unknown)}; known: {', '.join(MODEL_KEYS)}", path=path)
    rates = _rates(entry, where, path=path, base=base.base if base else None)
    search = web_search if base is None else base.web_search
    if "web_search" in entry:  # USD per 1,000 requests -> pico-dollars per request
        search = _micro(entry["web_search"], f"{where}.web_search", path=path, scale=PICO * 1000)
    above, long_rates = (base.long_context_above, base.long_context) if base else (None, None)
    if "long_context" in entry:
        tier = entry["long_context"]
        if not isinstance(tier, Mapping) or not isinstance(tier.get("above"), int) or tier["above"] <= 0:
            fix = "expected { above = <prompt tokens>, <rates> }"
            raise ConfigError(f"{where}.long_context: {fix}, got {tier!r}", path=path)
        extra = sorted(set(tier) - {"above", *RATE_KEYS})
        if extra:
            raise ConfigError(f"{where}.long_context: unknown key(s) {', '.join(extra)}", path=path)
        above, long_rates = tier["above"], _rates(tier, f"{where}.long_context", path=path)
    fast = base.fast_ppm if base else None
    if "fast_multiplier" in entry:
        fast = _micro(entry["fast_multiplier"], f"{where}.fast_multiplier", path=path)
    aliases = tuple(base.aliases) if base else ()
    if "aliases" in entry:
        raw = entry["aliases"]
        if not isinstance(raw, list) or not all(isinstance(a, str) for a in raw):
            raise ConfigError(f"{where}.aliases: expected a list of model ids, got {raw!r}", path=path)
        aliases = tuple(canonical_model(a) for a in raw)
    note = entry.get("note", base.note if base else "")
    if not isinstance(note, str):
        raise ConfigError(f"{where}.note: expected a string, got {note!r}", path=path)
    return ModelRates(model, rates, search, above, long_rates, fast, aliases, note)


class Prices:
    """A price table: models by canonical id, plus Claude Code ``modelPricing`` rows and multiplier."""

    def __init__(
        self,
        models: Mapping[str, ModelRates],
        /,
        *,
        checked: str = "",
        source: str = "",
        web_search: int = 10 * PICO * 1000,  # USD 10 per 1,000 requests
        geo_us_ppm: int = PICO,
        exact: Mapping[str, ModelRates] | None = None,
        multiplier_ppm: int = PICO,
        warnings: tuple[str, ...] = (),
    ) -> None:
        self.models = dict(models)
        self.checked = checked
        self.source = source
        self.web_search = web_search
        self.geo_us_ppm = geo_us_ppm
        self.exact = dict(exact or {})  # modelPricing rows keyed by their own spelling (lower case)
        self.multiplier_ppm = multiplier_ppm
        self.warnings = warnings
        self._aliases = {alias: m.model for m in self.models.values() for alias in m.aliases}

    def _replace(self, **changes: Any) -> Prices:
        models = changes.pop("models", self.models)
        fields: dict[str, Any] = {
            "checked": self.checked,
            "source": self.source,
            "web_search": self.web_search,
            "geo_us_ppm": self.geo_us_ppm,
            "exact": self.exact,
            "multiplier_ppm": self.multiplier_ppm,
            "warnings": self.warnings,
            **changes,
        }
        return Prices(models, **fields)

    def resolve(self, model: str, /) -> str | None:
        """The table id that prices ``model`` (any spelling), or None when the table does not know it."""
        name = canonical_model(model)
        name = self._aliases.get(name, name)
        return name if name in self.models else None

    def rates(self, model: str, /) -> ModelRates | None:
        """The rates that price ``model``: a ``modelPricing`` row for its exact spelling first."""
        if self.exact:
            row = self.exact.get(_ONE_M.sub("", model.strip().lower()))
            if row is not None:
                return row
            resolved = self.resolve(model)
            if resolved is not None and resolved in self.exact:
                return self.exact[resolved]
        resolved = self.resolve(model)
        return self.models[resolved] if resolved is not None else None

    def price(self, model: str, usage: Mapping[str, Any], /) -> int | None:
        """Micro-dollars for one API response; see :func:`budget_state.pricing.price_response`."""
        from budget_state.pricing._price import price_usage  # lazy: only a price needs it

        rates = self.rates(model)
        if rates is None:
            return None
        return price_usage(rates, usage, geo_us_ppm=self.geo_us_ppm, multiplier_ppm=self.multiplier_ppm)

    def with_overrides(self, prices: Mapping[str, Any], /, *, path: Path | None = None) -> Prices:
        """This table with a user's ``[prices."model-id"]`` tables (``.claude/budget.toml``) applied.

        A table for a model this one knows (any spelling) changes only the keys it gives; one for a
        new model needs ``input`` and ``output`` (cache rates default to 1.25x / 2x / 0.1x input).

        :raises ConfigError: an entry is not a table of known keys with numbers >= 0.
        """
        if not isinstance(prices, Mapping):
            raise ConfigError(f'prices: expected [prices."model-id"] tables, got {prices!r}', path=path)
        models = dict(self.models)
        for model, entry in prices.items():
            known = self.resolve(model)
            key = known or canonical_model(model)
            models[key] = parse_model(
                key,
                entry,
                where=f'prices."{model}"',
                web_search=self.web_search,
                path=path,
                base=models.get(key),
            )
        return self._replace(models=models)

    def with_model_pricing(self, model_pricing: Mapping[str, Any] | None, /) -> Prices:
        """This table priced as Claude Code prices under its ``modelPricing`` managed setting (2.1.243+).

        Shape (Claude Code 2.1.332's settings schema): ``{"multiplier": 0 < m <= 10, "overrides":
        {"model-id": {"input", "output", "cacheRead", "cacheWrite"}}}`` in USD per million tokens, all
        four required, each 0 to 10000. An override row is charged exactly as written: ``cacheWrite``
        prices 5-minute and 1-hour writes, no fast-mode, US-inference or long-context rate applies, web
        search stays at list. A key that names a model the table knows covers all its spellings; any
        other key matches only that spelling (and an exact spelling wins). ``multiplier`` scales every
        cost, overridden or not, web search included. Invalid rows and multipliers are skipped and
        listed in :attr:`warnings`, as Claude Code skips and reports them.
        """
        if not model_pricing:
            return self
        warnings = list(self.warnings)
        multiplier = model_pricing.get("multiplier", 1)
        multiplier_ppm = self.multiplier_ppm
        if isinstance(multiplier, bool) or not isinstance(multiplier, (int, float)) or not 0 < multiplier <= 10:
            warnings.append(f"modelPricing.multiplier: expected a number in (0, 10], got {multiplier!r}; ignored")
        else:
            multiplier_ppm = round(multiplier * PICO)
        exact = dict(self.exact)
        builtin: dict[str, ModelRates] = {}
        overrides = model_pricing.get("overrides") or {}
        for key, row in overrides.items() if isinstance(overrides, Mapping) else ():
            values = {}
            for field, ours in _MODEL_PRICING_KEYS.items():
                value = row.get(field) if isinstance(row, Mapping) else None
                if isinstance(value, bool) or not isinstance(value, (int, float)):
                    break
                if not 0 <= value <= _MAX_MODEL_PRICING_RATE:
                    break
                values[ours] = round(value * PICO)
            else:
                spelling = _ONE_M.sub("", key.strip().lower())
                write = values["cache_write"]
                rates = Rates(values["input"], values["output"], write, write, values["cache_read"])
                known = self.resolve(key)
                entry = ModelRates(known or spelling, rates, self.web_search, note="modelPricing", exact=True)
                if spelling in exact:
                    warnings.append(f"modelPricing.overrides: {key!r} repeats an earlier row; the earlier row is used")
                    continue
                exact[spelling] = entry
                if known is not None and known not in builtin:
                    builtin[known] = entry
                continue
            warnings.append(
                f"modelPricing.overrides.{key}: expected {{input, output, cacheRead, cacheWrite}}, "
                f"each 0 to {_MAX_MODEL_PRICING_RATE}; skipped"
            )
        for known, entry in builtin.items():
            exact.setdefault(known, entry)
        return self._replace(exact=exact, multiplier_ppm=multiplier_ppm, warnings=tuple(warnings))


def parse_table(data: Mapping[str, Any], /, *, path: Path | None = None) -> Prices:
    """A parsed ``prices.toml`` as :class:`Prices`.

    :raises ConfigError: a model entry is malformed (names the key).
    """
    meta = data.get("meta") or {}
    defaults = data.get("defaults") or {}
    web_search = _micro(defaults.get("web_search", 10), "defaults.web_search", path=path, scale=PICO * 1000)
    geo = _micro(defaults.get("inference_geo_us", 1), "defaults.inference_geo_us", path=path)
    models: dict[str, ModelRates] = {}
    for model, entry in (data.get("models") or {}).items():
        key = canonical_model(model)
        if key != model:
            raise ConfigError(f'models."{model}": write the canonical id "{key}"', path=path)
        where = f'models."{model}"'
        models[key] = parse_model(key, entry, where=where, web_search=web_search, path=path, table_keys=("differs",))
    return Prices(
        models,
        checked=str(meta.get("checked", "")),
        source=str(meta.get("source", "")),
        web_search=web_search,
        geo_us_ppm=geo,
    )


def load_prices(path: Path | None = None, /) -> Prices:
    """Read a price table (default: the ``prices.toml`` shipped in this package).

    :raises ConfigError: the file does not parse or an entry is malformed.
    """
    where = path or TABLE
    if sys.version_info >= (3, 11):
        import tomllib  # Lazy: only a process that prices something pays for the parser.
    else:  # pragma: no cover (exercised on Python < 3.11 only)
        import tomli as tomllib
    try:
        with where.open("rb") as f:
            data = tomllib.load(f)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read the price table {where}: {exc}", path=where) from None
    return parse_table(data, path=where)
