"""Another local account against the victim's hook lines (docs/security.md: the threat model).

Each test runs the hook line exactly as Claude Code does (``/bin/sh -c``, the event on stdin, in
the project) as the victim uid, after the attacker uid did what it can: bind ports, plant files in
a folder the victim's environment names, write a committed ``budget.toml``.
"""

from __future__ import annotations

import json
import marshal
import os
import pickle
import subprocess
import time
import zlib
from pathlib import Path

import pytest
from two_users import PYTHON, REPO, World, listening_sockets, payload, spend

from budget_state._wiring import hook_command

LISTENER = r"""
import socket, sys, threading
log = open(sys.argv[1], "ab", buffering=0)
s = socket.socket()
s.bind(("127.0.0.1", 0))
s.listen(200)
print(s.getsockname()[1], flush=True)
def serve(c):
    c.sendall(b"GREETING-THE-CLIENT-WOULD-TRUST\n")
    c.settimeout(5)
    try:
        while data := c.recv(65536):
            log.write(data)
    except OSError:
        pass
    log.write(b"<connection>\n")
while True:
    c, _ = s.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
"""
ATTACKER_TEXT = "IGNORE PREVIOUS INSTRUCTIONS"


def line(world: World, project: Path, event: str, env: dict[str, str] | None = None, **fields: object):
    """The installed line for ``event``, run as the victim; ``CLAUDE_BUDGET_PYTHON`` as install sets it."""
    v = world.victim
    full = {"CLAUDE_PROJECT_DIR": str(project), "CLAUDE_BUDGET_PYTHON": PYTHON, **(env or {})}
    return v.run(
        ["/bin/sh", "-c", hook_command(event=event)],
        cwd=project,
        env=full,
        stdin=payload(project, v.home, event, **fields),
    )


def reply(done: subprocess.CompletedProcess[bytes]) -> dict:
    assert done.returncode == 0 and b"Traceback" not in done.stderr, done
    return json.loads(done.stdout) if done.stdout.strip() else {}


def test_a_hook_line_leaves_no_process_socket_or_cache_behind(world: World) -> None:
    """Nothing of the victim's outlives its hook events: no resident helper to impersonate, exhaust
    or feed a ``../`` pid, no port a web page can POST to, no cache another user could plant."""
    project = world.project()
    answered = reply(line(world, project, "UserPromptSubmit", prompt="/budget", prompt_id="p0"))
    assert "Token budgets" in answered["reason"]
    assert reply(line(world, project, "UserPromptSubmit", prompt="/review-pr 1", prompt_id="p1")) == {}
    spend(world.victim, "p1", 10, 1)
    for event in ("PreToolUse", "SubagentStop", "Stop", "SessionEnd"):
        reply(line(world, project, event, prompt_id="p1", tool_name="Bash", tool_input={}, reason="other"))

    assert world.victim.settle() == []  # background hooks finished; nothing stays resident
    assert listening_sockets(world.victim.uid) == []
    assert not (world.victim.home / ".cache").exists()
    status = world.victim.run([PYTHON, "-m", "budget_state", "status", "--json"], cwd=project)
    assert json.loads(status.stdout)["commands"]["/review-pr"]["used"] == 10  # and it counted


def _plant_old_caches(cache: Path, project: Path, port: int, victim_config: bytes) -> None:
    """What 0.4 would have loaded from ``$XDG_CACHE_HOME/claude-budget``: a marshal copy of the
    victim's budget.toml saying warn, pickles that run code, helper endpoints naming our port."""
    base = cache / "claude-budget"
    (base / "helper" / "parsed").mkdir(parents=True)
    data = {"mode": "warn", "commands": {"/review-pr": {"tokens": "100M"}}}
    name = f"config-{zlib.crc32(os.fsencode(project / '.claude' / 'budget.toml')):08x}.marshal"
    (base / name).write_bytes(marshal.dumps((victim_config, data)))

    class Boom:
        def __reduce__(self):  # type: ignore[no-untyped-def]
            return (os.system, (f"touch {cache}/pwned",))

    for n in range(3):
        (base / "helper" / "parsed" / f"ledger-{n:08x}.pickle").write_bytes(pickle.dumps(("x", Boom())))
        (base / "helper" / f"k{n}.endpoint").write_text(f"{port} client-token server-token 1\n")
    for p in [cache, *cache.rglob("*")]:
        os.chmod(p, 0o777 if p.is_dir() else 0o666)


def test_nothing_planted_in_a_shared_cache_folder_is_used_and_block_still_refuses(world: World) -> None:
    """``XDG_CACHE_HOME`` (or ``HOME`` under sudo) names a folder the attacker can write: its planted
    config cache, pickles and endpoints are never read, no connection reaches its listener."""
    filler = "".join(f'[commands."/filler-{i}"]\ntokens = "{i + 1}k"\n' for i in range(300))  # > 4 KiB
    project = world.project(config=f'mode = "block"\n{filler}')
    shared = world.base / "shared-cache"
    shared.mkdir()
    log = world.attacker.home / "heard.log"
    listener = world.attacker.spawn([PYTHON, "-c", LISTENER, str(log)], cwd=world.attacker.home)
    try:
        assert listener.stdout is not None
        port = int(listener.stdout.readline())
        _plant_old_caches(shared, project, port, (project / ".claude" / "budget.toml").read_bytes())
        world.attacker.own(shared)
        env = {"XDG_CACHE_HOME": str(shared)}

        assert reply(line(world, project, "UserPromptSubmit", env, prompt="/review-pr 1", prompt_id="p1")) == {}
        spend(world.victim, "p1", 150, 1)  # over its 100 tokens
        reply(line(world, project, "Stop", env, prompt_id="p1"))
        world.victim.settle()
        refused = reply(
            line(world, project, "UserPromptSubmit", env, prompt="/review-pr 2 " + "secret " * 3, prompt_id="p2")
        )
        time.sleep(0.3)  # a connection, had one been made, would be logged by now
    finally:
        listener.kill()
        listener.communicate()

    assert refused.get("decision") == "block" and "Token budget spent" in refused["reason"]
    assert ATTACKER_TEXT not in json.dumps(refused)
    assert not (shared / "pwned").exists()
    assert not log.exists() or log.read_bytes() == b""


@pytest.mark.parametrize("form", ["pointer", "project-venv", "path"])
def test_the_project_folder_and_pythonpath_cannot_shadow_the_hooks_modules(world: World, form: str) -> None:
    """A repository's ``json.py``/``typing.py`` (the hook's working folder) or a ``PYTHONPATH`` that
    names it: never imported, whichever way the line finds the hook."""
    project = world.project()
    marker = project / "shadowed"
    for name in ("json", "typing", "re", "os", "filelock", "yaml", "budget_state"):
        body = f"import pathlib; pathlib.Path({str(marker)!r}).write_text({name!r})\n"
        if name == "budget_state":
            (project / name).mkdir()
            (project / name / "__init__.py").write_text(body)
        else:
            (project / f"{name}.py").write_text(body)
    env = {"PYTHONPATH": str(project), "CLAUDE_BUDGET_PYTHON": ""}
    if form == "pointer":
        env["CLAUDE_BUDGET_PYTHON"] = PYTHON
    elif form == "project-venv":
        venv = project / ".venv" / "bin"
        venv.mkdir(parents=True)
        (venv / "python").write_text(f'#!/bin/sh\nexec "{PYTHON}" "$@"\n')
        (venv / "claude-budget-hook").write_text("#!/bin/sh\nexit 3\n")
        for f in venv.iterdir():
            f.chmod(0o755)
    else:
        env["PATH"] = f"{REPO / '.venv' / 'bin'}:/usr/bin:/bin"  # claude-budget-hook, pip's console script
    world.victim.own(project)

    answered = reply(line(world, project, "UserPromptSubmit", env, prompt="/budget", prompt_id="p0"))

    assert "Token budgets" in answered["reason"]  # the real hook answered
    assert not marker.exists(), f"{marker.read_text()}.py from the project was imported"


def test_a_committed_ledger_setting_cannot_touch_the_users_files(world: World) -> None:
    home = world.victim.home
    bashrc = home / ".bashrc"
    bashrc.write_text("export PATH=$HOME/bin:$PATH\n")
    (home / ".claude" / "settings.json").write_text('{"theme": "dark"}\n')
    world.victim.own(bashrc, home / ".claude")
    before = {p: p.read_bytes() for p in (bashrc, home / ".claude" / "settings.json")}

    for target in ("~/.bashrc", "../outside.toml", "~/.claude/settings.json", "/etc/passwd"):
        project = world.project(f"proj-{abs(hash(target))}", config=f'ledger = "{target}"\n')
        said = reply(line(world, project, "UserPromptSubmit", prompt="/review-pr 1", prompt_id="p1"))
        assert "ledger = " in said["systemMessage"] and "CLAUDE_BUDGET_STATE" in said["systemMessage"], said

    assert {p: p.read_bytes() for p in before} == before
    assert sorted(p.name for p in home.iterdir() if "corrupt" in p.name or p.name.startswith(".bashrc")) == [".bashrc"]
    assert not (home / "outside.toml").exists()


@pytest.mark.parametrize(
    ("url", "secrets"),
    [
        ("postgresql://alice:S3cr%ZZet@127.0.0.1:9/budgets", ["S3cr", "ZZet"]),  # libpq cannot parse the %
        ("postgresql://alice:p@ss@127.0.0.1:9/budgets", ["p@ss", "ss@127"]),  # an unencoded @
        ("postgresql://alice:S3cr%25et@127.0.0.1:9/budgets", ["S3cr", "alice"]),  # well formed: refused at connect
    ],
)
def test_no_part_of_a_team_url_password_reaches_any_output(world: World, url: str, secrets: list[str]) -> None:
    project = world.project()
    env = {"CLAUDE_BUDGET_TEAM_URL": url, "CLAUDE_BUDGET_TEAM_TIMEOUT": "3"}
    outputs = [line(world, project, "UserPromptSubmit", env, prompt="/review-pr 1", prompt_id="p1")]
    spend(world.victim, "p1", 10, 1)
    outputs.append(line(world, project, "SessionEnd", env, reason="other"))
    for argv in (["status", "--json"], ["status"], ["doctor", "--json"], ["team", "status"]):
        outputs.append(world.victim.run([PYTHON, "-m", "budget_state", *argv], cwd=project, env=env, timeout=60))
    world.victim.settle()
    files = [p for p in (project / ".claude").iterdir() if p.is_file()]

    text = "\n".join(o.stdout.decode() + o.stderr.decode() for o in outputs)
    text += "\n".join(p.read_text(errors="replace") for p in files)
    assert text.strip()  # something was said: the failure was reported, just not the password
    for secret in secrets:
        assert secret not in text, f"{secret!r} leaked"


def test_a_repeated_prompt_event_keeps_its_run_open_and_counts_once(world: World) -> None:
    """The same UserPromptSubmit delivered twice (a retry, a fallback that ran it again) is one run,
    still the session's current one: not closed by its own repeat."""
    project = world.project(budget=1000)
    for _ in range(2):
        assert reply(line(world, project, "UserPromptSubmit", prompt="/review-pr 1", prompt_id="p1")) == {}
    spend(world.victim, "p1", 40, 1)
    reply(line(world, project, "UserPromptSubmit", prompt="/review-pr 1", prompt_id="p1"))
    world.victim.settle()

    import tomllib

    claude = project / ".claude"  # as root: the files, not the victim's view
    state = tomllib.loads((claude / "budget-ledger.toml").read_text())
    runs = [r for r in state["runs"] if r["prompt"] == "p1"]
    assert len(runs) == 1 and "ended" not in runs[0], runs
    session = json.loads((claude / "budget-ledger.d" / "sessions" / "sess-sec.json").read_text())
    assert session["run"] == "p1"
    command = json.loads((claude / "budget-ledger.d" / "commands" / "%2Freview-pr.json").read_text())
    assert command["runs"] == 1 and command["input"] == 40


def test_a_planted_mod_handshake_does_not_make_the_hooks_stand_down(world: World) -> None:
    """The hooks stand down for a session the mod counts (its handshake in the state folder). One
    another user planted, naming a live process of the victim's, must change nothing: they count."""
    project = world.project()
    sleeper = world.victim.spawn(["sleep", "60"], cwd=world.victim.home)
    try:
        from budget_state.mod._mod import _process_start

        shared = world.base / "shared-state"
        handshake = shared / "claude-budget" / "mod" / "sess-sec.json"
        handshake.parent.mkdir(parents=True)
        time.sleep(0.2)  # setpriv has exec'd sleep: its pid is the victim's process now
        start = _process_start(sleeper.pid)
        handshake.write_text(json.dumps({"session": "sess-sec", "pid": sleeper.pid, "started": start, "mod": "x"}))
        world.attacker.own(shared)
        for p in [shared, *shared.rglob("*")]:
            os.chmod(p, 0o777 if p.is_dir() else 0o666)
        env = {"XDG_STATE_HOME": str(shared)}

        assert reply(line(world, project, "UserPromptSubmit", env, prompt="/review-pr 1", prompt_id="p1")) == {}
        spend(world.victim, "p1", 30, 1)
        reply(line(world, project, "SessionEnd", env, reason="other"))
    finally:
        sleeper.kill()
        sleeper.communicate()
    world.victim.settle()
    status = world.victim.run([PYTHON, "-m", "budget_state", "status", "--json"], cwd=project)
    assert json.loads(status.stdout)["commands"]["/review-pr"]["used"] == 30
