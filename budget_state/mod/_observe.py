"""The one entry point for every path that sees the plan's windows (the statusline, ``claude-budget
plan observe``, a mod): record the account's windows, then charge their movement in a project.

Above the hook in the layers (docs/architecture.md): before charging, it counts the observing
session's transcript exactly as that session's next hook would (the same settle, with the same
pricer, resolver and extra scopes); the windows' state and the arithmetic are ``_plan``'s.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..budgets import _plan

if TYPE_CHECKING:
    from ..ledger._state import LedgerState


def observe_plan(
    rate_limits: object,
    *,
    project: str | os.PathLike[str] | None = None,
    session_id: str | None = None,
    transcript_path: str | os.PathLike[str] | None = None,
    env: Mapping[str, str] | None = None,
    now: datetime | None = None,
    source: str = "statusline",
) -> _plan.Plan | None:
    """Record what Claude Code says of the plan's windows; charge their movement in ``project``.

    ``rate_limits``: the statusLine input's ``rate_limits`` (or a mod's ``$.session.usage().rateLimits``,
    the same shape): ``{"five_hour": {"used_percentage": 42, "resets_at": 1796613813}, "seven_day": {…}}``;
    None (or ``{}``) when Claude Code passed none — an API-key login or a version before 2.1.251 —
    which records "no plan data". ``project``: the project whose ledger gets the attribution (None:
    only the account's state is written). ``session_id`` and ``transcript_path``: the session that
    is observing; its transcript is counted first, so the tokens of the response that moved the
    window are in the ledger when the movement is charged. ``source``: "statusline" or "mod".

    Returns the account's windows now (None: no plan data). Never raises for bad input; raises
    :class:`budget_state.budgets._plan.PlanStateError` when the state file cannot be trusted or
    written, and the ledger's errors (``LedgerError``) when the project's ledger cannot be.
    """
    from ..ledger._ledger import utcnow

    env = os.environ if env is None else env
    now = now or utcnow()
    if project is None:
        return _plan.record_plan(rate_limits, env=env, now=now, source=source)[1]
    from .._api import Context

    ctx = Context.load(env=env, cwd=os.fspath(project))
    return observe_in(ctx, rate_limits, session_id=session_id, transcript_path=transcript_path, now=now, source=source)


def observe_in(
    ctx: Any,
    rate_limits: object,
    /,
    *,
    session_id: str | None,
    transcript_path: str | os.PathLike[str] | None,
    now: datetime,
    source: str,
    attribute: bool = True,
) -> _plan.Plan | None:
    """:func:`observe_plan` for a loaded ``Context`` (the statusline has one already); the ledger is
    read only when there are windows to charge. ``attribute=False``: record the windows only (a
    session the mod counts: the mod charges the move)."""
    after = _plan.record_plan(rate_limits, env=ctx.env, now=now, source=source)[1]
    if after is None or _plan.api_key_login(ctx.env) or not attribute:
        return after
    if _plan.marked(ctx.ledger.read(), after):
        return after  # the common refresh: nothing moved since this project's last mark
    with ctx.ledger.transaction() as locked:
        from ..ledger._records import session

        if session_id and transcript_path and session(locked, session_id) is not None:
            # A session its hooks already follow: count its last response, which moved the window.
            _settle_session(ctx, locked, str(session_id), Path(os.fspath(transcript_path)), now)
        _plan.attribute(locked, after, counted=ctx.config.counted, now=now)
    return after


def _settle_session(ctx: Any, state: LedgerState, session: str, transcript: Path, now: datetime) -> None:
    """Count what the session's transcript gained (as its next hook would), before charging."""
    from .._steps import settle

    settle(ctx, state, session=session, transcript=transcript, now=now)
