"""A subscription's 5-hour and 7-day windows, through the real CLI's TUI (tmux) and its statusLine.

The fake API answers with the ``anthropic-ratelimit-unified-*`` headers a test sets; Claude Code
started with ``CLAUDE_CODE_OAUTH_TOKEN`` (a "subscription" login) reads them and passes
``rate_limits`` to the statusLine command, which claude-budget is (``install --statusline``).
Both pins do: 2.1.197 too, checked here (the docs say 2.1.251+). With an API key there is no
``rate_limits``: "no plan data", nothing held back.
"""

from __future__ import annotations

import time
from typing import Any

from e2e_harness import after, flat, pane_idle

from budget_state.mod._observe import observe_plan

GUARD_CONFIG = 'mode = "block"\nquota_guard = 90\n'
BIG = "Do the big job $ARGUMENTS. SCRIPT: bash, text"


def wait_for(check: Any, what: str, timeout: float = 20) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def setup(project: Any) -> Any:
    """A project with the status line, and without the mod: these tests are the status line's path
    (the mod's, in ``claude -p``, is the last test here)."""
    import shutil

    p = project()
    proc = p.budget_cli("install", "--statusline", str(p.root))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    shutil.rmtree(p.home / ".claude" / "skills" / "claude-budget", ignore_errors=True)
    p.write_config(GUARD_CONFIG)
    p.write_command("big", BIG)
    return p


def run_turn(tui: Any, fake_api: Any, prompt: str, requests: int) -> None:
    """Submit ``prompt`` and wait for its turn to end (at least ``requests`` requests: a version may
    add one of its own, such as 2.1.197's title request)."""
    before = fake_api.requests
    tui.submit(prompt)
    tui.wait(lambda pane: fake_api.requests >= before + requests and pane_idle(pane), f"the turn of {prompt!r}")


def test_a_subscription_window_is_captured_attributed_and_guards_the_next_command(project, fake_api, interactive):
    p = setup(project)
    now = int(time.time())
    week = now + 5 * 86400
    fake_api.rate_limits(0.40, 0.10, five_hour_reset=now + 5 * 3600, seven_day_reset=week)
    tui = interactive(p, login="subscription")

    # A plain prompt: the first observation (40 %) is the project's mark; nothing is charged yet.
    run_turn(tui, fake_api, "hello", 1)
    tui.wait(lambda _: "5h 40%" in tui.screen(), "the 5-hour window in the status line")

    # /big runs while the window moves from 40 to 60 % (7-day: 10 to 12 %): charged to /big.
    fake_api.rate_limits(0.60, 0.12, five_hour_reset=now + 5 * 3600, seven_day_reset=week)
    run_turn(tui, fake_api, "/big 1", 2)
    tui.wait(lambda _: "5h 60%" in tui.screen(), "the moved window in the status line")
    status = wait_for(
        lambda: (s := p.status())["commands"]["/big"]["quota"] and s["commands"]["/big"]["quota"]["five_hour"] and s,
        "the movement charged to /big",
    )
    plan = status["plan"]
    assert (plan["five_hour"]["used_percentage"], plan["seven_day"]["used_percentage"]) == (60, 12), plan
    assert plan["five_hour"]["status"] == "current" and plan["five_hour"]["seen_at"].endswith("Z"), plan
    assert status["overall"]["quota"]["five_hour"] == 20.0, status["overall"]["quota"]
    big = status["commands"]["/big"]["quota"]
    # Only /big spent tokens here since the mark (the hello turn was counted at the mark).
    assert big["five_hour"] == 20.0 and big["seven_day"] == 2.0, big
    assert big["per_run"] == {"runs": 1, "p50": 20.0, "p90": 20.0}, big

    # /budget shows the windows and each command's share (no request).
    before = fake_api.requests
    tui.submit("/budget")
    pane = tui.wait(lambda pane: "/big 20.0% of 5-hour" in flat(pane) and pane_idle(pane), "/budget with the plan")
    assert "5-hour 60%, resets at" in flat(pane) and "7-day 12%, resets at" in flat(pane), tui.describe()
    assert "(quota_guard 90%)" in flat(pane), tui.describe()
    assert fake_api.requests == before

    # quotaBudget: /big may take 15 % of a 5-hour window; it took 20 %: refused, 0 requests.
    path = p.root / ".claude" / "commands" / "big.md"
    path.write_text(path.read_text().replace("---\n", '---\nquotaBudget: "15%"\n', 1))
    before = fake_api.requests
    tui.submit("/big 1b")
    pane = tui.wait(lambda pane: flat(pane).count("not started") == 1 and pane_idle(pane), "the quotaBudget refusal")
    assert "/big has taken about 20% of the plan's 5-hour window and its quotaBudget is 15%" in flat(pane)
    assert fake_api.requests == before, tui.describe()
    path.write_text(path.read_text().replace('quotaBudget: "15%"\n', ""))

    # The window reaches 92 % (resetting in 45 s): the next command is refused with 0 requests.
    reset_soon = int(time.time()) + 45
    fake_api.rate_limits(0.92, 0.15, five_hour_reset=reset_soon, seven_day_reset=week)
    run_turn(tui, fake_api, "hello again", 1)  # a plain prompt is not held back
    tui.wait(lambda _: "5h 92%" in tui.screen(), "92 % in the status line")
    before = fake_api.requests
    tui.submit("/big 2")
    pane = tui.wait(lambda pane: flat(pane).count("not started") == 2 and pane_idle(pane), "the refusal")
    text = after(flat(pane), "hello again")
    assert "/big not started: the plan's 5-hour window is at 92%; it resets at" in text, tui.describe()
    assert "(in 1m)" in text or "(in 0m)" in text, tui.describe()  # how long until the reset
    assert "quota_guard (90%)" in text, tui.describe()
    assert fake_api.requests == before, tui.describe()

    # Past its reset the window is stale: it no longer holds anything back.
    wait_for(lambda: time.time() > reset_soon + 1, "the window's reset", timeout=90)
    run_turn(tui, fake_api, "/big 3", 2)
    assert flat(tui.capture()).count("not started") == 2, tui.describe()  # /big 3 was not refused
    assert p.status()["plan"]["five_hour"]["status"] == "stale"
    assert tui.exit() == "status 0", tui.describe()


def test_an_api_key_login_shows_no_plan_data_and_blocks_nothing(project, fake_api, interactive, claude):
    p = setup(project)
    now = int(time.time())
    # What a subscription session of this user left in the account's state: 95 %, current.
    observe_plan(
        {
            "five_hour": {"used_percentage": 95, "resets_at": now + 3600},
            "seven_day": {"used_percentage": 50, "resets_at": now + 86400},
        },
        env={"HOME": str(p.home)},
    )
    fake_api.rate_limits(0.95, 0.50, five_hour_reset=now + 3600, seven_day_reset=now + 86400)
    tui = interactive(p)  # ANTHROPIC_API_KEY

    run_turn(tui, fake_api, "/big 1", 2)
    assert "not started" not in flat(tui.capture()), tui.describe()
    tui.wait(lambda _: "no plan data" in tui.screen(), "'no plan data' in the status line")
    before = fake_api.requests
    tui.submit("/budget")
    tui.wait(lambda pane: "Plan windows: no plan data" in flat(pane), "/budget saying there is no plan data")
    assert fake_api.requests == before
    assert p.status()["plan"] is None  # the newest observation had no windows
    assert tui.exit() == "status 0", tui.describe()


def test_in_claude_p_the_mod_captures_the_windows_and_the_guard_refuses_with_no_request(project, fake_api, claude):
    """``claude -p`` has no status line: on 2.1.286+ the mod sees the plan's windows
    (``$.session.usage().rateLimits`` on ``session.measure``) and records them as the status line
    would; the next command is refused at 92 % with no request. Older versions: no plan data."""
    import json

    from e2e_harness import MODS

    p = project()
    p.write_config(GUARD_CONFIG)
    p.write_command("big", BIG)
    now = int(time.time())
    fake_api.rate_limits(0.40, 0.10, five_hour_reset=now + 5 * 3600, seven_day_reset=now + 5 * 86400)

    first = p.run_claude("/big 1", login="subscription")
    assert first.returncode == 0 and not first.blocked, first.describe()
    plan = json.loads(p.budget_cli("plan", "--json").stdout)["plan"]
    if not claude.at_least(*MODS):
        assert plan is None  # no mod, and -p has no status line: nothing reports the windows
        return
    assert plan is not None and plan["five_hour"]["used_percentage"] == 40.0, plan

    # The window moves 40 -> 60 % while /big runs: the mod charges the move to /big once its
    # requests are in the ledger (Claude Code reports the move before the response's usage).
    fake_api.rate_limits(0.60, 0.12, five_hour_reset=now + 5 * 3600, seven_day_reset=now + 5 * 86400)
    moved = p.run_claude("/big 2", login="subscription")
    assert moved.returncode == 0 and not moved.blocked, moved.describe()
    big = wait_for(lambda: p.status()["commands"]["/big"]["quota"], "the move charged to /big")
    assert big["five_hour"] == 20.0, big

    fake_api.rate_limits(0.92, 0.15, five_hour_reset=now + 3600, seven_day_reset=now + 5 * 86400)
    p.run_claude("hello", login="subscription")  # a plain prompt: never held back; its turn sees 92 %
    wait_for(lambda: json.loads(p.budget_cli("plan", "--json").stdout)["plan"]["five_hour"]["used_percentage"] == 92.0,
             "the mod's observation of 92 %")  # fmt: skip
    refused = p.run_claude("/big 2", login="subscription")

    assert refused.blocked and refused.requests == 0, refused.describe()
    assert "92%" in refused.text and "quota_guard" in refused.text, refused.text
