"""Counting what a session spent, from Claude Code's transcripts. No budget logic here.

The rules, each from a bug other tools shipped (see README "How tokens are counted"):

- One API response is written as several lines (one per content block) that share
  ``(message.id, requestId)`` and repeat the usage: count each response once, taking the largest
  value seen per field (repeats are identical or growing, never shrinking).
- Subagents write their own files under ``<session>/subagents/``: read those too.
- ``<synthetic>`` and API-error records are not spend.
- Read only what was appended since the last hook (a byte offset per file), never a partial last
  line, and survive a file that shrank or was replaced without counting anything twice.
- Usage belongs to the prompt whose user record (``promptId``) precedes it in the file — so late
  lines are still charged to the right command run, whichever hook reads them.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, NamedTuple

from ._model import count_value

CHUNK = 1 << 20
MAX_LINE = 16 << 20  # a longer line is skipped (and reported): no real usage record is that big
RECENT_KEYS = 8
_FIELDS = (
    ("input", "input_tokens"),
    ("output", "output_tokens"),
    ("cache_creation", "cache_creation_input_tokens"),
    ("cache_read", "cache_read_input_tokens"),
)


class Entry(NamedTuple):
    """Tokens newly counted for one API response (a delta when a repeat line grew)."""

    prompt: str | None
    model: str | None
    usage: dict[str, int]


class ReadResult:
    """What one read of a transcript found."""

    __slots__ = ("commands", "entries", "problem", "skipped")

    def __init__(self, entries: list[Entry]) -> None:
        self.entries = entries
        self.skipped = 0  # lines that were not JSON or were too long
        self.problem: str | None = None  # the file could not be read at all
        #: prompt id -> the slash command its user record ran ("/review-pr"), as the transcript says
        self.commands: dict[str, str] = {}


def _recent_load(cursor: dict[str, Any]) -> dict[str, list[int]]:
    out: dict[str, list[int]] = {}
    recent = cursor.get("recent")
    if isinstance(recent, list):
        for item in recent:
            parts = str(item).split(" ")
            if len(parts) == 5:
                try:
                    out[parts[0]] = [int(p) for p in parts[1:]]
                except ValueError:
                    continue
    return out


def baseline(path: Path, /, prompt_id: str | None = None) -> dict[str, Any]:
    """A cursor for a file seen for the first time: what is in it already is not ours to count.

    Counting starts at the user record of ``prompt_id`` if it is in the file's last few MiB (the turn
    under way: its prompt's hook may have failed, or the hooks were installed mid-turn), else at the
    end of the last complete line.
    """
    try:
        st = os.stat(path)
        if not os.path.isfile(path):
            return {"offset": 0}
        with open(path, "rb") as f:
            start = max(0, st.st_size - 8 * CHUNK)
            f.seek(start)
            tail = f.read(st.st_size - start)
    except OSError:
        return {"offset": 0}
    end = tail.rfind(b"\n") + 1
    if prompt_id:
        found = [tail.find(f'"promptId":{sep}"{prompt_id}"'.encode()) for sep in ("", " ")]
        at = min((f for f in found if f >= 0), default=-1)
        if at >= 0:
            end = tail.rfind(b"\n", 0, at) + 1
    if end == 0 and start > 0:
        end = len(tail)  # no line break in the tail at all: a monster line; skip it
    return {"offset": start + end, "inode": st.st_ino}


def read_new(path: Path, cursor: dict[str, Any], /) -> ReadResult:
    """Count the complete lines appended to ``path`` since ``cursor``; update ``cursor`` in place."""
    result = ReadResult(entries=[])
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return result
    except OSError as e:
        result.problem = f"cannot read transcript {path}: {e.strerror}"
        return result
    if not os.path.isfile(path):
        result.problem = f"transcript {path} is not a regular file"
        return result
    offset = count_value(cursor.get("offset"))
    since: str | None = None
    inode = cursor.get("inode")
    if (isinstance(inode, int) and inode != st.st_ino) or st.st_size < offset:
        # Rewritten or replaced: read it all again, but only count what is newer than what we saw.
        since = str(cursor.get("last_ts") or "") or None
        offset = 0
        cursor["recent"] = []
    if st.st_size == offset:
        cursor["inode"] = st.st_ino
        cursor["offset"] = offset
        return result
    recent = _recent_load(cursor)
    prompt = cursor.get("prompt") if isinstance(cursor.get("prompt"), str) else None
    last_ts = str(cursor.get("last_ts") or "")
    try:
        f = open(path, "rb")  # noqa: SIM115 (closed by the `with f:` below; the open's own error is reported)
    except OSError as e:
        result.problem = f"cannot read transcript {path}: {e.strerror}"
        return result
    with f:
        f.seek(offset)
        pending = b""
        skipping = False
        consumed = offset
        while True:
            chunk = f.read(CHUNK)
            if not chunk:
                break
            start = 0
            while True:
                nl = chunk.find(b"\n", start)
                if nl < 0:
                    if not skipping:
                        pending += chunk[start:]
                        if len(pending) > MAX_LINE:
                            skipping, pending = True, b""
                    break
                line = pending + chunk[start:nl]
                pending = b""
                start = nl + 1
                if skipping:
                    skipping = False
                    result.skipped += 1
                else:
                    prompt, last_ts = _take(line, prompt, last_ts, since, recent, result)
                consumed = f.tell() - len(chunk) + start
    cursor["offset"] = consumed
    cursor["inode"] = st.st_ino
    if prompt is not None:
        cursor["prompt"] = prompt
    if last_ts:
        cursor["last_ts"] = last_ts
    cursor["recent"] = [f"{k} {' '.join(map(str, v))}" for k, v in list(recent.items())[-RECENT_KEYS:]]
    return result


def _take(
    line: bytes,
    prompt: str | None,
    last_ts: str,
    since: str | None,
    recent: dict[str, list[int]],
    result: ReadResult,
) -> tuple[str | None, str]:
    if b'"promptId"' not in line and b'"usage"' not in line:
        return prompt, last_ts
    try:
        rec = json.loads(line)
    except ValueError:
        result.skipped += 1
        return prompt, last_ts
    if not isinstance(rec, dict):
        return prompt, last_ts
    kind = rec.get("type")
    if kind == "user":
        pid = rec.get("promptId")
        if isinstance(pid, str) and pid:
            prompt = pid
            content = (rec.get("message") or {}).get("content") if isinstance(rec.get("message"), dict) else None
            if isinstance(content, str) and pid not in result.commands:
                _, tag, rest = content.partition("<command-name>")
                name, end, _ = rest.partition("</command-name>")
                if tag and end and name.startswith("/"):
                    result.commands[pid] = name.strip()
        return prompt, last_ts
    if kind != "assistant" or rec.get("isApiErrorMessage"):
        return prompt, last_ts
    msg = rec.get("message")
    if not isinstance(msg, dict):
        return prompt, last_ts
    usage = msg.get("usage")
    model = msg.get("model")
    if not isinstance(usage, dict) or model == "<synthetic>":
        return prompt, last_ts
    ts = rec.get("timestamp")
    if isinstance(ts, str):
        if since is not None and ts <= since:
            return prompt, last_ts
        if ts > last_ts:
            last_ts = ts
    values = [count_value(usage.get(src)) for _, src in _FIELDS]
    mid, rid = msg.get("id"), rec.get("requestId")
    if isinstance(mid, str) and mid:
        key = f"{mid}|{rid if isinstance(rid, str) else ''}".replace(" ", "_")
        seen = recent.pop(key, None)
        if seen is not None:
            delta = [max(0, v - s) for v, s in zip(values, seen)]
            recent[key] = [max(v, s) for v, s in zip(values, seen)]
        else:
            delta = values
            recent[key] = values
    else:
        delta = values  # nothing to de-duplicate on: count the line (as ccusage does)
    if any(delta):
        result.entries.append(
            Entry(prompt, model if isinstance(model, str) else None, {name: d for (name, _), d in zip(_FIELDS, delta)})
        )
    return prompt, last_ts


def subagent_files(transcript: Path, /) -> list[Path]:
    """The subagent transcripts of a session: ``<dir>/<session>/subagents/agent-*.jsonl``."""
    folder = transcript.with_suffix("") / "subagents"
    try:
        names = os.listdir(folder)
    except OSError:
        return []
    return [folder / n for n in sorted(names) if n.startswith("agent-") and n.endswith(".jsonl")]


def wait_for(text: str, paths: list[Path], /, *, timeout: float) -> bool:
    """Wait until ``text`` appears near the end of one of ``paths`` (or ``timeout`` seconds pass)."""
    import stat
    import time

    needle = text.encode()
    deadline = time.monotonic() + timeout
    while True:
        for path in paths:
            try:
                st = os.stat(path)
                if not stat.S_ISREG(st.st_mode):  # a FIFO would block, /dev/zero never ends
                    continue
                with open(path, "rb") as f:
                    f.seek(max(0, st.st_size - CHUNK))
                    if needle in f.read(CHUNK):
                        return True
            except OSError:
                pass
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.005)
