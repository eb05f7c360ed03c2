"""The Claude Code hook: hook JSON on stdin -> settle usage, decide -> Claude Code's JSON on stdout.

Run as ``<python> -m budget_state.hook`` for UserPromptSubmit, PreToolUse, SubagentStop, Stop,
StopFailure and SessionEnd (``claude-budget install`` wires them). This is
the only module that speaks the hook protocol (checked on Claude Code 2.1.197):

- silent on success (plain stdout from UserPromptSubmit would be added to the model's context);
- refusing a prompt: exit 0 with ``{"decision": "block", "reason": …}`` — no API request is made,
  and the user sees the reason (that is also how ``/budget`` is answered, for free);
- stopping a running turn (kill mode): PreToolUse ``continue: false`` — the turn ends after that
  tool (adding ``permissionDecision: "deny"`` would cancel the stop on 2.1.197);
- telling the user something: ``{"systemMessage": …}``; never ``decision: "block"`` on Stop
  (that would make Claude go on).

Events whose answer nobody waits for run in the background (``--background``, see
:data:`BACKGROUND_EVENTS`): they settle the count and decide nothing.

Failures fail open by default: one visible line, the session goes on (``on_error = "closed"``
refuses instead). Never a traceback: set ``CLAUDE_BUDGET_DEBUG=1`` to get one on stderr.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO, Any

from ._steps import (  # the steps the hook shares with the mod, the status line and _observe
    ORCHESTRATION_ENV,
    _command_budget,
    _config_on_error,
    _orchestrated,
    _orchestration_limit,
    _statuses,
    _wiring_notes,
    settle,
)

# Events whose answer nobody waits for. Install runs them in the background: a shell line starts
# the hook with `--background` and returns at once, so Claude Code waits ~1 ms, not a Python
# start (see _install.hook_command). Not Claude Code's own `"async": true`: in `claude -p` an
# async hook still running when the CLI exits makes 2.1.197 skip SessionEnd and 2.1.332 wait
# ~1.5 s before it. Stop and SubagentStop never decide; PreToolUse decides only in kill mode or
# when it must fail closed (on_error = "closed"), which the shell line checks before it
# backgrounds it. UserPromptSubmit decides (and answers /budget); SessionEnd settles the end of a
# run before `claude -p` exits; StopFailure is rare: those always run in the foreground.
BACKGROUND_EVENTS = ("PreToolUse", "SubagentStop", "Stop")
# `/budget` as the plugin names it (plugin commands are `/<plugin>:<command>`; 2.1.197 knows the
# plugin's command only by that name).
PLUGIN_STATUS_COMMAND = "/claude-budget:budget"


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
    if args[:1] == ["--mod"]:  # a request of the Claude Code mod (see _mod): not a hook event
        from ._mod import main as mod_main

        return mod_main(sys.stdin.buffer if stdin is None else stdin, out, env)
    if args[:1] == ["--version"]:  # for `claude-budget doctor`: which claude-budget a hook line runs
        from ._version import __version__

        out.write(f"claude-budget {__version__}\n")
        return 0
    background = "--background" in args
    if background and argv is None:
        _detach()
    event = "?"
    try:
        raw = (sys.stdin.buffer if stdin is None else stdin).read()
        try:
            payload = json.loads(raw)
        except ValueError as e:
            raise BadInput(f"the hook input is not JSON ({e})") from None
        except RecursionError:
            raise BadInput("the hook input is not JSON that can be read (nested too deeply)") from None
        if not isinstance(payload, dict):
            raise BadInput(f"the hook input is a JSON {type(payload).__name__}, not an object")
        name = payload.get("hook_event_name")
        event = name if isinstance(name, str) else "?"
        reply = handle(event, payload, env, background=background)
    except Exception as e:  # noqa: BLE001 (the hook must never break the session; see on_error)
        if env.get("CLAUDE_BUDGET_DEBUG"):
            import traceback

            traceback.print_exc()
        reply = failure(event, e, env)
        _log(event, reply, env)
    if reply:
        out.write(json.dumps(reply))
        out.write("\n")
    out.flush()
    return 0


def _log(event: str, reply: dict[str, Any], env: Mapping[str, str]) -> None:
    """Keep what the hook could not do in the log beside the ledger: Claude Code hides stderr."""
    try:
        from . import _hooklog

        text = reply.get("reason") or reply.get("stopReason") or reply.get("systemMessage") or ""
        _hooklog.write(_hooklog.default_ledger(env), event, str(text))
    except Exception:  # noqa: BLE001 (logging is best effort; the reply still goes out)
        pass


class BadInput(ValueError):
    """The hook's stdin was not what Claude Code sends."""


def failure(event: str, error: BaseException, env: Mapping[str, str]) -> dict[str, Any]:
    from ._errors import BudgetError

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


def _str(payload: Mapping[str, Any], key: str) -> str | None:
    v = payload.get(key)
    return v if isinstance(v, str) and v and "\x00" not in v else None


def handle(
    event: str,
    payload: Mapping[str, Any],
    env: Mapping[str, str],
    *,
    background: bool = False,
) -> dict[str, Any] | None:
    """Settle and decide for one hook event; the reply for Claude Code, or None to say nothing.

    ``background``: nobody reads the reply (install runs this event in the background), so it
    decides nothing and leaves threshold crossings for the next hook that answers to announce.
    """
    from ._api import Context
    from ._ledger import utcnow

    session = _str(payload, "session_id")
    if session is None:
        raise BadInput(f"the {event} hook input has no session_id")
    ctx = Context.load(env=env, cwd=_str(payload, "cwd"), own_process=True)
    transcript = Path(p) if (p := _str(payload, "transcript_path")) else None
    prompt_id = _str(payload, "prompt_id")
    extra = [Path(p)] if (p := _str(payload, "agent_transcript_path")) else []
    now = utcnow()
    from ._mod import active

    # The session's mod counts each request and stops kill mode's runs itself: the hook stands
    # down for that, and keeps the rest (starts, runs, links, Claude Code's own totals).
    mod = active(session, env)

    if event == "UserPromptSubmit":
        return _prompt(ctx, payload, session, transcript, prompt_id, now, mod=mod)

    # Kill mode's PreToolUse judges the response that called the tool. Claude Code writes it to the
    # transcript some 60-80 ms after this hook starts: waiting for it is only worth it where that
    # response could put a limit over (see _could_go_over); elsewhere the hook answers at once.
    probe = None
    if event == "PreToolUse" and ctx.config.mode == "kill" and not background and not mod:
        probe = _unwritten(payload, transcript)
    elif not mod:
        _wait_for_transcript(event, payload, transcript)
    try:
        return _settle(ctx, event, payload, session, transcript, extra, prompt_id, now, background, probe, mod)
    except _WaitFirst:
        from ._accounting import wait_for

        assert probe is not None
        wait_for(probe[0], probe[1], timeout=0.25)
        return _settle(ctx, event, payload, session, transcript, extra, prompt_id, now, background, None, mod)


class _WaitFirst(Exception):
    """The response a kill-mode PreToolUse is about could put a limit over: read it before deciding."""


def _unwritten(payload: Mapping[str, Any], transcript: Path | None) -> tuple[str, list[Path]] | None:
    """Kill mode's PreToolUse: (the tool call's id, the file it will be in) if it is not there yet."""
    needle = _str(payload, "tool_use_id")
    if transcript is None or needle is None:
        return None
    where = [transcript]
    agent = _str(payload, "agent_id")
    if agent:
        where = [transcript.with_suffix("") / "subagents" / f"agent-{agent}.jsonl"]
    from ._accounting import wait_for

    return None if wait_for(needle, where, timeout=0) else (needle, where)


def _could_go_over(ctx: Any, state: Any, session: str, cmd_status: Any, overall: Any, now: Any) -> bool:
    """Whether one response not yet counted could put a limit of this run over.

    Bounded by twice the session's largest response so far (a context grows, a tool result can be
    big); with no response seen yet there is no bound. Should a response still be bigger, kill
    mode stops the turn one request later, at the next tool call: "at most one request after the
    crossing" holds either way.
    """
    from . import _records
    from ._budgets import could_go_over

    s = _records.session(state, session)
    tokens, micros = s.peak if s is not None else (0, 0)
    if tokens <= 0:
        return True
    more = []
    if ctx.env.get(ORCHESTRATION_ENV):  # the orchestration's own budgets, as _orchestrated checks them
        from .orchestrator import _scope

        oid = _scope.of_session(state, session)
        if oid is not None:
            command = cmd_status.name if cmd_status is not None else None
            more = _scope.limits(state, oid, command=command, session=session, counted=ctx.config.counted, now=now)
    return could_go_over(cmd_status, overall, tokens=2 * tokens, micros=2 * micros, more=more)


def _settle(
    ctx: Any,
    event: str,
    payload: Mapping[str, Any],
    session: str,
    transcript: Path | None,
    extra: list[Path],
    prompt_id: str | None,
    now: Any,
    background: bool,
    probe: tuple[str, list[Path]] | None,
    mod: bool = False,
) -> dict[str, Any] | None:
    """Count what is new, then decide (PreToolUse) and close (Stop, SessionEnd): one transaction.

    ``probe``: kill mode's PreToolUse before its response is in the transcript; raises
    :class:`_WaitFirst` (writing nothing) when that response could change the decision.
    """
    from . import _runs

    notes: list[str] = []
    decision = None
    with ctx.ledger.transaction() as state:
        notes += settle(
            ctx,
            state,
            session=session,
            transcript=transcript,
            extra=extra,
            prompt_id=prompt_id,
            now=now,
            mod_counts=mod,
        )
        if not background:
            notes += _runs.unpriced_notes(state)
        cmd_status, overall = _statuses(ctx, state, _runs.run_for(state, session, prompt_id), now)
        zone = ctx.config.zone()
        crossings = [] if background else _thresholds(state, cmd_status, overall, now=now, zone=zone)
        if event == "PreToolUse" and not background and not mod:
            from ._budgets import check_running

            cmd_status = _orchestration_limit(ctx, state, session, cmd_status)
            decision = check_running(ctx.config.mode, cmd_status, overall, now=now, zone=zone)
            decision = _orchestrated(ctx, state, session, decision, cmd_status, now, running=True)
            if decision.allowed and ctx.config.mode == "kill":
                decision = _plan_running(ctx, state, _runs.run_for(state, session, prompt_id), now) or decision
            if probe is not None and decision.allowed and _could_go_over(ctx, state, session, cmd_status, overall, now):
                raise _WaitFirst
        if decision is None or decision.allowed:
            notes += crossings  # a stop says it all already
        if event in ("Stop", "StopFailure") and not _runs.superseded(state, session, prompt_id):
            # A Stop that runs in the background may arrive after the next turn's prompt hook:
            # the run open now is that turn's, not this one's.
            _runs.close_run(state, session=session, now=now, background=_background(payload))
        elif event == "SessionEnd":
            _runs.end_session(state, session=session, now=now)
        if ctx.config.team_url:  # team budgets: charge the team lease with what was just settled
            from .team.hook import after_settle

            more, stop = after_settle(ctx, state, event, cmd_status and cmd_status.name, now, background=background)
            notes += more
            decision = stop if stop is not None and (decision is None or decision.allowed) else decision
    notes = _with_recovery(ctx, notes)
    if decision is not None and not decision.allowed:
        # continue:false alone: on 2.1.197 adding permissionDecision "deny" makes Claude Code drop
        # the stop (the model is told "denied" and simply asks again). The tool about to run still
        # runs; no further API request is made.
        return {"continue": False, "stopReason": decision.reason, **({"systemMessage": _join(notes)} if notes else {})}
    return {"systemMessage": _join(notes)} if notes else None


def _background(payload: Mapping[str, Any]) -> bool:
    """Whether a Stop leaves work of its turn running (subagents, shells: 2.1.198+ sends the list)."""
    tasks = payload.get("background_tasks")
    if not isinstance(tasks, list):
        return False
    return any(isinstance(t, dict) and t.get("status") in ("running", "pending", None) for t in tasks)


_SYSTEM_SOURCES = ("system", "loop_wakeup", "schedule_wakeup", "poll_event")


def _started_by_claude(payload: Mapping[str, Any], prompt: str) -> bool:
    """A turn Claude Code started itself (a task notification, a wake-up), not one the user typed."""
    source = payload.get("source")
    if isinstance(source, str) and source in _SYSTEM_SOURCES:
        return True
    return prompt.lstrip().startswith("<task-notification>")


def _wait_for_transcript(event: str, payload: Mapping[str, Any], transcript: Path | None) -> None:
    """Give Claude Code a moment to write the response a Stop is about.

    On 2.1.197 Stop often fires a few ms before the turn's last response is in the transcript
    (interactive sessions: 3 of 3). Without the wait an idle session's totals lack that response
    until the next hook. Bounded: at worst the hook returns 0.25 s later and the next hook settles.
    (Kill mode's PreToolUse has its own rule: see :func:`_could_go_over`.)
    """
    if transcript is None or event != "Stop":
        return
    text = _str(payload, "last_assistant_message")
    if text:
        from ._accounting import wait_for

        # As it appears inside the JSON line: escaped, and only a prefix (the line holds it whole).
        wait_for(json.dumps(text[:200], ensure_ascii=False)[1:-1], [transcript], timeout=0.25)


def _prompt(
    ctx: Any,
    payload: Mapping[str, Any],
    session: str,
    transcript: Path | None,
    prompt_id: str | None,
    now: Any,
    *,
    mod: bool = False,
) -> dict[str, Any] | None:
    from . import _runs
    from ._api import STATUS_COMMAND
    from ._budgets import check_start
    from ._commands import command_from_prompt

    raw = payload.get("prompt")
    prompt = raw if isinstance(raw, str) else ""
    if _started_by_claude(payload, prompt):
        return _followup(ctx, prompt, session, transcript, prompt_id, now, mod=mod)
    command = command_from_prompt(prompt)
    notes: list[str] = []
    if command in (STATUS_COMMAND, PLUGIN_STATUS_COMMAND):
        return _status(ctx, prompt, session, transcript, prompt_id, now, mod=mod)
    command, path, budget = _command_budget(ctx, command)
    if budget is not None and budget.error:
        notes.append(f"claude-budget: {budget.error} (no budget enforced for {command} until then)")
    with ctx.ledger.transaction() as state:
        notes += _begin_turn(ctx, state, session, transcript, prompt_id, now, mod=mod)
        notes += _config_notice(ctx, state)
        from ._api import command_status, overall_status

        cmd_status = command_status(ctx, state, command, path=path, budget=budget, now=now) if command else None
        cmd_status = _orchestration_limit(ctx, state, session, cmd_status)
        overall = overall_status(ctx, state, now=now)
        decision = check_start(ctx.config.mode, cmd_status, overall, now=now, zone=ctx.config.zone())
        if decision.allowed and cmd_status is not None and ctx.config.preflight != "off":
            from ._budgets import preflight

            decision = preflight(ctx.config.mode, ctx.config.preflight, cmd_status, overall)
        if decision.allowed and command is not None:
            from ._plan import plan_decision

            decision, more = plan_decision(ctx, state, command, budget, now)
            notes += more
        decision, more = _shared_budgets(ctx, state, session, decision, cmd_status, command, now)
        notes += more
        if decision.allowed:
            notes += _thresholds(state, cmd_status, overall, now=now, zone=ctx.config.zone())
            if command is not None and prompt_id is not None:
                _runs.open_run(
                    state,
                    session=session,
                    prompt=prompt_id,
                    command=command,
                    budget=budget,
                    file=cmd_status.file if cmd_status else None,
                    now=now,
                )
    return _answer(ctx, decision, notes)


def _plan_running(ctx: Any, state: Any, running: Any, now: Any) -> Any:
    """Kill mode: a Decision that stops the running command when it took more than its quotaBudget
    of the plan's window (as the status line last charged it); None to go on."""
    budget = running.budget
    if running.command is None or budget is None or (budget.quota_5h is None and budget.quota_7d is None):
        return None
    from ._budgets import Decision
    from ._plan import quota_running, quota_use, read_plan

    plan = read_plan(ctx.env)
    message = quota_running(
        plan,
        command=running.command,
        use=quota_use(state, running.command, plan, now),
        quota_5h=budget.quota_5h,
        quota_7d=budget.quota_7d,
        now=now,
        zone=ctx.config.zone(),
    )
    return None if message is None else Decision(False, message, running.command)


def _followup(
    ctx: Any, prompt: str, session: str, transcript: Path | None, prompt_id: str | None, now: Any, *, mod: bool = False
) -> dict[str, Any] | None:
    """A turn Claude Code started itself continues the run that caused it (2.1.198+).

    When a background subagent or shell finishes, Claude Code starts a turn to tell the model: it
    is that command's spending, under that command's budget — and in block mode it is refused
    when the command's budget is spent, like a new start would be.
    """
    from . import _runs
    from ._accounting import notification
    from ._budgets import check_start

    tool, agent = notification(prompt)
    with ctx.ledger.transaction() as state:
        notes = _begin_turn(ctx, state, session, transcript, prompt_id, now, typed=False, mod=mod)
        cause = _runs.cause_of(state, session, tool=tool, agent=agent, transcript=transcript)
        if cause is not None and prompt_id is not None:
            _runs.resume_run(state, session=session, prompt=prompt_id, cause=cause, now=now)
        else:
            cause = None
        cmd_status, overall = _statuses(
            ctx, state, _runs.run_for(state, session, cause) if cause else _runs.OpenRun(), now
        )
        cmd_status = _orchestration_limit(ctx, state, session, cmd_status)
        decision = check_start(ctx.config.mode, cmd_status, overall, now=now, zone=ctx.config.zone())
        decision, more = _shared_budgets(ctx, state, session, decision, cmd_status, cmd_status and cmd_status.name, now)
        notes += more
        if decision.allowed:
            notes += _thresholds(state, cmd_status, overall, now=now, zone=ctx.config.zone())
        elif cause is not None:
            _runs.close_run(state, session=session, now=now)
    return _answer(ctx, decision, notes)


def _shared_budgets(
    ctx: Any, state: Any, session: str, decision: Any, cmd_status: Any, command: str | None, now: Any
) -> tuple[Any, list[str]]:
    """``decision`` for a start, then the budgets shared beyond this session: its orchestration's,
    and the team's leases (which may say something); the decision and those notes."""
    decision = _orchestrated(ctx, state, session, decision, cmd_status, now)
    if not (decision.allowed and ctx.config.team_url):
        return decision, []
    from .team.hook import may_start as team_may_start

    notes, refused = team_may_start(ctx, state, command, now)
    return refused or decision, notes


def _answer(ctx: Any, decision: Any, notes: list[str]) -> dict[str, Any] | None:
    notes = _with_recovery(ctx, notes)
    if not decision.allowed:
        reason = decision.reason or "budget spent"
        return {"decision": "block", "reason": reason, **({"systemMessage": _join(notes)} if notes else {})}
    return {"systemMessage": _join(notes)} if notes else None


def _status(
    ctx: Any, prompt: str, session: str, transcript: Path | None, prompt_id: str | None, now: Any, *, mod: bool = False
) -> dict[str, Any]:
    """``/budget [/name]``: settle, then answer with the status as a block reason (no model call)."""
    from ._api import _normalize, build_snapshot
    from ._render import render_status

    with ctx.ledger.transaction() as state:
        notes = _begin_turn(ctx, state, session, transcript, prompt_id, now, mod=mod)
    snap = build_snapshot(ctx, state, warnings=(*_with_recovery(ctx, notes), *_wiring_notes(ctx)))
    args = prompt.split()[1:2]
    only = _normalize(args[0]) if args else None
    env = ctx.env
    color = not env.get("NO_COLOR") and env.get("CLAUDE_CODE_ENTRYPOINT") == "cli"
    try:
        width = int(env.get("COLUMNS") or 80)
    except ValueError:
        width = 80
    text = render_status(snap, width=max(40, min(width, 200)), color=color, only=only, now=now)
    if ctx.config.team_url:
        from .team.hook import status_lines

        text = text.rstrip("\n") + "\n\n" + "\n".join(status_lines(ctx, state))
    return {"decision": "block", "reason": text}


def _begin_turn(
    ctx: Any,
    state: Any,
    session: str,
    transcript: Path | None,
    prompt_id: str | None,
    now: Any,
    *,
    typed: bool = True,
    mod: bool = False,
) -> list[str]:
    """What every prompt does first: note it as seen, count what came before, end the last run.

    ``typed``: the user's prompt, not a turn Claude Code started itself.
    """
    from . import _runs
    from ._accounting import transcript_time

    if prompt_id is not None:
        # before settle: this prompt's own user record must not look like one whose hook failed
        _runs.mark_handled(state, session=session, prompt=prompt_id, now=now, typed=typed)
    notes = settle(
        ctx,
        state,
        session=session,
        transcript=transcript,
        prompt_id=prompt_id,
        started=transcript_time(),
        now=now,
        mod_counts=mod,
    )
    _runs.close_run(state, session=session, now=now, keep=prompt_id)
    return notes + _runs.unpriced_notes(state)


def _with_recovery(ctx: Any, notes: list[str]) -> list[str]:
    """``notes``, led by what the ledger had to recover from (a corrupt file moved aside), if anything."""
    recovered = ctx.ledger.recovered
    return notes if recovered is None else [str(recovered), *notes]


def _thresholds(state: Any, command: Any, overall: Any, *, now: Any, zone: Any) -> list[str]:
    """Announce each 70/90/100 % crossing of each limit once, for the running command and overall."""
    from ._budgets import crossed, threshold_message
    from ._runs import set_warned, warned

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
                notes.append(threshold_message(s, limit, announce, now=now, zone=zone))
    return notes


def _config_notice(ctx: Any, state: Any) -> list[str]:
    """Unknown keys in budget.toml: said once per change of the file, not on every prompt."""
    if not ctx.config.warnings or ctx.config.path is None:
        return []
    try:
        stamp = os.stat(ctx.config.path).st_mtime_ns
    except OSError:
        return []
    from ._runs import notice_is_new

    if not notice_is_new(state, "config_warned", str(stamp)):
        return []
    return [f"claude-budget: {w}" for w in ctx.config.warnings]


def _join(notes: list[str]) -> str:
    """One line, said once: ``claude-budget: first; second``."""
    prefix = "claude-budget: "
    parts = [n.removeprefix(prefix).replace("\n", " ") for n in notes]
    return prefix + "; ".join(dict.fromkeys(parts))


if __name__ == "__main__":
    raise SystemExit(main())
