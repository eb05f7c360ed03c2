"""Our price table against a well-kept price database: genai-prices (pydantic), a test extra only.

Every model of ``prices.toml`` is priced by both on fixed probe usages (one per category, a 250K
prompt for long-context tiers, fast mode, web search), at the table's ``checked`` date, so the
result does not move with the clock. A disagreement fails unless the model's ``differs`` lists
that probe (its ``note`` says why); a listed probe that no longer disagrees fails too, so the
explanations stay true. The test extra pins the genai-prices release: bumping it is a deliberate
step that re-runs this diff. genai-prices needs Python >= 3.11; below that the test is skipped.
"""

from __future__ import annotations

import datetime
import sys
from typing import Any

import pytest

from budget_state.pricing import default_prices, price_response
from budget_state.pricing._table import TABLE

genai_prices = pytest.importorskip("genai_prices", reason="genai-prices (test extra, Python >= 3.11) is not installed")

K = 100_000
# probe -> (our usage: Anthropic's fields, genai-prices usage: input_tokens counts cache tokens too, price context)
PROBES: dict[str, tuple[dict[str, Any], dict[str, int], dict[str, str] | None]] = {
    "input": ({"input_tokens": K}, {"input_tokens": K}, None),
    "output": ({"output_tokens": K}, {"output_tokens": K}, None),
    "cache_read": ({"cache_read_input_tokens": K}, {"input_tokens": K, "cache_read_tokens": K}, None),
    "cache_write_5m": ({"cache_creation_input_tokens": K}, {"input_tokens": K, "cache_write_tokens": K}, None),
    "cache_write_1h": (
        {"cache_creation_input_tokens": K, "cache_creation": {"ephemeral_1h_input_tokens": K}},
        {"input_tokens": K, "cache_write_tokens": K, "cache_write_1h_tokens": K},
        None,
    ),
    "long_prompt": (
        {"input_tokens": 250_000, "output_tokens": 10_000},
        {"input_tokens": 250_000, "output_tokens": 10_000},
        None,
    ),
    "web_search": ({"server_tool_use": {"web_search_requests": 1000}}, {"web_searches": 1000}, None),
    "fast": (
        {"input_tokens": K, "output_tokens": 10_000, "speed": "fast"},
        {"input_tokens": K, "output_tokens": 10_000},
        {"speed": "fast"},
    ),
}


def _table() -> dict[str, Any]:
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover (genai-prices needs 3.11 anyway)
        import tomli as tomllib
    with TABLE.open("rb") as f:
        return tomllib.load(f)


def _theirs(model: str, usage: dict[str, int], context: dict[str, str] | None, at: datetime.datetime) -> int | str:
    try:
        price = genai_prices.calc_price(
            genai_prices.Usage(**usage),
            model_ref=model,
            provider_id="anthropic",
            genai_request_timestamp=at,
            price_context=context,
        )
    except LookupError:
        return "model"  # it does not know the model
    return int((price.total_price * 1_000_000).to_integral_value())


def test_the_table_agrees_with_genai_prices_or_says_why():
    prices = default_prices()
    at = datetime.datetime.fromisoformat(prices.checked).replace(tzinfo=datetime.timezone.utc)
    differs = {m: set((e.get("differs") or {}).get("genai-prices", [])) for m, e in _table()["models"].items()}
    unexplained, stale, explained = [], [], []
    for model in sorted(prices.models):
        disagree = set()
        for probe, (ours_usage, their_usage, context) in PROBES.items():
            ours = price_response(model, ours_usage)
            theirs = _theirs(model, their_usage, context, at)
            if theirs == "model":
                disagree.add("model")
                continue
            if ours is None or abs(ours - int(theirs)) > 1:
                disagree.add(probe)
                row = f"{model:20} {probe:15} ours {ours} µ$, genai-prices {theirs} µ$"
                (explained if probe in differs[model] else unexplained).append(row)
        if "model" in disagree and "model" not in differs[model]:
            unexplained.append(f"{model:20} genai-prices {genai_prices.__version__} does not know it")
        stale += [f"{model:20} {probe}: listed in differs, but they agree" for probe in differs[model] - disagree]
    print("\n".join(["known disagreements with genai-prices (see each model's note):", *explained]))
    assert not unexplained, "disagreements prices.toml does not explain (fix a rate, or add the probe to `differs`" + (
        " and say why in `note`):\n" + "\n".join(unexplained)
    )
    assert not stale, "explanations prices.toml no longer needs:\n" + "\n".join(stale)
