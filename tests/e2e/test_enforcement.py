"""Modes and limits as the user meets them: block refuses, kill stops a turn, warn lets it run."""

from __future__ import annotations

from e2e_harness import MODS, add, total

from budget_state.budgets._units import humanize

BLOCKED = "UserPromptSubmit operation blocked by hook:\n"


def spent_phrase(used: int, limit: int) -> str:
    """How a refusal states a budget, e.g. ``12.3K of 1.0K tokens``."""
    return f"{humanize(used)} of {humanize(limit)} tokens"


def clockless(scope: dict) -> dict:
    """A scope of ``status --json`` without its forecast: a burn rate moves with the clock alone."""
    return {k: v for k, v in scope.items() if k != "forecast"}


def answered(run, claude) -> bool:
    """``/budget`` answered without a model call: by the mod (2.1.286+) or the prompt hook."""
    return run.by_mod if claude.at_least(*MODS) else run.blocked


def test_block_mode_refuses_a_spent_command_without_calling_the_api(project, fake_api, claude):
    p = project()
    p.write_config('mode = "block"\n')
    p.write_command("review-pr", "Review PR $ARGUMENTS. SCRIPT: text", token_budget=1000)

    first = p.run_claude("/review-pr 1")  # one request costs more than 3,000 tokens

    assert first.result["subtype"] == "success" and not first.blocked, first.describe()
    assert first.requests == 1, first.describe()
    before = p.status()
    cmd = before["commands"]["/review-pr"]
    assert (cmd["tokens"], cmd["runs"], cmd["limit"]) == (first.usage, 1, 1000)
    assert cmd["used"] == total(first.usage) > 1000

    second = p.run_claude("/review-pr 2")

    assert second.blocked, second.describe()
    assert second.returncode == 0, second.describe()
    assert "/review-pr" in second.text, second.text
    assert spent_phrase(cmd["used"], 1000) in second.text, second.text
    assert second.text.endswith("Original prompt: /review-pr 2"), second.text
    assert second.requests == 0
    assert second.usage == dict.fromkeys(second.usage, 0)
    after = p.status()
    assert clockless(after["overall"]) == clockless(before["overall"])
    assert {k: clockless(v) for k, v in after["commands"].items()} == {
        k: clockless(v) for k, v in before["commands"].items()
    }

    status = p.run_claude("/budget")  # still answered while the command is refused

    assert answered(status, claude) and "/review-pr" in status.text, status.describe()
    assert status.requests == 0
    assert fake_api.totals() == first.usage


def test_kill_mode_stops_a_running_turn_and_still_counts_it(project, fake_api, claude):
    p = project()
    p.write_config('mode = "kill"\n')
    p.write_command("review-pr", "Review PR $ARGUMENTS. SCRIPT: bash, bash, bash, bash, bash, text", token_budget=100)

    run = p.run_claude("/review-pr 9")

    if claude.at_least(*MODS):  # the mod refuses the next request itself (its reason is the answer)
        assert "/review-pr" in run.text, run.describe()
    else:
        assert run.result["terminal_reason"] == "hook_stopped", run.describe()
    assert run.requests == 1, run.describe()  # the first tool call after the first response stops it
    assert run.usage == fake_api.totals()
    status = p.status()
    cmd = status["commands"]["/review-pr"]
    assert (cmd["tokens"], cmd["used"], cmd["runs"]) == (run.usage, total(run.usage), 1)
    assert status["overall"]["tokens"] == run.usage


def test_warn_mode_lets_an_exceeded_command_run_again(project, fake_api):
    p = project()
    p.write_config('mode = "warn"\n')
    p.write_command("review-pr", "Review PR $ARGUMENTS. SCRIPT: bash, text", token_budget=1000)

    first = p.run_claude("/review-pr 1")
    second = p.run_claude("/review-pr 2")

    for run in (first, second):
        assert run.result["subtype"] == "success" and not run.blocked, run.describe()
        assert run.result["terminal_reason"] == "completed", run.describe()
        assert run.requests == 2, run.describe()
    spent = add(first.usage, second.usage)
    assert spent == fake_api.totals()
    status = p.status()
    assert status["mode"] == "warn"
    cmd = status["commands"]["/review-pr"]
    assert (cmd["tokens"], cmd["used"], cmd["runs"], cmd["limit"]) == (spent, total(spent), 2, 1000)


def test_config_beats_frontmatter_and_environment_beats_config(project, fake_api):
    p = project()
    p.write_config(
        """
        mode = "warn"

        [commands."/review-pr"]
        tokens = 2000
        """
    )
    # 50,000 would let any one-request run through; only the config's 2,000 can refuse the second.
    p.write_command("review-pr", "Review PR $ARGUMENTS. SCRIPT: text", token_budget=50_000)

    assert p.status()["commands"]["/review-pr"]["limit"] == 2000
    first = p.run_claude("/review-pr 1")
    assert first.result["subtype"] == "success" and not first.blocked, first.describe()
    status = p.status()
    cmd = status["commands"]["/review-pr"]
    assert (status["mode"], cmd["limit"], cmd["used"], cmd["runs"]) == ("warn", 2000, total(first.usage), 1)
    assert p.status(extra_env={"CLAUDE_BUDGET_MODE": "block"})["mode"] == "block"

    second = p.run_claude("/review-pr 2", extra_env={"CLAUDE_BUDGET_MODE": "block"})

    assert second.blocked, second.describe()
    assert spent_phrase(total(first.usage), 2000) in second.text, second.text
    assert second.requests == 0
    assert p.status()["commands"]["/review-pr"]["runs"] == 1
    # Without the environment override the file's warn mode applies again.
    third = p.run_claude("/review-pr 3")
    assert third.result["subtype"] == "success" and not third.blocked, third.describe()
    assert third.requests == 1
    assert p.status()["commands"]["/review-pr"]["runs"] == 2


def test_block_mode_budgets_and_refuses_a_non_ascii_command(project, fake_api, claude):
    """Claude Code runs .claude/commands/rév-iew.md as /rév-iew: it is budgeted, listed and refused like any other."""
    p = project()
    p.write_config('mode = "block"\n')
    p.write_command("rév-iew", "Review PR $ARGUMENTS. SCRIPT: text", token_budget=1000)

    first = p.run_claude("/rév-iew 1")

    assert first.result["subtype"] == "success" and not first.blocked, first.describe()
    assert first.requests == 1, first.describe()
    cmd = p.status()["commands"]["/rév-iew"]
    assert (cmd["tokens"], cmd["runs"], cmd["limit"], cmd["level"]) == (first.usage, 1, 1000, "exceeded")

    second = p.run_claude("/rév-iew 2")

    assert second.blocked, second.describe()
    assert second.requests == 0
    assert spent_phrase(cmd["used"], 1000) in second.text, second.text
    assert "claude-budget reset /rév-iew" in second.text, second.text

    status = p.run_claude("/budget")
    assert answered(status, claude) and status.requests == 0, status.describe()
    rows = [line for line in status.text.splitlines() if line.startswith("  /rév-iew  [")]
    assert len(rows) == 1 and "EXCEEDED" in rows[0], status.text
    assert fake_api.totals() == first.usage


def test_fail_closed_also_refuses_when_the_hook_cannot_run(project, fake_api, claude):
    """``on_error = "closed"``: install adds ``onFailure: "block"``, so a hook Claude Code cannot
    even start refuses the prompt — from 2.1.295. On older releases the key is ignored and the
    prompt goes through unchecked (docs/troubleshooting.md says so)."""
    import json

    p = project()
    p.write_config('on_error = "closed"\n')
    assert p.budget_cli("install", str(p.root)).returncode == 0
    settings_path = p.root / ".claude" / "settings.json"
    settings = json.loads(settings_path.read_text())
    prompt_hook = settings["hooks"]["UserPromptSubmit"][0]["hooks"][0]
    assert prompt_hook["onFailure"] == "block", settings
    assert "onFailure" not in settings["hooks"]["Stop"][0]["hooks"][0]
    prompt_hook["command"] = "/nonexistent/python3 -m budget_state.hook"  # the interpreter is gone
    settings_path.write_text(json.dumps(settings))

    run = p.run_claude("hello SCRIPT: text")

    if claude.at_least(2, 1, 295):
        assert run.requests == 0, run.describe()
    else:
        assert run.requests == 1, run.describe()
