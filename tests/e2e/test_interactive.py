"""The product in an interactive Claude Code session: the TUI, driven through tmux like a user would.

Each test starts the real CLI (no ``-p``) in a detached tmux server of its own, types into it with
``send-keys`` and reads the screen with ``capture-pane``. An interactive session prints no
``modelUsage``, so the references are what the fake API served (``FakeAPI.sent``) and what the CLI
writes about the session into ``~/.claude.json`` when it exits (``lastModelUsage``).

What Claude Code 2.1.197 shows, as checked here:

- a refused prompt (and ``/budget``) under a bullet: ``● UserPromptSubmit operation blocked by
  hook:`` / the reason / ``Original prompt: <typed text>``;
- a hook's ``systemMessage`` under the step it follows, named after the hook (and its matcher):
  ``⎿  Stop says: claude-budget: …`` under the last response, ``⎿  PreToolUse:Bash says: …``
  under a Bash call.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from e2e_harness import (
    BACKGROUND_SUBAGENTS,
    COST_STATE,
    MODS,
    RecordingFakeAPI,
    add,
    after,
    flat,
    model_usage,
    number_in,
    pane_idle,
    total,
    transcript_request_ids,
    usage_of,
)

from budget_state.budgets._units import humanize
from budget_state.ledger import _records

REVIEW = "Review PR $ARGUMENTS. SCRIPT: bash, agent, bash, text"
BIG = 1_000_000
BLOCKED = "● UserPromptSubmit operation blocked by hook:"


@pytest.fixture
def fake_api() -> Iterator[RecordingFakeAPI]:
    """The fake API, also remembering what each request was for (the CLI makes title requests here)."""
    api = RecordingFakeAPI().start()
    try:
        yield api
    finally:
        api.stop()


def turn_done(api: RecordingFakeAPI, requests: int, last_line: str):
    """A wait condition: the API served ``requests`` in all, ``last_line`` is on screen, the prompt is idle."""
    return lambda pane: api.requests == requests and last_line in pane and pane_idle(pane)


def test_interactive_session_is_counted_exactly_and_ends_with_session_end(project, fake_api, interactive, claude):
    p = project()
    p.write_command("review-pr", REVIEW, token_budget=BIG)
    tui = interactive(p)

    # 1. A budgeted command with tools and a subagent: 4 requests in the main thread, 2 in the
    # subagent — and from 2.1.198, where the subagent runs in the background, the follow-up turn.
    # (6 when a background subagent finishes before its turn does: no follow-up turn then)
    most = 7 if claude.at_least(*BACKGROUND_SUBAGENTS) else 6
    tui.submit("/review-pr 1")
    tui.wait(
        lambda pane: (
            6 <= fake_api.requests <= most
            and f"● Step {fake_api.requests}: text." in pane
            and "Waiting for" not in after(pane, f"● Step {fake_api.requests}: text.")
            and pane_idle(pane)
        ),
        f"the /review-pr turn: 6 to {most} API requests, the last one's text, idle",
    )
    n = fake_api.requests
    review = list(fake_api.sent)
    assert sum(s.subagent for s in review) == 2, review
    assert not any(fake_api.is_title(s) for s in review), review
    review_usage = usage_of(review)

    # 2. /budget is answered by the hook on screen; the model is not called.
    tui.submit("/budget")
    if claude.at_least(*MODS):  # the mod's command: a local command's output, no "blocked" frame
        pane = tui.wait(lambda pane: "Token budgets — mode: warn" in after(pane, "❯ /budget") and pane_idle(pane), "the mod's /budget answer")
        assert "blocked by hook" not in pane, tui.describe()
    else:
        pane = tui.wait(lambda pane: "Original prompt: /budget" in pane and pane_idle(pane), "the /budget answer")
        assert BLOCKED in pane, tui.describe()
    answer = after(pane, "Token budgets — mode: warn")
    assert answer, tui.describe()
    row = next((line for line in answer.splitlines() if "/review-pr" in line), None)
    assert row is not None, tui.describe()
    assert number_in(row, total(review_usage)) and number_in(row, BIG) and "(1 run)" in row, row
    assert fake_api.requests == n, tui.describe()

    # 3. A plain prompt: it counts toward the overall budget only.
    tui.submit("hello SCRIPT: text")
    replied = re.compile(r"● Step \d+: text\.")
    tui.wait(
        lambda pane: replied.search(after(pane, "❯ hello SCRIPT: text")) is not None and pane_idle(pane),
        "the reply to the plain prompt",
    )

    # 4. /exit: the CLI ends the session (SessionEnd) and records its own usage in ~/.claude.json.
    assert tui.exit() == "status 0", tui.describe()
    cli = tui.cli_record()
    session = cli.get("lastSessionId")
    assert cli.get("lastGracefulShutdown") is True and session, cli
    sent = list(fake_api.sent)
    assert len(sent) == fake_api.requests and not fake_api.errors, sent
    assert sent[:n] == review
    titles = [s for s in sent if fake_api.is_title(s)]
    turns = [s for s in sent if not fake_api.is_title(s)]
    assert len(turns) == n + 1, sent  # n for /review-pr, 1 for the plain prompt, none for /budget

    ledger = p.state()
    record = _records.session(ledger, session)
    assert record is not None and record.ended is True, record  # only SessionEnd sets it
    status = p.status()
    cmd = status["commands"]["/review-pr"]
    assert (cmd["tokens"], cmd["used"], cmd["runs"]) == (review_usage, total(review_usage), 1), cmd
    assert {name for name, c in status["commands"].items() if c["used"] or c["runs"]} == {"/review-pr"}, status

    # Claude Code's own account of the session counts every request it made, the title one included.
    assert model_usage({"modelUsage": cli.get("lastModelUsage")}) == fake_api.totals() == usage_of(sent)
    # The ledger counts every request the session's transcripts record — which is every request
    # but the session-title one(s): the CLI writes those nowhere a hook can read. KNOWN GAP: in an
    # interactive session the overall count falls short of the API (and of the CLI's own count) by
    # the title request of each typed (non-command) prompt. Pinned here so a change either way shows.
    assert transcript_request_ids(p.home, session) == {s.request_id for s in turns}
    if claude.at_least(*COST_STATE):
        # 2.1.332 made no title request here; its cost-state (Claude Code's own totals, at the end
        # of the transcript) would charge one to overall if it did.
        assert titles == [], titles
        assert status["overall"]["tokens"] == fake_api.totals(), (status["overall"], usage_of(turns))
    else:
        assert len(titles) == 1, titles
        assert status["overall"]["tokens"] == usage_of(turns), (status["overall"], usage_of(turns), titles)
        assert add(status["overall"]["tokens"], usage_of(titles)) == fake_api.totals()


def test_block_mode_refusal_shows_in_the_pane_and_calls_nothing(project, fake_api, interactive):
    p = project()
    p.write_config('mode = "block"\n')
    p.write_command("review-pr", "Review PR $ARGUMENTS. SCRIPT: text", token_budget=1000)
    tui = interactive(p)

    tui.submit("/review-pr 1")
    tui.wait(turn_done(fake_api, 1, "● Step 1: text."), "the first /review-pr turn: 1 API request, idle prompt")
    first = usage_of(fake_api.sent)
    assert total(first) > 1000  # one request of the fake API costs more than 3,000 tokens

    # not submit(): with a mod loaded, 2.1.332 puts the refused prompt back into the box
    tui.type("/review-pr 2")
    tui._tmux("send-keys", "-t", "main", "Enter")
    pane = tui.wait(lambda pane: "Original prompt: /review-pr 2" in pane and pane_idle(pane), "the refusal")

    # The reason as the product words it, after Claude Code's own heading; the TUI wraps it at its width.
    refusal = flat(after(pane, "● Step 1: text."))
    cmd = p.status()["commands"]["/review-pr"]
    assert (cmd["tokens"], cmd["used"], cmd["runs"]) == (first, total(first), 1), cmd
    spent = f"{humanize(total(first))} of {humanize(1000)} tokens ({int(100.0 * cmd['used'] / cmd['limit'])}%)"  # rounded down
    assert f"{BLOCKED} Token budget spent: /review-pr has used {spent}. To go on, raise tokenBudget" in refusal, (
        tui.describe()
    )
    assert "in .claude/commands/review-pr.md, or start over with: claude-budget reset /review-pr." in refusal
    assert "Original prompt: /review-pr 2" in refusal and "Step 2" not in refusal, tui.describe()
    assert fake_api.requests == 1, tui.describe()

    tui.clear_input()
    assert tui.exit() == "status 0", tui.describe()
    assert fake_api.requests == 1, tui.describe()  # nothing was sent for the refused prompt, ever
    cmd = p.status()["commands"]["/review-pr"]
    assert (cmd["tokens"], cmd["used"], cmd["runs"]) == (first, total(first), 1), cmd


def test_warn_mode_shows_the_crossing_as_a_hook_message(project, fake_api, interactive):
    p = project()
    p.write_config('mode = "warn"\n')
    p.write_command("review-pr", "Review PR $ARGUMENTS. SCRIPT: bash, text", token_budget=1000)
    tui = interactive(p)

    tui.submit("/review-pr 1")
    tui.wait(turn_done(fake_api, 2, "● Step 2: text."), "the /review-pr turn: 2 API requests, idle prompt")
    warning = re.compile(
        r"⎿ (\w+(?::\w+)?) says: claude-budget: /review-pr has spent its token budget: (\S+) of 1\.0K tokens \(\d+%\)\."
    )
    pane = tui.wait(lambda pane: warning.search(flat(pane)) is not None, "the budget warning in the pane", timeout=10)
    found = warning.findall(flat(pane))
    assert len(found) == 1, tui.describe()
    hook, used = found[0]
    # Said by the first hook that saw the first response in the transcript: usually Stop (shown
    # under the last response), sometimes PreToolUse (shown under the Bash call, as
    # "PreToolUse:Bash says: …"). Stop may not see the last response yet: it can still be on its
    # way to the transcript.
    assert hook in ("PreToolUse:Bash", "Stop"), tui.describe()
    partial = [total(usage_of(fake_api.sent[:n])) for n in (1, 2)]
    assert used in {humanize(n) for n in partial}, (used, partial)

    # Warn never refuses: the next run goes ahead, and the crossing is not announced again.
    tui.submit("/review-pr 2")
    pane = tui.wait(turn_done(fake_api, 4, "● Step 4: text."), "the second /review-pr turn: 4 API requests in all")
    assert len(warning.findall(flat(pane))) == 1, tui.describe()
    assert "blocked by hook" not in pane, tui.describe()

    assert tui.exit() == "status 0", tui.describe()
    assert not any(fake_api.is_title(s) for s in fake_api.sent), fake_api.sent
    cmd = p.status()["commands"]["/review-pr"]
    assert (cmd["tokens"], cmd["used"], cmd["runs"]) == (fake_api.totals(), total(fake_api.totals()), 2), cmd
