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
from .._model import CATEGORIES, MAX_COUNT, Usage, count_value
from ._ledger import State, add_usage, subtable

if TYPE_CHECKING:
    from .._model import Budget


def _session(state: State, sid: str, now: datetime) -> dict[str, Any]:
    sessions = subtable(state, "sessions")
    s = subtable(sessions, sid)
    if not isinstance(s.get("files"), dict):
        s["files"] = {}
    seen = s.get("seen")
    # to the minute: a session's file is rewritten only when something in it changed, not for every
    # event of a burst (its idle time counts in days, an ended one's in minutes)
    if not isinstance(seen, datetime) or now - seen >= SEEN_EVERY:
        s["seen"] = now
    return s


def _runs_by_prompt(state: State) -> dict[str, dict[str, Any]]:
    return {r["prompt"]: r for r in state.get("runs", []) if isinstance(r, dict) and isinstance(r.get("prompt"), str)}


MAX_LINKS = 64  # tool calls and follow-up turns remembered per session (background work in flight)
SEEN_EVERY = timedelta(minutes=1)  # how stale a session's "seen" may get before an event refreshes it


def _remember(table: dict[str, Any], key: str, value: str) -> None:
    table.pop(key, None)
    table[key] = value
    while len(table) > MAX_LINKS:
        del table[next(iter(table))]


def owner(state: State, session: str, prompt: str | None, /) -> str | None:
    """The prompt whose run ``prompt`` belongs to: itself, or, for a follow-up turn, its cause."""
    if prompt is None:
        return None
    s = state.get("sessions", {}).get(session)
    alias = s.get("alias") if isinstance(s, dict) else None
    if isinstance(alias, dict):
        cause = alias.get(prompt)
        if isinstance(cause, str):
            return cause
    return prompt


def _link(state: State, s: dict[str, Any], session: str, links: list[tuple[str, str, str]]) -> None:
    """Follow cause: a call that may finish in the background belongs to its turn's run, and so does
    the follow-up turn Claude Code starts when it finishes (whatever the hook saw of it)."""
    runs = _runs_by_prompt(state)
    for kind, a, b in links:
        if kind == "tool":
            cause = owner(state, session, b)
            if cause in runs:
                _remember(subtable(s, "tools"), a, cause)
        elif kind == "followup":
            cause = subtable(s, "tools").get(b) if b else None
            if isinstance(cause, str) and cause in runs and cause != a:
                _remember(subtable(s, "alias"), a, cause)


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
        s.pop("ended", None)
    files: dict[str, Any] = s["files"]
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
        if not isinstance(cursor, dict):
            if not new:
                cursor = {"offset": 0}  # a file that appeared during a session we follow: all of it is new
            else:
                cursor = baseline(path, prompt_id) if os.path.lexists(path) else {"offset": 0}
                if started is not None:
                    cursor = fresh(cursor, prompt_id, since=started)
                elif prompt_id:
                    cursor["prompt"] = prompt_id
            files[key] = cursor
        if new and not os.path.isfile(path):
            continue  # nothing to say yet about a path that is not a transcript; the next hook will
        result = read_new(path, cursor, price)
        if result.problem:
            problems.append(result.problem)
        runs = _runs_by_prompt(state)
        if resolve is not None:
            seen = s.get("handled")
            handled: list[Any] = seen if isinstance(seen, list) else []
            for pid, name in result.commands.items():
                # A command prompt whose own hook never ran to the end (it failed open): open its run now.
                if pid not in runs and pid not in handled and (info := resolve(name)) is not None:
                    open_run(state, session=session, prompt=pid, now=now, **info)
                    runs = _runs_by_prompt(state)
        if result.links:
            _link(state, s, session, result.links)
        if result.skipped:
            cursor["skipped"] = int(cursor.get("skipped", 0)) + result.skipped
        if result.cost is not None and path == transcript:
            cost = result.cost
        counted = subtable(s, "counted") if transcript is not None else {}
        if mod_counts:
            continue  # the session's mod counted each of these requests as it was made (see _mod)
        for entry in result.entries:
            _charge(state, s, session, entry, runs, counted, by_time, orchestration)
    if cost is not None and transcript is not None:
        main = files.get(str(transcript))
        if isinstance(main, dict) and not main.get("inherited"):
            by_time.add("overall", _reconcile(state, session, s, cost, orchestration, by_time))
    by_time.charge(state, now)
    return problems


def _charge(
    state: State,
    s: dict[str, Any],
    session: str,
    entry: Entry,
    runs: dict[str, dict[str, Any]],
    counted: dict[str, Any],
    by_time: _ByTime,
    orchestration: Any,
) -> None:
    """Charge one API response to overall, the session's reconciliation, its run and its command."""
    commands = subtable(state, "commands")
    overall = subtable(state, "overall")
    _note_peak(s, entry.usage)
    if not entry.priced and entry.model:
        _note_unpriced(overall, entry.model)
    add_usage(overall, entry.usage, entry.model)
    _add_counted(counted, entry.usage, entry.model)
    by_time.add("overall", entry.usage)
    run = runs.get(owner(state, session, entry.prompt) or "") if entry.prompt else None
    if orchestration is not None:
        orchestration(entry.usage, entry.model, str(run.get("command")) if run else None)
    if run is None:
        return
    add_usage(run, entry.usage, entry.model)
    cmd = subtable(commands, str(run.get("command")))
    add_usage(cmd, entry.usage, entry.model)
    by_time.add(str(run.get("command")), entry.usage)


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
        agents = subtable(s, "mod_agents")
        known = agents.get(agent)
        if isinstance(known, str):
            prompt = known
        elif prompt is not None:
            _remember(agents, agent, prompt)
    entry = entry_of(usage, model, prompt, price)
    if entry is None:
        return prompt
    by_time = _ByTime()
    _charge(
        state,
        s,
        session,
        entry,
        _runs_by_prompt(state),
        subtable(s, "counted"),
        by_time,
        also(state, session, now) if also is not None else None,
    )
    by_time.charge(state, now)
    return owner(state, session, prompt)


def _note_peak(s: dict[str, Any], usage: dict[str, int]) -> None:
    """The session's largest response (tokens of every category, micro-dollars): kill mode's bound on
    what one response not yet in the transcript may add (hook._could_go_over)."""
    tokens = sum(usage.get(c, 0) for c in ("input", "output", "cache_creation", "cache_read"))
    micros = usage.get("usd_micros", 0)
    peak = s.get("peak")
    old = peak if isinstance(peak, list) and len(peak) == 2 else [0, 0]
    if tokens > old[0] or micros > old[1]:
        s["peak"] = [max(tokens, old[0]), max(micros, old[1])]


class _ByTime:
    """What one settle counted per scope, charged to the time buckets once (each charge edits a string)."""

    def __init__(self) -> None:
        self.scopes: dict[str, dict[str, int]] = {}

    def add(self, scope: str, usage: dict[str, int]) -> None:
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


def _strings(value: object) -> list[str]:
    """A ledger list of names, whatever a hand edit left in it."""
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []


def _note_unpriced(overall: dict[str, Any], model: str) -> None:
    """Note a model without a price: its tokens count, its dollars cannot (told by ``unpriced_notes``)."""
    names = _strings(overall.get("unpriced"))
    if model not in names:
        overall["unpriced"] = [*names[-(MAX_UNPRICED - 1) :], model]


def unpriced_notes(state: State, /) -> list[str]:
    """One line per model without a price that nobody was told about yet — for a hook whose reply
    is shown (one in the background would tell nobody)."""
    overall = subtable(state, "overall")
    done = _strings(overall.get("unpriced_told"))
    new = [m for m in _strings(overall.get("unpriced")) if m not in done]
    if not new:
        return []
    overall["unpriced_told"] = [*done, *new][-MAX_UNPRICED:]
    return [
        f'claude-budget: model "{m}" has no price, so its tokens count but its dollars do not — '
        f'price it in .claude/budget.toml: [prices."{m}"] with input = … and output = … (USD per million tokens)'
        for m in new
    ]


# What the session's transcripts gave per model, and what reconciling added: the four token
# counts, then micro-dollars.
_RECONCILED = (*CATEGORIES, "usd_micros")


def _five(value: object) -> list[int]:
    if isinstance(value, list) and len(value) in (4, 5):
        return [count_value(v) for v in value] + [0] * (5 - len(value))
    return [0] * 5


def _add_counted(counted: dict[str, Any], usage: dict[str, int], model: str | None) -> None:
    """What the session's transcripts gave, per model: what Claude Code's own totals are checked against."""
    key = model or "?"
    values = _five(counted.get(key))
    counted[key] = [min(v + count_value(usage.get(c)), MAX_COUNT) for v, c in zip(values, _RECONCILED)]


def _reconcile(
    state: State,
    session: str,
    s: dict[str, Any],
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

    Compared in total, not model by model: Claude Code keys its totals by the model it asked for,
    the transcript records the model that answered (``claude-sonnet-4-5`` vs its dated id). The
    extra is filed under the model Claude Code charged most. Dollars too — Claude Code's own
    price — unless a model without a price was seen (Claude Code then guesses, we do not).
    """
    if not cost:
        return {}
    # the runs there were when an earlier invocation's totals were reconciled: theirs, not this one's
    seen = s.get("reconciled_runs")
    earlier = set(_strings(seen)) if isinstance(seen, list) else set()
    mine = [r for r in state.get("runs", []) if isinstance(r, dict) and r.get("session") == session]
    s["reconciled_runs"] = [p for r in mine if isinstance(p := r.get("prompt"), str)][-MAX_LINKS:]
    overall = subtable(state, "overall")
    counted = subtable(s, "counted")
    unpriced = set(_strings(overall.get("unpriced")))
    have = [sum(col) for col in zip(*(_five(v) for v in counted.values()))] if counted else [0] * 5
    total = [sum(per.get(c, 0) for per in cost.values()) for c in _RECONCILED]
    want = [max(0, t - h) for t, h in zip(total, have)]
    if unpriced & (set(counted) | set(cost)):
        want[-1] = 0
    before = _five(s.get("unlogged"))
    delta = {c: w - b for c, w, b in zip(_RECONCILED, want, before) if w != b}
    if not delta:
        return {}
    model = max(cost, key=lambda m: sum(cost[m].get(c, 0) for c in CATEGORIES))
    add_usage(overall, delta, model, correction=True)
    run = _sole_run(mine, s, have, before)
    if run is not None and s.get("unlogged_run") != run.get("prompt") and run.get("prompt") in earlier:
        run = None  # the run was an earlier invocation's: this extra came after it
    if run is not None:
        command = str(run["command"])
        add_usage(run, delta, model, correction=True)
        add_usage(subtable(subtable(state, "commands"), command), delta, model, correction=True)
        by_time.add(command, delta)
        s["unlogged_run"] = run["prompt"]
    if orchestration is not None:
        orchestration(delta, model, str(run["command"]) if run is not None else None, True)
    s["unlogged"] = want
    return delta


def _sole_run(
    mine: list[dict[str, Any]], s: dict[str, Any], have: list[int], before: list[int]
) -> dict[str, Any] | None:
    """The session's one command run (of ``mine``, its runs), if every token its transcripts gave
    went to it (with what an earlier reconciliation added to it); else None."""
    if len(mine) != 1 or not isinstance(mine[0].get("command"), str):
        return None
    run = mine[0]
    added = before if s.get("unlogged_run") == run.get("prompt") else [0] * 5
    if all(count_value(run.get(c)) == h + a for c, h, a in zip(CATEGORIES, have, added)):
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
    s["run"] = prompt
    s["last"] = prompt
    run = _runs_by_prompt(state).get(prompt)
    if run is None:
        run = {"prompt": prompt, "command": command, "session": session, "started": now}
        state.setdefault("runs", []).append(run)
        _count_run(state, command, now)
    for key in ("limit", "source", "budget", "file"):
        run.pop(key, None)
    names = ("tokens", "usd_micros", "window", "quota_5h", "quota_7d")
    front = {k: v for k, v in zip(names, budget[:1] + budget[2:]) if v is not None} if budget else {}
    if front:
        run["budget"] = front
    if file is not None:
        run["file"] = file


def resume_run(state: State, /, *, session: str, prompt: str, cause: str, now: datetime) -> None:
    """A turn Claude Code started itself (``prompt``) continues the run of ``cause``: not a new run."""
    close_run(state, session=session, now=now)
    s = _session(state, session, now)
    _remember(subtable(s, "alias"), prompt, cause)
    run = _runs_by_prompt(state).get(cause)
    if run is not None:
        s["run"] = cause
        run.pop("ended", None)


def mark_handled(state: State, /, *, session: str, prompt: str, now: datetime, typed: bool = True) -> None:
    """The prompt hook saw ``prompt`` through (run opened, refused, plain, or /budget).

    ``typed``: the user's prompt (not a turn Claude Code started itself): the latest such prompt
    is what a wake-up that names no cause continues.
    """
    s = _session(state, session, now)
    if typed:
        s["last"] = prompt
    handled = (
        [p for p in s.get("handled", []) if isinstance(p, str) and p != prompt]
        if isinstance(s.get("handled"), list)
        else []
    )
    s["handled"] = [*handled[-7:], prompt]


def superseded(state: State, session: str, prompt: str | None, /) -> bool:
    """Whether a later prompt of ``session`` went through its prompt hook after ``prompt`` did.

    A hook that runs in the background (Stop in ``claude -p``) can arrive after the next turn
    began; it must not end that turn's run.
    """
    s = state.get("sessions", {}).get(session)
    handled = s.get("handled") if isinstance(s, dict) else None
    return isinstance(handled, list) and prompt in handled[:-1]


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
    s = state.get("sessions", {}).get(session)
    if not isinstance(s, dict) or (keep is not None and s.get("run") == keep):
        return
    prompt = s.pop("run", None)
    for key in ("limit", "source", "file"):  # where ledgers before 0.2 kept the running limit
        s.pop(key, None)
    run = _runs_by_prompt(state).get(prompt) if isinstance(prompt, str) else None
    if run is not None and "ended" not in run and not background:
        run["ended"] = now


def end_session(state: State, /, *, session: str, now: datetime) -> None:
    close_run(state, session=session, now=now)
    for run in state.get("runs", []):
        if isinstance(run, dict) and run.get("session") == session and "ended" not in run:
            run["ended"] = now  # background work does not outlive its session
    s = _session(state, session, now)
    s["ended"] = True


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
    s = state.get("sessions", {}).get(session)
    if not isinstance(s, dict):
        return OpenRun()
    cause = owner(state, session, prompt) if prompt is not None else s.get("run")
    run = _runs_by_prompt(state).get(cause) if isinstance(cause, str) else None
    if run is None:
        return OpenRun()
    file = run.get("file")
    return OpenRun(str(run["command"]), _budget_of(run), file if isinstance(file, str) else None, str(cause))


def last_run(state: State, session: str, /) -> OpenRun:
    """The session's last command run: its latest typed prompt's, else the latest run in the ledger
    file that names the session (a run recorded through the API: its ``prompt`` is then None)."""
    s = state.get("sessions", {}).get(session)
    last = s.get("last") if isinstance(s, dict) else None
    if isinstance(last, str):
        found = run_for(state, session, last)
        if found.command is not None:
            return found
    for run in reversed(state.get("runs", [])):
        if isinstance(run, dict) and run.get("session") == session and isinstance(run.get("command"), str):
            file = run.get("file")
            return OpenRun(str(run["command"]), _budget_of(run), file if isinstance(file, str) else None)
    return OpenRun()


def _budget_of(run: dict[str, Any]) -> Budget | None:
    from .._model import Budget

    front = run.get("budget")
    if isinstance(front, dict):
        tokens, usd, window, q5, q7 = (front.get(k) for k in ("tokens", "usd_micros", "window", "quota_5h", "quota_7d"))
        return Budget(
            tokens if count_value(tokens) else None,
            None,
            usd if count_value(usd) else None,
            window if isinstance(window, str) else None,
            _share(q5),
            _share(q7),
        )
    limit = run.get("limit")  # a run started before 0.3: its limit, and whether the frontmatter gave it
    if run.get("source") == "frontmatter" and count_value(limit):
        return Budget(limit)
    return None


def _share(value: object) -> float | None:
    """A quotaBudget kept with a run: a percent above 0 and at most 100, else None."""
    if isinstance(value, (int, float)) and not isinstance(value, bool) and 0 < value <= 100:
        return float(value)
    return None


def cause_of(
    state: State, session: str, /, *, tool: str | None, agent: str | None, transcript: Path | None
) -> str | None:
    """The run a turn Claude Code started itself belongs to, from what its prompt names.

    A task notification names the tool call that started the work (``<tool-use-id>``): its turn's
    run, as the transcript recorded it. A subagent's own file names the turn that spawned it.
    Failing both (a loop or schedule wake-up), the session's last typed command, if it still runs.
    """
    s = state.get("sessions", {}).get(session)
    if not isinstance(s, dict):
        return None
    runs = _runs_by_prompt(state)
    tools = s.get("tools")
    candidates = [tools.get(tool) if tool and isinstance(tools, dict) else None]
    if agent and transcript is not None:
        candidates.append(owner(state, session, agent_prompt(transcript, agent)))
    if not tool and not agent:
        candidates.append(s.get("last"))
    for c in candidates:
        if isinstance(c, str) and c in runs:
            return c
    return None


def unpriced_models(state: State, /) -> tuple[str, ...]:
    return tuple(_strings(state.get("overall", {}).get("unpriced")))


def _scope_table(state: State, name: str) -> dict[str, Any]:
    return subtable(state, "overall") if name == "overall" else subtable(subtable(state, "commands"), name)


def warned(state: State, name: str, key: str = "tokens", /) -> int:
    """The highest threshold of a scope's limit (``LimitStatus.key``) already announced."""
    table = state.get("overall") if name == "overall" else state.get("commands", {}).get(name)
    if not isinstance(table, dict):
        return 0
    if key == "tokens":
        return count_value(table.get("warned"))
    others = table.get("warned_limits")
    return count_value(others.get(key)) if isinstance(others, dict) else 0


def set_warned(state: State, name: str, key: str, level: int, /) -> None:
    table = _scope_table(state, name)
    if key == "tokens":
        if level:
            table["warned"] = level
        else:
            table.pop("warned", None)
        return
    others = subtable(table, "warned_limits")
    if level:
        others[key] = level
    else:
        others.pop(key, None)
    if not others:
        table.pop("warned_limits", None)


def reset(state: State, command: str | None, /, *, now: datetime) -> list[str]:
    """Zero a command's (or ``overall``'s) counters and windows; with None, every one. The run log is kept."""
    commands = state.setdefault("commands", {})
    if command is None:
        names = ["overall", *sorted(commands)]
        state["overall"] = {"since": now}
        for name in commands:
            commands[name] = {"since": now}
        for table in ("minutes", "quarters"):  # windows start over too
            state.pop(table, None)
        return names
    if command == "overall":
        state["overall"] = {"since": now}
    elif command in commands:
        commands[command] = {"since": now}
    else:
        return []
    for table in ("minutes", "quarters"):
        per_scope = state.get(table)
        if isinstance(per_scope, dict):
            per_scope.pop(command, None)
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
    add_usage(state.setdefault("overall", {}), tokens, model)
    from ._windows import charge

    charge(state, ["overall"] if command is None else ["overall", command], now, tokens)
    if command is None:
        return
    run: dict[str, Any] = {"prompt": prompt, "command": command, "started": now, "ended": now, "source": "api"}
    if session:
        run["session"] = session
    add_usage(run, tokens, model)
    state.setdefault("runs", []).append(run)
    add_usage(_count_run(state, command, now), tokens, model)


def _count_run(state: State, command: str, now: datetime) -> dict[str, Any]:
    """One more run of ``command``; returns its table."""
    cmd = subtable(subtable(state, "commands"), command)
    cmd["runs"] = count_value(cmd.get("runs")) + 1
    cmd["last_run"] = now
    cmd.setdefault("since", now)
    return cmd


def join_orchestration(state: State, session: str, oid: str, /) -> None:
    """The session is an instance of orchestration ``oid``: its responses charge that scope too."""
    subtable(subtable(state, "sessions"), session)["orchestration"] = oid


def forget_buckets(state: State, scope: str, /) -> None:
    """Drop a scope's time buckets (a pruned orchestration's)."""
    for table in ("minutes", "quarters"):
        per_scope = state.get(table)
        if isinstance(per_scope, dict):
            per_scope.pop(scope, None)


def notice_is_new(state: State, name: str, stamp: str, /) -> bool:
    """Whether the notice ``name`` with this ``stamp`` (what it is about, e.g. a file's mtime) was not
    given yet; it is remembered as given."""
    if state.get(name) == stamp:
        return False
    state[name] = stamp
    return True


def plan_table(state: State, name: str, key: str, /) -> dict[str, Any]:
    """A scope's table of the plan's attribution (``quota``, ``quota_runs``, ``quota_unattributed``;
    read through ``_records.plan_data``), made when there is none."""
    return subtable(_scope_table(state, name), key)


def add_run_share(state: State, prompt: str, key: str, share: float, /) -> float:
    """Add ``share`` (% of a plan window: ``quota_5h``, ``quota_7d``) to the run of ``prompt``; its new total."""
    run = _runs_by_prompt(state).get(prompt)
    if run is None:
        return 0.0
    value = run.get(key)
    total = round((float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else 0.0) + share, 4)
    run[key] = total
    return total


def mod_seq(state: State, session: str, /) -> tuple[str, int] | None:
    """The last record of the session's mod that was charged: ``(mod instance, n)`` (see mod._mod)."""
    s = state.get("sessions", {}).get(session)
    last = s.get("mod_seq") if isinstance(s, dict) else None
    if isinstance(last, list) and len(last) == 2 and isinstance(last[0], str) and isinstance(last[1], int):
        return last[0], last[1]
    return None


def set_mod_seq(state: State, session: str, seq: tuple[str, int], /) -> None:
    s = state.get("sessions", {}).get(session)
    if isinstance(s, dict):
        s["mod_seq"] = [seq[0], seq[1]]
