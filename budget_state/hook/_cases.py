"""Which use case answers which hook event; each is a small function of one :class:`~._turn.Call`."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Mapping

    from ._event import Event, Reply


def handle(event: Event, env: Mapping[str, str], /) -> Reply | None:
    """Settle and decide for one hook event; the reply for Claude Code, or None to say nothing.

    ``event.background``: nobody reads the reply (install runs this event in the background), so it
    decides nothing and leaves threshold crossings for the next hook that answers to announce.
    """
    from .._api import Context
    from ..ledger._ledger import utcnow
    from ..mod._mod import active
    from ._turn import Call

    ctx = Context.load(env=env, cwd=event.cwd, own_process=True)
    call = Call(event, ctx, utcnow(), active(event.session, env))
    if event.name == "UserPromptSubmit":
        from ._prompt import prompt

        return prompt(call)
    from . import _response

    cases = {
        "PreToolUse": _response.tool_call,
        "Stop": _response.stop,
        "StopFailure": _response.stop_failure,
        "SessionEnd": _response.session_end,
    }
    return cases.get(event.name, _response.settle_only)(call)
