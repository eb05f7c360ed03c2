"""The price table against the reference, Claude Code itself: ``modelUsage[model].costUSD``.

Each test runs ``claude -p --model M`` (a main thread, a Bash call and a subagent) against the
fake API, which answers as M with usage of every kind (5-minute and 1-hour cache writes, cache
reads, web searches). ``price_response`` summed over the transcript's responses (main file and
subagent files, de-duplicated by ``(message.id, requestId)``) must equal Claude Code's
``costUSD`` within 0.5 µ$ a response (our rounding to whole micro-dollars), on every pinned
version.

What the pinned versions do differently, measured here and read in their code (each is an
expectation below, so a new version that changes it fails):

- Claude Code prices a response by the model it asked for (the ``modelUsage`` key), not by the
  response's ``message.model``; the transcript holds the latter. The fake API echoes the asked
  model (here in its dated spelling where one exists), so the two agree.
- A model it does not know is priced at its *default model's* rates, silently on 2.1.197
  (``claude-opus-4-8``: 5 / 25), and on 2.1.332 at ``claude-opus-5-5``'s (4 / 20) with
  ``costBasis: "unknown"`` and ``hasUnknownModelCost: true`` in the ``cost-state`` record. Never 0.
- 2.1.197 does not know Haiku 5.5, Sonnet 5.5, Opus 5 / 5.5, Fable / Mythos 5.1 / 5.2: it prices
  them as the model of its table whose id is a prefix (Fable 5.1 as Fable 5, Sonnet 5.5 as Sonnet
  5), else as its default model. It prices Sonnet 5 at Sonnet 4.x rates (3 / 15) and has no
  US-inference surcharge and no long-context tier.
- Neither version applies the Sonnet 4 / 4.5 >200K tier that Anthropic's list prices have; 2.1.332
  applies Haiku 5.5's >100K tier (strictly above 100,000 prompt tokens), as our table does.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Callable

import pytest
from e2e_harness import ClaudeCLI, FakeAPI, Project, Run

from budget_state.pricing import Prices, canonical_model, default_prices, price_response

SCRIPT = "price check. SCRIPT: bash, agent, text"
NO_REMAP = {"CLAUDE_CODE_DISABLE_LEGACY_MODEL_REMAP": "1"}  # keep claude-opus-4-1 & co. as asked
DATED = {  # first-party ids the API answers with, where the model has a dated one
    "claude-3-5-haiku": "claude-3-5-haiku-20241022",
    "claude-haiku-4-5": "claude-haiku-4-5-20251001",
    "claude-sonnet-4-0": "claude-sonnet-4-20250514",
    "claude-sonnet-4-5": "claude-sonnet-4-5-20250929",
    "claude-opus-4-0": "claude-opus-4-20250514",
    "claude-opus-4-1": "claude-opus-4-1-20250805",
    "claude-opus-4-5": "claude-opus-4-5-20251101",
}
MODELS = sorted(default_prices().models)
UNKNOWN = "claude-weird-9"  # a model no table has
# Models a pinned version does not know, and the model whose rates it uses for them instead: the
# model its table has under a prefix of the id (2.1.197 reads "claude-fable-5-1" as Fable 5), else
# its default model.
PRICED_AS: dict[tuple[int, ...], dict[str, str]] = {
    (2, 1, 197): {
        "claude-fable-5-1": "claude-fable-5",
        "claude-fable-5-2": "claude-fable-5",
        "claude-mythos-5-1": "claude-mythos-5",
        "claude-mythos-5-2": "claude-mythos-5",
        "claude-sonnet-5-5": "claude-sonnet-5",
        "claude-haiku-5-5": "claude-opus-4-8",
        "claude-opus-5": "claude-opus-4-8",
        "claude-opus-5-5": "claude-opus-4-8",
    },
    (2, 1, 332): {},
}
DEFAULT_MODEL = {(2, 1, 197): "claude-opus-4-8", (2, 1, 332): "claude-opus-5-5"}
SONNET_4 = {"input": 3, "output": 15, "cache_write_5m": 3.75, "cache_write_1h": 6, "cache_read": 0.3}
NO_TIER = {"long_context": {"above": 10**12, **SONNET_4}}  # a tier no request reaches
# Where a pinned version prices otherwise than our table (Anthropic's list prices), as overrides.
OWN_RATES: dict[tuple[int, ...], dict[str, Any]] = {
    (2, 1, 197): {
        "claude-sonnet-5": SONNET_4,  # built before Sonnet 5's launch price; 2.1.332 has 2 / 10
        "claude-sonnet-4-0": NO_TIER,  # no >200K tier in Claude Code
        "claude-sonnet-4-5": NO_TIER,
    },
    (2, 1, 332): {"claude-sonnet-4-0": NO_TIER, "claude-sonnet-4-5": NO_TIER},
}


def pinned(cli: ClaudeCLI, table: Mapping[tuple[int, ...], Any]) -> Any:
    if cli.version not in table:
        pytest.fail(f"Claude Code {cli.name} is not described in {__name__}: measure it and add it")
    return table[cli.version]


def claude_code_prices(cli: ClaudeCLI) -> Prices:
    """Our table as this Claude Code version prices: with its own rates where it differs (OWN_RATES)."""
    return default_prices().with_overrides(pinned(cli, OWN_RATES))


def every_kind(n: int, usage: dict[str, int]) -> dict[str, Any]:
    """The fake API's usage, with a third of the cache writes 1-hour and a web search every other reply."""
    writes = usage["cache_creation_input_tokens"]
    return {
        **usage,
        "cache_creation": {"ephemeral_5m_input_tokens": writes - writes // 3, "ephemeral_1h_input_tokens": writes // 3},
        "server_tool_use": {"web_search_requests": n % 2, "web_fetch_requests": 0},
    }


def responses(home: Path, session_id: str) -> list[tuple[str, dict[str, Any]]]:
    """``(message.model, message.usage)`` of every API response of a session, subagents included, once."""
    seen: set[tuple[str, str]] = set()
    out = []
    for base in (home / ".claude" / "projects").glob("*"):
        for path in [base / f"{session_id}.jsonl", *sorted((base / session_id / "subagents").glob("*.jsonl"))]:
            if not path.is_file():
                continue
            for line in path.read_text(encoding="utf-8").splitlines():
                record = json.loads(line)
                message = record.get("message") or {}
                key = (str(message.get("id")), str(record.get("requestId")))
                if record.get("type") != "assistant" or not message.get("usage") or key in seen:
                    continue
                seen.add(key)
                out.append((str(message["model"]), message["usage"]))
    return out


def cost_state(home: Path, session_id: str) -> dict[str, Any] | None:
    for path in (home / ".claude" / "projects").glob(f"*/{session_id}.jsonl"):
        for line in reversed(path.read_text(encoding="utf-8").splitlines()):
            record = json.loads(line)
            if record.get("type") == "cost-state":
                return dict(record)
    return None


@pytest.fixture
def bare(tmp_path: Path, claude: ClaudeCLI, fake_api: FakeAPI) -> Iterator[Callable[[], Project]]:
    """Factory: a project with nothing installed (pricing needs no hooks), its own HOME."""
    made = []

    def make() -> Project:
        root, home = tmp_path / f"p{len(made)}", tmp_path / f"p{len(made)}-home"
        root.mkdir()
        home.mkdir()
        (home / ".claude.json").write_text(json.dumps({"hasCompletedOnboarding": True}), encoding="utf-8")
        made.append(root)
        return Project(root, home, fake_api, claude)

    yield make


def run_as(
    bare: Callable[[], Project], fake_api: FakeAPI, model: str, usage: Any = every_kind
) -> tuple[Project, Run, list[tuple[str, dict[str, Any]]]]:
    fake_api.model = DATED.get(model, model)
    fake_api.usage = usage
    p = bare()
    run = p.run_claude(SCRIPT, args=["--model", model], extra_env=NO_REMAP)
    assert run.result.get("subtype") == "success", run.describe()
    got = responses(p.home, run.result["session_id"])
    # The transcript holds every response the API sent, and nothing else.
    assert sorted(m for m, _ in got) == sorted(s.model for s in fake_api.sent), run.describe()
    assert {default_prices().resolve(m) or canonical_model(m) for m, _ in got} == {canonical_model(model)}, got
    return p, run, got


def claude_code_cost(run: Run) -> float:
    return sum(float(u["costUSD"]) for u in run.result["modelUsage"].values())


def assert_matches(cost_usd: float, ours: list[int | None], run: Run) -> None:
    assert None not in ours, ours
    total = sum(p for p in ours if p is not None)
    # Each response is rounded to whole µ$ (at most 0.5 off); the float sum adds a little noise.
    assert abs(total - cost_usd * 1e6) <= 0.5 * len(ours) + 1e-3, (total, cost_usd, run.describe())


@pytest.mark.parametrize("model", MODELS)
def test_costusd_equals_the_table_for_every_model(bare, fake_api, claude, model):
    _, run, got = run_as(bare, fake_api, model)

    assert len(got) >= 4, got  # main thread: bash, agent, text; the subagent: bash, text
    assert sum(u["server_tool_use"]["web_search_requests"] for _, u in got) > 0
    assert sum(u["cache_creation"]["ephemeral_1h_input_tokens"] for _, u in got) > 0
    priced_as = pinned(claude, PRICED_AS).get(model, model)
    prices = claude_code_prices(claude)
    assert_matches(claude_code_cost(run), [price_response(priced_as, u, prices=prices) for _, u in got], run)
    if claude.at_least(2, 1, 332):
        assert {u.get("costBasis") for u in run.result["modelUsage"].values()} == {"list"}


def test_an_unknown_model_is_none_here_and_the_default_models_price_in_claude_code(bare, fake_api, claude):
    p, run, got = run_as(bare, fake_api, UNKNOWN)

    assert [price_response(m, u) for m, u in got] == [None] * len(got)
    as_default = [price_response(pinned(claude, DEFAULT_MODEL), u) for _, u in got]
    assert_matches(claude_code_cost(run), as_default, run)
    assert claude_code_cost(run) > 0
    if claude.at_least(2, 1, 332):
        assert run.result["modelUsage"][UNKNOWN]["costBasis"] == "unknown"
        state = cost_state(p.home, run.result["session_id"])
        assert state is not None and state["hasUnknownModelCost"] is True, state


@pytest.mark.parametrize("model", [m for m in MODELS if default_prices().models[m].fast_ppm] + ["claude-haiku-4-5"])
def test_fast_mode(bare, fake_api, claude, model):
    if model in pinned(claude, PRICED_AS):
        pytest.skip(f"Claude Code {claude.name} does not know {model}")
    _, run, got = run_as(bare, fake_api, model, lambda n, u: {**every_kind(n, u), "speed": "fast"})

    assert {u["speed"] for _, u in got} == {"fast"}
    ours = [price_response(m, u) for m, u in got]
    assert_matches(claude_code_cost(run), ours, run)
    standard = [price_response(m, {**u, "speed": "standard"}) for m, u in got]
    if default_prices().models[model].fast_ppm:
        assert all(f > s for f, s in zip(ours, standard))  # type: ignore[operator]
    else:  # a model without fast rates is priced at its standard ones
        assert ours == standard


def test_us_inference(bare, fake_api, claude):
    _, run, got = run_as(bare, fake_api, "claude-opus-4-8", lambda n, u: {**every_kind(n, u), "inference_geo": "us"})

    ours = [price_response(m, u) for m, u in got]
    if claude.at_least(2, 1, 332):
        assert_matches(claude_code_cost(run), ours, run)
    else:  # 2.1.197 has no US-inference surcharge
        assert_matches(claude_code_cost(run), [price_response(m, {**u, "inference_geo": ""}) for m, u in got], run)


@pytest.mark.parametrize("extra", [0, 1, 2], ids=["at-threshold", "one-above", "two-above"])
def test_haiku_5_5_long_prompt_tier(bare, fake_api, claude, extra):
    """Every response's prompt is exactly 100,000 tokens (+ extra): the tier applies strictly above."""
    if "claude-haiku-5-5" in pinned(claude, PRICED_AS):
        pytest.skip(f"Claude Code {claude.name} does not know claude-haiku-5-5")

    def prompt_of(n: int, u: dict[str, int]) -> dict[str, Any]:
        u = every_kind(n, u)
        u["cache_read_input_tokens"] = 100_000 + extra - u["input_tokens"] - u["cache_creation_input_tokens"]
        return u

    _, run, got = run_as(bare, fake_api, "claude-haiku-5-5", prompt_of)

    ours = [price_response(m, u) for m, u in got]
    assert_matches(claude_code_cost(run), ours, run)
    tier = default_prices().models["claude-haiku-5-5"].long_context
    assert tier is not None
    rates = dict(zip(tier._fields, (r / 1e6 for r in tier)))
    always_long = default_prices().with_overrides(
        {"claude-haiku-5-5": {**rates, "long_context": {"above": 1, **rates}}}
    )
    assert (ours == [price_response(m, u, prices=always_long) for m, u in got]) == (extra > 0)


def test_sonnet_4_5_over_200k_claude_code_has_no_long_context_tier(bare, fake_api, claude):
    """Anthropic's list price doubles input above 200K prompt tokens (the 1M beta); Claude Code does not."""

    def long(n: int, u: dict[str, int]) -> dict[str, Any]:
        return {**every_kind(n, u), "cache_read_input_tokens": 250_000}

    _, run, got = run_as(bare, fake_api, "claude-sonnet-4-5", long)

    ours = [price_response(m, u) for m, u in got]
    at_base = [price_response(m, u, prices=claude_code_prices(claude)) for m, u in got]
    assert_matches(claude_code_cost(run), at_base, run)
    assert sum(ours) > 1.4 * sum(at_base)  # type: ignore[arg-type]
