"""``/budget`` is answered without an API request: by the mod (2.1.286+, display only) or by the
hook itself (a blocked prompt on older releases): the status as the user sees it."""

from __future__ import annotations

from e2e_harness import MODS, number_in

BIG = 1_000_000


def test_budget_command_is_answered_without_an_api_request(project, fake_api, claude):
    p = project()
    p.write_command("review-pr", "Review PR $ARGUMENTS. SCRIPT: bash, text", token_budget=BIG)
    p.write_command("deploy", "Deploy. SCRIPT: text", token_budget=20_000)
    work = p.run_claude("/review-pr 3")
    assert work.requests == 2, work.describe()
    used = p.status()["commands"]["/review-pr"]["used"]
    spent = fake_api.totals()

    everything = p.run_claude("/budget")
    one = p.run_claude("/budget /review-pr")

    for run in (everything, one):
        assert run.by_mod if claude.at_least(*MODS) else run.blocked, run.describe()
        assert run.returncode == 0, run.describe()
        assert run.requests == 0, run.describe()
        row = next((line for line in run.text.splitlines() if "/review-pr" in line), None)
        assert row is not None, run.text
        assert number_in(row, used) and number_in(row, BIG), row
    assert "/deploy" in everything.text, everything.text
    assert "/deploy" not in one.text, one.text
    assert fake_api.totals() == spent
    assert p.status()["commands"]["/review-pr"]["used"] == used


def test_status_json_is_the_documented_v2_shape(project, fake_api):
    """The real CLI after a real run: the structure and types of tests/data/status_json_v2.json,
    and the fake API's numbers in it."""
    import json
    import os
    from datetime import datetime
    from pathlib import Path

    from json_shape import shape

    golden_path = Path(__file__).parents[1] / "data" / "status_json_v2.json"
    golden = json.loads(golden_path.read_text())
    p = project()
    p.write_config(
        """
        overall_usd = 40
        [window.hour]
        span = "1h"
        tokens = "1M"
        usd = 5
        [commands."/review-pr"]
        usd_per_day = 10
        """
    )
    path = p.write_command("review-pr", "Review PR $ARGUMENTS. SCRIPT: bash, text", token_budget=50_000)
    path.write_text(path.read_text().replace("---\n", "---\ncostBudget: 2.5\n", 1))
    run = p.run_claude("/review-pr 1")
    assert run.requests == 2, run.describe()

    data = p.status()

    if os.environ.get("CLAUDE_BUDGET_UPDATE_GOLDEN"):  # after adding fields: the real CLI's output is the golden
        golden_path.write_text(json.dumps({**data, "ledger": "/home/user/proj/.claude/budget-ledger.toml"}, indent=2))
        golden = data
    assert shape(data) == shape(golden)
    spent = fake_api.totals()
    used = sum(spent.values())
    assert (data["version"], data["mode"], data["ledger"], data["warnings"]) == (2, "warn", str(p.ledger), [])
    assert data["count"] == ["input", "output", "cache_creation", "cache_read"]
    usd = sum(m["costUSD"] for m in run.result["modelUsage"].values())  # Claude Code's own price
    for scope, limit in ((data["overall"], 40.0), (data["commands"]["/review-pr"], 2.5)):
        money = scope.pop("usd")
        assert money["limit"] == limit and abs(money["used"] - usd) <= 2e-6, (money, usd)  # 1 µ$ a request
        for window in scope.pop("windows"):
            assert window["tokens"]["used"] == used and abs(window["usd"]["used"] - usd) <= 2e-6, window
        scope.pop("forecast")
    assert data["unpriced_models"] == []
    assert data["plan"] is None  # an API-key login: no plan data, null (never zeros)
    assert data["overall"].pop("quota") is None
    assert data["overall"] == {"used": used, "limit": None, "percent": None, "level": "none", "tokens": spent}
    cmd = data["commands"]["/review-pr"]
    last_run = cmd.pop("last_run")
    per_run = cmd.pop("per_run")
    assert (per_run["runs"], per_run["p50_tokens"], per_run["p90_tokens"]) == (1, used, used)
    assert cmd == {
        "used": used,
        "limit": 50_000,
        "runs": 1,
        "percent": round(100 * used / 50_000, 1),
        "level": "ok",  # two fake responses are at most 33.5K tokens: below 70 %
        "tokens": spent,
        "quota": None,
        "source": "frontmatter",
        "file": ".claude/commands/review-pr.md",
        "error": None,
    }
    assert datetime.fromisoformat(last_run).utcoffset() is not None
