"""The arithmetic: one API response's ``usage`` at one model's rates -> whole micro-dollars.

Everything is exact integer arithmetic on pico-dollars, with one rounding (half to even) to micro-dollars
at the end, so a response's price is within 0.5 µ$ of the exact figure and of Claude Code's float
``costUSD`` (whose own error is far smaller). The rules are Claude Code's (2.1.197 and 2.1.332,
read from its code and checked against its ``costUSD`` in tests/e2e/test_prices_match_claude_code.py):

- cache writes: ``cache_creation.ephemeral_1h_input_tokens`` (at most the total) at the 1-hour
  rate, the rest of ``cache_creation_input_tokens`` at the 5-minute rate;
- a long-context tier prices the whole request (output included) when input + cache writes +
  cache reads is more than its threshold;
- ``speed`` other than ``"standard"`` (``"fast"``) multiplies the token rates by the model's fast
  multiplier (a model without one is priced at its standard rates, as Claude Code does);
- ``inference_geo == "us"`` multiplies the token cost (not web search) by the table's surcharge;
- ``server_tool_use.web_search_requests`` are priced per request, with no surcharge;
- a ``modelPricing`` multiplier scales everything; its override rows take no surcharge at all.

``service_tier`` is not priced: Claude Code ignores it and never uses the batch tier.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from budget_state.pricing._rates import PICO, ModelRates


def _count(value: Any) -> int:
    """A token or request count from a transcript; anything else (None, "", a negative) is 0."""
    if isinstance(value, bool):
        return 0
    if isinstance(value, int):
        return max(value, 0)
    if isinstance(value, float) and value.is_integer():
        return max(int(value), 0)
    return 0


def _fast(speed: Any) -> bool:
    # Claude Code 2.1.332 prices any speed other than "standard" as fast (and logs it).
    return isinstance(speed, str) and speed not in ("", "standard")


def price_usage(
    rates: ModelRates, usage: Mapping[str, Any], /, *, geo_us_ppm: int = PICO, multiplier_ppm: int = PICO
) -> int:
    """Micro-dollars for one response's raw ``message.usage`` at ``rates`` (see the module doc)."""
    input_ = _count(usage.get("input_tokens"))
    output = _count(usage.get("output_tokens"))
    read = _count(usage.get("cache_read_input_tokens"))
    split = usage.get("cache_creation")
    split = split if isinstance(split, Mapping) else {}
    one_hour = _count(split.get("ephemeral_1h_input_tokens"))
    if "cache_creation_input_tokens" in usage:
        writes = _count(usage.get("cache_creation_input_tokens"))
    else:
        writes = _count(split.get("ephemeral_5m_input_tokens")) + one_hour
    one_hour = min(one_hour, writes)
    r = rates.base
    above = rates.long_context_above
    if rates.long_context is not None and above is not None and input_ + writes + read > above:
        r = rates.long_context
    num = (
        input_ * r.input
        + output * r.output
        + (writes - one_hour) * r.cache_write_5m
        + one_hour * r.cache_write_1h
        + read * r.cache_read
    )
    den = 1
    if not rates.exact:
        if rates.fast_ppm is not None and _fast(usage.get("speed")):
            num, den = num * rates.fast_ppm, den * PICO
        if usage.get("inference_geo") == "us":
            num, den = num * geo_us_ppm, den * PICO
    tools = usage.get("server_tool_use")
    searches = _count(tools.get("web_search_requests")) if isinstance(tools, Mapping) else 0
    num += searches * rates.web_search * den
    num, den = num * multiplier_ppm, den * PICO * PICO  # the multiplier, then pico- to micro-dollars
    # Half to even: rates such as 1.25 or 6.25 make exact halves common, and half up would bias sums upward.
    quotient, rest = divmod(num, den)
    return quotient + (2 * rest > den or (2 * rest == den and quotient % 2 == 1))
