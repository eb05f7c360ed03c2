"""The seed plans' own ``orchestrate`` invocations, verbatim, with the real CLI against the fake API.

The seeds (the original plans) validate with ``--dry-run`` (their "Level 3" and "Level 4"),
``--list-commands`` ("Level 5"), and show ``--enable-budget-visuals`` and a JSON config file in
their CLI examples. Kill mode must start an instance and stop it at the crossing; Claude Code's
own ``--max-budget-usd`` must bound an instance where our hooks do not run.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from e2e_harness import TOOLS
from test_orchestrate import GARDEN, LONG, ONE, orchestrate

from budget_state.ledger import _records

SEED_CONFIG = {  # seeds/003, "5.2 Configuration File Format", verbatim
    "budget_config": {
        "overall_token_budget": 10000,
        "hourly_token_budget": 1000,
        "budget_period_minutes": 60,
        "enforcement_mode": "warn",
        "enable_visuals": True,
        "cost_budgets": {"overall_usd": 5.00, "hourly_usd": 1.00},
    },
    "instances": [
        {
            "command": "/gitcommitgardener",
            "max_tokens_per_command": 500,
            "cost_budget_usd": 0.25,
            "priority": 1,
            "token_budget_enabled": True,
        }
    ],
}


def cli(p: Any, *args: str) -> subprocess.CompletedProcess[str]:
    """``claude-budget orchestrate ARGS`` in the project, as a user types it (no --claude: nothing runs)."""
    return subprocess.run(
        [sys.executable, "-m", "budget_state", "orchestrate", *args],
        cwd=p.root, env=p.env(), capture_output=True, text=True, timeout=60,
    )  # fmt: skip


def one_run(p: Any, tmp_path: Path, command: str) -> dict[str, Any]:
    """A finished run of ``command`` in the ledger: what the per-run estimates are taken from."""
    code, results, output = orchestrate(p, "--instance", command, out=tmp_path / "first.json")
    assert code == 0, output
    return results


def ledger_bytes(p: Any) -> bytes | None:
    return p.ledger.read_bytes() if p.ledger.exists() else None


def test_seed_levels_3_and_4_dry_run_print_the_plan_and_start_nothing(project, fake_api, tmp_path):
    fake_api.usage = lambda n, usage: dict(ONE)  # a run of /test: 10,000 tokens
    p = project()
    p.write_command("test", GARDEN, token_budget=40_000)
    one_run(p, tmp_path, "/test first")
    requests, before = fake_api.requests, ledger_bytes(p)

    level3 = cli(p, "--dry-run", "--overall-token-budget", "5000")
    level4 = cli(p, "--dry-run", "--overall-token-budget", "5000", "--command-budget", "/test=1000")

    assert level3.returncode == 0 and level3.stderr == "", level3.stderr
    assert "nothing is started" in level3.stdout and "overall: 5.0K tokens (from --overall-token-budget)" in level3.stdout
    assert level4.returncode == 0 and level4.stderr == "", level4.stderr
    assert "/test: 1.0K tokens (from --command-budget)" in level4.stdout, level4.stdout

    # With a fleet: start order by priority, every budget with its source, the estimate, the skips.
    config = tmp_path / "fleet.json"
    config.write_text(json.dumps({"instances": [{"command": "/test b", "priority": 2}, {"command": "/test a"}]}))
    plan = cli(
        p, "--dry-run", "--json", "--config", str(config), "--instance", "/test c", "--overall-token-budget", "25k",
        "--budget-enforcement-mode", "stop-new",
    )  # fmt: skip
    assert plan.returncode == 0, plan.stderr
    data = json.loads(plan.stdout)
    assert data["mode"] == "stop-new" and data["mode_from"] == "--budget-enforcement-mode"
    rows = data["instances"]
    assert [(r["command"] + " " + r["args"], r["priority"]) for r in rows] == [("/test a", 1), ("/test c", 1), ("/test b", 2)]
    assert rows[0]["budgets"] == [
        {"scope": "/test", "metric": "tokens", "source": "frontmatter (.claude/commands/test.md)", "limit": 40_000,
         "used": 10_000}
    ]  # fmt: skip
    assert all(r["estimate"]["tokens"] == 10_000 for r in rows)
    assert [r["would"] for r in rows] == ["start", "start", "skip"]  # 3 × 10k > 25k: the third is held back
    assert "overall token budget" in rows[2]["reason"]
    assert data["budgets"][0] == {"scope": "overall", "metric": "tokens", "source": "--overall-token-budget",
                                  "limit": 25_000}  # fmt: skip

    kill = json.loads(cli(p, "--dry-run", "--json", "--config", str(config), "--overall-token-budget", "15k",
                          "--budget-enforcement-mode", "kill").stdout)  # fmt: skip
    assert [r["would"] for r in kill["instances"]] == ["start", "start"]  # kill mode starts what is not spent
    assert "stopped when it crosses" in kill["instances"][1]["note"]

    assert fake_api.requests == requests  # nothing was started
    assert ledger_bytes(p) == before  # and nothing written


def test_seed_level_5_list_commands(project, fake_api, tmp_path):
    fake_api.usage = lambda n, usage: dict(ONE)
    p = project()
    p.write_command("test", GARDEN, token_budget=40_000)
    p.write_command("other", GARDEN)
    one_run(p, tmp_path, "/test 1")
    one_run(p, tmp_path, "/test 2")

    text = cli(p, "--list-commands", "--overall-token-budget", "10000")
    data = json.loads(cli(p, "--list-commands", "--json", "--command-budget", "/test=5k", "--instance", "/test").stdout)

    assert text.returncode == 0, text.stderr
    assert "This orchestration: overall 10K tokens (from --overall-token-budget)" in text.stdout
    line = next(x for x in text.stdout.splitlines() if x.strip().startswith("/test "))
    assert "20K/40K tokens" in line and "2 runs" in line and "p50 10K / p90 10K tokens" in line, line
    assert any(x.strip().startswith("/other ") and "0 runs" in x for x in text.stdout.splitlines()), text.stdout
    t = data["commands"]["/test"]
    assert (t["runs"], t["limit"], t["per_run"]["p50_tokens"], t["per_run"]["p90_tokens"]) == (2, 40_000, 10_000, 10_000)
    assert t["orchestration"] == [{"scope": "/test", "metric": "tokens", "source": "--command-budget", "limit": 5000}]
    assert "/other" in data["commands"]


def test_seed_cli_example_with_visuals_and_the_seed_config_file(project, fake_api, tmp_path):
    """seeds/003 "5.1 Enhanced CLI Arguments" (global budgets) and "5.2" (the config file), verbatim."""
    p = project()
    p.write_command("gitcommitgardener", GARDEN)
    config = tmp_path / "budget.json"
    config.write_text(json.dumps(SEED_CONFIG, indent=2))
    out = tmp_path / "r.json"
    argv = [sys.executable, "-m", "budget_state", "orchestrate", "--claude", str(p.claude), "--json-out", str(out),
            "--config", str(config),
            "--overall-token-budget", "10000", "--hourly-token-budget", "1000", "--budget-period-minutes", "60",
            "--enable-budget-visuals", "--budget-enforcement-mode", "warn",
            "--", "--allowedTools", TOOLS]  # fmt: skip

    proc = subprocess.run(argv, cwd=p.root, env=p.env(), capture_output=True, text=True, timeout=90)

    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "unknown" not in proc.stderr and "warning" not in proc.stderr, proc.stderr  # every seed key is known
    assert "TOKEN BUDGET STATUS" in proc.stdout and "Overall Budget: [" in proc.stdout, proc.stdout  # the visuals
    assert "mode warn" in proc.stdout
    (inst,) = json.loads(out.read_text())["instances"]
    assert inst["state"] == "done" and inst["requests"] == fake_api.requests == 1
    assert inst["started_at"] and inst["ended_at"] and inst["session_id"]
    table = _records.feature_table(p.state(), "orchestrations", json.loads(out.read_text())["orchestration"])
    assert table is not None
    assert table["limits"] == {"tokens": 10000, "usd_micros": 5_000_000, "hourly_tokens": 1000,
                               "hourly_usd_micros": 1_000_000}  # fmt: skip


def test_kill_mode_starts_an_instance_over_its_estimate_and_stops_it_at_the_crossing(project, fake_api, tmp_path):
    """The issue's case: a command budget below one typical run. Block mode skips it; kill mode
    (as given: kill-running) starts it, and its hook stops it at the crossing."""
    fake_api.usage = lambda n, usage: dict(ONE)  # every request: 10,000 tokens
    p = project()
    p.write_command("g1", LONG)  # 9 requests: 8 Bash calls, then text
    code, first, output = orchestrate(p, "--instance", "/g1 warm", out=tmp_path / "first.json")
    assert code == 0 and first["instances"][0]["requests"] == 9, output
    budget = ["--instance", "/g1 go", "--command-budget", "/g1=35k"]  # a typical run is 90k

    code, blocked, output = orchestrate(
        p, *budget, "--budget-enforcement-mode", "stop-new", "--budget-dashboard-mode", "report",
        out=tmp_path / "block.json",
    )  # fmt: skip
    assert code == 3 and blocked["instances"][0]["state"] == "skipped", output
    assert blocked["instances"][0]["requests"] == 0 and fake_api.requests == 9
    assert "would be exceeded" in blocked["instances"][0]["reason"]
    assert blocked["mode"] == "stop-new"

    proc_out = tmp_path / "kill.json"
    code, killed, output = orchestrate(
        p, *budget, "--budget-enforcement-mode", "kill-running", out=proc_out,
    )  # fmt: skip
    (inst,) = killed["instances"]
    assert code == 3, output
    assert inst["started_seconds"] is not None and inst["started_at"], output  # started
    assert inst["state"] == "stopped" and "/g1's token budget in this orchestration" in inst["reason"], output
    made = fake_api.requests - 9
    # 40k crosses 35k at the 4th request: its hook stops it there (at most one request later, the
    # hooks' own race between a response and the next tool call)
    assert 4 <= made <= 5 and made == inst["requests"], output
    assert inst["tokens"]["total"] == made * 10_000
    assert killed["mode"] == "kill-running"


def test_the_report_names_the_mode_as_given(project, fake_api, tmp_path):
    p = project()
    p.write_command("garden", GARDEN)
    code, results, output = orchestrate(
        p, "--instance", "/garden", "--budget-enforcement-mode", "stop-new", "--budget-dashboard-mode", "report",
        "--disable-budget-visuals", out=tmp_path / "r.json",
    )  # fmt: skip
    assert code == 0, output
    assert "mode stop-new" in output and "mode block" not in output, output
    assert results["mode"] == "stop-new"


def test_claude_codes_own_cap_stops_an_instance_when_our_hooks_do_not_run(project, fake_api, tmp_path):
    """The backstop: hooks off (disableAllHooks), a dollar budget below one run — Claude Code's
    --max-budget-usd stops the instance (error_max_budget_usd) and it is reported stopped by budget."""
    fake_api.usage = lambda n, usage: dict(ONE)
    p = project()
    p.write_command("long", LONG)
    (p.root / ".claude" / "settings.local.json").write_text(json.dumps({"disableAllHooks": True}))

    code, results, output = orchestrate(
        p, "--instance", "/long 1", "--command-cost-budget", "/long=0.01", "--budget-enforcement-mode", "kill",
        out=tmp_path / "r.json",
    )  # fmt: skip

    (inst,) = results["instances"]
    assert inst["max_budget_usd"] == 0.01, output
    assert inst["reported"]["subtype"] == "error_max_budget_usd", output
    assert inst["state"] == "stopped" and "--max-budget-usd 0.01" in inst["reason"], output
    assert "/long's dollar budget in this orchestration" in inst["reason"], output
    assert code == 3, output
    assert fake_api.requests < 9, output  # stopped before the end of its script
    assert inst["requests"] == 0  # our hooks counted nothing: the cap did the stopping


def test_budget_parameter_type_says_which_budgets_apply(project, fake_api, tmp_path):
    """netra-zen's --budget-parameter-type: with cost, a token budget given does not hold an instance back."""
    fake_api.usage = lambda n, usage: dict(ONE)
    p = project()
    p.write_command("garden", GARDEN)
    given = ["--instance", "/garden 1", "--overall-token-budget", "1", "--overall-cost-budget", "5",
             "--budget-enforcement-mode", "block"]  # fmt: skip

    code, tokens, output = orchestrate(p, *given, "--budget-parameter-type", "tokens", out=tmp_path / "t.json")
    assert code == 0 and tokens["instances"][0]["state"] == "done", output  # nothing spent yet: it starts
    assert tokens["instances"][0]["max_budget_usd"] is None  # the dollar budget does not apply
    assert "the dollar budgets given do not apply here (--overall-cost-budget)" in output

    code, held, output = orchestrate(
        p, *given, "--instance", "/garden 2", "--max-concurrent", "1", "--budget-parameter-type", "tokens",
        out=tmp_path / "t2.json",
    )  # fmt: skip
    # a typical run (10k, from the first) does not fit 1 token: block mode holds both back
    assert [i["state"] for i in held["instances"]] == ["skipped", "skipped"], output
    assert all("overall token budget" in i["reason"] for i in held["instances"])

    code, cost, output = orchestrate(
        p, *given, "--instance", "/garden 2", "--max-concurrent", "1", "--budget-parameter-type", "cost",
        out=tmp_path / "c.json",
    )  # fmt: skip
    assert code == 0 and [i["state"] for i in cost["instances"]] == ["done", "done"], output
    assert cost["instances"][0]["max_budget_usd"] == 5.0
    assert "the token budgets given do not apply here (--overall-token-budget)" in output


def test_the_live_report_forecasts_with_the_plan(project, fake_api, tmp_path):
    """While the fleet runs, the report's exhaustion estimate comes from the plan (queued × a typical run)."""
    fake_api.usage = lambda n, usage: dict(ONE)
    p = project()
    p.write_command("long", LONG)
    code, results, output = orchestrate(
        p, "--instance", "/long 1", "--instance", "/long 2", "--instance", "/long 3", "--max-concurrent", "1",
        "--overall-token-budget", "1M", "--budget-dashboard-mode", "report", "--budget-report-interval", "0.2",
        "--budget-enforcement-mode", "warn", out=tmp_path / "r.json",
    )  # fmt: skip
    assert code == 0, output
    planned = [line for line in output.splitlines() if "Est. exhaustion:" in line and "P10–P90" in line]
    assert planned, output
    assert any("With the plan (1 running, " in line for line in output.splitlines()), output
