"""The price arithmetic: each category, the long-context boundary, model spellings, fast mode, web
search, US inference, unknown models, ``[prices]`` overrides and Claude Code's ``modelPricing``."""

from __future__ import annotations

from pathlib import Path

import pytest

from budget_state import ConfigError
from budget_state.pricing import Prices, canonical_model, default_prices, load_prices, price_response, prices_for

M = 1_000_000  # one million tokens: at these, a price in µ$ is the rate in USD / Mtok times 1e6


@pytest.mark.parametrize(
    ("usage", "usd"),
    [
        ({"input_tokens": M}, 3),
        ({"output_tokens": M}, 15),
        ({"cache_read_input_tokens": M}, 0.30),
        ({"cache_creation_input_tokens": M}, 3.75),  # no split given: all 5-minute
        ({"cache_creation_input_tokens": M, "cache_creation": {"ephemeral_1h_input_tokens": M}}, 6),
        ({"cache_creation": {"ephemeral_5m_input_tokens": M, "ephemeral_1h_input_tokens": M}}, 3.75 + 6),
        ({"server_tool_use": {"web_search_requests": 1000}}, 10),
        ({}, 0),
    ],
    ids=["input", "output", "cache-read", "cache-write-5m", "cache-write-1h", "split-only", "web-search", "empty"],
)
def test_each_category(usage, usd):
    assert price_response("claude-sonnet-4-6", usage) == round(usd * 1e6)


def test_a_whole_response_sums_its_categories_exactly():
    usage = {
        "input_tokens": 49,
        "output_tokens": 222,
        "cache_creation_input_tokens": 2437,
        "cache_read_input_tokens": 5894,
        "cache_creation": {"ephemeral_5m_input_tokens": 1437, "ephemeral_1h_input_tokens": 1000},
        "server_tool_use": {"web_search_requests": 3},
        "speed": "fast",
        "inference_geo": "us",
        "service_tier": "standard",
    }
    # Opus 5.5 fast (8 / 40 / 10 / 16 / 0.4) x1.1 for US inference, plus 3 searches: 76,199.56 µ$,
    # as Claude Code 2.1.332 priced this response.
    assert price_response("claude-opus-5-5", usage) == 76200


def test_one_hour_writes_beyond_the_total_are_capped_and_the_rest_is_5_minute():
    usage = {"cache_creation_input_tokens": 1000, "cache_creation": {"ephemeral_1h_input_tokens": 5000}}
    assert price_response("claude-haiku-4-5", usage) == 1000 * 2
    usage = {"cache_creation_input_tokens": 1000, "cache_creation": {"ephemeral_1h_input_tokens": 400}}
    assert price_response("claude-haiku-4-5", usage) == 400 * 2 + 600 * 1.25


@pytest.mark.parametrize(
    ("prompt", "long"),
    [(99_999, False), (100_000, False), (100_001, True)],
    ids=["below", "at-threshold", "above"],
)
def test_long_context_tier_applies_strictly_above_the_threshold_to_the_whole_request(prompt, long):
    # The prompt is input + cache writes + cache reads; output is re-priced too.
    usage = {
        "input_tokens": 1000,
        "cache_creation_input_tokens": 2000,
        "cache_read_input_tokens": prompt - 3000,
        "output_tokens": 10_000,
    }
    base = 1000 * 0.10 + 2000 * 0.125 + (prompt - 3000) * 0.01 + 10_000 * 0.50
    tier = 1000 * 0.50 + 2000 * 0.625 + (prompt - 3000) * 0.05 + 10_000 * 2.50
    expected = round(tier if long else base)
    assert price_response("claude-haiku-5-5", usage) == expected


def test_sonnet_4_5_over_200k_is_list_priced_whole_request():
    usage = {"input_tokens": 200_001, "output_tokens": 1000}
    assert price_response("claude-sonnet-4-5", usage) == 200_001 * 6 + 1000 * 22.5
    usage = {"input_tokens": 200_000, "output_tokens": 1000}
    assert price_response("claude-sonnet-4-5", usage) == 200_000 * 3 + 1000 * 15


@pytest.mark.parametrize(
    "model",
    [
        "claude-sonnet-4-5",
        "claude-sonnet-4-5-20250929",
        "claude-sonnet-4-5-20250929[1m]",
        "Claude-Sonnet-4-5[1M]",
        "claude-sonnet-4-5@20250929",
        "us.anthropic.claude-sonnet-4-5-20250929-v1:0",
        "anthropic.claude-sonnet-4-5-20250929-v1:0",
        "claude-sonnet-4-5-latest",
    ],
)
def test_spellings_of_one_model(model):
    assert default_prices().resolve(model) == "claude-sonnet-4-5"
    assert price_response(model, {"input_tokens": 100_000}) == 300_000


@pytest.mark.parametrize(
    ("model", "resolved"),
    [
        ("claude-sonnet-4-20250514", "claude-sonnet-4-0"),
        ("claude-opus-4-20250514", "claude-opus-4-0"),
        ("claude-opus-4-1-20250805", "claude-opus-4-1"),
        ("claude-3-5-haiku-20241022", "claude-3-5-haiku"),
        ("claude-opus-5-5[1m]", "claude-opus-5-5"),
    ],
)
def test_aliases_and_dated_ids(model, resolved):
    assert default_prices().resolve(model) == resolved


def test_canonical_model():
    assert canonical_model("us.anthropic.claude-haiku-4-5-20251001-v1:0") == "claude-haiku-4-5"
    assert canonical_model("claude-haiku-4-5@20251001") == "claude-haiku-4-5"


@pytest.mark.parametrize("model", ["claude-weird-9", "gpt-5", "", "claude-fable-5-9", "claude-opus"])
def test_an_unknown_model_is_none_never_zero(model):
    assert price_response(model, {"input_tokens": 1000}) is None


@pytest.mark.parametrize(
    ("model", "multiplier"),
    [("claude-opus-4-6", 6), ("claude-opus-4-8", 2), ("claude-opus-5-5", 2), ("claude-haiku-4-5", 1)],
)
def test_fast_mode_multiplies_every_token_rate_but_not_web_search(model, multiplier):
    usage = {"input_tokens": 1000, "output_tokens": 1000, "cache_read_input_tokens": 1000}
    searches = {"server_tool_use": {"web_search_requests": 2}}
    standard = price_response(model, {**usage, "speed": "standard"})
    assert standard is not None
    assert price_response(model, {**usage, "speed": "fast"}) == standard * multiplier
    fast_search = price_response(model, {**usage, **searches, "speed": "fast"})
    assert fast_search == standard * multiplier + 20_000


def test_us_inference_surcharge_is_on_tokens_only():
    usage = {"input_tokens": M, "server_tool_use": {"web_search_requests": 1}, "inference_geo": "us"}
    assert price_response("claude-opus-4-8", usage) == 5_500_000 + 10_000
    assert price_response("claude-opus-4-8", {**usage, "inference_geo": "global"}) == 5_000_000 + 10_000


@pytest.mark.parametrize(
    "usage",
    [
        {"input_tokens": None, "output_tokens": "12"},
        {"input_tokens": -5, "cache_creation": None, "server_tool_use": []},
        {"input_tokens": True},
    ],
)
def test_odd_fields_count_as_zero(usage):
    assert price_response("claude-haiku-4-5", usage) == 0


def test_rounding_is_half_to_even_in_whole_micro_dollars():
    # Haiku 5.5: 0.125 µ$ per 5-minute written token -> 4 tokens = 0.5 µ$, 12 tokens = 1.5 µ$.
    assert price_response("claude-haiku-5-5", {"cache_creation_input_tokens": 4}) == 0
    assert price_response("claude-haiku-5-5", {"cache_creation_input_tokens": 12}) == 2
    assert price_response("claude-haiku-5-5", {"cache_creation_input_tokens": 5}) == 1  # 0.625


def test_the_shipped_table():
    prices = default_prices()
    assert prices.checked == "2026-12-02"
    assert "platform.claude.com" in prices.source
    assert {"claude-opus-4-8", "claude-sonnet-4-5", "claude-haiku-4-5", "claude-opus-5-5"} <= set(prices.models)
    assert (Path(__file__).parents[1] / "budget_state" / "pricing" / "prices.toml").is_file()


def test_overrides_change_only_the_keys_given_and_reach_every_spelling():
    prices = default_prices().with_overrides({"claude-sonnet-4-5-20250929": {"input": 2.5}})
    assert price_response("claude-sonnet-4-5[1m]", {"input_tokens": 100_000}, prices=prices) == 250_000
    assert price_response("claude-sonnet-4-5", {"output_tokens": M}, prices=prices) == 15_000_000
    assert price_response("claude-sonnet-4-5", {"input_tokens": 100_000}) == 300_000  # the default is untouched
    assert price_response("claude-sonnet-4-5", {"input_tokens": 200_001}, prices=prices) == 200_001 * 6  # tier kept


def test_an_override_adds_a_model_with_standard_cache_multipliers():
    prices = default_prices().with_overrides({"my-gateway-model": {"input": 2, "output": 8, "web_search": 5}})
    usage = {
        "input_tokens": M,
        "output_tokens": M,
        "cache_creation_input_tokens": 2 * M,
        "cache_creation": {"ephemeral_1h_input_tokens": M},
        "cache_read_input_tokens": M,
        "server_tool_use": {"web_search_requests": 1000},
    }
    assert price_response("my-gateway-model", usage, prices=prices) == (2 + 8 + 2.5 + 4 + 0.2 + 5) * 1e6


def test_prices_for_reads_the_config_prices_table_and_model_pricing():
    prices = prices_for({"prices": {"claude-haiku-4-5": {"output": 4}}}, {"modelPricing": {"multiplier": 0.5}})
    assert price_response("claude-haiku-4-5", {"output_tokens": M}, prices=prices) == 2_000_000
    assert prices_for() is default_prices()


@pytest.mark.parametrize(
    ("prices", "message"),
    [
        ({"claude-x": {"output": 1}}, "prices.\"claude-x\": missing 'input' (USD per million tokens)"),
        ({"claude-haiku-4-5": {"inptu": 1}}, 'prices."claude-haiku-4-5": unknown key(s) inptu; known: '),
        ({"claude-haiku-4-5": {"input": -1}}, 'prices."claude-haiku-4-5".input: expected a number >= 0, got -1'),
        ({"claude-haiku-4-5": {"input": "1"}}, "prices.\"claude-haiku-4-5\".input: expected a number >= 0, got '1'"),
        ({"claude-haiku-4-5": {"input": 1.0000001}}, "has more decimals than the table keeps (6)"),
        ({"claude-haiku-4-5": {"long_context": {"input": 1}}}, "long_context: expected { above = <prompt tokens>"),
        ({"claude-haiku-4-5": 3}, 'prices."claude-haiku-4-5": expected a table of rates, got 3'),
    ],
)
def test_bad_overrides_name_the_key(prices, message):
    with pytest.raises(ConfigError) as info:
        default_prices().with_overrides(prices, path=Path("budget.toml"))
    assert message in str(info.value)
    assert info.value.path == Path("budget.toml")


def test_model_pricing_rows_are_charged_as_written_and_the_multiplier_scales_everything():
    prices = default_prices().with_model_pricing(
        {
            "multiplier": 0.5,
            "overrides": {"claude-opus-4-8": {"input": 4, "output": 20, "cacheRead": 0.4, "cacheWrite": 5}},
        }
    )
    usage = {
        "input_tokens": M,
        "output_tokens": M,
        "cache_read_input_tokens": M,
        "cache_creation_input_tokens": 2 * M,
        "cache_creation": {"ephemeral_1h_input_tokens": M},  # 1-hour writes at cacheWrite too
        "server_tool_use": {"web_search_requests": 1000},  # list price, then the multiplier
        "speed": "fast",  # no fast-mode or US surcharge on an override row
        "inference_geo": "us",
    }
    assert price_response("claude-opus-4-8-20990101[1m]", usage, prices=prices) == (4 + 20 + 0.4 + 10 + 10) * 0.5e6
    # A model without a row: list price (with its surcharges), times the multiplier.
    assert price_response("claude-haiku-4-5", {"input_tokens": M, "inference_geo": "us"}, prices=prices) == 550_000
    assert prices.warnings == ()


def test_model_pricing_exact_spelling_wins_and_unknown_keys_match_only_themselves():
    rows = {
        "claude-sonnet-4-6": {"input": 1, "output": 1, "cacheRead": 1, "cacheWrite": 1},
        "claude-sonnet-4-6-20990101": {"input": 2, "output": 2, "cacheRead": 2, "cacheWrite": 2},
        "my-alias": {"input": 7, "output": 7, "cacheRead": 7, "cacheWrite": 7},
    }
    prices = default_prices().with_model_pricing({"overrides": rows})
    assert price_response("claude-sonnet-4-6", {"input_tokens": M}, prices=prices) == 1_000_000
    assert price_response("claude-sonnet-4-6-20990101", {"input_tokens": M}, prices=prices) == 2_000_000
    assert price_response("MY-ALIAS[1m]", {"input_tokens": M}, prices=prices) == 7_000_000
    assert price_response("my-alias-2", {"input_tokens": M}, prices=prices) is None


def test_invalid_model_pricing_rows_are_skipped_and_reported():
    prices = default_prices().with_model_pricing(
        {
            "multiplier": 11,
            "overrides": {
                "claude-haiku-4-5": {"input": 1, "output": 1, "cacheRead": 1},
                "claude-opus-4-8": {"input": 1, "output": 1, "cacheRead": 1, "cacheWrite": 10_001},
            },
        }
    )
    assert prices.multiplier_ppm == 1_000_000
    assert price_response("claude-haiku-4-5", {"input_tokens": M}, prices=prices) == 1_000_000  # list
    assert prices.warnings == (
        "modelPricing.multiplier: expected a number in (0, 10], got 11; ignored",
        "modelPricing.overrides.claude-haiku-4-5: expected {input, output, cacheRead, cacheWrite}, "
        "each 0 to 10000; skipped",
        "modelPricing.overrides.claude-opus-4-8: expected {input, output, cacheRead, cacheWrite}, "
        "each 0 to 10000; skipped",
    )


def test_load_prices_reports_a_broken_table(tmp_path):
    bad = tmp_path / "prices.toml"
    bad.write_text('[models."claude-x-20250101"]\ninput = 1\noutput = 2\n', encoding="utf-8")
    with pytest.raises(ConfigError, match='write the canonical id "claude-x"'):
        load_prices(bad)
    bad.write_text("[models\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="cannot read the price table"):
        load_prices(bad)


def test_prices_is_a_plain_object_with_no_side_effects():
    base = default_prices()
    changed = base.with_overrides({"claude-haiku-4-5": {"input": 9}})
    assert isinstance(changed, Prices) and changed is not base
    assert price_response("claude-haiku-4-5", {"input_tokens": M}) == 1_000_000
