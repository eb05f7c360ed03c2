"""claude-budget suggest: budgets from history, with the reasoning; honest with little history."""

from __future__ import annotations

import json
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from budget_state.budgets._units import parse_tokens
from budget_state.cli._cli import main
from budget_state.cli._suggest import (
    HEADROOM,
    dollars_text,
    gather,
    round_up,
    suggest,
    to_toml,
    tokens_text,
)
from budget_state.ledger._ledger import Ledger
from budget_state.ledger._runlog import append_runs, runlog_path
from budget_state.ledger._state import Run
from budget_state.ledger._windows import charge

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover (3.9, 3.10)
    import tomli as tomllib

UTC = timezone.utc
NOW = datetime(2026, 12, 2, 15, 7, tzinfo=UTC)
MIN = int(NOW.timestamp() // 60)


@pytest.mark.parametrize(
    ("x", "want"),
    [(48_001, 49_000), (60_000, 60_000), (0.663, 0.67), (1_234_567, 1_300_000), (7, 7), (0, 0), (99.1, 100)],
)
def test_round_up_to_two_digits(x: float, want: float) -> None:
    assert round_up(x) == pytest.approx(want)


@pytest.mark.parametrize(
    ("n", "want"),
    [(950, "950"), (60_000, "60k"), (1_300_000, "1.3M"), (2_000_000_000, "2B"), (120_000, "120k"), (1_500, "1.5k")],
)
def test_tokens_text_is_what_budget_toml_takes(n: int, want: str) -> None:
    assert tokens_text(n) == want
    assert parse_tokens(want) == n


def test_dollars_text() -> None:
    assert (dollars_text(2_500_000), dollars_text(4_200)) == ("$2.50", "$0.0042")


def _quarters(per_day: list[int], *, hours: int = 2, usd_per_token: int = 2) -> tuple[list, list]:
    """Days before NOW's, each with usage in its first ``hours`` clock hours (10:00 UTC on)."""
    tok, usd = [], []
    start = (MIN // 1440) * 1440
    for back, total in enumerate(reversed(per_day), start=1):
        for h in range(hours):
            q = start - back * 1440 + (10 + h) * 60
            tok.append((q, total // hours))
            usd.append((q, total // hours * usd_per_token))
    return sorted(tok), sorted(usd)


def test_windows_and_daily_budgets_from_history() -> None:
    days = [100_000 * (i + 1) for i in range(10)]  # 100k .. 1M a day
    overall = _quarters(days)
    cmd = _quarters([d // 2 for d in days])
    runs = {"/review-pr": [(1000 * i, 10 * i) for i in range(1, 43)]}
    s = suggest(quarters={"overall": overall, "/review-pr": cmd}, runs=runs, now=NOW, zone=UTC)
    by_key = {(p.table, p.key): p for p in s.overall.proposals}
    assert by_key[("window.day", "span")].value == "day"
    day_tokens = by_key[("window.day", "tokens")]
    assert (day_tokens.samples, day_tokens.p90, day_tokens.max) == (10, 900_000, 1_000_000)
    assert day_tokens.value == 1_200_000  # 900k * 1.25 = 1.125M, rounded up to 2 digits
    assert day_tokens.reason == "p90 of 10 active days is 900k (max 1M), + 25 % headroom"
    hour_tokens = by_key[("window.hour", "tokens")]
    assert (hour_tokens.samples, hour_tokens.p90) == (20, 450_000)
    assert by_key[("window.hour", "usd")].value == pytest.approx(1.2)  # 900,000 µ$ * 1.25, up to 2 digits
    c = s.commands["/review-pr"]
    assert c.runs == 42 and c.per_run == (21_000, 38_000, 210, 380)
    assert [(p.key, p.value) for p in c.proposals] == [("tokens_per_day", 570_000), ("usd_per_day", 1.2)]
    assert c.notes == ()


def test_little_history_says_so_instead_of_inventing_numbers() -> None:
    s = suggest(
        quarters={"overall": _quarters([5000, 7000]), "/deploy": _quarters([5000])},
        runs={"/deploy": [(5000, 0)] * 2},
        now=NOW,
        zone=UTC,
    )
    assert s.overall.proposals == ()
    assert s.overall.notes == (
        "no [window.hour]: 4 active clock hours so far, 5 needed",
        "no [window.day]: 2 active days so far, 3 needed",
    )
    assert s.commands["/deploy"].proposals == () and s.commands["/deploy"].per_run is None
    text = to_toml(s)
    assert text.endswith("# Not enough history for any budget yet: use Claude Code for a few days and ask again.\n")
    assert "# /deploy: nothing to propose yet" in text
    assert "2 finished runs so far: too few to say what a run costs (5 needed)" in text
    tomllib.loads(text)  # comments only, still valid TOML


def test_the_current_day_and_hour_are_left_out() -> None:
    today = [(MIN - 30, 10**9)]  # a huge, unfinished today
    tok, usd = _quarters([1000, 2000, 3000, 4000, 5000], hours=1)
    s = suggest(quarters={"overall": (tok + today, usd)}, runs={}, now=NOW, zone=UTC)
    day = {p.key: p for p in s.overall.proposals if p.table == "window.day"}
    assert day["tokens"].max == 5000


def test_the_snippet_is_toml_with_the_keys_the_config_takes() -> None:
    days = [300_000, 500_000, 400_000, 700_000, 600_000]
    s = suggest(
        quarters={"overall": _quarters(days, hours=3), '/rév:iew "x"': _quarters(days)},
        runs={'/rév:iew "x"': [(50_000, 400_000)] * 8},
        now=NOW,
        zone=UTC,
    )
    text = to_toml(s)
    doc = tomllib.loads(text)
    assert doc["window"]["hour"]["span"] == "1h" and doc["window"]["day"]["span"] == "day"
    assert parse_tokens(doc["window"]["day"]["tokens"]) == 880_000  # p90 700k * 1.25 = 875k -> 880k
    assert isinstance(doc["window"]["day"]["usd"], float)
    cmd = doc["commands"]['/rév:iew "x"']
    assert set(cmd) == {"tokens_per_day", "usd_per_day"}
    for line in text.splitlines():
        if "=" in line and not line.startswith("#") and not line.startswith("span"):
            assert "  # p90 of " in line  # every value says why
    assert '# 8 runs: p50 / p90 per run 50k / 50k tokens, $0.40 / $0.40 (what preflight = "p90" expects' in text


def test_the_snippet_is_what_the_config_loader_takes(tmp_path: Path) -> None:
    from budget_state.budgets._config import load_config

    days = [300_000, 500_000, 400_000, 700_000, 600_000]
    s = suggest(
        quarters={"overall": _quarters(days, hours=3), "/review-pr": _quarters(days)},
        runs={},
        now=NOW,
        zone=UTC,
    )
    (tmp_path / ".claude").mkdir()
    (tmp_path / ".claude" / "budget.toml").write_text(to_toml(s), encoding="utf-8")
    config = load_config(tmp_path, {})
    assert config.warnings == ()
    overall = {(spec.metric, spec.window.label if spec.window else None): spec for spec in config.overall_limits}
    assert set(overall) == {("tokens", "1h"), ("usd", "1h"), ("tokens", "day"), ("usd", "day")}
    assert overall[("tokens", "day")].amount == 880_000
    cmd = {(spec.metric, spec.window.label if spec.window else None) for spec in config.command_limits["/review-pr"]}
    assert cmd == {("tokens", "day"), ("usd", "day")}


def test_json_shape() -> None:
    s = suggest(
        quarters={"overall": _quarters([100, 200, 300, 400, 500], hours=1)},
        runs={"/a": [(10, 1_000_000)] * 5},
        now=NOW,
        zone=UTC,
    )
    data = json.loads(json.dumps(s.to_json()))
    assert data["version"] == 1 and data["headroom"] == HEADROOM and data["skipped_lines"] == 0
    assert [(p["table"], p["key"]) for p in data["overall"]["proposals"]] == [
        ("window.hour", "tokens"),
        ("window.hour", "usd"),
        ("window.day", "tokens"),
        ("window.day", "usd"),
    ]  # five active hours and days: just enough for both
    assert data["overall"]["proposals"][2] == {
        "table": "window.day",
        "key": "tokens",
        "value": 630,
        "samples": 5,
        "p90": 500,
        "max": 500,
        "reason": "p90 of 5 active days is 500 (max 500), + 25 % headroom",
    }
    assert data["overall"]["proposals"][3]["p90"] == 0.001  # dollars in JSON
    assert data["overall"]["notes"] == []
    assert data["commands"]["/a"] == {
        "runs": 5,
        "per_run": {"p50_tokens": 10, "p90_tokens": 10, "p50_usd": 1.0, "p90_usd": 1.0},
        "proposals": [],
        "notes": ["used on 0 past days: too few for a daily budget (3 needed)"],
    }


def _history(path: Path, now: datetime) -> None:
    """Ten days of a command's usage through the ledger's own code, runs in the log and in the ledger."""
    ledger = Ledger(path)
    with ledger.transaction() as state:
        for back in range(1, 11):
            when = now - timedelta(days=back)
            charge(state, ["overall", "/review-pr"], when, {"input": 1000 * back, "output": 10, "usd_micros": 5000})
            charge(state, ["overall"], when + timedelta(hours=1), {"input": 50, "usd_micros": 1})
    logged = [
        {
            "prompt": f"p{i}",
            "command": "/review-pr",
            "session": "s",
            "started": now - timedelta(days=i),
            "ended": now - timedelta(days=i),
            "input": 1000 * i,
            "usd_micros": 5000,
        }
        for i in range(1, 11)
    ]
    append_runs(path, logged)
    hot = Run("p1", "/review-pr", "s")  # the ledger's newer copy of p1
    hot.started, hot.ended = now - timedelta(days=1), now - timedelta(minutes=1)
    hot.add({"input": 99_999, "usd_micros": 5000})
    still_open = Run("open", "/review-pr")
    still_open.started = now
    with ledger.transaction() as state:
        state.runs = [hot, still_open]


def test_gather_reads_the_ledger_and_the_log(tmp_path: Path) -> None:
    path = tmp_path / "l.toml"
    now = datetime.now(UTC)
    _history(path, now)
    from budget_state.ledger._runlog import read_runs

    quarters, runs = gather(Ledger(path).read(), read_runs(path), counted=("input", "output"))
    assert set(quarters) == {"overall", "/review-pr"}
    assert sum(v for _, v in quarters["/review-pr"][0]) == sum(1000 * b + 10 for b in range(1, 11))
    assert sum(v for _, v in quarters["overall"][1]) == 10 * 5001
    tokens = sorted(t for t, _ in runs["/review-pr"])
    assert len(tokens) == 10 and 99_999 in tokens and 1000 not in tokens  # p1 once, the ledger's copy


def test_cli_suggest(tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CLAUDE_BUDGET_STATE", raising=False)
    (tmp_path / ".claude").mkdir()
    path = tmp_path / ".claude" / "budget-ledger.toml"
    _history(path, datetime.now(UTC))
    assert runlog_path(path).exists()
    assert main(["suggest", "--project", str(tmp_path)]) == 0
    out, err = capsys.readouterr()
    assert err == ""
    doc = tomllib.loads(out)
    assert set(doc["commands"]["/review-pr"]) == {"tokens_per_day", "usd_per_day"}
    assert "[window.day]" in out
    assert main(["suggest", "--json", "--project", str(tmp_path)]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["version"] == 1 and data["commands"]["/review-pr"]["runs"] == 10
    assert main(["suggest", "--bogus"]) == 2
