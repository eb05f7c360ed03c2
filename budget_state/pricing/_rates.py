"""The rates of one model, in pico-dollars per token: what the table holds and what a price multiplies."""

from __future__ import annotations

from typing import NamedTuple

PICO = 1_000_000  # pico-dollars per micro-dollar: a rate of 1 USD / Mtok is PICO pico-dollars per token


class Rates(NamedTuple):
    """One set of token rates, in pico-dollars per token (= micro-USD per million tokens)."""

    input: int
    output: int
    cache_write_5m: int
    cache_write_1h: int
    cache_read: int


class ModelRates(NamedTuple):
    """What one model costs. ``exact`` rows (Claude Code ``modelPricing`` overrides) get no surcharges."""

    model: str
    base: Rates
    web_search: int  # pico-dollars per request
    long_context_above: int | None = None  # prompt tokens; the tier applies strictly above
    long_context: Rates | None = None
    fast_ppm: int | None = None  # fast-mode multiplier, in millionths
    aliases: tuple[str, ...] = ()
    note: str = ""
    exact: bool = False
