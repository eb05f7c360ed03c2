"""The hook protocol: stdin -> a typed :class:`~._event.Event` -> the use case -> reply JSON on stdout.

Always exit 0 (Claude Code reads the reply; exit 2 would feed stderr to the model). What the hook
could not do is one line — in the reply, and in the log beside the ledger (Claude Code hides
stderr) — never a traceback: ``CLAUDE_BUDGET_DEBUG=1`` prints one on stderr.

Imports only the standard library's json, os and sys at the top: the use cases load what they need.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping, Sequence
from typing import IO

from ._event import BadInput, Event, Reply, name_of, read


def _detach() -> None:
    """A hook in the background leaves Claude Code's process group: the CLI's exit must not kill it."""
    try:
        os.setsid()
    except (AttributeError, OSError):  # not POSIX, or already a group leader: nothing to leave
        pass


def main(
    argv: Sequence[str] | None = None,
    *,
    stdin: IO[bytes] | None = None,
    stdout: IO[str] | None = None,
    env: Mapping[str, str] | None = None,
) -> int:
    env = os.environ if env is None else env
    args = sys.argv[1:] if argv is None else argv
    out = sys.stdout if stdout is None else stdout
    source = sys.stdin.buffer if stdin is None else stdin
    if args[:1] == ["--mod"]:  # a request of the Claude Code mod (see _mod): not a hook event
        from ..mod._mod import main as mod_main

        return mod_main(source, out, env)
    if args[:1] == ["--version"]:  # for `claude-budget doctor`: which claude-budget a hook line runs
        from .._version import __version__

        out.write(f"claude-budget {__version__}\n")
        return 0
    background = "--background" in args
    if background and argv is None:
        _detach()
    name = "?"
    reply: Reply | None
    try:
        payload = read(source.read())
        name = name_of(payload)
        event = Event.of(payload, background=background)
        from ._cases import handle

        reply = handle(event, env)
    except Exception as e:  # noqa: BLE001 (the hook must never break the session; see on_error)
        if env.get("CLAUDE_BUDGET_DEBUG"):
            import traceback

            traceback.print_exc()
        reply = failure(name, e, env)
        _log(name, reply, env)
    if reply:
        out.write(json.dumps(reply))
        out.write("\n")
    out.flush()
    return 0


def _log(event: str, reply: Reply, env: Mapping[str, str]) -> None:
    """Keep what the hook could not do in the log beside the ledger: Claude Code hides stderr."""
    try:
        from .. import _hooklog

        text = reply.get("reason") or reply.get("stopReason") or reply.get("systemMessage") or ""
        _hooklog.write(_hooklog.default_ledger(env), event, text)
    except Exception:  # noqa: BLE001 (logging is best effort; the reply still goes out)
        pass


def failure(event: str, error: BaseException, env: Mapping[str, str]) -> Reply:
    """The reply when the hook could not do its work: fail open with one line, or refuse (on_error = "closed")."""
    from .._errors import BudgetError
    from .._steps import _config_on_error

    if isinstance(error, (BudgetError, BadInput)):
        text = str(error)
    else:
        text = (
            f"internal error {type(error).__name__}: {error} — please report it (CLAUDE_BUDGET_DEBUG=1 shows details)"
        )
    closed = _config_on_error(env) == "closed"
    if closed and event == "UserPromptSubmit":
        return {
            "decision": "block",
            "reason": f"claude-budget could not check the budgets, and on_error is closed: {text}",
        }
    if closed and event == "PreToolUse":
        return {
            "continue": False,
            "stopReason": f"claude-budget could not check the budgets, and on_error is closed: {text}",
        }
    return {"systemMessage": f"claude-budget: {text} (budgets not enforced for this step)"}
