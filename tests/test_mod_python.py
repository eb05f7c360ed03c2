"""The Python side of the mod: the handshake the hooks check, and requests charged like responses."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from kit import tokens, totals

from budget_state.ledger._ledger import new_state
from budget_state.ledger._state import LedgerState
from budget_state.ledger._runs import open_run, record_request, settle
from budget_state.mod import _mod

NOW = datetime(2026, 12, 7, 3, 0, tzinfo=timezone.utc)
USAGE = {
    "input_tokens": 10,
    "output_tokens": 20,
    "cache_creation_input_tokens": 30,
    "cache_read_input_tokens": 40,
    "cache_creation": {"ephemeral_5m_input_tokens": 30, "ephemeral_1h_input_tokens": 0},
}


def env_for(tmp_path: Path) -> dict[str, str]:
    return {"HOME": str(tmp_path / "home")}


def test_a_claimed_session_is_active_while_its_claude_process_runs(tmp_path: Path) -> None:
    env = env_for(tmp_path)
    assert not _mod.active("s1", env)
    assert _mod.claim("s1", env, os.getpid(), "/mods/a")
    assert _mod.active("s1", env)
    folder = tmp_path / "home" / ".local" / "state" / "claude-budget" / "mod"
    assert (os.stat(folder).st_mode & 0o777) == 0o700
    assert not _mod.active("s2", env)  # per session
    _mod.release("s1", env)
    assert not _mod.active("s1", env)


def test_a_handshake_of_an_ended_process_or_a_foreign_folder_does_not_count(tmp_path: Path) -> None:
    env = env_for(tmp_path)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    assert _mod.claim("s1", env, dead.pid, "/mods/a")
    assert not _mod.active("s1", env)  # the claude process is gone: the hooks count
    assert _mod.claim("s2", env, os.getpid(), "/mods/a")
    folder = tmp_path / "home" / ".local" / "state" / "claude-budget" / "mod"
    os.chmod(folder, 0o777)  # anyone could have written it
    assert not _mod.active("s2", env)
    os.chmod(folder, 0o700)
    assert _mod.active("s2", env)
    assert not _mod.active("../s2", env) and not _mod.claim("../x", env, os.getpid(), "m")


def test_a_second_copy_of_the_mod_does_not_take_a_session_over(tmp_path: Path) -> None:
    env = env_for(tmp_path)
    assert _mod.claim("s1", env, os.getpid(), "/home/u/.claude/skills/claude-budget")
    assert not _mod.claim("s1", env, os.getpid(), "/plugins/claude-budget")
    assert _mod.claim("s1", env, os.getpid(), "/home/u/.claude/skills/claude-budget")


def test_requests_are_charged_to_the_run_and_a_subagent_keeps_its_spawning_run() -> None:
    state = new_state(NOW)
    open_run(state, session="s", prompt="p1", command="/review", now=NOW)
    assert (
        record_request(state, session="s", prompt="p1", agent=None, usage=USAGE, model="m", price=None, now=NOW) == "p1"
    )
    assert (
        record_request(state, session="s", prompt="p1", agent="a1", usage=USAGE, model="m", price=None, now=NOW) == "p1"
    )
    open_run(state, session="s", prompt="p2", command="/other", now=NOW)
    # the background subagent's later request still belongs to /review, not to the turn now running
    assert (
        record_request(state, session="s", prompt="p2", agent="a1", usage=USAGE, model="m", price=None, now=NOW) == "p1"
    )
    assert tokens(state, "/review") == {"input": 30, "output": 60, "cache_creation": 90, "cache_read": 120}
    assert tokens(state, "/other")["input"] == 0
    assert totals(state, "overall")["input"] == 30
    # what the hooks reconcile against Claude Code's own totals counts the mod's requests too
    assert state.sessions["s"].counted["m"][:4] == [30, 60, 90, 120]


def test_a_session_the_mod_counts_is_read_but_not_charged_by_the_hooks(tmp_path: Path) -> None:
    transcript = tmp_path / "t.jsonl"
    lines = [
        {"type": "user", "promptId": "p1", "message": {"content": "hi"}, "timestamp": "2026-12-07T03:00:00Z"},
        {
            "type": "assistant",
            "requestId": "r1",
            "timestamp": "2026-12-07T03:00:01Z",
            "message": {"id": "m1", "model": "m", "usage": USAGE, "content": []},
        },
    ]
    transcript.write_text("".join(json.dumps(x) + "\n" for x in lines))
    counted, skipped = new_state(NOW), new_state(NOW)
    for state, mod in ((counted, False), (skipped, True)):
        settle(
            state,
            session="s",
            transcript=transcript,
            prompt_id="p1",
            started="2026-12-07T02:59:59Z",
            now=NOW,
            mod_counts=mod,
        )
    assert totals(counted, "overall")["input"] == 10
    assert totals(skipped, "overall")["input"] == 0
    # the cursor moved on all the same: the hooks never count these lines later
    assert _cursors(skipped) == _cursors(counted)


def test_a_request_the_mod_cannot_read_gets_one_error_line() -> None:
    out = io.StringIO()
    assert _mod.main(io.BytesIO(b"not json"), out, {}) == 2
    answer = json.loads(out.getvalue())
    assert answer["protocol"] == _mod.PROTOCOL and answer["error"].startswith("claude-budget mod: bad request")


def test_rate_limits_reach_the_stub_in_the_statusline_shape(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    seen = []
    monkeypatch.setattr(_mod, "note_rate_limits", lambda ctx, session, limits: seen.append(limits))
    project = tmp_path / "proj"
    (project / ".claude").mkdir(parents=True)
    limits = {"five_hour": {"used_percentage": 42, "resets_at": 1796613813}}
    request = {"op": "measure", "session": "s1", "cwd": str(project), "rate_limits": limits}
    out = io.StringIO()
    env = {**env_for(tmp_path), "CLAUDE_PROJECT_DIR": str(project)}
    _mod.main(io.BytesIO(json.dumps(request).encode()), out, env)
    assert "band" in json.loads(out.getvalue()), out.getvalue()
    assert seen == [limits]


def test_the_session_child_answers_requests_through_its_fifo(tmp_path: Path) -> None:
    """serve(): the FIFO in the user's 0700 folder takes requests, stdout gives the answers by id."""
    project = tmp_path / "proj"
    (project / ".claude").mkdir(parents=True)
    env = {**os.environ, **env_for(tmp_path), "CLAUDE_PROJECT_DIR": str(project), _mod.SERVE_ENV: "s1"}
    child = subprocess.Popen(
        [sys.executable, "-m", "budget_state.hook", "--mod"],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        ready = json.loads(child.stdout.readline())
        fifo = Path(ready["fifo"])
        assert ready["ready"] and fifo.parent == tmp_path / "home" / ".local" / "state" / "claude-budget" / "mod"
        assert (os.stat(fifo).st_mode & 0o777) == 0o600
        for n in (1, 2):
            with open(fifo, "w") as f:
                f.write(json.dumps({"op": "status", "session": "s1", "cwd": str(project), "id": n}) + "\n")
            answer = json.loads(child.stdout.readline())
            assert answer["id"] == n and "Token budgets" in answer["text"], answer
    finally:
        child.terminate()
        child.wait(10)
        if child.stdout is not None:
            child.stdout.close()
    assert not fifo.exists()  # removed when Claude Code stops it (SIGTERM)


def test_of_two_copies_claiming_together_exactly_one_wins(tmp_path: Path) -> None:
    """The plugin's mod and the one in ~/.claude/skills start their Python at the same moment."""
    env = {**os.environ, **env_for(tmp_path)}
    code = (
        "import os, sys; from budget_state.mod import _mod; "
        "print(_mod.claim(sys.argv[1], os.environ, int(sys.argv[2]), sys.argv[3]))"
    )
    for n in range(5):
        session = f"race{n}"
        procs = [
            subprocess.Popen(
                [sys.executable, "-c", code, session, str(os.getpid()), mod], env=env, stdout=subprocess.PIPE, text=True
            )
            for mod in ("/plugin", "/skills")
        ]
        won = [p.communicate(timeout=30)[0].strip() for p in procs]
        assert sorted(won) == ["False", "True"], won


def test_switched_off_the_mod_stays_out_and_claims_nothing(tmp_path: Path) -> None:
    """``CLAUDE_BUDGET_MOD=off``: in a project the mod would count (wired), it stays out."""
    from budget_state._wiring import hook_command

    project = tmp_path / "proj"
    (project / ".claude").mkdir(parents=True)
    hooks = {"UserPromptSubmit": [{"hooks": [{"type": "command", "command": hook_command()}]}]}
    (project / ".claude" / "settings.json").write_text(json.dumps({"hooks": hooks}))
    env = {**env_for(tmp_path), "CLAUDE_PROJECT_DIR": str(project)}

    def hello(extra: dict[str, str]) -> dict:  # type: ignore[type-arg]
        request = {"op": "hello", "session": "s1", "cwd": str(project), "pid": os.getpid(), "mod": "x"}
        out = io.StringIO()
        _mod.main(io.BytesIO(json.dumps(request).encode()), out, {**env, **extra})
        return json.loads(out.getvalue())  # type: ignore[no-any-return]

    assert hello({"CLAUDE_BUDGET_MOD": "off"}).get("absent") is True
    assert not _mod.active("s1", env)
    assert hello({}).get("claimed") is True and _mod.active("s1", env)  # the same project, switched on


def test_a_measure_records_the_plans_windows_and_the_band_shows_them(tmp_path: Path) -> None:
    """``session.measure`` with a subscription's rate limits: recorded as the account's windows
    (``claude-budget plan``), and the band shows them as the status line does."""
    import time

    from budget_state.budgets._plan import read_plan

    project = tmp_path / "proj"
    (project / ".claude").mkdir(parents=True)
    resets = int(time.time()) + 3600
    limits = {"five_hour": {"used_percentage": 42, "resets_at": resets}}
    request = {"op": "measure", "session": "s1", "cwd": str(project), "rate_limits": limits}
    env = {**env_for(tmp_path), "CLAUDE_PROJECT_DIR": str(project), "CLAUDE_CODE_OAUTH_TOKEN": "x"}
    out = io.StringIO()

    _mod.main(io.BytesIO(json.dumps(request).encode()), out, env)

    plan = read_plan(env)
    assert plan is not None and plan.five_hour is not None and plan.five_hour.used_percentage == 42.0
    assert "5h 42% resets" in json.loads(out.getvalue())["band"]["text"], out.getvalue()


def test_a_handshake_naming_a_child_lapses_with_it_unless_the_session_ended(tmp_path: Path) -> None:
    """The mod's worker can be unloaded midway (Claude Code then stops its Python child): the hooks
    take over. At the session's end the child is stopped too, after the mod said so: they do not."""
    env = env_for(tmp_path)
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        assert _mod.claim("s1", env, os.getpid(), "/mods/a", child=child.pid)
        assert _mod.claim("s2", env, os.getpid(), "/mods/a", child=child.pid)
        assert _mod.active("s1", env) and _mod.active("s2", env)
        _mod.mark_ended("s2", env)
    finally:
        child.kill()
        child.wait()
    assert not _mod.active("s1", env)  # gone midway: the hooks count
    assert _mod.active("s2", env)  # ended first: SessionEnd's hooks still stand down
    # the mod counts on without its child (one process a request): it re-points the handshake
    assert _mod.claim("s1", env, os.getpid(), "/mods/a") and _mod.active("s1", env)


def test_a_record_sent_again_is_charged_once(tmp_path: Path) -> None:
    """The child ended before answering: the mod sends the record again, one process for it."""
    project = tmp_path / "proj"
    (project / ".claude").mkdir(parents=True)
    env = {**env_for(tmp_path), "CLAUDE_PROJECT_DIR": str(project)}

    def step(seq: list[object]) -> None:
        request = {"op": "step", "session": "s1", "cwd": str(project), "model": "m", "usage": USAGE, "seq": seq}
        out = io.StringIO()
        _mod.main(io.BytesIO(json.dumps(request).encode()), out, env)
        assert "error" not in json.loads(out.getvalue()), out.getvalue()

    for seq in (["a", 1], ["a", 2], ["a", 2], ["a", 1], ["b", 1]):  # "b": the next claude process (resumed)
        step(seq)
    from budget_state._api import Context

    state = Context.load(env=env, cwd=str(project)).ledger.read()
    assert state.overall.input == 30


def test_a_handover_makes_the_failed_records_and_moves_the_hooks_past_what_the_mod_counted(tmp_path: Path) -> None:
    """What the transcript holds when the mod stops counting was counted by the mod: the hooks must
    not count it again; the records the mod could not make are made in the handover."""
    from budget_state._api import Context
    from budget_state._steps import settle as hook_settle

    project = tmp_path / "proj"
    (project / ".claude").mkdir(parents=True)
    env = {**env_for(tmp_path), "CLAUDE_PROJECT_DIR": str(project)}
    transcript = tmp_path / "t.jsonl"
    line = {
        "type": "assistant",
        "requestId": "r1",
        "promptId": "p1",
        "timestamp": "2026-12-07T03:00:01Z",
        "message": {"id": "m1", "model": "m", "usage": USAGE, "content": []},
    }
    transcript.write_text(json.dumps({"type": "user", "promptId": "p1", "message": {"content": "hi"}}) + "\n")
    ctx = Context.load(env=env, cwd=str(project))
    with ctx.ledger.transaction() as state:  # the prompt hook saw the session start
        hook_settle(ctx, state, session="s1", transcript=transcript, prompt_id="p1", now=NOW, mod_counts=True)
    with open(transcript, "a") as f:  # the mod counted this response as it was made
        f.write(json.dumps(line) + "\n")
    assert _mod.claim("s1", env, os.getpid(), "/mods/a")
    failed = {"op": "step", "session": "s1", "model": "m", "usage": {**USAGE, "input_tokens": 1}, "seq": ["i", 2]}

    _mod.hand_over("s1", env, str(project), str(transcript), [failed])

    assert not _mod.active("s1", env)  # the hooks count from here on
    with ctx.ledger.transaction() as state:  # the next hook: nothing new to count
        hook_settle(ctx, state, session="s1", transcript=transcript, now=NOW)
    assert ctx.ledger.read().overall.input == 1  # the failed record only, once


def _cursors(state: LedgerState) -> dict[str, dict[str, Any]]:
    """Where the reading of each of session ``s``'s files stands, as its session file keeps it."""
    return {path: cursor.dump() for path, cursor in state.sessions["s"].files.items()}
