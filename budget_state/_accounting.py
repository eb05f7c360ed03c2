"""Counting what a session spent, from Claude Code's transcripts. No budget logic here.

The rules, each from a bug other tools shipped (see docs/counting.md):

- One API response is written as several lines (one per content block) that share
  ``(message.id, requestId)`` and repeat the usage: count each response once, taking the largest
  value seen per field (repeats are identical or growing, never shrinking).
- Subagents write their own files under ``<session>/subagents/``: read those too.
- ``<synthetic>`` and API-error records are not spend.
- Read only what was appended since the last hook (a byte offset per file), never a partial last
  line, and survive a file that shrank or was replaced without counting anything twice.
- Usage belongs to the prompt whose user record (``promptId``) precedes it in the file — so late
  lines are still charged to the right command run, whichever hook reads them.
- Work a turn starts in the background (a subagent, a background shell) ends in a follow-up turn
  that Claude Code starts itself (2.1.198+: a user record with ``origin`` and a new ``promptId``,
  its text naming the ``<tool-use-id>`` that started the work): the reader reports the tool calls
  that can do that and the follow-ups, so the runs can follow cause, not timing.
- A fork subagent's file (2.1.232+) begins with what it inherited from its parent — a
  ``fork-context-ref`` and a copy of the parent's last response, same message id — up to the
  tool_result of the call that spawned it: that is the parent's spend, already counted.
- Claude Code 2.1.3xx ends a session's file with a ``cost-state`` record: its own totals per
  model, which include requests that never reach a transcript (compaction, titles).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from ._model import count_value

if TYPE_CHECKING:  # a cursor is the ledger's (its state's model); this module only moves it on
    from .ledger._state import Cursor

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
    """Tokens newly counted for one API response (a delta when a repeat line grew).

    ``usage`` also holds ``usd_micros`` (its price, micro-dollars) when its model has a price;
    ``priced`` is False for a model the price table does not know.
    """

    prompt: str | None
    model: str | None
    usage: dict[str, int]
    priced: bool = True


Pricer = Callable[[str, Mapping[str, Any]], "int | None"]


class ReadResult:
    """What one read of a transcript found."""

    __slots__ = ("commands", "cost", "entries", "links", "problem", "skipped")

    def __init__(self, entries: list[Entry]) -> None:
        self.entries = entries
        self.skipped = 0  # lines that were not JSON or were too long
        self.problem: str | None = None  # the file could not be read at all
        #: prompt id -> the slash command its user record ran ("/review-pr"), as the transcript says
        self.commands: dict[str, str] = {}
        #: in file order: ("tool", tool_use_id, prompt) for a call that may finish in the background,
        #: ("followup", prompt, tool_use_id or "") for a turn Claude Code started itself
        self.links: list[tuple[str, str, str]] = []
        #: the last ``cost-state`` record's ``modelUsage``: model -> the four counts
        self.cost: dict[str, dict[str, int]] | None = None


def baseline(path: Path, cursor: Cursor, /, prompt_id: str | None = None) -> Cursor:
    """``cursor`` (a new one) set for a file seen for the first time: what is in it already is not ours to count.

    Counting starts at the user record of ``prompt_id`` if it is in the file's last few MiB (the turn
    under way: its prompt's hook may have failed, or the hooks were installed mid-turn), else at the
    end of the last complete line.
    """
    try:
        st = os.stat(path)
        if not os.path.isfile(path):
            return cursor
        with open(path, "rb") as f:
            start = max(0, st.st_size - 8 * CHUNK)
            f.seek(start)
            tail = f.read(st.st_size - start)
    except OSError:
        return cursor
    end = tail.rfind(b"\n") + 1
    if prompt_id:
        found = [tail.find(f'"promptId":{sep}"{prompt_id}"'.encode()) for sep in ("", " ")]
        at = min((f for f in found if f >= 0), default=-1)
        if at >= 0:
            end = tail.rfind(b"\n", 0, at) + 1
    if end == 0 and start > 0:
        end = len(tail)  # no line break in the tail at all: a monster line; skip it
    cursor.offset, cursor.inode = start + end, st.st_ino
    if start > 0 or b'"usage"' in tail[:end]:
        cursor.inherited = True  # spend from before we followed it: Claude Code's totals include it
    return cursor


def transcript_time(when: datetime | None = None, /) -> str:
    """A time as Claude Code writes it in transcripts (``2026-12-02T19:08:09.369Z``): now by default."""
    t = datetime.now(timezone.utc) if when is None else when.astimezone(timezone.utc)
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"


def fresh(cursor: Cursor, prompt_id: str | None, /, *, since: str) -> Cursor:
    """``cursor`` for a session first seen at its prompt hook, which runs before the turn's first
    request: a response older than the hook (``since``, ISO 8601 UTC, as the transcript writes
    times) is not this turn's.

    That is what keeps copied history out: ``--fork-session`` fires the first prompt hook before
    Claude Code writes the new file, then copies the parent's records into it — on 2.1.332 under
    the new prompt's id, with their old times. A response that precedes every user record is still
    the turn's: interactive 2.1.197 writes a session's first response before its first prompt.
    """
    cursor.after = since
    if prompt_id:
        cursor.prompt = prompt_id
    return cursor


def read_new(path: Path, cursor: Cursor, /, price: Pricer | None = None) -> ReadResult:
    """Count the complete lines appended to ``path`` since ``cursor``; update ``cursor`` in place.

    ``price`` gives a response's micro-dollars from its model and raw usage (None: unknown model).
    """
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
    offset = cursor.offset
    since: str | None = None
    if (cursor.inode is not None and cursor.inode != st.st_ino) or st.st_size < offset:
        # Rewritten or replaced: read it all again, but only count what is newer than what we saw.
        since = cursor.last_ts or None
        offset = 0
        cursor.recent = {}
    if st.st_size == offset:
        cursor.inode = st.st_ino
        cursor.offset = offset
        return result
    recent = cursor.recent
    prompt = cursor.prompt
    last_ts = cursor.last_ts or ""
    if offset == 0 and cursor.replay is None and (replay := _fork_replay(path)):
        cursor.replay = replay
    skip = _Skip(cursor)
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
                    prompt, last_ts = _take(line, prompt, last_ts, since, recent, result, skip, price)
                consumed = f.tell() - len(chunk) + start
    cursor.offset = consumed
    cursor.inode = st.st_ino
    if prompt is not None:
        cursor.prompt = prompt
    if last_ts:
        cursor.last_ts = last_ts
    skip.save(cursor)
    cursor.recent = dict(list(recent.items())[-RECENT_KEYS:])
    return result


class _Skip:
    """What a read must pass over: responses older than a fresh session (``after``), a fork's replay."""

    __slots__ = ("after", "inherited", "replay")

    def __init__(self, cursor: Cursor) -> None:
        self.replay = cursor.replay or None
        self.after = cursor.after or None
        self.inherited = cursor.inherited

    def user(self, content: object) -> None:
        if self.replay is not None and isinstance(content, list):
            for block in content:
                if (
                    isinstance(block, dict)
                    and block.get("type") == "tool_result"
                    and self.replay in ("*", block.get("tool_use_id"))
                ):
                    self.replay = None
                    break

    def old(self, ts: object) -> bool:
        """Whether a response predates the session's first hook (then it is copied history)."""
        if self.after is None:
            return False
        if isinstance(ts, str) and ts >= self.after:
            self.after = None  # the session's own responses have begun
            return False
        self.inherited = True
        return True

    def save(self, cursor: Cursor) -> None:
        cursor.after, cursor.replay = self.after, self.replay
        if self.inherited:
            cursor.inherited = True


_SPAWNS = ("Agent", "Task")  # tool calls that start a subagent (Task before 2.1.x, Agent after)


def _tag(text: str, name: str) -> str | None:
    _, found, rest = text.partition(f"<{name}>")
    value, end, _ = rest.partition(f"</{name}>")
    return value.strip() if found and end else None


def notification(text: str, /) -> tuple[str | None, str | None]:
    """``(tool_use_id, task_id)`` that a task-notification prompt names (``(None, None)`` otherwise)."""
    if not text.lstrip().startswith("<task-notification>"):
        return None, None
    return _tag(text, "tool-use-id") or None, _tag(text, "task-id") or None


def _text_of(content: object) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(str(b.get("text", "")) for b in content if isinstance(b, dict) and b.get("type") == "text")
    return ""


def _take(
    line: bytes,
    prompt: str | None,
    last_ts: str,
    since: str | None,
    recent: dict[str, list[int]],
    result: ReadResult,
    skip: _Skip,
    price: Pricer | None = None,
) -> tuple[str | None, str]:
    if b'"promptId"' not in line and b'"usage"' not in line and b'"cost-state"' not in line:
        return prompt, last_ts
    try:
        rec = json.loads(line)
    except ValueError:
        result.skipped += 1
        return prompt, last_ts
    if not isinstance(rec, dict):
        return prompt, last_ts
    kind = rec.get("type")
    ts = rec.get("timestamp")
    old = since is not None and isinstance(ts, str) and ts <= since
    if kind == "user":
        pid = rec.get("promptId")
        message = rec.get("message")
        content = message.get("content") if isinstance(message, dict) else None
        skip.user(content)
        if isinstance(pid, str) and pid:
            prompt = pid
            if old or skip.replay is not None:
                return prompt, last_ts  # a rewritten file's past, or copied history: not new
            if isinstance(content, str) and pid not in result.commands:
                name = _tag(content, "command-name")
                if name and name.startswith("/"):
                    result.commands[pid] = name
            origin = rec.get("origin")
            if isinstance(origin, dict) and origin.get("kind") not in (None, "user", "human"):
                result.links.append(("followup", pid, _tag(_text_of(content), "tool-use-id") or ""))
        return prompt, last_ts
    if kind == "cost-state":
        if skip.replay is None:
            result.cost = _cost_state(rec)
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
    if skip.replay is not None or skip.old(ts):
        return prompt, last_ts
    if isinstance(ts, str):
        if old:
            return prompt, last_ts
        if ts > last_ts:
            last_ts = ts
    if prompt is not None:
        for block in msg.get("content") or ():
            if isinstance(block, dict) and block.get("type") == "tool_use" and isinstance(block.get("id"), str):
                args = block.get("input")
                background = isinstance(args, dict) and args.get("run_in_background") is True
                if block.get("name") in _SPAWNS or background:
                    result.links.append(("tool", block["id"], prompt))
    values, usd = _values(usage, model, price)
    mid, rid = msg.get("id"), rec.get("requestId")
    if isinstance(mid, str) and mid:
        key = f"{mid}|{rid if isinstance(rid, str) else ''}".replace(" ", "_")
        seen = recent.pop(key, None)
        if seen is not None:
            seen = seen + [0] * (len(values) - len(seen))  # a cursor written before prices
            delta = [max(0, v - s) for v, s in zip(values, seen)]
            recent[key] = [max(v, s) for v, s in zip(values, seen)]
        else:
            delta = values
            recent[key] = values
    else:
        delta = values  # nothing to de-duplicate on: count the line (as ccusage does)
    if any(delta):
        counts = {name: d for (name, _), d in zip(_FIELDS, delta)}
        if usd is not None:
            counts["usd_micros"] = delta[len(_FIELDS)]
        name = model if isinstance(model, str) else None
        result.entries.append(Entry(prompt, name, counts, priced=usd is not None or price is None))
    return prompt, last_ts


def _values(usage: Mapping[str, Any], model: object, price: Pricer | None) -> tuple[list[int], int | None]:
    """The four counts of an API ``usage`` and its price (micro-dollars, last; 0 without one), and the price."""
    values = [count_value(usage.get(src)) for _, src in _FIELDS]
    usd = price(model, usage) if price is not None and isinstance(model, str) else None
    values.append(usd or 0)
    return values, usd


def entry_of(usage: Mapping[str, Any], model: str | None, prompt: str | None, price: Pricer | None) -> Entry | None:
    """One request's usage (the API's shape) as an :class:`Entry`, priced as a transcript's; None if it is empty."""
    values, usd = _values(usage, model, price)
    if not any(values):
        return None
    counts = {name: v for (name, _), v in zip(_FIELDS, values)}
    if usd is not None:
        counts["usd_micros"] = values[len(_FIELDS)]
    return Entry(prompt, model, counts, priced=usd is not None or price is None)


_COST_FIELDS = (
    ("input", "inputTokens"),
    ("output", "outputTokens"),
    ("cache_creation", "cacheCreationInputTokens"),
    ("cache_read", "cacheReadInputTokens"),
)


def _cost_state(rec: dict[str, Any]) -> dict[str, dict[str, int]] | None:
    usage = rec.get("modelUsage")
    if not isinstance(usage, dict):
        return None
    out = {}
    for model, per in usage.items():
        if isinstance(per, dict):
            counts = {name: count_value(per.get(src)) for name, src in _COST_FIELDS}
            counts["usd_micros"] = _micros(per.get("costUSD"))
            out[str(model)] = counts
    return out


def _micros(dollars: object) -> int:
    """Claude Code's ``costUSD`` (a float of dollars) as whole micro-dollars."""
    if isinstance(dollars, bool) or not isinstance(dollars, (int, float)) or not dollars >= 0:
        return 0
    from decimal import ROUND_HALF_EVEN, Decimal

    return count_value(int(Decimal(repr(dollars)).scaleb(6).quantize(Decimal(1), rounding=ROUND_HALF_EVEN)))


def _fork_replay(path: Path) -> str | None:
    """For a fork subagent's transcript (its meta says so, or it starts as one), what ends the copy
    of its parent: the tool_result of ``toolUseId`` from its meta, or ``"*"`` (any); else None."""
    if path.parent.name != "subagents":
        return None
    meta = _meta(path)
    if meta.get("isFork") is not True:
        try:
            with open(path, "rb") as f:
                if not f.read(4096).startswith(b'{"type":"fork-context-ref"'):
                    return None
        except OSError:
            return None
    tool = meta.get("toolUseId")
    return tool if isinstance(tool, str) and tool else "*"


def _meta(path: Path) -> dict[str, Any]:
    """A subagent's ``agent-<id>.meta.json`` (empty when missing or unreadable)."""
    try:
        with open(path.with_suffix(".meta.json"), "rb") as f:
            data = json.loads(f.read(64 * 1024))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def agent_prompt(transcript: Path, agent_id: str, /) -> str | None:
    """The prompt id of the turn that started subagent ``agent_id`` (its first user record's)."""
    if not agent_id or "/" in agent_id or agent_id.startswith("."):
        return None
    path = transcript.with_suffix("") / "subagents" / f"agent-{agent_id}.jsonl"
    try:
        with open(path, "rb") as f:
            head = f.read(256 * 1024)
    except OSError:
        return None
    for line in head.split(b"\n"):
        if b'"promptId"' in line:
            try:
                pid = json.loads(line).get("promptId")
            except (ValueError, AttributeError):
                continue
            if isinstance(pid, str) and pid:
                return pid
    return None


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
