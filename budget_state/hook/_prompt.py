"""UserPromptSubmit: a prompt that may start a command, a turn Claude Code started itself, ``/budget``."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from ._turn import Call, begin_turn, refuse_or_say, shared_budgets, thresholds, with_recovery

if TYPE_CHECKING:
    from pathlib import Path

    from .._model import Budget, ScopeStatus
    from ..budgets._budgets import Decision
    from ..ledger._ledger import State
    from ._event import Event, Reply

# `/budget` as the plugin names it (plugin commands are `/<plugin>:<command>`; 2.1.197 knows the
# plugin's command only by that name).
PLUGIN_STATUS_COMMAND = "/claude-budget:budget"
_SYSTEM_SOURCES = ("system", "loop_wakeup", "schedule_wakeup", "poll_event")


def prompt(call: Call, /) -> Reply | None:
    """A prompt: ``/budget`` is answered, a turn Claude Code started continues its run, and any
    other prompt may start (a command's run, under its budgets and the shared ones) or is refused."""
    from .._api import STATUS_COMMAND
    from ..budgets._commands import command_from_prompt

    if _started_by_claude(call.event):
        return followup(call)
    command = command_from_prompt(call.event.prompt)
    if command in (STATUS_COMMAND, PLUGIN_STATUS_COMMAND):
        return status(call)
    return start(call, command)


def _started_by_claude(event: Event, /) -> bool:
    """A turn Claude Code started itself (a task notification, a wake-up), not one the user typed."""
    return event.source in _SYSTEM_SOURCES or event.prompt.lstrip().startswith("<task-notification>")


def start(call: Call, command: str | None, /) -> Reply | None:
    """A prompt the user typed: ``command`` (None: a plain prompt) may start, or is refused."""
    from .._steps import _command_budget
    from ..ledger import _runs

    found = _command_budget(call.ctx, command)
    command, _, budget = found
    notes: list[str] = []
    if budget is not None and budget.error:
        notes.append(f"claude-budget: {budget.error} (no budget enforced for {command} until then)")
    e = call.event
    with call.ctx.ledger.transaction() as state:
        notes += begin_turn(call, state)
        notes += _config_notice(call, state)
        decision, cmd_status, more = _may_start(call, state, found)
        notes += more
        if decision.allowed and command is not None and e.prompt_id is not None:
            _runs.open_run(
                state,
                session=e.session,
                prompt=e.prompt_id,
                command=command,
                budget=budget,
                file=cmd_status.file if cmd_status else None,
                now=call.now,
            )
    return refuse_or_say(call, decision, notes)


def _may_start(
    call: Call, state: State, found: tuple[str | None, Path | None, Budget | None], /
) -> tuple[Decision, ScopeStatus | None, list[str]]:
    """The start's decision — this project's limits, the pre-flight estimate, the plan's windows,
    the orchestration's and the team's budgets — its command's status, and what to tell the user.

    ``found``: the command (None: a plain prompt), its file and its frontmatter budgets."""
    from .._api import command_status, overall_status
    from .._steps import _orchestration_limit
    from ..budgets._budgets import check_start

    ctx, now = call.ctx, call.now
    command, path, budget = found
    mode = ctx.config.mode
    cmd_status = command_status(ctx, state, command, path=path, budget=budget, now=now) if command else None
    cmd_status = _orchestration_limit(ctx, state, call.event.session, cmd_status)
    overall = overall_status(ctx, state, now=now)
    decision = check_start(mode, cmd_status, overall, now=now, zone=call.zone)
    notes: list[str] = []
    if decision.allowed and cmd_status is not None and ctx.config.preflight != "off":
        from ..budgets._budgets import preflight

        decision = preflight(mode, ctx.config.preflight, cmd_status, overall)
    if decision.allowed and command is not None:
        from ..budgets._plan import plan_decision

        decision, more = plan_decision(ctx, state, command, budget, now)
        notes += more
    decision, more = shared_budgets(call, state, decision, cmd_status, command)
    notes += more
    if decision.allowed:
        notes += thresholds(call, state, cmd_status, overall)
    return decision, cmd_status, notes


def followup(call: Call, /) -> Reply | None:
    """A turn Claude Code started itself continues the run that caused it (2.1.198+).

    When a background subagent or shell finishes, Claude Code starts a turn to tell the model: it
    is that command's spending, under that command's budget — and in block mode it is refused
    when the command's budget is spent, like a new start would be.
    """
    from .._accounting import notification
    from .._steps import _orchestration_limit, _statuses
    from ..budgets._budgets import check_start
    from ..ledger import _runs

    ctx, e, now = call.ctx, call.event, call.now
    tool, agent = notification(e.prompt)
    with ctx.ledger.transaction() as state:
        notes = begin_turn(call, state, typed=False)
        cause = _runs.cause_of(state, e.session, tool=tool, agent=agent, transcript=e.transcript)
        if cause is not None and e.prompt_id is not None:
            _runs.resume_run(state, session=e.session, prompt=e.prompt_id, cause=cause, now=now)
        else:
            cause = None
        running = _runs.run_for(state, e.session, cause) if cause else _runs.OpenRun()
        cmd_status, overall = _statuses(ctx, state, running, now)
        cmd_status = _orchestration_limit(ctx, state, e.session, cmd_status)
        decision = check_start(ctx.config.mode, cmd_status, overall, now=now, zone=call.zone)
        decision, more = shared_budgets(call, state, decision, cmd_status, cmd_status and cmd_status.name)
        notes += more
        if decision.allowed:
            notes += thresholds(call, state, cmd_status, overall)
        elif cause is not None:
            _runs.close_run(state, session=e.session, now=now)
    return refuse_or_say(call, decision, notes)


def status(call: Call, /) -> Reply:
    """``/budget [/name]``: settle, then answer with the status as a block reason (no model call)."""
    from .._api import _normalize, build_snapshot
    from .._render import render_status
    from .._steps import _wiring_notes

    ctx = call.ctx
    with ctx.ledger.transaction() as state:
        notes = begin_turn(call, state)
    # A read of its own, as one commit left it: built inside the transaction, every part it reads
    # would be compared at the write (~8 ms on a ledger of 200 commands); read after it, lazily,
    # parts could be from a later commit than overall (Ledger.consistent).
    warnings = (*with_recovery(ctx, notes), *_wiring_notes(ctx))
    snap = ctx.ledger.consistent(lambda fresh: build_snapshot(ctx, fresh, warnings=warnings))
    args = call.event.prompt.split()[1:2]
    only = _normalize(args[0]) if args else None
    env = ctx.env
    color = not env.get("NO_COLOR") and env.get("CLAUDE_CODE_ENTRYPOINT") == "cli"
    try:
        width = int(env.get("COLUMNS") or 80)
    except ValueError:
        width = 80
    text = render_status(snap, width=max(40, min(width, 200)), color=color, only=only, now=call.now)
    if ctx.config.team_url:
        from ..team.hook import status_lines

        text = text.rstrip("\n") + "\n\n" + "\n".join(status_lines(ctx, state))
    return {"decision": "block", "reason": text}


def _config_notice(call: Call, state: State, /) -> list[str]:
    """Unknown keys in budget.toml: said once per change of the file, not on every prompt."""
    from .._steps import config_news

    config = call.ctx.config
    if not config.warnings or config.path is None:
        return []
    try:
        stamp = os.stat(config.path).st_mtime_ns
    except OSError:
        return []
    return [f"claude-budget: {w}" for w in config.warnings] if config_news(state, str(stamp)) else []
