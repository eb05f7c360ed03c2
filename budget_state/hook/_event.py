"""The hook's input as a typed value: what Claude Code sends on stdin, read and checked once.

Every field the use cases read is here, with its type; nothing downstream looks into the raw JSON.
A text field that is missing, empty, not a string or holds a NUL byte is None.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal, TypedDict


class BadInput(ValueError):
    """The hook's stdin was not what Claude Code sends."""


#: Claude Code's answer to a hook (checked on 2.1.197 and 2.1.332): ``continue`` is a Python keyword.
Reply = TypedDict(
    "Reply",
    {"decision": Literal["block"], "reason": str, "continue": bool, "stopReason": str, "systemMessage": str},
    total=False,
)

Payload = dict[str, object]


def read(raw: bytes, /) -> Payload:
    """The JSON object on stdin, or :class:`BadInput` saying what it was instead."""
    try:
        payload = json.loads(raw)
    except ValueError as e:
        raise BadInput(f"the hook input is not JSON ({e})") from None
    except RecursionError:
        raise BadInput("the hook input is not JSON that can be read (nested too deeply)") from None
    if not isinstance(payload, dict):
        raise BadInput(f"the hook input is a JSON {type(payload).__name__}, not an object")
    return payload


def name_of(payload: Payload, /) -> str:
    """``hook_event_name``, or ``?`` (what a failure is reported under)."""
    name = payload.get("hook_event_name")
    return name if isinstance(name, str) else "?"


def _str(payload: Payload, key: str) -> str | None:
    v = payload.get(key)
    return v if isinstance(v, str) and v and "\x00" not in v else None


def _path(payload: Payload, key: str) -> Path | None:
    v = _str(payload, key)
    return Path(v) if v is not None else None


def _leaves_work(payload: Payload) -> bool:
    """Whether a Stop leaves work of its turn running (subagents, shells: 2.1.198+ sends the list)."""
    tasks = payload.get("background_tasks")
    if not isinstance(tasks, list):
        return False
    return any(isinstance(t, dict) and t.get("status") in ("running", "pending", None) for t in tasks)


class Event:
    """One hook event, as the use cases read it. Built once by :meth:`of`, and not changed after.

    A plain class with slots: a NamedTuple of this many fields costs the hook ~1.5 ms to import
    (collections.namedtuple compiles its constructor), a dataclass ~5 ms.
    """

    __slots__ = (
        "agent_id",
        "agent_transcript",
        "background",
        "cwd",
        "last_message",
        "leaves_work",
        "name",
        "prompt",
        "prompt_id",
        "session",
        "source",
        "tool_use_id",
        "transcript",
    )

    def __init__(
        self,
        name: str,
        session: str,
        *,
        cwd: str | None = None,
        transcript: Path | None = None,
        prompt_id: str | None = None,
        agent_transcript: Path | None = None,
        tool_use_id: str | None = None,
        agent_id: str | None = None,
        prompt: str = "",
        source: str | None = None,
        last_message: str | None = None,
        leaves_work: bool = False,
        background: bool = False,
    ) -> None:
        self.name = name  # hook_event_name: UserPromptSubmit, PreToolUse, Stop, ...
        self.session = session
        self.cwd = cwd
        self.transcript = transcript
        self.prompt_id = prompt_id
        #: SubagentStop: the subagent's own transcript
        self.agent_transcript = agent_transcript
        #: PreToolUse: the tool call's id, and the subagent that made it (if one did)
        self.tool_use_id = tool_use_id
        self.agent_id = agent_id
        #: UserPromptSubmit: the prompt as typed ("" if none), and who started the turn
        self.prompt = prompt
        self.source = source
        #: Stop: the turn's last text (found in the transcript once it is written), and whether work goes on
        self.last_message = last_message
        self.leaves_work = leaves_work
        #: started with ``--background``: nobody reads the reply, so this event decides nothing
        self.background = background

    def __repr__(self) -> str:
        return f"Event({self.name!r}, session={self.session!r}, prompt_id={self.prompt_id!r})"

    @classmethod
    def of(cls, payload: Payload, /, *, background: bool = False) -> Event:
        """The event in ``payload`` (what :func:`read` returned); :class:`BadInput` without a session id."""
        name = name_of(payload)
        session = _str(payload, "session_id")
        if session is None:
            raise BadInput(f"the {name} hook input has no session_id")
        prompt = payload.get("prompt")
        return cls(
            name,
            session,
            cwd=_str(payload, "cwd"),
            transcript=_path(payload, "transcript_path"),
            prompt_id=_str(payload, "prompt_id"),
            agent_transcript=_path(payload, "agent_transcript_path"),
            tool_use_id=_str(payload, "tool_use_id"),
            agent_id=_str(payload, "agent_id"),
            prompt=prompt if isinstance(prompt, str) else "",
            source=_str(payload, "source"),
            last_message=_str(payload, "last_assistant_message"),
            leaves_work=_leaves_work(payload),
            background=background,
        )
