"""Typed records of the ledger's state, for every module outside the ledger part.

The ledger part (``_ledger``, ``_store``, ``_state``, ``_runs``) owns the state's layout and its
typed values (``_state``, validated when read: a field a hand edit broke is a ``LedgerCorrupt``
that names it, never an ``isinstance`` deep inside a feature). Everything else reads the state
through these functions, which return read-only records, and changes it through ``_runs``. A
feature that keeps its own data in the ledger (an orchestration, the team's lease, the plan's
marks) types its table itself, through :func:`feature_value`, and owns what is inside it.

NamedTuples, not dataclasses: the hook imports this on every event (see _model).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any, NamedTuple, TypeVar

from .._model import _RUN_FIELDS, Usage
from ._state import FeatureValue, charged_in

if TYPE_CHECKING:
    from ._state import LedgerState, Run, Session


class ScopeTotals(NamedTuple):
    """A scope's cumulative counters (``overall`` or a command) since its last reset."""

    name: str
    usage: Usage = Usage()
    usd_micros: int = 0
    runs: int = 0
    last_run: datetime | None = None
    since: datetime | None = None
    spent_at: datetime | None = None  # when it last spent (None: not known, a ledger before 0.6)

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


def scope(state: LedgerState, name: str, /) -> ScopeTotals:
    """The counters of ``overall`` or a command (all zero when it has none)."""
    found = state.scope(name)
    if found is None:
        return ScopeTotals(name)
    return ScopeTotals(name, found.usage(), found.usd_micros, found.runs, found.last_run, found.since, found.spent_at)


def recent(state: LedgerState, command: str, /) -> list[list[int]]:
    """A command's last finished runs that left the ledger file (``recent``), oldest first, as
    ``[input, output, cache_creation, cache_read, usd_micros]``: a new list of the ledger's own rows
    (read them, never change them)."""
    found = state.scope(command) if command != "overall" else None
    return list(found.recent) if found is not None else []


def command_names(state: LedgerState, /) -> list[str]:
    """Every command the ledger has counters for (its file names, not read)."""
    return list(state.commands)


def scopes(state: LedgerState, /) -> Iterator[ScopeTotals]:
    """``overall``, then every command's counters."""
    yield scope(state, "overall")
    for name in command_names(state):
        yield scope(state, name)


class PlanShareRecord(NamedTuple):
    """What the plan's attribution charged to a scope (``_state.PlanShare``, copied: read it, never change it)."""

    #: per window: the reset of the window it was charged in (epoch seconds), the percent charged of it
    charged: Mapping[str, tuple[int, float]]
    runs: Mapping[str, float]  # a command's last runs (by prompt id): their shares of the 5-hour window, newest last
    unattributed: Mapping[str, float]  # overall's: per window, the moves with no tokens counted here

    def charged_in(self, window: str, resets_at: int) -> float:
        """The percent charged of the window that resets at ``resets_at`` (0: none, or an earlier one's)."""
        return charged_in(self.charged, window, resets_at)


def plan_share(state: LedgerState, name: str, /) -> PlanShareRecord:
    """What the plan's attribution charged to ``overall`` or a command; empty when nothing."""
    found = state.scope(name)
    if found is None:
        return PlanShareRecord({}, {}, {})
    p = found.plan
    return PlanShareRecord(dict(p.charged), dict(p.runs), dict(p.unattributed))


def bucket_scopes(state: LedgerState, kind: str, /) -> list[str]:
    """The scopes that have buckets of ``kind`` (``minutes``, ``quarters``)."""
    return list(state.buckets(kind))


def _run(r: Run) -> RunRecord:
    return RunRecord(r.prompt, r.command, r.session, r.started, r.ended, r.usage(), r.usd_micros, r.source)


def runs(state: LedgerState, /, *, command: str | None = None) -> list[RunRecord]:
    """The runs the ledger file holds, oldest first (the run log has the others: _runlog); with
    ``command``, only that command's."""
    return [_run(r) for r in state.runs if command is None or r.command == command]


def run_fields() -> tuple[str, ...]:
    """The counters of a run, in :meth:`RunRecord.totals` order."""
    return _RUN_FIELDS


def _session(sid: str, s: Session) -> SessionRecord:
    return SessionRecord(sid, s.seen, s.run, s.last, s.ended, s.peak, tuple(s.files), s.orchestration)


def session(state: LedgerState, sid: str, /) -> SessionRecord | None:
    """The session ``sid`` as the ledger knows it; None when it does not."""
    s = state.sessions.get(sid)
    return _session(sid, s) if s is not None else None


def any_open_session(state: LedgerState, /) -> bool:
    """Whether some session has not ended. Those this change read are looked at first, so the answer
    usually comes from the session at hand, without reading the others' files."""
    sessions = state.sessions
    return any(s is not None and not s.ended for s in (sessions.get(k) for k in sessions))


def feature_table(state: LedgerState, kind: str, key: str | None = None, /) -> dict[str, Any] | None:
    """A feature's own table in the ledger file (``orchestrations``/<id>, ``team``, ``quota``), which
    the feature owns the inside of; None when there is none."""
    if kind not in _FEATURE_TABLES:
        raise ValueError(f"{kind} is not a feature's table")
    top = state.tables.get(kind)
    if isinstance(top, FeatureValue):
        top = top.dump()  # a copy, for reading: the feature changes its value, not this
    found = top if key is None else top.get(key) if isinstance(top, dict) else None
    return found if isinstance(found, dict) else None


_FEATURE_TABLES = frozenset(("orchestrations", "team", "quota"))

T = TypeVar("T", bound=FeatureValue)


def feature_value(
    state: LedgerState, kind: str, load: Callable[[Mapping[str, Any] | None], T | None], /, *, replace: T | None = None
) -> T | None:
    """A feature's own table as the feature's typed value (``load`` reads it: once per state, which
    then keeps the value and writes it back with its ``dump``); None when there is none.
    ``replace``: that value, now the one kept."""
    if kind not in _FEATURE_TABLES:
        raise ValueError(f"{kind} is not a feature's table")
    if replace is not None:
        state.tables[kind] = replace
        return replace
    found = state.tables.get(kind)
    if found is None or isinstance(found, dict):
        value = load(found)
        if value is not None:
            state.tables[kind] = value
        return value
    return found  # type: ignore[no-any-return]  # the value this state was given by the same feature
