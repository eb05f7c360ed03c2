"""Throw-away projects, homes, transcripts and ledgers for the benchmarks; never ~/.claude.

Transcript lines copy the shape of what Claude Code 2.1.197 writes (see tests/data/transcripts/):
one line per content block of an API response, each repeating the response's usage, and a user
record carrying ``promptId`` for every tool result.
"""

from __future__ import annotations

import io
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Mapping
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from _harness import PYTHON

MODEL = "claude-opus-4-8"
_SAFE_ENV = ("PATH", "LANG", "LC_ALL", "TZ", "TMPDIR", "SYSTEMROOT")


class Sandbox:
    """A temporary folder that holds every project and home the benchmarks use."""

    def __init__(self, base: str | None = None) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="claude-budget-bench-", dir=base)).resolve()

    def project(self, name: str, *, commands: Mapping[str, Any], mode: str | None = None) -> Project:
        return Project(self.root / name, commands=commands, mode=mode)

    def cleanup(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)

    def plain_python(self, repo: Path) -> str:
        """A venv of the same base Python with the package as a regular install would have it.

        No editable-install finder: the repo and this venv's site-packages go on a plain ``.pth``
        (paths only, nothing imported at start-up). Made offline (``venv --without-pip``).
        """
        target = self.root / "plain-venv"
        if (target / "bin" / "python").exists():
            return str(target / "bin" / "python")
        return venv_with_path(target, repo, name="claude_budget_bench")


def venv_with_path(target: Path, code: Path, /, *, name: str) -> str:
    """A venv at ``target`` (the base Python, no pip, offline) that imports from ``code`` and from
    this Python's site-packages, through a plain ``<name>.pth``; returns its python."""
    import sysconfig

    base = getattr(sys, "_base_executable", None) or sys.executable
    subprocess.run([base, "-m", "venv", "--without-pip", str(target)], check=True, capture_output=True)
    python = str(target / "bin" / "python")
    purelib = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    Path(purelib, f"{name}.pth").write_text(f"{code}\n{sysconfig.get_paths()['purelib']}\n")
    return python


class Project:
    """``<dir>/proj`` (installed with ``claude-budget install``) and ``<dir>/home`` as $HOME."""

    def __init__(self, where: Path, *, commands: Mapping[str, Any], mode: str | None) -> None:
        self.root = where / "proj"
        self.home = where / "home"
        (self.home / ".claude").mkdir(parents=True)
        self.root.mkdir(parents=True)
        self.env: dict[str, str] = {k: os.environ[k] for k in _SAFE_ENV if k in os.environ}
        self.env.update(HOME=str(self.home), CLAUDE_PROJECT_DIR=str(self.root))
        subprocess.run(
            [PYTHON, "-m", "budget_state", "install", str(self.root)],
            env=self.env,
            cwd=self.root,
            check=True,
            capture_output=True,
        )
        if mode is not None:
            config = self.root / ".claude" / "budget.toml"
            config.write_text(config.read_text().replace('# mode = "warn"', f'mode = "{mode}"'))
        for name, budget in commands.items():
            front = f"description: The {name} command\n" + (f"tokenBudget: {budget}\n" if budget is not None else "")
            text = f"---\n{front}---\nDo the {name} task for $ARGUMENTS. Read the code, run the tests, report.\n"
            (self.root / ".claude" / "commands" / f"{name}.md").write_text(text)
        self.ledger = self.root / ".claude" / "budget-ledger.toml"
        self.cache = self.root / ".claude" / "budget-cache.json"
        self.transcripts = self.home / ".claude" / "projects" / str(self.root).replace("/", "-")
        self.transcripts.mkdir(parents=True)

    def session(self, seed: int = 0) -> Session:
        return Session(self, seed)

    def hook(self, stdin: bytes) -> bytes:
        """Run the hook once, untimed (scene setting), and return its stdout."""
        done = subprocess.run(
            [PYTHON, "-m", "budget_state.hook"],
            input=stdin,
            env=self.env,
            cwd=self.root,
            capture_output=True,
            check=True,
        )
        return done.stdout


class Session:
    """One Claude Code session of a project: its transcript, a subagent transcript, hook payloads."""

    def __init__(self, project: Project, seed: int) -> None:
        self.project = project
        self.id = str(uuid.UUID(int=random.Random(seed).getrandbits(128), version=4))
        self.transcript = project.transcripts / f"{self.id}.jsonl"
        self.subagent = project.transcripts / self.id / "subagents" / "agent-a9346b1cf7bb05ff9.jsonl"
        self.transcript.touch()
        self.lines = Lines(self.id, str(project.root), seed)
        self.prompt_id = str(uuid.uuid4())
        self._finals = 0
        self.last_message = "Done."

    def new_prompt(self) -> str:
        self.prompt_id = str(uuid.uuid4())
        return self.prompt_id

    def append(self, data: bytes, *, subagent: bool = False) -> None:
        if subagent:
            self.subagent.parent.mkdir(parents=True, exist_ok=True)
        with open(self.subagent if subagent else self.transcript, "ab") as f:
            f.write(data)

    def activity(self, assistant_lines: int, *, subagent: bool = False, final: bool = False) -> bytes:
        """Append what one stretch of a turn writes: ``assistant_lines`` assistant lines and tool results.

        ``final``: the last line is the turn's closing text, which the Stop payload then quotes as
        ``last_assistant_message`` (the Stop hook waits for it to be in the transcript).
        Returns the bytes appended.
        """
        text = None
        if final:
            self._finals += 1
            text = f"Done: the flaky test now passes ({self._finals} files changed, 12 tests green)."
            self.last_message = text
        data = self.lines.turn(self.prompt_id, assistant_lines, sidechain=subagent, final=text)
        self.append(data, subagent=subagent)
        return data

    def prompt(self, text: str) -> str:
        """Start a turn as Claude Code does: a new prompt id, and its user record in the transcript.

        A slash command (``/name args``) is written as Claude Code writes one — the command's tags,
        then a meta record with the expanded body — so a reader can tell the command from the
        transcript alone. The records are dated now (the lines' clock catches up first; see
        ``Lines.catch_up`` for later lines). Returns the prompt id.
        """
        self.new_prompt()
        self.lines.catch_up()
        name, _, args = text.partition(" ")
        if text.startswith("/"):
            tags = f"<command-message>{name[1:]}</command-message>\n<command-name>{name}</command-name>\n"
            self.append(self.lines.user(self.prompt_id, tags + f"<command-args>{args}</command-args>"))
            body = f"Do the {name[1:]} task for {args}. Read the code, run the tests, report."
            self.append(self.lines.user(self.prompt_id, body, meta=True))
        else:
            self.append(self.lines.user(self.prompt_id, text))
        return self.prompt_id

    def agent(self, agent_id: str) -> None:
        """A new subagent of the current turn: its own transcript, opened with its task (a user record
        carrying the turn's prompt id, as Claude Code writes it); ``activity(subagent=True)`` goes there."""
        self.subagent = self.transcript.with_suffix("") / "subagents" / f"agent-{agent_id}.jsonl"
        self.append(self.lines.user(self.prompt_id, "Look into the failing test.", sidechain=True), subagent=True)

    def payload(self, event: str, **fields: Any) -> bytes:
        data: dict[str, Any] = {
            "session_id": self.id,
            "transcript_path": str(self.transcript),
            "cwd": str(self.project.root),
            "prompt_id": self.prompt_id,
            "permission_mode": "default",
            "hook_event_name": event,
        }
        if event == "UserPromptSubmit":
            data["prompt"] = fields.pop("prompt")
        elif event in ("PreToolUse", "PostToolUse"):
            data["effort"] = {"level": "high"}
            data["tool_name"] = "Bash"
            data["tool_input"] = {"command": "pytest -q tests/test_api.py", "description": "Run the API tests"}
            data["tool_use_id"] = f"toolu_{uuid.uuid4().hex[:24]}"
            if event == "PostToolUse":
                data["tool_response"] = {
                    "stdout": "12 passed in 0.84s",
                    "stderr": "",
                    "interrupted": False,
                    "isImage": False,
                    "noOutputExpected": False,
                }
                data["duration_ms"] = 912
        elif event in ("Stop", "SubagentStop"):
            data.update(
                effort={"level": "high"},
                stop_hook_active=False,
                last_assistant_message=self.last_message,
                background_tasks=[],
                session_crons=[],
            )
            if event == "SubagentStop":
                data.update(
                    agent_id=self.subagent.stem.removeprefix("agent-"),
                    agent_type="general-purpose",
                    agent_transcript_path=str(self.subagent),
                )
        data.update(fields)
        return json.dumps(data, indent=2).encode()


class Lines:
    """Realistic transcript lines with unique message/request ids and rising timestamps."""

    def __init__(self, session: str, cwd: str, seed: int) -> None:
        self.rng = random.Random(seed)
        self.session = session
        self.cwd = cwd
        self.n = 0
        self.clock = datetime.now(timezone.utc)
        self.parent: str | None = None

    def _common(self, kind: str, sidechain: bool) -> dict[str, Any]:
        self.clock += timedelta(milliseconds=self.rng.randint(5, 900))
        me = str(uuid.UUID(int=self.rng.getrandbits(128), version=4))
        rec = {"parentUuid": self.parent, "isSidechain": sidechain, "type": kind, "uuid": me}
        self.parent = me
        return rec

    def catch_up(self) -> None:
        """Date the next lines from now on at the earliest (the clock only moves forward)."""
        self.clock = max(self.clock, datetime.now(timezone.utc))

    def user(self, prompt: str, content: str, *, meta: bool = False, sidechain: bool = False) -> bytes:
        """A user record of ``prompt`` (a typed prompt, or with ``meta`` the expanded body of a command)."""
        rec = self._common("user", sidechain)
        rec["promptId"] = prompt
        rec["message"] = {"role": "user", "content": content}
        if meta:
            rec["isMeta"] = True
        return self._tail(rec)

    def _tail(self, rec: dict[str, Any]) -> bytes:
        rec.update(
            timestamp=self.clock.strftime("%Y-%m-%dT%H:%M:%S.") + f"{self.clock.microsecond // 1000:03d}Z",
            userType="external",
            entrypoint="cli",
            cwd=self.cwd,
            sessionId=self.session,
            version="2.1.197",
            gitBranch="main",
        )
        return json.dumps(rec, separators=(",", ":")).encode() + b"\n"

    def _usage(self) -> dict[str, Any]:
        return {
            "input_tokens": self.rng.randint(3, 60),
            "cache_creation_input_tokens": self.rng.randint(200, 5000),
            "cache_read_input_tokens": self.rng.randint(3000, 40000),
            "output_tokens": self.rng.randint(40, 900),
            "server_tool_use": {"web_search_requests": 0, "web_fetch_requests": 0},
            "service_tier": "standard",
            "cache_creation": {"ephemeral_1h_input_tokens": 0, "ephemeral_5m_input_tokens": 1726},
            "inference_geo": "",
            "iterations": [],
            "speed": "standard",
        }

    def _assistant(self, content: list[dict[str, Any]], stop: str, usage: dict[str, Any], sidechain: bool) -> bytes:
        rec = self._common("assistant", sidechain)
        rec["message"] = {
            "id": f"msg_{self.session[:8]}{self.n:012d}",
            "type": "message",
            "role": "assistant",
            "model": MODEL,
            "content": content,
            "stop_reason": stop,
            "stop_sequence": None,
            "usage": usage,
            "stop_details": None,
        }
        rec["requestId"] = f"req_{self.session[:8]}{self.n:012d}"
        return self._tail(rec)

    def turn(self, prompt: str, assistant_lines: int, *, sidechain: bool = False, final: str | None = None) -> bytes:
        """``assistant_lines`` assistant lines with tool results; with ``final``, the last is that closing text."""
        out = io.BytesIO()
        left = assistant_lines - (1 if final is not None else 0)
        while left > 0:
            self.n += 1
            blocks = min(left, self.rng.choice((1, 2, 2, 3)))  # one line per content block, same usage
            left -= blocks
            usage = self._usage()
            tool = f"toolu_{self.session[:8]}{self.n:012d}"
            for b in range(blocks):
                if b < blocks - 1:
                    text = f"Step {self.n}: looking at the failing test and the code it calls."
                    content = [{"type": "text", "text": text}]
                else:
                    call = {"command": "pytest -q tests/test_api.py", "description": "Run the API tests"}
                    content = [{"type": "tool_use", "id": tool, "name": "Bash", "input": call}]
                out.write(self._assistant(content, "tool_use", usage, sidechain))
            rec = self._common("user", sidechain)
            rec["promptId"] = prompt
            result = {"stdout": "12 passed in 0.84s", "stderr": "", "interrupted": False, "isImage": False}
            rec["message"] = {
                "role": "user",
                "content": [
                    {"tool_use_id": tool, "type": "tool_result", "content": result["stdout"], "is_error": False}
                ],
            }
            rec["toolUseResult"] = {**result, "noOutputExpected": False}
            out.write(self._tail(rec))
        if final is not None:
            self.n += 1
            out.write(self._assistant([{"type": "text", "text": final}], "end_turn", self._usage(), sidechain))
        return out.getvalue()

    def block(self, prompt: str, size: int, *, final: str | None = None) -> bytes:
        """At least ``size`` bytes of turns (4 assistant lines each); with ``final``, the last line is that text."""
        out = io.BytesIO()
        while out.tell() < size:
            out.write(self.turn(prompt, 4))
        if final is not None:
            out.write(self.turn(prompt, 1, final=final))
        return out.getvalue()


def write_big(path: Path, chunk: bytes, size: int) -> None:
    """``size`` bytes (rounded up to whole chunks) of ``chunk`` repeated: a long-history transcript, fast."""
    with open(path, "wb") as f:
        for _ in range(-(-size // len(chunk))):
            f.write(chunk)


def simulate_history(
    project: Project,
    *,
    runs: int,
    commands: list[str],
    days: float,
    sessions: int,
    checkpoints: int = 4,
    batch: int = 100,
) -> list[tuple]:
    """``runs`` command runs spread evenly over the last ``days`` days, through the product's own code.

    In-process, with the ledger's clock set to each batch's simulated time (so the 35-day rollup
    horizon and the session expiry act as they would have): ``runs - sessions`` runs are recorded
    as ``record_usage`` records them (``_runs.record``, 100 per ledger transaction), then each of
    ``sessions`` sessions runs one command the way the hook does (UserPromptSubmit: settle +
    open_run; its transcript grows; Stop: settle + close_run). Returns (runs so far, simulated day,
    ledger bytes) at ``checkpoints`` points.
    """
    from budget_state.ledger import _ledger, _runs
    from budget_state._model import Usage

    rng = random.Random(7)
    real_now = _ledger.utcnow
    end = real_now()
    start = end - timedelta(days=days)
    plain = runs - sessions
    step = timedelta(days=days) / max(plain, 1)
    ledger = _ledger.Ledger(project.ledger, timeout=60)
    marks = {plain * k // checkpoints for k in range(1, checkpoints + 1)}
    sizes = []
    try:
        for b in range(0, plain, batch):
            top = min(b + batch, plain)
            clock = (start + step * top).replace(microsecond=0)
            _ledger.utcnow = lambda clock=clock: clock
            with ledger.transaction() as state:
                for i in range(b, top):
                    usage = Usage(
                        rng.randint(10, 60), rng.randint(200, 4000), rng.randint(1000, 20000), rng.randint(5000, 150000)
                    )
                    _runs.record(
                        state,
                        usage,
                        command="/" + rng.choice(commands),
                        model=MODEL,
                        session=None,
                        prompt=f"api-{i}",
                        now=(start + step * i).replace(microsecond=0),
                    )
            if any(b < m <= top for m in marks):
                sizes.append((top, (step * top).total_seconds() / 86400, _state_bytes(project.ledger)))
    finally:
        _ledger.utcnow = real_now
    if sessions:
        live = [project.session(seed=10_000 + s) for s in range(sessions)]
        now = _ledger.utcnow()
        with ledger.transaction() as state:
            for s in live:
                s.activity(3)  # history from before this prompt: not counted
                _runs.settle(state, session=s.id, transcript=s.transcript, prompt_id=s.new_prompt(), now=now)
                _runs.open_run(state, session=s.id, prompt=s.prompt_id, command="/" + rng.choice(commands), now=now)
        for s in live:
            s.activity(rng.randint(4, 12))
        with ledger.transaction() as state:
            for s in live:
                _runs.settle(state, session=s.id, transcript=s.transcript, prompt_id=s.prompt_id, now=now)
                _runs.close_run(state, session=s.id, now=now)
        sizes.append((runs, days, _state_bytes(project.ledger)))
    return sizes


def record_usage(project: Project, tokens: int, *, command: str | None) -> None:
    """One run through the public API (``budget_state.record_usage``), in this process."""
    import budget_state

    usage = {"input": tokens // 10, "output": tokens // 10, "cache_read": tokens - 2 * (tokens // 10)}
    budget_state.record_usage(usage, command=command, model=MODEL, project=project.root, env=project.env)


def _state_bytes(ledger: Path) -> int:
    """Every file the state spans: the ledger file and its parts beside it (``<stem>.d/``)."""
    parts = ledger.with_name(ledger.stem + ".d")
    return ledger.stat().st_size + sum(p.stat().st_size for p in parts.rglob("*") if p.is_file())
