"""Money, priced as Claude Code prices it: USD for one API response, from the shipped price table.

::

    from budget_state.pricing import price_response
    price_response("claude-sonnet-4-5-20250929", record["message"]["usage"])  # -> 12345 (µ$) or None

Prices are whole **micro-dollars** (``int``), rounded (half to even) once per response: within 0.5 µ$
of the exact figure, so a sum over N responses is within N/2 µ$ of Claude Code's ``costUSD``.
A model the table does not know is ``None``, never 0.

The table is ``prices.toml`` in this package, parsed (``tomllib``) on first use (about 20 ms
with the imports). A user's overrides are ``[prices."model-id"]`` tables in ``.claude/budget.toml``,
with the table's keys (not yet read by ``_config``: pass the parsed file to :func:`prices_for`)::

    [prices."claude-sonnet-4-5"]        # any spelling; only the keys given change
    input = 2.5                         # USD per million tokens
    [prices."my-gateway-model"]         # a new model: input and output required,
    input = 2                           # cache rates default to 1.25x / 2x / 0.1x input
    output = 8

Claude Code's ``modelPricing`` managed setting -> :meth:`Prices.with_model_pricing`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from budget_state.pricing._rates import ModelRates, Rates
from budget_state.pricing._table import Prices, canonical_model, load_prices

__all__ = [
    "ModelRates",
    "Prices",
    "Rates",
    "canonical_model",
    "default_prices",
    "load_prices",
    "price_response",
    "prices_for",
]

_DEFAULT: list[Prices] = []


def default_prices() -> Prices:
    """The shipped table, read once per process.

    :raises ConfigError: the shipped table is malformed (a packaging bug).
    """
    if not _DEFAULT:
        _DEFAULT.append(load_prices())
    return _DEFAULT[0]


def prices_for(config: Mapping[str, Any] | None = None, managed_settings: Mapping[str, Any] | None = None, /) -> Prices:
    """The shipped table with a parsed ``budget.toml``'s ``[prices]`` and a settings mapping's ``modelPricing``.

    :param config: the parsed ``.claude/budget.toml`` (only its ``prices`` key is read).
    :param managed_settings: Claude Code's managed settings (only ``modelPricing`` is read; Claude
        Code honours it only from managed settings, so pass nothing else).
    :raises ConfigError: ``[prices]`` is malformed (names the key).
    """
    prices = default_prices()
    if config and config.get("prices"):
        prices = prices.with_overrides(config["prices"])
    if managed_settings and managed_settings.get("modelPricing"):
        prices = prices.with_model_pricing(managed_settings["modelPricing"])
    return prices


def price_response(model: str, usage: Mapping[str, Any], /, *, prices: Prices | None = None) -> int | None:
    """Micro-dollars for ONE API response: its ``message.model`` and raw ``message.usage``.

    :param model: the response's model id, any spelling (dated, ``[1m]``, Bedrock, Vertex).
    :param usage: the transcript's ``message.usage`` (``input_tokens``, ``output_tokens``,
        ``cache_creation_input_tokens``, ``cache_read_input_tokens``, ``cache_creation.ephemeral_*``,
        ``server_tool_use.web_search_requests``, ``speed``, ``inference_geo``).
    :param prices: the table to use (default: :func:`default_prices`).
    :returns: whole micro-dollars, or None when the table does not know the model.
    """
    return (prices or default_prices()).price(model, usage)
