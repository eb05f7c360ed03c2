"""Typed records of the ledger's state, for every module outside the ledger part.

The ledger part (``_ledger``, ``_store``, ``_runs``) owns the state's layout; everything else reads it
through these functions, which return typed, validated records — a field a hand edit broke reads
as its empty value, never as an ``isinstance`` deep inside a feature — and changes it through
``_runs``. A feature that keeps its own data in the ledger (an orchestration, the team's lease, the
plan's marks) gets its table from :func:`feature_table` and owns what is inside it.

NamedTuples, not dataclasses: the hook imports this on every event (see _model).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import Any, NamedTuple

from .._model import _RUN_FIELDS, Usage, count_value, recent_runs


def _time(value: object) -> datetime | None:
    return value if isinstance(value, datetime) else None


def _str(value: object) -> str | None:
    return value if isinstance(value, str) else None


class ScopeTotals(NamedTuple):
    """A scope's cumulative counters (``overall`` or a command) since its last reset."""

    name: str
    usage: Usage = Usage()
    usd_micros: int = 0
    runs: int = 0
    last_run: datetime | None = None
    since: datetime | None = None

    def amount(self, metric: str, counted: tuple[str, ...]) -> int:
        """Micro-dollars (``usd``) or the counted tokens."""
        return self.usd_micros if metric == "usd" else self.usage.total(counted)

    def counters(self) -> dict[str, int]:
        """The four token counts and ``usd_micros``, by name."""
        return {**self.usage.as_dict(), "usd_micros": self.usd_micros}


class RunRecord(NamedTuple):
    """One command run the ledger file still holds (open, or finished in the last minutes)."""

    prompt: str
    command: str | None = None
    session: str | None = None
    started: datetime | None = None
    ended: datetime | None = None
    usage: Usage = Usage()
    usd_micros: int = 0
    source: str | None = None  # "api": recorded through record_usage

    def totals(self) -> list[int]:
        """``[input, output, cache_creation, cache_read, usd_micros]``."""
        return [*self.usage, self.usd_micros]

    def as_log(self) -> dict[str, Any]:
        """As the run log's readers see a run (its fields, by name)."""
        return {
            "prompt": self.prompt,
            "command": self.command,
            "session": self.session,
            "started": self.started,
            "ended": self.ended,
            **self.usage.as_dict(),
            "usd_micros": self.usd_micros,
        }


class SessionRecord(NamedTuple):
    """What the ledger knows of one Claude Code session."""

    id: str
    seen: datetime | None = None
    run: str | None = None  # the prompt id of its open run
    last: str | None = None  # its latest typed prompt
    ended: bool = False  # its SessionEnd came
    #: its largest response so far: (tokens, micro-dollars) — kill mode's bound on one more
    peak: tuple[int, int] = (0, 0)
    transcripts: tuple[str, ...] = ()  # the files it follows, main transcript first
    orchestration: str | None = None


def _table(state: Mapping[str, Any], name: str) -> Mapping[str, Any] | None:
    if name == "overall":
        table = state.get("overall")
    else:
        commands = state.get("commands")
        table = commands.get(name) if isinstance(commands, dict) else None
    return table if isinstance(table, dict) else None


def scope(state: Mapping[str, Any], name: str, /) -> ScopeTotals:
    """The counters of ``overall`` or a command (all zero when it has none)."""
    table = _table(state, name)
    if table is None:
        return ScopeTotals(name)
    return ScopeTotals(
        name,
        Usage.from_mapping(table),
        count_value(table.get("usd_micros")),
        count_value(table.get("runs")),
        _time(table.get("last_run")),
        _time(table.get("since")),
    )


def recent(state: Mapping[str, Any], command: str, /) -> list[list[int]]:
    """A command's last finished runs that left the ledger file (``recent``), oldest first, as
    ``[input, output, cache_creation, cache_read, usd_micros]``."""
    table = _table(state, command)
    return recent_runs(table) if table is not None and command != "overall" else []


def command_names(state: Mapping[str, Any], /) -> list[str]:
    """Every command the ledger has counters for (its file names, not read)."""
    commands = state.get("commands")
    return [n for n in commands if isinstance(n, str)] if isinstance(commands, dict) else []


def scopes(state: Mapping[str, Any], /) -> Iterator[ScopeTotals]:
    """``overall``, then every command's counters."""
    yield scope(state, "overall")
    for name in command_names(state):
        yield scope(state, name)


def plan_data(state: Mapping[str, Any], name: str, key: str, /) -> Mapping[str, Any]:
    """What the plan's attribution keeps in a scope (``quota``: per window ``[resets_at, %]``;
    ``quota_runs``: per run its share of the 5-hour window); empty when none."""
    table = _table(state, name)
    found = table.get(key) if table is not None else None
    return found if isinstance(found, dict) else {}


def bucket_scopes(state: Mapping[str, Any], kind: str, /) -> list[str]:
    """The scopes that have buckets of ``kind`` (``minutes``, ``quarters``)."""
    tables = state.get(kind)
    return [s for s in tables if isinstance(s, str)] if isinstance(tables, dict) else []


def _run(r: Mapping[str, Any]) -> RunRecord:
    return RunRecord(
        str(r["prompt"]),
        _str(r.get("command")),
        _str(r.get("session")),
        _time(r.get("started")),
        _time(r.get("ended")),
        Usage.from_mapping(r),
        count_value(r.get("usd_micros")),
        _str(r.get("source")),
    )


def runs(state: Mapping[str, Any], /, *, command: str | None = None) -> list[RunRecord]:
    """The runs the ledger file holds, oldest first (the run log has the others: _runlog); with
    ``command``, only that command's."""
    found = state.get("runs")
    if not isinstance(found, list):
        return []
    return [
        _run(r)
        for r in found
        if isinstance(r, dict) and isinstance(r.get("prompt"), str) and (command is None or r.get("command") == command)
    ]


def run_fields() -> tuple[str, ...]:
    """The counters of a run, in :meth:`RunRecord.totals` order."""
    return _RUN_FIELDS


def _session(sid: str, s: Mapping[str, Any]) -> SessionRecord:
    peak = s.get("peak")
    pair = (count_value(peak[0]), count_value(peak[1])) if isinstance(peak, list) and len(peak) == 2 else (0, 0)
    files = s.get("files")
    return SessionRecord(
        sid,
        _time(s.get("seen")),
        _str(s.get("run")),
        _str(s.get("last")),
        s.get("ended") is True,
        pair,
        tuple(k for k in files if isinstance(k, str)) if isinstance(files, dict) else (),
        _str(s.get("orchestration")),
    )


def session(state: Mapping[str, Any], sid: str, /) -> SessionRecord | None:
    """The session ``sid`` as the ledger knows it; None when it does not."""
    sessions = state.get("sessions")
    s = sessions.get(sid) if isinstance(sessions, dict) else None
    return _session(sid, s) if isinstance(s, dict) else None


def any_open_session(state: Mapping[str, Any], /) -> bool:
    """Whether some session has not ended. Those this change read are looked at first, so the answer
    usually comes from the session at hand, without reading the others' files."""
    sessions = state.get("sessions")
    if not isinstance(sessions, dict):
        return False
    return any(isinstance(s, dict) and s.get("ended") is not True for _, s in _lazily(sessions))


def _lazily(table: Mapping[str, Any]) -> Iterator[tuple[str, Any]]:
    for key in table:
        yield key, table.get(key)


def feature_table(state: Mapping[str, Any], kind: str, key: str | None = None, /) -> dict[str, Any] | None:
    """A feature's own table in the ledger file (``orchestrations``/<id>, ``team``, ``quota``), which
    the feature owns the inside of; None when there is none."""
    if kind not in _FEATURE_TABLES:
        raise ValueError(f"{kind} is not a feature's table")
    top = state.get(kind)
    found = top if key is None else top.get(key) if isinstance(top, dict) else None
    return found if isinstance(found, dict) else None


def made_table(
    state: dict[str, Any], kind: str, key: str | None = None, /, *, replace: dict[str, Any] | None = None
) -> dict[str, Any]:
    """:func:`feature_table`, made when there is none; ``replace``: that table, now the one kept."""
    if kind not in _FEATURE_TABLES:
        raise ValueError(f"{kind} is not a feature's table")
    top = state.get(kind)
    if key is None:
        if replace is not None or not isinstance(top, dict):
            top = state[kind] = replace if replace is not None else {}
        return top
    if not isinstance(top, dict):
        top = state[kind] = {}
    found = top.get(key)
    if replace is not None or not isinstance(found, dict):
        found = top[key] = replace if replace is not None else {}
    return found


_FEATURE_TABLES = frozenset(("orchestrations", "team", "quota"))
