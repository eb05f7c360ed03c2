"""Command runs and sessions inside the ledger state: open, settle usage into, close, reset.

Every function takes the state dict of an open ``Ledger.transaction()`` and ``now``; none does
I/O except ``settle``, which reads the session's transcripts.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from datetime import datetime
from pathlib import Path
from typing import Any, NamedTuple

from ._accounting import baseline, read_new, subagent_files
from ._ledger import State, add_usage, subtable
from ._model import Usage, count_value


def _session(state: State, sid: str, now: datetime) -> dict[str, Any]:
    sessions = subtable(state, "sessions")
    s = subtable(sessions, sid)
    if not isinstance(s.get("files"), dict):
        s["files"] = {}
    s["seen"] = now
    return s


def _runs_by_prompt(state: State) -> dict[str, dict[str, Any]]:
    return {r["prompt"]: r for r in state.get("runs", []) if isinstance(r, dict) and isinstance(r.get("prompt"), str)}


def settle(
    state: State,
    /,
    *,
    session: str,
    transcript: Path | None,
    extra: Iterable[Path] = (),
    prompt_id: str | None = None,
    resolve: Callable[[str], dict[str, Any] | None] | None = None,
    now: datetime,
) -> list[str]:
    """Count what the session's transcripts gained since the last hook; returns problems seen.

    The first time a session is seen, what its files already hold is not counted, except the turn
    of ``prompt_id`` (from its user record on: its own hook may have failed). That is what keeps a
    resumed session, or one whose hooks were installed mid-way, from counting history again.
    ``resolve`` names the run to open for a command prompt whose own hook never saw it through.
    """
    s = _session(state, session, now)
    files: dict[str, Any] = s["files"]
    new = not files  # the first settle of this session (mark_handled may have made its entry)
    paths: list[Path] = []
    if transcript is not None:
        paths.append(transcript)
        paths.extend(subagent_files(transcript))
    paths.extend(p for p in extra if p not in paths)
    problems: list[str] = []
    runs = _runs_by_prompt(state)
    commands = subtable(state, "commands")
    overall = subtable(state, "overall")
    for path in paths:
        key = str(path)
        cursor = files.get(key)
        if not isinstance(cursor, dict):
            if not new:
                cursor = {"offset": 0}  # a file that appeared during a session we follow: all of it is new
            elif prompt_id:
                cursor = dict(baseline(path, prompt_id), prompt=prompt_id)
            else:
                cursor = baseline(path)
            files[key] = cursor
        if new and not os.path.isfile(path):
            continue  # nothing to say yet about a path that is not a transcript; the next hook will
        result = read_new(path, cursor)
        if result.problem:
            problems.append(result.problem)
        if resolve is not None:
            seen = s.get("handled")
            handled: list[Any] = seen if isinstance(seen, list) else []
            for pid, name in result.commands.items():
                # A command prompt whose own hook never ran to the end (it failed open): open its run now.
                if pid not in runs and pid not in handled and (info := resolve(name)) is not None:
                    open_run(state, session=session, prompt=pid, now=now, **info)
                    runs = _runs_by_prompt(state)
        if result.skipped:
            cursor["skipped"] = int(cursor.get("skipped", 0)) + result.skipped
        for entry in result.entries:
            add_usage(overall, entry.usage, entry.model)
            run = runs.get(entry.prompt) if entry.prompt else None
            if run is None:
                continue
            add_usage(run, entry.usage, entry.model)
            cmd = subtable(commands, str(run.get("command")))
            add_usage(cmd, entry.usage, entry.model)
    return problems


def open_run(
    state: State,
    /,
    *,
    session: str,
    prompt: str,
    command: str,
    limit: int | None,
    source: str | None = None,
    file: str | None = None,
    now: datetime,
) -> None:
    """Start a run of ``command`` for ``prompt`` (a UserPromptSubmit that was let through).

    The limit in force, and where it came from, are kept with the session, so that the hooks
    during the turn need not read the command's file again.
    """
    close_run(state, session=session, now=now)
    s = _session(state, session, now)
    s["run"] = prompt
    for key, value in (("limit", limit), ("source", source), ("file", file)):
        if value is not None:
            s[key] = value
        else:
            s.pop(key, None)
    if prompt in _runs_by_prompt(state):
        return  # the same prompt again (a retried hook): one run
    state.setdefault("runs", []).append({"prompt": prompt, "command": command, "session": session, "started": now})
    _count_run(state, command, now)


def mark_handled(state: State, /, *, session: str, prompt: str, now: datetime) -> None:
    """The prompt hook saw ``prompt`` through (run opened, refused, plain, or /budget)."""
    s = _session(state, session, now)
    handled = (
        [p for p in s.get("handled", []) if isinstance(p, str) and p != prompt]
        if isinstance(s.get("handled"), list)
        else []
    )
    s["handled"] = [*handled[-7:], prompt]


def close_run(state: State, /, *, session: str, now: datetime) -> None:
    """End the session's open run, if any (Stop, a new prompt, or the session's end)."""
    s = state.get("sessions", {}).get(session)
    if not isinstance(s, dict):
        return
    prompt = s.pop("run", None)
    for key in ("limit", "source", "file"):
        s.pop(key, None)
    run = _runs_by_prompt(state).get(prompt) if isinstance(prompt, str) else None
    if run is not None and "ended" not in run:
        run["ended"] = now


def end_session(state: State, /, *, session: str, now: datetime) -> None:
    close_run(state, session=session, now=now)
    s = _session(state, session, now)
    s["ended"] = True


class OpenRun(NamedTuple):
    command: str | None = None
    limit: int | None = None
    source: str | None = None
    file: str | None = None


def open_command(state: State, session: str, /) -> OpenRun:
    """The command the session is running now, with the limit it started with."""
    s = state.get("sessions", {}).get(session)
    if not isinstance(s, dict) or not isinstance(s.get("run"), str):
        return OpenRun()
    run = _runs_by_prompt(state).get(s["run"])
    if run is None:
        return OpenRun()
    limit, source, file = s.get("limit"), s.get("source"), s.get("file")
    return OpenRun(
        str(run["command"]),
        limit if isinstance(limit, int) and not isinstance(limit, bool) else None,
        source if isinstance(source, str) else None,
        file if isinstance(file, str) else None,
    )


def scope_usage(state: State, name: str, /) -> tuple[Usage, int, datetime | None]:
    """Usage since the last reset, number of runs, and the last run's start of a scope."""
    table = state.get("overall") if name == "overall" else state.get("commands", {}).get(name)
    if not isinstance(table, dict):
        return Usage(), 0, None
    last = table.get("last_run")
    return Usage.from_mapping(table), count_value(table.get("runs")), last if isinstance(last, datetime) else None


def warned(state: State, name: str, /) -> int:
    table = state.get("overall") if name == "overall" else state.get("commands", {}).get(name)
    return count_value(table.get("warned")) if isinstance(table, dict) else 0


def set_warned(state: State, name: str, level: int, /) -> None:
    table = subtable(state, "overall") if name == "overall" else subtable(subtable(state, "commands"), name)
    if level:
        table["warned"] = level
    else:
        table.pop("warned", None)


def reset(state: State, command: str | None, /, *, now: datetime) -> list[str]:
    """Zero a command's counters (or, with None, every counter). Run history is kept."""
    commands = state.setdefault("commands", {})
    if command is None:
        names = ["overall", *sorted(commands)]
        state["overall"] = {"since": now}
        for name in commands:
            commands[name] = {"since": now}
        return names
    if command not in commands:
        return []
    commands[command] = {"since": now}
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
) -> None:
    """Usage measured outside the hooks (an orchestrator's own count): one finished run."""
    tokens = usage.as_dict()
    add_usage(state.setdefault("overall", {}), tokens, model)
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
