"""``claude-budget orchestrate`` with the real CLI: a fleet of ``claude -p`` under one set of budgets.

Every instance is a real ``claude -p`` whose hooks count into the project's ledger; the numbers
compared come from the fake API (what was sent), the ledger (overall, per command, the
orchestration's own scope) and the orchestrator's ``--json-out`` results.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import kit
from e2e_harness import TOOLS, total

from budget_state.ledger import _records

GARDEN = "Tend the garden $ARGUMENTS. SCRIPT: text"
SLOW = "Take your time $ARGUMENTS. SCRIPT: slowbash, text"  # one request, then a Bash call of a minute
LONG = "Work long $ARGUMENTS. SCRIPT: " + ", ".join(["bash"] * 8) + ", text"
ORCHESTRATE_TIMEOUT = 90
ONE = {"input_tokens": 100, "output_tokens": 900, "cache_creation_input_tokens": 3000, "cache_read_input_tokens": 6000}


def start(p: Any, *args: str, out: Path) -> subprocess.Popen[str]:
    argv = [sys.executable, "-m", "budget_state", "orchestrate", "--claude", str(p.claude), "--json-out", str(out)]
    argv += ["--budget-dashboard-mode", "off", *args, "--", "--allowedTools", TOOLS]
    return subprocess.Popen(
        argv, cwd=p.root, env=p.env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )


def finish(proc: subprocess.Popen[str], out: Path) -> tuple[int, dict[str, Any], str]:
    try:
        stdout, stderr = proc.communicate(timeout=ORCHESTRATE_TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        stdout, stderr = proc.communicate()
        raise AssertionError(f"orchestrate did not finish\n{stdout}\n{stderr}") from None
    assert out.exists(), f"no results file (rc {proc.returncode})\n{stdout}\n{stderr}"
    return proc.returncode, json.loads(out.read_text()), stdout + stderr


def orchestrate(p: Any, *args: str, out: Path) -> tuple[int, dict[str, Any], str]:
    return finish(start(p, *args, out=out), out)


def scope(p: Any, oid: str) -> dict[str, Any]:
    """The orchestration's table in the ledger."""
    table = _records.feature_table(p.state(), "orchestrations", oid)
    assert table is not None, oid
    return table


def tokens(table: dict[str, Any]) -> dict[str, int]:
    """The four token counts of the orchestration's own table (the orchestrator owns its inside)."""
    return {k: int(table.get(k, 0)) for k in ("input", "output", "cache_creation", "cache_read")}


def overlap(instances: list[dict[str, Any]]) -> int:
    """The most instances that ran at the same time, from their start offsets and durations.

    Both are rounded to the millisecond, so an instance started within a millisecond or so of
    another's end (its slot is given out at once) could seem to overlap it: ends are taken 2 ms
    early. A real overlap lasts as long as a ``claude -p`` run, seconds."""
    spans = [
        (i["started_seconds"], i["started_seconds"] + i["duration_seconds"] - 0.002)
        for i in instances
        if i["started_seconds"] is not None
    ]
    return max((sum(1 for a, b in spans if a <= t < b) for t, _ in spans), default=0)


def test_block_mode_runs_by_priority_and_skips_what_does_not_fit(project, fake_api, tmp_path):
    fake_api.usage = lambda n, usage: dict(ONE)  # every one-request run costs the same: 10,000 tokens
    p = project()
    for name in ("alpha", "beta"):
        p.write_command(name, GARDEN)
    one = sum(ONE.values())
    config = tmp_path / "fleet.json"
    fleet = [("/beta 1", 2), ("/alpha 1", 1), ("/beta 2", 2), ("/alpha 2", 1), ("/alpha 3", 1), ("/beta 3", 3)]
    config.write_text(
        json.dumps(
            {
                "budget_config": {"overall_token_budget": one * 7 // 2, "enforcement_mode": "block"},
                "instances": [{"command": c, "priority": pr} for c, pr in fleet],
            }
        )
    )

    code, results, output = orchestrate(p, "--config", str(config), "--max-concurrent", "2", out=tmp_path / "r.json")

    by = {f"{i['command']} {i['args']}": i for i in results["instances"]}
    assert code == 3, output
    assert [k for k, i in by.items() if i["state"] == "done"] == ["/alpha 1", "/alpha 2", "/alpha 3"], output
    assert {k for k, i in by.items() if i["state"] == "skipped"} == {"/beta 1", "/beta 2", "/beta 3"}, output
    assert all("overall token budget" in by[k]["reason"] for k in ("/beta 1", "/beta 2", "/beta 3")), output
    assert fake_api.requests == 3  # the skipped ones made no request at all
    assert by["/alpha 3"]["started_seconds"] > min(by["/alpha 1"]["started_seconds"], by["/alpha 2"]["started_seconds"])
    assert overlap(results["instances"]) <= 2
    sent = fake_api.totals()
    ledger = p.state()
    assert kit.tokens(ledger, "overall") == sent
    assert kit.tokens(ledger, "/alpha") == sent and kit.totals(ledger, "/alpha")["runs"] == 3
    assert tokens(scope(p, results["orchestration"])) == sent
    assert results["totals"]["tokens"]["total"] == total(sent) <= one * 7 // 2
    for name, inst in by.items():
        if inst["state"] == "done":
            assert {k: inst["tokens"][k] for k in sent} == inst["reported"]["tokens"], name


def test_warn_mode_runs_everything_at_most_max_concurrent_at_once(project, fake_api, tmp_path):
    p = project()
    p.write_command("garden", GARDEN)
    args = [a for i in range(6) for a in ("--instance", f"/garden {i}")]

    code, results, output = orchestrate(
        p, *args, "--max-concurrent", "3", "--overall-token-budget", "1k", out=tmp_path / "r.json"
    )

    assert code == 0, output
    assert [i["state"] for i in results["instances"]] == ["done"] * 6, output
    assert 2 <= overlap(results["instances"]) <= 3
    sent = fake_api.totals()
    assert kit.tokens(p.state(), "overall") == sent == tokens(scope(p, results["orchestration"]))
    assert results["totals"]["tokens"] == {**sent, "total": total(sent)}


def test_kill_mode_stops_a_running_instance_at_the_crossing(project, fake_api, tmp_path):
    p = project()
    p.write_command("long", LONG)
    p.write_command("garden", GARDEN)

    code, results, output = orchestrate(
        p, "--instance", "/long 1", "--instance", "/garden 2", "--max-concurrent", "1",
        "--budget-enforcement-mode", "kill", "--overall-token-budget", "25k", out=tmp_path / "r.json",
    )  # fmt: skip

    long_run, garden = results["instances"]
    assert code == 3, output
    assert long_run["state"] == "stopped" and "overall token budget" in long_run["reason"], output
    assert garden["state"] == "skipped", output
    running = 0
    for n, sent in enumerate(fake_api.sent, 1):
        running += sum(
            sent.usage[k]
            for k in ("input_tokens", "output_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")
        )
        if running > 25_000:
            break
    # stopped by the request that crossed the budget — or, when the hook's count of that response
    # races the next tool call (seen once in four runs on a loaded 2-core host), by the one after
    assert n <= fake_api.requests <= n + 1 < 9, output
    sent = fake_api.totals()
    ledger = p.state()
    assert kit.tokens(ledger, "overall") == kit.tokens(ledger, "/long") == sent
    assert tokens(scope(p, results["orchestration"])) == sent
    assert {k: long_run["tokens"][k] for k in sent} == sent


def test_kill_mode_stops_an_instance_that_makes_no_more_tool_calls(project, fake_api, tmp_path):
    """The hook ends the turn after the tool it saw; that tool takes a minute: the orchestrator steps in."""
    p = project()
    p.write_command("slow", SLOW)
    started = time.monotonic()

    code, results, output = orchestrate(
        p,
        "--instance",
        "/slow",
        "--budget-enforcement-mode",
        "kill",
        "--overall-token-budget",
        "1k",
        out=tmp_path / "r.json",
    )

    (slow,) = results["instances"]
    assert code == 3, output
    assert slow["state"] == "stopped" and "SIGINT" in slow["reason"], output
    assert time.monotonic() - started < 30, output
    assert fake_api.requests == 1
    sent = fake_api.totals()
    assert kit.tokens(p.state(), "overall") == sent == tokens(scope(p, results["orchestration"]))


def test_ctrl_c_stops_everything_and_loses_nothing(project, fake_api, tmp_path):
    p = project()
    p.write_command("slow", SLOW)
    p.write_command("garden", GARDEN)
    config = tmp_path / "fleet.json"
    fleet = [{"command": "/slow 1"}, {"command": "/slow 2"}, {"command": "/garden 3", "priority": 2}]
    config.write_text(json.dumps({"instances": fleet}))
    out = tmp_path / "r.json"
    proc = start(p, "--config", str(config), "--max-concurrent", "2", out=out)
    deadline = time.monotonic() + 60
    while fake_api.requests < 2 and time.monotonic() < deadline:  # both are in their minute-long tool
        time.sleep(0.1)
    time.sleep(1.0)
    interrupted = time.monotonic()

    os.kill(proc.pid, signal.SIGINT)
    code, results, output = finish(proc, out)

    assert code == 130, output
    assert time.monotonic() - interrupted < 15, output
    assert [i["state"] for i in results["instances"]] == ["stopped", "stopped", "skipped"], output
    assert fake_api.requests == 2
    sent = fake_api.totals()
    assert kit.tokens(p.state(), "overall") == sent == tokens(scope(p, results["orchestration"]))
    assert results["totals"]["tokens"] == {**sent, "total": total(sent)}
    time.sleep(0.5)
    marks = [i["session_id"] for i in results["instances"]] + [str(p.root)]
    left = [
        pid
        for pid in os.listdir("/proc")
        if pid.isdigit() and (any(m in _cmdline(pid) for m in marks) or _cwd(pid) == str(p.root))
    ]
    assert left == [], [(_cmdline(pid)) for pid in left]
    assert "Total:" in output


def _cmdline(pid: str) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _cwd(pid: str) -> str:
    try:
        return os.readlink(f"/proc/{pid}/cwd")
    except OSError:
        return ""


def test_a_dollar_budget_with_the_hooks_in_a_temporary_settings_layer(project, fake_api, tmp_path):
    """A project without the hooks installed: refused, unless --temporary-hooks (claude --settings)."""
    fake_api.usage = lambda n, usage: dict(ONE)
    p = project()
    (p.root / ".claude" / "settings.json").write_text("{}")  # as if never installed
    p.write_command("garden", GARDEN)
    args = ["--instance", "/garden 1", "--instance", "/garden 2", "--instance", "/garden 3", "--max-concurrent", "1"]
    args += ["--budget-enforcement-mode", "stop-new"]

    refused = subprocess.run(
        [sys.executable, "-m", "budget_state", "orchestrate", "--claude", str(p.claude), *args],
        cwd=p.root, env=p.env(), capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert refused.returncode == 1 and "claude-budget install" in refused.stderr, refused.stderr
    assert fake_api.requests == 0

    code, first, output = orchestrate(p, *args[:2], "--temporary-hooks", out=tmp_path / "one.json")
    assert code == 0, output
    one_run = first["totals"]["usd"]
    assert one_run > 0
    budget = f"{one_run * 1.5:.6f}"

    code, results, output = orchestrate(
        p, *args, "--temporary-hooks", "--overall-cost-budget", budget, out=tmp_path / "r.json"
    )

    assert code == 3, output
    assert [i["state"] for i in results["instances"]] == ["done", "skipped", "skipped"], output
    assert "overall dollar budget" in results["instances"][1]["reason"], output
    assert fake_api.requests == 2
    ledger = p.state()
    assert kit.tokens(ledger, "overall") == fake_api.totals()
    table = scope(p, results["orchestration"])
    assert table["usd_micros"] == round(results["totals"]["usd"] * 1_000_000) == round(one_run * 1_000_000)


def test_an_hourly_budget_holds_back_what_does_not_fit_this_period(project, fake_api, tmp_path):
    fake_api.usage = lambda n, usage: dict(ONE)
    p = project()
    p.write_command("garden", GARDEN)
    args = ["--instance", "/garden 1", "--instance", "/garden 2", "--max-concurrent", "1"]

    code, results, output = orchestrate(
        p, *args, "--budget-enforcement-mode", "block", "--hourly-token-budget", "15k", "--budget-period-minutes", "90",
        out=tmp_path / "r.json",
    )  # fmt: skip

    assert code == 3, output
    first, second = results["instances"]
    assert (first["state"], second["state"]) == ("done", "skipped"), output
    assert "token budget per 90 min" in second["reason"], output
    assert fake_api.requests == 1
    ledger = p.state()
    buckets = ledger.minutes["@" + results["orchestration"]]
    assert sum(int(row.split(":")[1].split(",")[0]) for row in buckets.split()) == ONE["input_tokens"]


def test_a_command_budget_given_here_replaces_the_frontmatter_one(project, fake_api, tmp_path):
    """command line > config file > frontmatter: tokenBudget 1000 would refuse the second run."""
    fake_api.usage = lambda n, usage: dict(ONE)
    p = project()
    p.write_command("capped", GARDEN, token_budget=1000)
    args = ["--instance", "/capped 1", "--instance", "/capped 2", "--instance", "/capped 3", "--max-concurrent", "1"]

    code, results, output = orchestrate(
        p, *args, "--budget-enforcement-mode", "block", "--command-budget", "/capped=25k", out=tmp_path / "r.json"
    )

    assert code == 3, output
    assert [i["state"] for i in results["instances"]] == ["done", "done", "skipped"], output
    assert "/capped's token budget in this orchestration" in results["instances"][2]["reason"], output
    assert fake_api.requests == 2
    ledger = p.state()
    assert kit.tokens(ledger, "/capped") == fake_api.totals() and kit.totals(ledger, "/capped")["runs"] == 2


# --- --quota-guard: the plan's 5-hour window (a subscription's limit) ------------------------------


def seed_plan(p: Any, used: float, resets_at: int) -> None:
    """The account's windows as an interactive session of this user last saw them."""
    from budget_state.mod._observe import observe_plan

    limits = {
        "five_hour": {"used_percentage": used, "resets_at": resets_at},
        "seven_day": {"used_percentage": 20, "resets_at": resets_at + 86400},
    }
    observe_plan(limits, env={"HOME": str(p.home)})


def test_quota_guard_skips_instances_while_the_window_is_above_it(project, fake_api, tmp_path):
    p = project()
    p.write_command("alpha", GARDEN)
    seed_plan(p, 93, int(time.time()) + 3600)
    env_free = {k: v for k, v in p.env().items() if k != "ANTHROPIC_API_KEY"}
    argv = [sys.executable, "-m", "budget_state", "orchestrate", "--claude", str(p.claude)]
    argv += ["--json-out", str(tmp_path / "out.json"), "--budget-dashboard-mode", "off"]
    argv += ["--instance", "/alpha 1", "--instance", "/alpha 2", "--quota-guard", "90"]
    env_free["CLAUDE_CODE_OAUTH_TOKEN"] = "sk-ant-oat-e2e-fake"
    proc = subprocess.run(argv, cwd=p.root, env=env_free, capture_output=True, text=True, timeout=ORCHESTRATE_TIMEOUT)
    results = json.loads((tmp_path / "out.json").read_text())
    assert proc.returncode == 3, proc.stdout + proc.stderr  # some were skipped by a budget
    states = [(i["state"], i["reason"]) for i in results["instances"]]
    assert all(s == "skipped" for s, _ in states), states
    assert "the plan's 5-hour window is at 93% (--quota-guard 90%)" in states[0][1], states
    assert "--wait-for-reset" in states[0][1], states
    assert fake_api.requests == 0


def test_quota_guard_with_wait_for_reset_waits_and_resumes_after_the_reset(project, fake_api, tmp_path):
    p = project()
    p.write_command("alpha", GARDEN)
    reset = int(time.time()) + 12
    seed_plan(p, 95, reset)
    env_free = {k: v for k, v in p.env().items() if k != "ANTHROPIC_API_KEY"}
    env_free["CLAUDE_CODE_OAUTH_TOKEN"] = "sk-ant-oat-e2e-fake"
    out = tmp_path / "out.json"
    argv = [sys.executable, "-m", "budget_state", "orchestrate", "--claude", str(p.claude), "--json-out", str(out)]
    argv += ["--budget-dashboard-mode", "report", "--budget-report-interval", "2"]
    argv += ["--instance", "/alpha 1", "--quota-guard", "90", "--wait-for-reset"]
    began = time.time()
    proc = subprocess.run(argv, cwd=p.root, env=env_free, capture_output=True, text=True, timeout=ORCHESTRATE_TIMEOUT)
    results = json.loads(out.read_text())
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (inst,) = results["instances"]
    assert inst["state"] == "done", inst
    assert began + inst["started_seconds"] >= reset - 1, (began, inst, reset)  # held back until the reset
    assert "waiting" in proc.stdout, proc.stdout  # the report showed it waiting, and why
    assert "5-hour window is at 95%" in proc.stdout, proc.stdout
    assert fake_api.requests >= 1
