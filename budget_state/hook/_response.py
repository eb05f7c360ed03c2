"""After a response: a tool call (PreToolUse: kill mode may stop the turn), a stop (Stop,
StopFailure, SubagentStop) and the session's end — each counts what is new, in one transaction."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from ._turn import Call, join, said, thresholds, with_recovery

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path

    from .._model import ScopeStatus
    from ..budgets._budgets import Decision, Standing
    from ..ledger._ledger import State
    from ..ledger._runs import OpenRun
    from ._event import Reply

    #: what ends with the event, inside its transaction: a turn (Stop), the session (SessionEnd)
    Close = Callable[[Call, State], None]
    #: kill mode's PreToolUse when its response is not in the transcript yet: (tool call id, where it will be)
    Probe = tuple[str, list[Path]]


def tool_call(call: Call, /) -> Reply | None:
    """PreToolUse: count, and in kill mode decide whether the running turn may go on.

    Kill mode judges the response that called the tool. Claude Code writes it to the transcript
    some 60-80 ms after this hook starts: waiting for it is only worth it where that response could
    put a limit over (see :func:`_could_go_over`); elsewhere the hook answers at once.
    """
    judge = not call.event.background and not call.mod
    probe = _unwritten(call) if judge and call.ctx.config.mode == "kill" else None
    try:
        return _respond(call, judge=judge, probe=probe)
    except _WaitFirst:
        from .._accounting import wait_for

        assert probe is not None
        wait_for(probe[0], probe[1], timeout=0.25)
        return _respond(call, judge=judge)


def stop(call: Call, /) -> Reply | None:
    """Stop: the turn is over (its run closes), once its last response is in the transcript."""
    if not call.mod:
        _wait_for_transcript(call)
    return _respond(call, close=_close_turn)


def stop_failure(call: Call, /) -> Reply | None:
    """StopFailure: the turn ended on an API error; its run closes."""
    return _respond(call, close=_close_turn)


def session_end(call: Call, /) -> Reply | None:
    """SessionEnd: the session's runs close (``claude -p`` exits after this hook)."""
    return _respond(call, close=_end_session)


def settle_only(call: Call, /) -> Reply | None:
    """SubagentStop (and any other event): count what is new, announce crossings."""
    return _respond(call)


class _WaitFirst(Exception):
    """The response a kill-mode PreToolUse is about could put a limit over: read it before deciding."""


def _respond(
    call: Call, /, *, judge: bool = False, probe: Probe | None = None, close: Close | None = None
) -> Reply | None:
    """Count what is new, then decide (``judge``: a PreToolUse that is answered) and ``close``: one transaction.

    ``probe``: kill mode's PreToolUse before its response is in the transcript; raises
    :class:`_WaitFirst` (writing nothing) when that response could change the decision.
    """
    from .._steps import _statuses, settle
    from ..ledger import _runs

    ctx, e, now = call.ctx, call.event, call.now
    notes: list[str] = []
    decision: Decision | None = None
    with ctx.ledger.transaction() as state:
        extra = [e.agent_transcript] if e.agent_transcript is not None else []
        notes += settle(
            ctx,
            state,
            session=e.session,
            transcript=e.transcript,
            extra=extra,
            prompt_id=e.prompt_id,
            now=now,
            mod_counts=call.mod,
        )
        if not e.background:
            notes += _runs.unpriced_notes(state)
        running = _runs.run_for(state, e.session, e.prompt_id)
        cmd_status, overall = _statuses(ctx, state, running, now)
        crossings = [] if e.background else thresholds(call, state, cmd_status, overall)
        if judge:
            decision = _judge(call, state, running, (cmd_status, overall), probe=probe)
        if decision is None or decision.allowed:
            notes += crossings  # a stop says it all already
        if close is not None:
            close(call, state)
        if ctx.config.team_url:  # team budgets: charge the team lease with what was just settled
            from ..team.hook import after_settle

            name = cmd_status and cmd_status.name
            more, team_stop = after_settle(ctx, state, e.name, name, now, background=e.background)
            notes += more
            decision = team_stop if team_stop is not None and (decision is None or decision.allowed) else decision
    notes = with_recovery(ctx, notes)
    if decision is None or decision.allowed:
        return said(notes)
    # continue:false alone: on 2.1.197 adding permissionDecision "deny" makes Claude Code drop the
    # stop (the model is told "denied" and simply asks again). The tool about to run still runs; no
    # further API request is made.
    reply: Reply = {"continue": False, "stopReason": decision.reason or "budget exceeded"}
    if notes:
        reply["systemMessage"] = join(notes)
    return reply


def _judge(
    call: Call,
    state: State,
    running: OpenRun,
    statuses: tuple[ScopeStatus | None, ScopeStatus],
    /,
    *,
    probe: Probe | None,
) -> Decision:
    """Kill mode: may the running turn go on — by this project's limits (``statuses``: its
    command's, overall's), the orchestration's and the plan's windows?"""
    from .._steps import _orchestrated, _orchestration_limit
    from ..budgets._budgets import check_running

    ctx, session, now = call.ctx, call.event.session, call.now
    status, overall = statuses
    status = _orchestration_limit(ctx, state, session, status)
    decision = check_running(ctx.config.mode, status, overall, now=now, zone=call.zone)
    decision = _orchestrated(ctx, state, session, decision, status, now, running=True)
    if decision.allowed:
        decision = _plan_running(call, state, running)
    if probe is not None and decision.allowed and _could_go_over(call, state, status, overall):
        raise _WaitFirst
    return decision


def _close_turn(call: Call, state: State, /) -> None:
    from ..ledger import _runs

    e = call.event
    # A Stop that runs in the background may arrive after the next turn's prompt hook: the run
    # open now is that turn's, not this one's.
    if not _runs.superseded(state, e.session, e.prompt_id):
        _runs.close_run(state, session=e.session, now=call.now, background=e.leaves_work)


def _end_session(call: Call, state: State, /) -> None:
    from ..ledger import _runs

    _runs.end_session(state, session=call.event.session, now=call.now)


def _unwritten(call: Call, /) -> Probe | None:
    """Kill mode's PreToolUse: (the tool call's id, the file it will be in) if it is not there yet."""
    e = call.event
    if e.transcript is None or e.tool_use_id is None:
        return None
    where = [e.transcript]
    if e.agent_id:
        where = [e.transcript.with_suffix("") / "subagents" / f"agent-{e.agent_id}.jsonl"]
    from .._accounting import wait_for

    return None if wait_for(e.tool_use_id, where, timeout=0) else (e.tool_use_id, where)


def _could_go_over(call: Call, state: State, status: ScopeStatus | None, overall: ScopeStatus, /) -> bool:
    """Whether one response not yet counted could put a limit of this run over.

    Bounded by twice the session's largest response so far (a context grows, a tool result can be
    big); with no response seen yet there is no bound. Should a response still be bigger, kill
    mode stops the turn one request later, at the next tool call: "at most one request after the
    crossing" holds either way.
    """
    from .._steps import ORCHESTRATION_ENV, session_peak
    from ..budgets._budgets import could_go_over

    peak = session_peak(state, call.event.session)
    if peak is None:
        return True
    tokens, micros = peak
    ctx = call.ctx
    more = []
    if ctx.env.get(ORCHESTRATION_ENV):  # the orchestration's own budgets, as _orchestrated checks them
        from ..orchestrator import _scope

        oid = _scope.of_session(state, call.event.session)
        if oid is not None:
            command = status.name if status is not None else None
            counted = ctx.config.counted
            more = _scope.limits(state, oid, command=command, session=call.event.session, counted=counted, now=call.now)
    return could_go_over(status, overall, tokens=2 * tokens, micros=2 * micros, more=more)


def _plan_running(call: Call, state: State, running: OpenRun, /) -> Decision:
    """May the running command go on by the plan's windows? Kill mode stops it once it took more
    than its quotaBudget of a window (as the status line last charged it); other modes never do."""
    from ..budgets._budgets import ALLOW, decide

    command, budget = running.command, running.budget
    if command is None or budget is None or (budget.quota_5h is None and budget.quota_7d is None):
        return ALLOW

    def found() -> Iterator[Standing]:  # the plan's module and file only when decide asks: kill mode
        from ..budgets._plan import read_standings

        yield from read_standings(call.ctx, state, command, budget, call.now, call.zone)

    return decide(found(), call.ctx.config.mode, "running")


def _wait_for_transcript(call: Call, /) -> None:
    """Give Claude Code a moment to write the response a Stop is about.

    On 2.1.197 Stop often fires a few ms before the turn's last response is in the transcript
    (interactive sessions: 3 of 3). Without the wait an idle session's totals lack that response
    until the next hook. Bounded: at worst the hook returns 0.25 s later and the next hook settles.
    (Kill mode's PreToolUse has its own rule: see :func:`_could_go_over`.)
    """
    e = call.event
    if e.transcript is None or not e.last_message:
        return
    from .._accounting import wait_for

    # As it appears inside the JSON line: escaped, and only a prefix (the line holds it whole).
    wait_for(json.dumps(e.last_message[:200], ensure_ascii=False)[1:-1], [e.transcript], timeout=0.25)
