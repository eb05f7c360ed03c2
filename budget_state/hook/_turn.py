"""What the hook's use cases share: the :class:`Call` each is given, the start of a turn, the
70/90/100 % notices, the budgets shared beyond the session, and how notes and refusals are said."""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from datetime import datetime, tzinfo

    from .._api import Context
    from .._model import ScopeStatus
    from ..budgets._budgets import Decision
    from ..ledger._ledger import State
    from ._event import Event, Reply


class Call(NamedTuple):
    """One use case's input: the event, the project it is for, when, and whether the session's mod
    counts each request (then the hook stands down for that, and keeps the rest)."""

    event: Event
    ctx: Context
    now: datetime
    mod: bool

    @property
    def zone(self) -> tzinfo | None:
        return self.ctx.config.zone()


def begin_turn(call: Call, state: State, /, *, typed: bool = True) -> list[str]:
    """What every prompt does first: note it as seen, count what came before, end the last run.

    ``typed``: the user's prompt, not a turn Claude Code started itself.
    """
    from .._accounting import transcript_time
    from .._steps import settle
    from ..ledger import _runs

    e = call.event
    if e.prompt_id is not None:
        # before settle: this prompt's own user record must not look like one whose hook failed
        _runs.mark_handled(state, session=e.session, prompt=e.prompt_id, now=call.now, typed=typed)
    notes = settle(
        call.ctx,
        state,
        session=e.session,
        transcript=e.transcript,
        prompt_id=e.prompt_id,
        started=transcript_time(),
        now=call.now,
        mod_counts=call.mod,
    )
    _runs.close_run(state, session=e.session, now=call.now, keep=e.prompt_id)
    return notes + _runs.unpriced_notes(state)


def thresholds(call: Call, state: State, command: ScopeStatus | None, overall: ScopeStatus, /) -> list[str]:
    """Announce each 70/90/100 % crossing of each limit once, for the running command and overall."""
    from ..budgets._budgets import crossed, threshold_message
    from ..ledger._runs import set_warned, warned

    notes = []
    for s in (command, overall):
        if s is None:
            continue
        for limit in s.limits:
            before = warned(state, s.name, limit.key)
            new, announce = crossed(before, limit.reached)
            if new != before:
                set_warned(state, s.name, limit.key, new)
            if announce is not None:
                notes.append(threshold_message(s, limit, announce, now=call.now, zone=call.zone))
    return notes


def shared_budgets(
    call: Call, state: State, decision: Decision, status: ScopeStatus | None, command: str | None, /
) -> tuple[Decision, list[str]]:
    """``decision`` for a start, then the budgets shared beyond this session: its orchestration's,
    and the team's leases (which may say something); the decision and those notes."""
    from .._steps import _orchestrated

    ctx = call.ctx
    decision = _orchestrated(ctx, state, call.event.session, decision, status, call.now)
    if not (decision.allowed and ctx.config.team_url):
        return decision, []
    from ..team.hook import may_start as team_may_start

    notes, refused = team_may_start(ctx, state, command, call.now)
    return refused or decision, notes


def with_recovery(ctx: Context, notes: list[str], /) -> list[str]:
    """``notes``, led by what the ledger had to recover from (a corrupt file moved aside), if anything."""
    recovered = ctx.ledger.recovered
    return notes if recovered is None else [str(recovered), *notes]


def join(notes: list[str], /) -> str:
    """One line, said once: ``claude-budget: first; second``."""
    prefix = "claude-budget: "
    parts = [n.removeprefix(prefix).replace("\n", " ") for n in notes]
    return prefix + "; ".join(dict.fromkeys(parts))


def said(notes: list[str], /) -> Reply | None:
    """Notes for the user, or nothing at all (silent on success)."""
    return {"systemMessage": join(notes)} if notes else None


def refuse_or_say(call: Call, decision: Decision, notes: list[str], /) -> Reply | None:
    """A prompt's reply: refused (``decision: block``, no API request is made) or let through."""
    notes = with_recovery(call.ctx, notes)
    if decision.allowed:
        return said(notes)
    reply: Reply = {"decision": "block", "reason": decision.reason or "budget spent"}
    if notes:
        reply["systemMessage"] = join(notes)
    return reply
