"""The mod (plugin/hooks/claude-budget.mod.ts) in the real CLI: 2.1.332 loads it, 2.1.197 does not.

Each test wires a project with ``install`` (the hooks) and loads the plugin with ``--plugin-dir``
(its command hooks stand down where install wired the project). On 2.1.332 the mod counts every
request and the hooks stand down for counting (the handshake); on 2.1.197, with
``CLAUDE_CODE_SAFE_MODE=1`` or when the mod cannot count, the hooks count everything.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import signal
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from e2e_harness import MODS, REPO, Project, Run, pane_idle, total, usage_of

PLUGIN = REPO / "plugin"


def run(p: Project, prompt: str, args_extra: tuple[str, ...] | list[str] = (), **kw: Any) -> Run:
    return p.run_claude(prompt, args=["--plugin-dir", str(PLUGIN), *args_extra], **kw)


def mod_counted(p: Project) -> bool:
    """Whether a mod counted in this project's ledger (it remembers each subagent's run, hooks never do)
    — or, for a session without subagents, whether the hooks stood down (no response charged by them)."""
    sessions = p.state().sessions
    return any(s.mod_agents for s in sessions.values())


def crossing(sent: list[Any], limit: int) -> int:
    """The 0-based index of the request whose response put ``limit`` over (cumulative tokens)."""
    used = 0
    for i, s in enumerate(sent):
        used += total(usage_of([s]))
        if used > limit:
            return i
    raise AssertionError(f"the {len(sent)} requests never went over {limit}")


def test_ledger_equals_what_the_api_sent_with_or_without_the_mod(project, fake_api, claude):
    p = project()
    p.write_command("review-pr", "Review PR $ARGUMENTS. SCRIPT: bash, agent, text")

    first = run(p, "/review-pr 1")
    assert first.result["subtype"] == "success", first.describe()
    second = run(p, "plain prompt SCRIPT: bash, text")

    status = p.status()
    sent = fake_api.totals()
    cmd = status["commands"]["/review-pr"]
    assert status["overall"]["tokens"] == sent, status["overall"]
    assert cmd["tokens"] == first.usage and cmd["runs"] == 1, cmd
    assert total(first.usage) + total(second.usage) == total(sent)
    # 2.1.332 loads the mod and it counted (the hooks stood down); 2.1.197 ignores `modules`
    assert mod_counted(p) == claude.at_least(*MODS)


def test_a_mod_that_fails_to_load_leaves_counting_to_the_hooks(project, fake_api, claude, tmp_path):
    """The plugin with a module whose register() throws: Claude Code unloads it, the hooks count."""
    if not claude.at_least(*MODS):
        pytest.skip("no mods before 2.1.286: the test above covers the hooks alone")
    broken = tmp_path / "plugin"
    shutil.copytree(PLUGIN, broken, symlinks=True, ignore=shutil.ignore_patterns("types", "tsconfig.json"))
    (broken / "hooks" / "claude-budget.mod.ts").write_text("export function register() { throw new Error('no') }\n")
    p = project()
    shutil.rmtree(p.home / ".claude" / "skills" / "claude-budget")  # the copy install put there
    p.write_command("review-pr", "Review PR $ARGUMENTS. SCRIPT: bash, agent, text")

    r = p.run_claude("/review-pr 1", args=["--plugin-dir", str(broken)])

    assert r.result["subtype"] == "success", r.describe()
    status = p.status()
    assert status["overall"]["tokens"] == fake_api.totals() == r.usage
    assert status["commands"]["/review-pr"]["tokens"] == r.usage
    assert not mod_counted(p)


def test_safe_mode_turns_off_the_settings_hooks_too(project, fake_api, claude):
    """A fact of 2.1.332, not a choice of ours: CLAUDE_CODE_SAFE_MODE=1 loads no mod and runs none of
    the project's or user's settings hooks either (managed ones only), so nothing counts that session."""
    if not claude.at_least(*MODS):
        pytest.skip("safe mode as 2.1.332 has it")
    p = project()
    r = run(p, "plain SCRIPT: bash, text", extra_env={"CLAUDE_CODE_SAFE_MODE": "1"})
    assert r.requests == 2, r.describe()
    assert p.status()["overall"]["tokens"] == dict.fromkeys(r.usage, 0)


def test_kill_refuses_the_request_after_the_crossing_one_in_the_main_loop(project, fake_api, claude):
    if not claude.at_least(*MODS):
        pytest.skip("the mod needs Claude Code 2.1.286+ (test_enforcement covers the hooks)")
    p = project()
    p.write_config('mode = "kill"\n')
    p.write_command("review-pr", "Review PR $ARGUMENTS. SCRIPT: bash, bash, bash, bash, bash, text", token_budget=100)

    r = run(p, "/review-pr 9")

    assert r.requests == 1, r.describe()  # the first response crossed: no request after it
    assert r.text.startswith("claude-budget stopped this run:"), r.describe()  # orchestrate reads it so
    assert "/review-pr" in r.text and "100" in r.text, r.describe()
    assert "blocked by hook" not in r.text
    status = p.status()
    assert status["commands"]["/review-pr"]["tokens"] == fake_api.totals() == r.usage


@pytest.mark.parametrize(
    ("agent", "limit"),
    [("longagent", 30_000), ("longfgagent", 30_000), ("longfork", 30_000)],
    ids=["background", "foreground", "fork"],
)
def test_kill_refuses_the_request_after_the_crossing_one_in_a_subagent(project, fake_api, claude, agent, limit):
    """The budget is crossed by a response inside the subagent's tool loop: no request goes out after
    it, in the subagent or in the main loop (background and foreground subagents; fork: not yet)."""
    if not claude.at_least(*MODS):
        pytest.skip("the mod needs Claude Code 2.1.286+")
    p = project()
    p.write_config('mode = "kill"\n')
    p.write_command("review-pr", f"Review PR $ARGUMENTS. SCRIPT: {agent}, text", token_budget=limit)

    r = run(p, "/review-pr 7")

    sent = list(fake_api.sent)
    assert total(fake_api.totals()) > limit, r.describe()
    k = crossing(sent, limit)
    assert any(s.subagent for s in sent[: k + 1]), "the crossing must happen in the subagent"
    assert len(sent) == k + 1, f"{len(sent) - k - 1} request(s) after the crossing one (#{k + 1})"
    assert p.status()["commands"]["/review-pr"]["tokens"] == fake_api.totals()
    # (the follow-up turn Claude Code starts when the subagent ends is refused at its start by the
    # prompt hook, as without the mod: the command's budget is spent)


def test_budget_command_is_display_only_with_the_mod(project, fake_api, claude):
    p = project()
    p.write_command("review-pr", "Review PR $ARGUMENTS. SCRIPT: text", token_budget=50_000)
    run(p, "/review-pr 1")
    before = fake_api.requests

    r = run(p, "/budget")

    assert fake_api.requests == before, r.describe()
    assert "/review-pr" in r.text, r.describe()
    if claude.at_least(*MODS):
        assert r.by_mod and "Token budgets" in r.text, r.describe()
        assert "blocked" not in r.text, r.describe()
    else:
        assert r.blocked, r.describe()  # 2.1.197: the hook answers, framed as a blocked prompt


@pytest.mark.parametrize("on_error", ["open", "closed"])
def test_a_failing_mod_respects_on_error(project, fake_api, claude, on_error):
    """Once the first request is out, another process holds the ledger's lock past lock_timeout, so
    counting that request fails in the mod: closed refuses every later request (one line says
    why); open hands counting to the hooks and the turn goes on."""
    if not claude.at_least(*MODS):
        pytest.skip("the mod needs Claude Code 2.1.286+")
    p = project()
    p.write_config(f'on_error = "{on_error}"\nlock_timeout = 0.2\n')
    lock = Path(str(p.ledger) + ".lock")
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o600)
    held = threading.Event()
    done = threading.Event()

    def hold() -> None:  # the prompt hook has run once a request arrives: take the lock then
        while not done.is_set():
            if fake_api.requests >= 1:
                fcntl.flock(fd, fcntl.LOCK_EX)
                held.set()
                return
            time.sleep(0.001)

    t = threading.Thread(target=hold, daemon=True)
    t.start()
    try:
        r = run(p, "three steps SCRIPT: bash, bash, text")
    finally:
        done.set()
        t.join(5)
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)
    assert held.is_set()
    if on_error == "closed":
        # no request after the one that could not be counted: the mod refuses the next one, and
        # the hooks' PreToolUse (which cannot take the lock either) stops the turn before it
        assert r.requests == 1, r.describe()
    else:
        assert r.requests == 3, r.describe()
        assert r.result["subtype"] == "success", r.describe()


def test_the_band_and_budget_in_the_interactive_tui(project, fake_api, interactive, claude):
    """2.1.332: the band above the prompt shows the running command and its budget, updated per
    request; /budget renders as a local command's output (no "blocked" frame, no request)."""
    if not claude.at_least(*MODS):
        pytest.skip("the mod needs Claude Code 2.1.286+ (test_interactive covers 2.1.197)")
    p = project()
    p.write_command("review-pr", "Review PR $ARGUMENTS. SCRIPT: bash, text", token_budget=1_000_000)
    tui = interactive(p)

    from budget_state.budgets._units import humanize

    tui.submit("/review-pr 1")

    def band_shows_all(pane: str) -> bool:  # the band is redrawn after each request is counted
        used = humanize(total(fake_api.totals()))
        return fake_api.requests >= 2 and f"claude-budget · /review-pr {used} of 1.0M tokens" in pane

    pane = tui.wait(band_shows_all, "the band naming the running command and all its requests", timeout=15)
    band = next(line for line in pane.splitlines() if "claude-budget · /review-pr" in line)
    assert "tightest: /review-pr" in band and "$" in band, band
    n = fake_api.requests

    tui.submit("/budget")
    pane = tui.wait(lambda pane: "Token budgets" in pane.split("❯ /budget")[-1] and pane_idle(pane), "/budget's answer")
    assert "blocked by hook" not in pane, tui.describe()
    assert fake_api.requests == n
    assert tui.exit() == "status 0", tui.describe()


def test_switched_off_the_mod_stays_out_and_the_hooks_count_exactly(project, fake_api, claude):
    """``CLAUDE_BUDGET_MOD=off`` (for short scripted runs): no handshake, no Python child; the hooks
    count every response, subagents included."""
    if not claude.at_least(*MODS):
        pytest.skip("no mods before 2.1.286: the hooks count anyway")
    p = project()
    p.write_command("review-pr", "Review PR $ARGUMENTS. SCRIPT: bash, agent, text")

    r = run(p, "/review-pr 1", extra_env={"CLAUDE_BUDGET_MOD": "off"})

    assert r.result["subtype"] == "success", r.describe()
    status = p.status()
    assert status["overall"]["tokens"] == fake_api.totals() == r.usage
    assert status["commands"]["/review-pr"]["tokens"] == r.usage
    assert not mod_counted(p)
    assert not list((p.home / ".local" / "state" / "claude-budget" / "mod").glob("*.json"))


def modified_plugin(tmp_path: Path, old: str, new: str) -> Path:
    """A copy of the plugin whose mod has ``old`` replaced by ``new`` (which must be there once)."""
    copy = tmp_path / "modified-plugin"
    shutil.copytree(PLUGIN, copy, symlinks=True, ignore=shutil.ignore_patterns("types", "tsconfig.json"))
    ts = copy / "hooks" / "claude-budget.mod.ts"
    text = ts.read_text(encoding="utf-8")
    assert text.count(old) == 1, f"the mod no longer has {old!r}"
    ts.write_text(text.replace(old, new), encoding="utf-8")
    return copy


def mod_records(p: Project) -> int:
    """How many requests the session's mod charged (the last record's place in its order)."""
    from budget_state.ledger import _runs

    state = p.state()
    return max((seq[1] for sid in state.sessions if (seq := _runs.mod_seq(state, sid))), default=0)


def handshakes(p: Project) -> list[dict[str, Any]]:
    folder = p.home / ".local" / "state" / "claude-budget" / "mod"
    return [json.loads(f.read_text()) for f in folder.glob("*.json")]


FIVE = "Review PR $ARGUMENTS. SCRIPT: bash, bash, bash, bash, text"
TURN_STEP = "    if (!counting) return yield* next(e)\n    const prompt = await promptFor($, e.turnId)\n"


def test_the_python_child_dying_midway_loses_nothing_and_counts_nothing_twice(project, fake_api, claude):
    """The mod's Python child is killed (SIGKILL) once the second request is out: the mod counts on,
    one process a request, sends again what the child had not answered (charged once), and the
    handshake stops naming the child — so the hooks still stand down."""
    if not claude.at_least(*MODS):
        pytest.skip("the mod needs Claude Code 2.1.286+")
    p = project()
    p.write_command("review-pr", FIVE)
    killed: list[int] = []
    done = threading.Event()

    def kill_child() -> None:
        while not done.is_set() and not killed:
            if fake_api.requests >= 2:
                for h in handshakes(p):
                    if isinstance(h.get("child"), int):
                        os.kill(h["child"], signal.SIGKILL)
                        killed.append(h["child"])
            time.sleep(0.002)

    t = threading.Thread(target=kill_child, daemon=True)
    t.start()
    try:
        r = run(p, "/review-pr 3")
    finally:
        done.set()
        t.join(5)
    assert killed, "the child was never seen"
    assert r.result["subtype"] == "success" and r.requests == 5, r.describe()
    status = p.status()
    assert status["overall"]["tokens"] == fake_api.totals() == r.usage
    assert status["commands"]["/review-pr"]["tokens"] == r.usage
    assert mod_records(p) == 5  # the mod counted every request (the hooks none)
    assert all("child" not in h for h in handshakes(p))


def test_a_wedged_mod_unloaded_midway_hands_counting_to_the_hooks_exactly(project, fake_api, claude, tmp_path):
    """The mod's worker stalls before the third request (a busy loop): Claude Code unloads it and
    stops its Python child, which moves the hooks' cursors past what the mod counted and removes
    the handshake; the hooks count the rest. Nothing lost, nothing twice."""
    if not claude.at_least(*MODS):
        pytest.skip("the mod needs Claude Code 2.1.286+")
    wedge = "    if (e.index === 2 && !e.agentId) { const t = Date.now(); while (Date.now() - t < 15000) { /* wedged */ } }\n"
    plugin = modified_plugin(tmp_path, TURN_STEP, TURN_STEP + wedge)
    p = project()
    shutil.rmtree(p.home / ".claude" / "skills" / "claude-budget")  # only the wedging copy loads
    p.write_command("review-pr", FIVE)

    r = p.run_claude("/review-pr 4", args=["--plugin-dir", str(plugin)])

    assert r.result["subtype"] == "success" and r.requests == 5, r.describe()
    status = p.status()
    assert status["overall"]["tokens"] == fake_api.totals() == r.usage
    assert status["commands"]["/review-pr"]["tokens"] == r.usage
    assert 1 <= mod_records(p) < 5  # the mod counted the first ones, the hooks the rest
    assert handshakes(p) == []


def test_compaction_with_the_mod_is_counted_where_claude_code_reports_it(project, fake_api, claude):
    """/compact's requests are outside any turn (no turn.step sees them; session.compact's usage
    held one request's output only, on 2.1.332): the mod counts the turns, and Claude Code's own
    totals (cost-state, at the session's end) bring the rest into overall — to the token."""
    if not claude.at_least(*MODS):
        pytest.skip("the mod needs Claude Code 2.1.286+ (test_accounting covers the hooks)")
    p = project()
    p.write_command("review-pr", "Review PR $ARGUMENTS. SCRIPT: bash, text")
    first = run(p, "/review-pr 1")
    assert first.requests == 2, first.describe()

    compact = run(p, "/compact", args_extra=["--resume", first.result["session_id"]])

    assert compact.result["subtype"] == "success" and compact.requests == 2, compact.describe()
    status = p.status()
    assert status["overall"]["tokens"] == fake_api.totals() == compact.usage  # cumulative when resumed
    assert status["commands"]["/review-pr"]["tokens"] == first.usage
    assert mod_records(p) == 2  # the mod counted the command's two requests
    # Claude Code stopped the Python child at the session's end: the handshake named it no more
    # (or said the session ended), so the SessionEnd hooks stood down
    assert all("child" not in h or h.get("ended") is True for h in handshakes(p)), handshakes(p)


@pytest.mark.parametrize("where", ["main", "subagent"])
def test_a_stream_cut_and_retried_is_charged_as_claude_code_charges_it(project, fake_api, claude, where):
    """The API drops a response after its message_start; Claude Code retries it and charges both
    (its modelUsage). In a subagent the mod charges the cut attempt to the command at the
    subagent's end (Claude Code's own count of the agent's requests); in the main loop no mod event
    tells it before the session's end, when Claude Code's own totals (cost-state) bring it to
    overall and — the session being this one command's run — to the command. Exact either way."""
    if not claude.at_least(*MODS):
        pytest.skip("the mod needs Claude Code 2.1.286+")
    p = project()
    script = "bash, cutbash, text" if where == "main" else "cutagent, text"
    p.write_command("review-pr", f"Review PR $ARGUMENTS. SCRIPT: {script}")

    r = run(p, "/review-pr 5")

    assert r.result["subtype"] == "success", r.describe()
    cut = [s for s in fake_api.sent if s.cut]
    assert len(cut) == 1 and cut[0].subagent == (where == "subagent"), fake_api.sent
    assert r.usage == fake_api.totals()  # Claude Code charges the cut attempt
    status = p.status()
    assert status["overall"]["tokens"] == fake_api.totals()
    assert status["commands"]["/review-pr"]["tokens"] == fake_api.totals()
    assert mod_records(p) >= 3


def transcript_of(p: Project, session: str) -> str:
    return "".join(f.read_text() for f in (p.home / ".claude" / "projects").glob(f"*/{session}.jsonl"))


@pytest.mark.parametrize("on_error", ["open", "closed"])
def test_a_mod_hook_that_throws_respects_on_error_and_says_so_once(project, fake_api, claude, tmp_path, on_error):
    """The mod's turn.step handler throws from the second request on (a copy of the mod with a
    throw put in): its registration's catch answers. closed: that request and every later one is
    refused; open: counting goes to the hooks, the turn goes on, the ledger stays exact. Either
    way one line says so, once."""
    if not claude.at_least(*MODS):
        pytest.skip("the mod needs Claude Code 2.1.286+")
    throw = "    if (e.index >= 1 && !e.agentId) throw new Error('thrown on purpose')\n"
    plugin = modified_plugin(tmp_path, TURN_STEP, TURN_STEP + throw)
    p = project()
    shutil.rmtree(p.home / ".claude" / "skills" / "claude-budget")  # only the throwing copy loads
    p.write_config(f'on_error = "{on_error}"\n')
    p.write_command("review-pr", "Review PR $ARGUMENTS. SCRIPT: bash, bash, text")

    r = p.run_claude("/review-pr 2", args=["--plugin-dir", str(plugin)], output="stream-json")

    said = [e for e in r.events if e.get("subtype") == "ui_log" and "thrown on purpose" in e.get("text", "")]
    status = p.status()
    if on_error == "closed":
        assert r.requests == 1, r.describe()
        assert r.text.startswith("claude-budget stopped this run:") and "on_error is closed" in r.text, r.describe()
    else:
        assert r.requests == 3 and r.result["subtype"] == "success", r.describe()
        assert mod_records(p) == 1  # the mod counted the first request, the hooks the rest
    assert status["overall"]["tokens"] == fake_api.totals() == r.usage
    assert status["commands"]["/review-pr"]["tokens"] == r.usage
    assert len(said) == 1, said


def test_a_mod_api_of_another_shape_leaves_counting_to_the_hooks_with_one_line(project, fake_api, claude, tmp_path):
    """The mod API is early access: a call this Claude Code lacks (here a copy of the mod that asks
    for one, as a mod written for another release would) throws a TypeError at the session's
    start. The mod says so in one line and stays out; the hooks count everything, exactly."""
    if not claude.at_least(*MODS):
        pytest.skip("the mod needs Claude Code 2.1.286+")
    plugin = modified_plugin(
        tmp_path,
        "    $.session.id(),\n",
        "    ($.session as unknown as { idOfAnotherRelease: () => Promise<string> }).idOfAnotherRelease(),\n",
    )
    p = project()
    shutil.rmtree(p.home / ".claude" / "skills" / "claude-budget")
    p.write_command("review-pr", "Review PR $ARGUMENTS. SCRIPT: bash, agent, text")

    r = p.run_claude("/review-pr 6", args=["--plugin-dir", str(plugin)], output="stream-json")

    assert r.result["subtype"] == "success", r.describe()
    said = [e.get("text", "") for e in r.events if e.get("subtype") == "ui_log"]
    assert len(said) == 1 and "mod API is not the one the mod knows" in said[0], said
    status = p.status()
    assert status["overall"]["tokens"] == fake_api.totals() == r.usage
    assert status["commands"]["/review-pr"]["tokens"] == r.usage
    assert mod_records(p) == 0 and not mod_counted(p) and handshakes(p) == []
