"""Shared machinery of the adversarial reliability suite: a throw-away project, hooks run in-process
or as real ``python -m budget_state.hook`` processes, transcripts written the way Claude Code
writes them, and another process holding the ledger lock with ``filelock``.

Nothing here touches the real ``~/.claude``: every project has its own ``HOME``, subprocesses get a
clean environment (no ``CLAUDE_BUDGET_*`` from outside) with this checkout first on ``PYTHONPATH``.
Every wait is bounded (``TIMEOUT``) and synchronisation goes through pipes, never through sleeps.
"""

from __future__ import annotations

import io
import json
import os
import select
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Callable

import pytest

from budget_state import hook
from budget_state._accounting import transcript_time
from budget_state.ledger._ledger import Ledger

REPO = Path(__file__).resolve().parents[2]
PYTHON = sys.executable
TIMEOUT = 60.0  # seconds: a bound on any single wait; only reached when something hangs
CATEGORIES = ("input", "output", "cache_creation", "cache_read")
FIELDS = {
    "input": "input_tokens",
    "output": "output_tokens",
    "cache_creation": "cache_creation_input_tokens",
    "cache_read": "cache_read_input_tokens",
}
# The keys Claude Code understands in a hook's JSON reply (docs/hooks.md, checked on 2.1.197).
REPLY_KEYS = frozenset({"systemMessage", "decision", "reason", "continue", "stopReason", "hookSpecificOutput"})


def clean_env(home: Path, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of every subprocess: this checkout importable, nothing inherited that could steer it."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
        "PYTHONPATH": str(REPO),
        "HOME": str(home),
        "LC_ALL": "C.UTF-8",
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    env.update(extra or {})
    return env


def check_reply(text: str) -> dict[str, Any] | None:
    """Nothing, or exactly one line holding one JSON object with only keys Claude Code knows."""
    if text == "":
        return None
    assert text.endswith("\n") and text.count("\n") == 1, f"not one line: {text!r}"
    reply = json.loads(text)
    assert isinstance(reply, dict), text
    assert set(reply) <= REPLY_KEYS, f"unknown keys {set(reply) - REPLY_KEYS} in {text!r}"
    assert reply, "an empty object says nothing: print nothing instead"
    if "systemMessage" in reply:
        assert isinstance(reply["systemMessage"], str) and reply["systemMessage"], text
    if "decision" in reply or "reason" in reply:
        assert reply.get("decision") == "block" and isinstance(reply.get("reason"), str), text
    if {"continue", "stopReason", "hookSpecificOutput"} & set(reply):
        assert reply.get("continue") is False and isinstance(reply.get("stopReason"), str), text
        if "hookSpecificOutput" in reply:
            specific = reply["hookSpecificOutput"]
            assert isinstance(specific, dict) and specific.get("hookEventName") == "PreToolUse", text
            assert specific.get("permissionDecision") in ("allow", "deny", "ask"), text
    return reply


class Reply:
    """What one hook run produced."""

    def __init__(self, rc: int, out: str, err: str, elapsed: float) -> None:
        self.rc = rc
        self.out = out
        self.err = err
        self.elapsed = elapsed

    @property
    def json(self) -> dict[str, Any] | None:
        return check_reply(self.out)

    def __repr__(self) -> str:
        return f"Reply(rc={self.rc}, out={self.out!r}, err={self.err[-2000:]!r}, elapsed={self.elapsed:.2f})"


class Transcript:
    """A session transcript written as Claude Code writes it: one line per content block of a response."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._n = 0

    def write(self, data: bytes) -> None:
        with open(self.path, "ab") as f:
            f.write(data)

    def user(self, prompt_id: str, text: str = "go") -> None:
        self.write(
            json.dumps({"type": "user", "promptId": prompt_id, "message": {"role": "user", "content": text}}).encode()
            + b"\n"
        )

    def response_lines(self, usage: Mapping[str, int], *, repeats: int = 2, grow: int = 0) -> list[bytes]:
        """The lines of one API response; output_tokens grows by ``grow`` per repeat (streaming)."""
        self._n += 1
        lines = []
        for k in range(repeats):
            u = {FIELDS[c]: usage.get(c, 0) for c in CATEGORIES}
            u["output_tokens"] += grow * k
            rec = {
                "type": "assistant",
                "requestId": f"req_{self.path.stem}_{self._n}",
                "timestamp": transcript_time(),  # as Claude Code writes it: when the response arrived
                "message": {
                    "id": f"msg_{self.path.stem}_{self._n}",
                    "model": "claude-sonnet-4-5",
                    "usage": u,
                    "content": [{"type": "text", "text": "x"}],
                },
            }
            lines.append(json.dumps(rec).encode() + b"\n")
        return lines

    def response(self, usage: Mapping[str, int], *, repeats: int = 2, grow: int = 0) -> dict[str, int]:
        """Append one response; return what it should count for (the largest value per field)."""
        self.write(b"".join(self.response_lines(usage, repeats=repeats, grow=grow)))
        return counted(usage, repeats=repeats, grow=grow)


def counted(usage: Mapping[str, int], *, repeats: int = 1, grow: int = 0) -> dict[str, int]:
    out = {c: usage.get(c, 0) for c in CATEGORIES}
    out["output"] += grow * (repeats - 1)
    return out


def add(total: dict[str, int], usage: Mapping[str, int]) -> None:
    for c in CATEGORIES:
        total[c] = total.get(c, 0) + usage.get(c, 0)


def tokens_of(table: Any) -> dict[str, int]:
    """The four categories of a ledger table (absent ones as 0)."""
    table = table if isinstance(table, dict) else {}
    return {c: table.get(c, 0) for c in CATEGORIES}


class Project:
    """A project with ``.claude/``, its own HOME, and ways to run the hook against it."""

    def __init__(self, tmp: Path) -> None:
        self.root = tmp / "proj"
        self.home = tmp / "home"
        (self.root / ".claude" / "commands").mkdir(parents=True)
        (self.home / ".claude" / "projects" / "proj").mkdir(parents=True)
        self.env = clean_env(self.home, {"CLAUDE_PROJECT_DIR": str(self.root)})

    @property
    def ledger_path(self) -> Path:
        return self.root / ".claude" / "budget-ledger.toml"

    @property
    def lock_path(self) -> Path:
        return self.root / ".claude" / "budget-ledger.toml.lock"

    def command(self, name: str, budget: Any) -> Path:
        path = self.root / ".claude" / "commands" / f"{name}.md"
        path.write_text(f"---\ntokenBudget: {budget}\n---\nDo {name}.\n")
        return path

    def transcript(self, session: str) -> Transcript:
        return Transcript(self.home / ".claude" / "projects" / "proj" / f"{session}.jsonl")

    def payload(self, event: str, session: str, fields: Mapping[str, Any]) -> dict[str, Any]:
        return {
            "session_id": session,
            "transcript_path": str(self.home / ".claude" / "projects" / "proj" / f"{session}.jsonl"),
            "cwd": str(self.root),
            "permission_mode": "default",
            "hook_event_name": event,
            **fields,
        }

    def stdin(self, event: str, session: str, raw: bytes | None, fields: dict[str, Any]) -> bytes:
        """What the hook reads: ``raw`` as given, else the payload Claude Code would send."""
        return raw if raw is not None else json.dumps(self.payload(event, session, fields)).encode()

    def hook(
        self,
        event: str,
        session: str = "s1",
        *,
        raw: bytes | None = None,
        env: Mapping[str, str] | None = None,
        **fields: Any,
    ) -> Reply:
        """``hook.main`` in-process (fast); stderr is captured by swapping ``sys.stderr``."""
        data = self.stdin(event, session, raw, fields)
        out, err = io.StringIO(), io.StringIO()
        saved, sys.stderr = sys.stderr, err
        start = time.monotonic()
        try:
            rc = hook.main([], stdin=io.BytesIO(data), stdout=out, env=dict(self.env if env is None else env))
        finally:
            sys.stderr = saved
        return Reply(rc, out.getvalue(), err.getvalue(), time.monotonic() - start)

    def spawn_hook(
        self,
        event: str,
        session: str = "s1",
        *,
        raw: bytes | None = None,
        env: Mapping[str, str] | None = None,
        **fields: Any,
    ) -> subprocess.Popen[bytes]:
        data = self.stdin(event, session, raw, fields)
        with tempfile.TemporaryFile() as stdin:  # the whole input is there before it starts, as from Claude Code
            stdin.write(data)
            stdin.seek(0)
            return subprocess.Popen(
                [PYTHON, "-m", "budget_state.hook"],
                stdin=stdin,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                cwd=self.root,
                env=dict(self.env if env is None else env),
            )

    def hook_proc(
        self,
        event: str,
        session: str = "s1",
        *,
        raw: bytes | None = None,
        env: Mapping[str, str] | None = None,
        **fields: Any,
    ) -> Reply:
        """The real thing: ``python -m budget_state.hook`` as Claude Code runs it, timed."""
        data = self.stdin(event, session, raw, fields)
        start = time.monotonic()
        proc = subprocess.run(
            [PYTHON, "-m", "budget_state.hook"],
            input=data,
            capture_output=True,
            cwd=self.root,
            env=dict(self.env if env is None else env),
            timeout=TIMEOUT,
            check=False,
        )
        out, err = proc.stdout.decode("utf-8", "replace"), proc.stderr.decode("utf-8", "replace")
        return Reply(proc.returncode, out, err, time.monotonic() - start)

    def ledger(self) -> dict[str, Any]:
        return Ledger(self.ledger_path).read()


@pytest.fixture
def proj(tmp_path: Path) -> Project:
    return Project(tmp_path)


def read_exactly(stream: Any, n: int, *, timeout: float = TIMEOUT) -> bytes:
    """``n`` bytes from a pipe (a file object or a descriptor), failing, not hanging, if they do not come."""
    fd = stream if isinstance(stream, int) else stream.fileno()
    data = b""
    deadline = time.monotonic() + timeout
    while len(data) < n:
        left = deadline - time.monotonic()
        ready, _, _ = select.select([fd], [], [], max(0.0, left))
        if not ready:
            raise AssertionError(f"no answer on the pipe within {timeout:g} s (got {data!r})")
        chunk = os.read(fd, n - len(data))
        if not chunk:
            raise AssertionError(f"the pipe closed early (got {data!r})")
        data += chunk
    return data


HOLDER = """
import sys, filelock
lock = filelock.FileLock(sys.argv[1])
lock.acquire(timeout=60)
sys.stdout.write("held\\n"); sys.stdout.flush()
sys.stdin.readline()          # hold until told (or until the test goes away: EOF)
lock.release()
sys.stdout.write("released\\n"); sys.stdout.flush()
"""


class LockHolder:
    """Another process holding ``<ledger>.lock`` with ``filelock.FileLock``, as an orchestrator would."""

    def __init__(self, lock: Path, env: Mapping[str, str]) -> None:
        self.proc = subprocess.Popen(
            [PYTHON, "-c", HOLDER, str(lock)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=dict(env)
        )
        assert read_exactly(self.proc.stdout, 5) == b"held\n"
        self.held_at = time.monotonic()

    def release(self) -> None:
        if self.proc.poll() is None and self.proc.stdin is not None and not self.proc.stdin.closed:
            self.proc.stdin.write(b"go\n")
            self.proc.stdin.close()
            assert read_exactly(self.proc.stdout, 9) == b"released\n"
            self.proc.wait(timeout=TIMEOUT)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=TIMEOUT)
        for stream in (self.proc.stdin, self.proc.stdout):
            if stream is not None and not stream.closed:
                stream.close()


@pytest.fixture
def hold_lock() -> Iterator[Callable[..., LockHolder]]:
    """``hold_lock(path, env)`` starts a holder; every holder is gone when the test ends."""
    holders: list[LockHolder] = []

    def start(lock: Path, env: Mapping[str, str]) -> LockHolder:
        holder = LockHolder(lock, env)
        holders.append(holder)
        return holder

    yield start
    for holder in holders:
        holder.stop()


@pytest.fixture(scope="session")
def kit() -> Any:
    """The helpers above, for the test modules (a conftest cannot be imported by name: tests/e2e has one too)."""
    import types

    return types.SimpleNamespace(
        CATEGORIES=CATEGORIES,
        PYTHON=PYTHON,
        REPO=REPO,
        TIMEOUT=TIMEOUT,
        Transcript=Transcript,
        add=add,
        check_reply=check_reply,
        clean_env=clean_env,
        counted=counted,
        read_exactly=read_exactly,
        tokens_of=tokens_of,
    )
