"""Command runs and sessions inside the ledger state: open, settle usage into, close, reset.

Every function takes the state dict of an open ``Ledger.transaction()`` and ``now``; none does
I/O except ``settle``, which reads the session's transcripts.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from .._accounting import Entry, Pricer, agent_prompt, baseline, entry_of, fresh, read_new, subagent_files
from .._model import CATEGORIES, MAX_COUNT, Usage
from ._state import COUNTS, MAX_LINKS, Cursor, LedgerState, Run, Scope, Session, remember

State = LedgerState

if TYPE_CHECKING:
    from .._model import Budget


def _session(state: State, sid: str, now: datetime) -> Session:
    s = state.sessions.get(sid)
    if s is None:
        s = state.sessions[sid] = Session(seen=now)
    # to the minute: a session's file is rewritten only when something in it changed, not for every
    # event of a burst (its idle time counts in days, an ended one's in minutes)
    if s.seen is None or now - s.seen >= SEEN_EVERY:
        s.seen = now
    return s


SEEN_EVERY = timedelta(minutes=1)  # how stale a session's "seen" may get before an event refreshes it


def owner(state: State, session: str, prompt: str | None, /) -> str | None:
    """The prompt whose run ``prompt`` belongs to: itself, or, for a follow-up turn, its cause."""
    if prompt is None:
        return None
    s = state.sessions.get(session)
    return s.owner(prompt) if s is not None else prompt


def _link(state: State, s: Session, session: str, links: list[tuple[str, str, str]]) -> None:
    """Follow cause: a call that may finish in the background belongs to its turn's run, and so does
    the follow-up turn Claude Code starts when it finishes (whatever the hook saw of it)."""
    for kind, a, b in links:
        if kind == "tool":
            cause = s.owner(b)
            if state.run(cause) is not None:
                remember(s.tools, a, cause)
        elif kind == "followup":
            found = s.tools.get(b) if b else None
            if found is not None and found != a and state.run(found) is not None:
                remember(s.alias, a, found)


def settle(
    state: State,
    /,
    *,
    session: str,
    transcript: Path | None,
    extra: Iterable[Path] = (),
    prompt_id: str | None = None,
    resolve: Callable[[str], dict[str, Any] | None] | None = None,
    started: str | None = None,
    price: Pricer | None = None,
    also: Callable[[State, str, datetime], Any] | None = None,
    now: datetime,
    mod_counts: bool = False,
) -> list[str]:
    """Count what the session's transcripts gained since the last hook; returns problems seen.

    ``mod_counts``: the session's mod counts each request itself (:mod:`._mod`): read on, link
    runs and reconcile with Claude Code's totals, but charge no response again.

    The first time a session is seen, what its files already hold is not counted, except the turn
    of ``prompt_id`` (from its user record on: its own hook may have failed). That is what keeps a
    resumed session, or one whose hooks were installed mid-way, from counting history again.
    ``resolve`` names the run to open for a command prompt whose own hook never saw it through.
    ``started`` (ISO 8601 UTC, as transcripts write times): the hook is the turn's prompt hook and
    ran then, before the turn's first request — so on first sight nothing older is the session's.
    ``price`` prices each response (micro-dollars); a model it does not know is named once.
    ``also``: what else the session's responses are charged to, beyond its command and overall
    (a feature's scope, such as an orchestration's: the caller plugs it in; this module knows none).
    """
    s = _session(state, session, now)
    if started is not None:
        # A prompt: the session goes on (it was resumed). Not any hook: a Stop in the background
        # (claude -p) can arrive after SessionEnd, and must not undo it.
        s.ended = False
    files = s.files
    new = not files  # the first settle of this session (mark_handled may have made its entry)
    paths: list[Path] = []
    if transcript is not None:
        paths.append(transcript)
        paths.extend(subagent_files(transcript))
    paths.extend(p for p in extra if p not in paths)
    problems: list[str] = []
    by_time = _ByTime()
    cost = None
    orchestration = also(state, session, now) if also is not None else None
    for path in paths:
        key = str(path)
        cursor = files.get(key)
        if cursor is None:
            cursor = Cursor()  # a file that appeared during a session we follow: all of it is new
            if new:
                if os.path.lexists(path):
                    baseline(path, cursor, prompt_id)
                if started is not None:
                    fresh(cursor, prompt_id, since=started)
                elif prompt_id:
                    cursor.prompt = prompt_id
            files[key] = cursor
        if new and not os.path.isfile(path):
            continue  # nothing to say yet about a path that is not a transcript; the next hook will
        result = read_new(path, cursor, price)
        if result.problem:
            problems.append(result.problem)
        if resolve is not None:
            for pid, name in result.commands.items():
                # A command prompt whose own hook never ran to the end (it failed open): open its run now.
                if state.run(pid) is None and pid not in s.handled and (info := resolve(name)) is not None:
                    open_run(state, session=session, prompt=pid, now=now, **info)
        if result.links:
            _link(state, s, session, result.links)
        if result.skipped:
            cursor.skipped = min(cursor.skipped + result.skipped, MAX_COUNT)
        if result.cost is not None and path == transcript:
            cost = result.cost
        if mod_counts:
            continue  # the session's mod counted each of these requests as it was made (see _mod)
        for entry in result.entries:
            _charge(state, s, entry, by_time, orchestration, counted=transcript is not None)
    if cost is not None and transcript is not None:
        main = files.get(str(transcript))
        if main is not None and not main.inherited:
            by_time.add("overall", _reconcile(state, session, s, cost, orchestration, by_time))
    by_time.charge(state, now)
    return problems


def _charge(
    state: State, s: Session, entry: Entry, by_time: _ByTime, orchestration: Any, *, counted: bool = True
) -> None:
    """Charge one API response to overall, the session's reconciliation, its run and its command."""
    s.note_peak(entry.usage)
    if not entry.priced and entry.model:
        _note_unpriced(state.overall, entry.model)
    state.overall.add(entry.usage, entry.model)
    if counted:
        s.add_counted(entry.usage, entry.model)
    by_time.add("overall", entry.usage)
    run = state.run(s.owner(entry.prompt)) if entry.prompt else None
    if orchestration is not None:
        orchestration(entry.usage, entry.model, run.command if run else None)
    if run is None or run.command is None:
        return
    run.add(entry.usage, entry.model)
    state.command(run.command).add(entry.usage, entry.model)
    by_time.add(run.command, entry.usage)


def record_request(
    state: State,
    /,
    *,
    session: str,
    prompt: str | None,
    agent: str | None,
    usage: Mapping[str, Any],
    model: str | None,
    price: Pricer | None,
    also: Callable[[State, str, datetime], Any] | None = None,
    now: datetime,
) -> str | None:
    """Charge one model request that a mod saw (``turn.step``), as :func:`settle` charges a response
    (``also``: what else it is charged to, as for :func:`settle`).

    ``usage`` is in the API's shape (``input_tokens``, …, ``cache_creation`` split). A subagent's
    requests belong to the run that was open when its first request was made (its spawning turn),
    whatever turn runs when the later ones are; returns the prompt id the request was charged to.
    """
    s = _session(state, session, now)
    if agent:
        known = s.mod_agents.get(agent)
        if known is not None:
            prompt = known
        elif prompt is not None:
            remember(s.mod_agents, agent, prompt)
    entry = entry_of(usage, model, prompt, price)
    if entry is None:
        return prompt
    by_time = _ByTime()
    _charge(state, s, entry, by_time, also(state, session, now) if also is not None else None)
    by_time.charge(state, now)
    return owner(state, session, prompt)


class _ByTime:
    """What one settle counted per scope, charged to the time buckets once (each charge edits a string)."""

    def __init__(self) -> None:
        self.scopes: dict[str, dict[str, int]] = {}

    def add(self, scope: str, usage: Mapping[str, int]) -> None:
        sums = self.scopes.setdefault(scope, {})
        for k, v in usage.items():
            if isinstance(v, int) and not isinstance(v, bool):
                sums[k] = sums.get(k, 0) + v

    def charge(self, state: State, now: datetime) -> None:
        if self.scopes:
            from ._windows import charge

            for scope, usage in self.scopes.items():
                charge(state, [scope], now, usage)


MAX_UNPRICED = 20


def _note_unpriced(overall: Scope, model: str) -> None:
    """Note a model without a price: its tokens count, its dollars cannot (told by ``unpriced_notes``)."""
    if model not in overall.unpriced:
        overall.unpriced = [*overall.unpriced[-(MAX_UNPRICED - 1) :], model]


def unpriced_notes(state: State, /) -> list[str]:
    """One line per model without a price that nobody was told about yet — for a hook whose reply
    is shown (one in the background would tell nobody)."""
    overall = state.overall
    new = [m for m in overall.unpriced if m not in overall.unpriced_told]
    if not new:
        return []
    overall.unpriced_told = [*overall.unpriced_told, *new][-MAX_UNPRICED:]
    return [
        f'claude-budget: model "{m}" has no price, so its tokens count but its dollars do not — '
        f'price it in .claude/budget.toml: [prices."{m}"] with input = … and output = … (USD per million tokens)'
        for m in new
    ]


def _reconcile(
    state: State,
    session: str,
    s: Session,
    cost: dict[str, dict[str, int]],
    orchestration: Any,
    by_time: _ByTime,
) -> dict[str, int]:
    """Charge overall with what Claude Code says the session spent beyond its transcripts — and the
    session's command too, when the session was that one command's run and nothing else.

    ``cost-state`` (2.1.3xx) is cumulative over the whole session and includes requests that never
    reach a transcript (compaction's summary, session titles, a stream cut and retried). Only for a
    session followed from its start: a resumed or forked one inherits totals that are not this
    ledger's to count. The extra is kept per session and corrected, never added twice.

    Claude Code charges such a request to the invocation it belongs to; an invocation whose every
    counted response went to one command run (``claude -p "/review-pr …"``, an orchestrator's
    instance) is that run, so the extra is the run's and its command's as well. In a session of
    several runs or plain prompts nothing says which one it was, nor in a later invocation of the
    session (``--resume`` then ``/compact``: its run was an earlier invocation's): overall's only.
    Each ``cost-state`` ends an invocation, so a run there was at an earlier one is an earlier
    invocation's: it keeps what it was given then (often one micro-dollar of Claude Code's
    rounding) and gives part of it back only should Claude Code's totals later say less.

    Compared in total, not model by model: Claude Code keys its totals by the model it asked for,
    the transcript records the model that answered (``claude-sonnet-4-5`` vs its dated id). The
    extra is filed under the model Claude Code charged most. Dollars too — Claude Code's own
    price — unless a model without a price was seen (Claude Code then guesses, we do not).
    """
    if not cost:
        return {}
    # the runs there were when an earlier invocation's totals were reconciled: theirs, not this one's
    earlier = set(s.reconciled_runs)
    mine = state.runs_of(session)
    s.reconciled_runs = [r.prompt for r in mine][-MAX_LINKS:]
    counted = s.counted
    have = [sum(col) for col in zip(*counted.values())] if counted else [0] * len(COUNTS)
    total = [sum(per.get(c, 0) for per in cost.values()) for c in COUNTS]
    want = [max(0, t - h) for t, h in zip(total, have)]
    if set(state.overall.unpriced) & (set(counted) | set(cost)):
        want[-1] = 0
    before = s.unlogged
    delta = {c: w - b for c, w, b in zip(COUNTS, want, before) if w != b}
    if not delta:
        return {}
    model = max(cost, key=lambda m: sum(cost[m].get(c, 0) for c in CATEGORIES))
    state.overall.add(delta, model, correction=True)
    run = _sole_run(mine, s, have)
    held = s.run_share(run.prompt) if run is not None else []
    s.unlogged = want
    owner = None
    if run is not None and run.command is not None:
        if run.prompt in earlier:
            # the run was an earlier invocation's: this extra came after it; it only gives back
            # what it was given, should Claude Code's totals now say less
            share = [max(-h, min(0, w - b)) for h, w, b in zip(held, want, before)]
        else:
            share = [w - b for w, b in zip(want, before)]
            owner = run.command
        given = {c: x for c, x in zip(COUNTS, share) if x}
        if given:
            run.add(given, model, correction=True)
            state.command(run.command).add(given, model, correction=True)
            by_time.add(run.command, given)
        s.hold(run.prompt, [h + x for h, x in zip(held, share)])
    if orchestration is not None:
        orchestration(delta, model, owner, True)
    return delta


def _sole_run(mine: list[Run], s: Session, have: list[int]) -> Run | None:
    """The session's one command run (of ``mine``, its runs), if every token its transcripts gave
    went to it (with what an earlier reconciliation added to it); else None."""
    if len(mine) != 1 or mine[0].command is None:
        return None
    run = mine[0]
    added = s.run_share(run.prompt)
    if all(t == h + a for t, h, a in zip(run.totals()[:4], have, added)):
        return run
    return None


def open_run(
    state: State,
    /,
    *,
    session: str,
    prompt: str,
    command: str,
    budget: Budget | None = None,
    file: str | None = None,
    now: datetime,
) -> None:
    """Start a run of ``command`` for ``prompt`` (a UserPromptSubmit that was let through).

    The frontmatter budgets it started with, and the file they came from, are kept with the run,
    so that the hooks of its turn — and of the background work and follow-up turns it started —
    need not read the command's file again. (The config's limits are read by every hook anyway.)
    """
    close_run(state, session=session, now=now, keep=prompt)
    s = _session(state, session, now)
    s.run = prompt
    s.last = prompt
    run = state.run(prompt)
    if run is None:
        run = Run(prompt, command, session)
        run.started = now
        state.runs.append(run)
        state.command(command).count_run(now)
    names = ("tokens", "usd_micros", "window", "quota_5h", "quota_7d")
    run.set_budget(dict(zip(names, budget[:1] + budget[2:])) if budget else {})
    run.file = file


def resume_run(state: State, /, *, session: str, prompt: str, cause: str, now: datetime) -> None:
    """A turn Claude Code started itself (``prompt``) continues the run of ``cause``: not a new run."""
    close_run(state, session=session, now=now)
    s = _session(state, session, now)
    remember(s.alias, prompt, cause)
    run = state.run(cause)
    if run is not None:
        s.run = cause
        run.ended = None


def mark_handled(state: State, /, *, session: str, prompt: str, now: datetime, typed: bool = True) -> None:
    """The prompt hook saw ``prompt`` through (run opened, refused, plain, or /budget).

    ``typed``: the user's prompt (not a turn Claude Code started itself): the latest such prompt
    is what a wake-up that names no cause continues.
    """
    _session(state, session, now).mark_handled(prompt, typed=typed)


def superseded(state: State, session: str, prompt: str | None, /) -> bool:
    """Whether a later prompt of ``session`` went through its prompt hook after ``prompt`` did.

    A hook that runs in the background (Stop in ``claude -p``) can arrive after the next turn
    began; it must not end that turn's run.
    """
    s = state.sessions.get(session)
    return s is not None and prompt in s.handled[:-1]


def close_run(
    state: State, /, *, session: str, now: datetime, background: bool = False, keep: str | None = None
) -> None:
    """End the session's open run, if any (Stop, a new prompt, or the session's end).

    ``keep``: the prompt that is starting — when the open run is that very prompt (its event came
    again: a retry, or a fallback that ran it a second time), it stays open and current.

    With ``background`` (Stop while subagents or shells it started still run) the turn is over but
    the run is not: it stays unended, so it keeps its late usage and its limit until the
    follow-up turn that Claude Code starts when that work finishes ends in turn.
    """
    s = state.sessions.get(session)
    if s is None or (keep is not None and s.run == keep):
        return
    prompt, s.run = s.run, None
    run = state.run(prompt)
    if run is not None and not background:
        run.end(now)


def end_session(state: State, /, *, session: str, now: datetime) -> None:
    close_run(state, session=session, now=now)
    for run in state.runs_of(session):
        run.end(now)  # background work does not outlive its session
    _session(state, session, now).ended = True


class OpenRun(NamedTuple):
    command: str | None = None
    budget: Budget | None = None  # the frontmatter budgets it started with
    file: str | None = None
    prompt: str | None = None


def run_for(state: State, session: str, prompt: str | None, /) -> OpenRun:
    """The command run that the hook's turn belongs to, with the budgets it started with.

    By cause: ``prompt`` (every hook of a turn, of its subagents and of its follow-up turns carries
    one) resolves to the run that started it, ended or not. Without a prompt id, the session's open run.
    """
    s = state.sessions.get(session)
    if s is None:
        return OpenRun()
    cause = s.owner(prompt) if prompt is not None else s.run
    run = state.run(cause)
    if run is None or run.command is None:
        return OpenRun()
    return OpenRun(run.command, _budget_of(run), run.file, run.prompt)


def last_run(state: State, session: str, /) -> OpenRun:
    """The session's last command run: its latest typed prompt's, else the latest run in the ledger
    file that names the session (a run recorded through the API: its ``prompt`` is then None)."""
    s = state.sessions.get(session)
    if s is not None and s.last is not None:
        found = run_for(state, session, s.last)
        if found.command is not None:
            return found
    for run in reversed(state.runs_of(session)):
        if run.command is not None:
            return OpenRun(run.command, _budget_of(run), run.file)
    return OpenRun()


def _budget_of(run: Run) -> Budget | None:
    from .._model import Budget

    front = run.budget
    if front:
        tokens, usd, window, q5, q7 = (front.get(k) for k in ("tokens", "usd_micros", "window", "quota_5h", "quota_7d"))
        return Budget(
            tokens if isinstance(tokens, int) and tokens else None,
            None,
            usd if isinstance(usd, int) and usd else None,
            window if isinstance(window, str) else None,
            _share(q5),
            _share(q7),
        )
    # a run started before 0.3: its limit, and whether the frontmatter gave it
    if run.source == "frontmatter" and run.limit:
        return Budget(run.limit)
    return None


def _share(value: object) -> float | None:
    """A quotaBudget kept with a run: a percent above 0 and at most 100, else None."""
    if isinstance(value, float) and 0 < value <= 100:
        return value
    return None


def cause_of(
    state: State, session: str, /, *, tool: str | None, agent: str | None, transcript: Path | None
) -> str | None:
    """The run a turn Claude Code started itself belongs to, from what its prompt names.

    A task notification names the tool call that started the work (``<tool-use-id>``): its turn's
    run, as the transcript recorded it. A subagent's own file names the turn that spawned it.
    Failing both (a loop or schedule wake-up), the session's last typed command, if it still runs.
    """
    s = state.sessions.get(session)
    if s is None:
        return None
    candidates = [s.tools.get(tool) if tool else None]
    if agent and transcript is not None:
        candidates.append(owner(state, session, agent_prompt(transcript, agent)))
    if not tool and not agent:
        candidates.append(s.last)
    for c in candidates:
        if c is not None and state.run(c) is not None:
            return c
    return None


def unpriced_models(state: State, /) -> tuple[str, ...]:
    return tuple(state.overall.unpriced)


def warned(state: State, name: str, key: str = "tokens", /) -> int:
    """The highest threshold of a scope's limit (``LimitStatus.key``) already announced."""
    scope = state.scope(name)
    return scope.warned_at(key) if scope is not None else 0


def set_warned(state: State, name: str, key: str, level: int, /) -> None:
    (state.overall if name == "overall" else state.command(name)).set_warned(key, level)


def reset(state: State, command: str | None, /, *, now: datetime) -> list[str]:
    """Zero a command's (or ``overall``'s) counters and windows; with None, every one. The run log is kept."""
    if command is None:
        names = ["overall", *sorted(state.commands)]
        state.overall = Scope(since=now)
        for name in names[1:]:
            state.commands[name] = Scope(since=now)
        for table in (state.minutes, state.quarters):  # windows start over too
            for scope in list(table):
                del table[scope]
        return names
    if command == "overall":
        state.overall = Scope(since=now)
    elif command in state.commands:
        state.commands[command] = Scope(since=now)
    else:
        return []
    forget_buckets(state, command)
    return [command]


def record(
    state: State,
    usage: Usage,
    /,
    *,
    command: str | None,
    model: str | None,
    session: str | None,
    prompt: str,
    now: datetime,
    usd_micros: int | None = None,
) -> None:
    """Usage measured outside the hooks (an orchestrator's own count): one finished run."""
    tokens = usage.as_dict()
    if usd_micros is not None:
        tokens["usd_micros"] = usd_micros
    from ._windows import charge

    state.overall.add(tokens, model)
    if command is not None:
        run = Run(prompt, command, session)
        run.started = run.ended = now
        run.source = "api"
        run.add(tokens, model)
        state.runs.append(run)
        scope = state.command(command)
        scope.count_run(now)
        scope.add(tokens, model)
    # after the command's scope exists: the charge notes when it spent (Scope.spent_at)
    charge(state, ["overall"] if command is None else ["overall", command], now, tokens)


def join_orchestration(state: State, session: str, oid: str, /) -> None:
    """The session is an instance of orchestration ``oid``: its responses charge that scope too."""
    s = state.sessions.get(session)
    if s is None:
        s = state.sessions[session] = Session()
    s.orchestration = oid


def forget_buckets(state: State, scope: str, /) -> None:
    """Drop a scope's time buckets (a pruned orchestration's)."""
    for table in (state.minutes, state.quarters):
        table.pop(scope, None)


def notice_is_new(state: State, name: str, stamp: str, /) -> bool:
    """Whether the notice ``name`` with this ``stamp`` (what it is about, e.g. a file's mtime) was not
    given yet; it is remembered as given."""
    if state.tables.get(name) == stamp:
        return False
    state.tables[name] = stamp
    return True


def charge_plan(state: State, name: str, window: str, resets_at: int, move: float, /) -> None:
    """Charge ``move`` (a percent of the plan's ``window`` that resets at ``resets_at``) to
    ``overall`` or a command (made when it has no counters): ``PlanShare.charge``, read back
    through ``_records.plan_share``."""
    scope = state.overall if name == "overall" else state.command(name)
    scope.plan.charge(window, resets_at, move)


def charge_unattributed(state: State, window: str, move: float, /) -> None:
    """A move of the plan's ``window`` with no tokens counted here: overall's ``unattributed``."""
    state.overall.plan.charge_unattributed(window, move)


def note_run_quota(state: State, command: str, prompt: str, share: float, /, *, keep: int) -> None:
    """The run of ``prompt`` has taken ``share`` of the 5-hour window so far: the newest of its
    command's last ``keep`` runs (``PlanShare.note_run``)."""
    state.command(command).plan.note_run(prompt, share, keep)


def add_run_share(state: State, prompt: str, key: str, share: float, /) -> float:
    """Add ``share`` (% of a plan window: ``quota_5h``, ``quota_7d``) to the run of ``prompt``; its new total."""
    run = state.run(prompt)
    return run.add_share(key, share) if run is not None else 0.0


def mod_seq(state: State, session: str, /) -> tuple[str, int] | None:
    """The last record of the session's mod that was charged: ``(mod instance, n)`` (see mod._mod)."""
    s = state.sessions.get(session)
    return s.mod_seq if s is not None else None


def set_mod_seq(state: State, session: str, seq: tuple[str, int], /) -> None:
    s = state.sessions.get(session)
    if s is not None:
        s.mod_seq = seq
