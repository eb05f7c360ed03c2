"""The test builders, in one place: a throw-away project with its own HOME, hook payloads as Claude
Code sends them, transcripts written as Claude Code writes them, the hook run in-process or as a real
``python -m budget_state.hook``, and the ledger read back through the product's typed records.

Every test folder imports this by its own name (``import kit`` / ``from kit import Project``):
``tests/`` is on ``sys.path`` (tests/conftest.py). A ``conftest`` is never imported by name — every
folder has one, and in one pytest run ``from conftest import …`` picks whichever was loaded first.
The e2e harness (tests/e2e/e2e_harness.py), which drives the real CLI, stays on its own.
"""

from __future__ import annotations

import io
import itertools
import json
import os
import select
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Optional

from budget_state import hook
from budget_state._accounting import transcript_time
from budget_state.ledger import _records
from budget_state.ledger._ledger import Ledger

REPO = Path(__file__).resolve().parents[1]
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
MODEL = "claude-sonnet-4-5"

_ids = itertools.count(1)  # every response any test writes has its own request and message id


# ---- payloads and transcript lines ---------------------------------------------------------------


def payload(event: str, *, session: str, transcript: Path, cwd: Path, **fields: Any) -> dict[str, Any]:
    """A hook event as Claude Code sends it (``fields`` added last, so they may override any key)."""
    data = {"session_id": session, "transcript_path": str(transcript), "cwd": str(cwd), "hook_event_name": event}
    return {**data, **fields}


def user_record(prompt_id: str, content: Any = "go", **extra: Any) -> dict[str, Any]:
    """A typed prompt's line in a transcript."""
    return {"type": "user", "promptId": prompt_id, "message": {"role": "user", "content": content}, **extra}


def response_record(
    usage: Mapping[str, int],
    *,
    n: int | str | None = None,
    timestamp: str | None = None,
    content: Any = None,
    model: str = MODEL,
) -> dict[str, Any]:
    """One line of an API response: ``usage`` by category (absent ones 0); ``n`` names its request and
    message (a fresh one when None); ``timestamp`` when the response arrived (now when None)."""
    n = next(_ids) if n is None else n
    return {
        "type": "assistant",
        "requestId": f"req_{n}",
        "timestamp": transcript_time() if timestamp is None else timestamp,
        "message": {
            "id": f"msg_{n}",
            "model": model,
            "usage": {FIELDS[c]: usage.get(c, 0) for c in CATEGORIES},
            "content": [{"type": "text", "text": "x"}] if content is None else content,
        },
    }


def append_lines(path: Path, *records: Mapping[str, Any]) -> None:
    """Append JSON lines to a transcript, making its folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as f:
        for rec in records:
            f.write(json.dumps(rec) + "\n")


class Transcript:
    """A session transcript written as Claude Code writes it: one line per content block of a response."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.path.parent.mkdir(parents=True, exist_ok=True)

    def write(self, data: bytes) -> None:
        with open(self.path, "ab") as f:
            f.write(data)

    def user(self, prompt_id: str, text: str = "go") -> None:
        append_lines(self.path, user_record(prompt_id, text))

    def response_lines(self, usage: Mapping[str, int], *, repeats: int = 2, grow: int = 0) -> list[bytes]:
        """The lines of one API response; output_tokens grows by ``grow`` per repeat (streaming)."""
        n = f"{self.path.stem}_{next(_ids)}"
        lines = []
        for k in range(repeats):
            rec = response_record(usage, n=n)
            rec["message"]["usage"]["output_tokens"] += grow * k
            lines.append(json.dumps(rec).encode() + b"\n")
        return lines

    def response(self, usage: Mapping[str, int], *, repeats: int = 2, grow: int = 0) -> dict[str, int]:
        """Append one response; return what it should count for (the largest value per field)."""
        self.write(b"".join(self.response_lines(usage, repeats=repeats, grow=grow)))
        return counted(usage, repeats=repeats, grow=grow)

    def spend(self, prompt_id: str, tokens: int, *, repeats: int = 2) -> None:
        """A prompt and one response of ``tokens`` input tokens (its lines ``repeats`` times)."""
        self.user(prompt_id, "x")
        self.response({"input": tokens}, repeats=repeats)


def counted(usage: Mapping[str, int], *, repeats: int = 1, grow: int = 0) -> dict[str, int]:
    out = {c: usage.get(c, 0) for c in CATEGORIES}
    out["output"] += grow * (repeats - 1)
    return out


def add(total: dict[str, int], usage: Mapping[str, int]) -> None:
    for c in CATEGORIES:
        total[c] = total.get(c, 0) + usage.get(c, 0)


# ---- the ledger, read through the product ---------------------------------------------------------


def tokens(state: Mapping[str, Any], name: str) -> dict[str, int]:
    """The four token counts of ``overall`` or a command (``_records.scope``), all 0 when it has none."""
    return _records.scope(state, name).usage.as_dict()


def totals(state: Mapping[str, Any], name: str) -> dict[str, int]:
    """:func:`tokens` with ``usd_micros`` and ``runs``: every count the scope keeps."""
    found = _records.scope(state, name)
    return {**found.counters(), "runs": found.runs}


def open_run(state: Mapping[str, Any], sid: str) -> str | None:
    """The prompt id of the session's open run (None when none, or no such session)."""
    found = _records.session(state, sid)
    return found.run if found is not None else None


# ---- the hook's reply ------------------------------------------------------------------------------


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


# ---- a project ---------------------------------------------------------------------------------------


class Project:
    """A project with ``.claude/``, its own HOME, one session's transcript, and ways to run the hook."""

    def __init__(self, tmp: Path, *, session: str = "sess-1") -> None:
        self.root = tmp / "proj"
        self.home = tmp / "home"
        self.session = session
        (self.root / ".claude" / "commands").mkdir(parents=True)
        (self.home / ".claude" / "projects" / "proj").mkdir(parents=True)
        self.env = clean_env(self.home, {"CLAUDE_PROJECT_DIR": str(self.root)})
        #: the transcript of this project's session
        self.transcript = self.transcript_path(session)

    @property
    def ledger_path(self) -> Path:
        return self.root / ".claude" / "budget-ledger.toml"

    @property
    def lock_path(self) -> Path:
        return self.root / ".claude" / "budget-ledger.toml.lock"

    def command(self, name: str, budget: Any = None) -> Path:
        """A slash command's file, with ``tokenBudget: <budget>`` unless None."""
        front = f"tokenBudget: {budget}\n" if budget is not None else ""
        path = self.root / ".claude" / "commands" / f"{name}.md"
        path.write_text(f"---\n{front}---\nDo {name}.\n")
        return path

    def config(self, text: str) -> None:
        (self.root / ".claude" / "budget.toml").write_text(text)

    def transcript_path(self, session: str) -> Path:
        return self.home / ".claude" / "projects" / "proj" / f"{session}.jsonl"

    def writer(self, session: str | None = None) -> Transcript:
        """A writer of the session's transcript (this project's session when None)."""
        return Transcript(self.transcript_path(session or self.session))

    def spend(self, prompt_id: str, tokens: int, *, path: Optional[Path] = None) -> None:
        """A user record and one API response of ``tokens`` input tokens (written as two lines, as
        Claude Code does), in this session's transcript or ``path``."""
        Transcript(path or self.transcript).spend(prompt_id, tokens)

    def payload(self, event: str, *, session: str | None = None, **fields: Any) -> dict[str, Any]:
        """The event as Claude Code sends it, for the session (this project's when None)."""
        sid = session or self.session
        return payload(
            event,
            session=sid,
            transcript=self.transcript_path(sid),
            cwd=self.root,
            **{"permission_mode": "default", **fields},
        )

    def stdin(self, event: str, session: str | None, raw: bytes | None, fields: dict[str, Any]) -> bytes:
        """What the hook reads: ``raw`` as given, else the payload Claude Code would send."""
        return raw if raw is not None else json.dumps(self.payload(event, session=session, **fields)).encode()

    def hook(
        self,
        event: str,
        session: str | None = None,
        *,
        raw: bytes | None = None,
        env: Mapping[str, str] | None = None,
        args: list[str] | None = None,
        **fields: Any,
    ) -> Reply:
        """``hook.main`` in-process (fast); stderr is captured by swapping ``sys.stderr``."""
        data = self.stdin(event, session, raw, fields)
        out, err = io.StringIO(), io.StringIO()
        saved, sys.stderr = sys.stderr, err
        start = time.monotonic()
        try:
            rc = hook.main(
                list(args or []), stdin=io.BytesIO(data), stdout=out, env=dict(self.env if env is None else env)
            )
        finally:
            sys.stderr = saved
        return Reply(rc, out.getvalue(), err.getvalue(), time.monotonic() - start)

    def run(self, event: str, raw: Optional[bytes] = None, *, args: list[str] | None = None, **fields: Any) -> Any:
        """``hook.main`` in-process for this project's session; its reply parsed (None when silent)."""
        out = io.StringIO()
        data = self.stdin(event, None, raw, fields)
        # always 0: the reply is what it prints
        hook.main(list(args or []), stdin=io.BytesIO(data), stdout=out, env=self.env)
        text = out.getvalue()
        return json.loads(text) if text else None

    def spawn_hook(
        self,
        event: str,
        session: str | None = None,
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
        session: str | None = None,
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
        """The ledger's state as the product reads it (read it with ``_records`` or the helpers above)."""
        return Ledger(self.ledger_path).read()

    def tokens(self, name: str) -> dict[str, int]:
        return tokens(self.ledger(), name)

    def totals(self, name: str) -> dict[str, int]:
        return totals(self.ledger(), name)


# ---- pipes and another process holding the lock --------------------------------------------------


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

