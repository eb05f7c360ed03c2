"""The ledger's state as typed values, validated once when read: what a transaction changes.

:class:`LedgerState` is the whole of it: ``overall`` (a :class:`Scope`), the open and recent
:class:`Run` s, every command's :class:`Scope` and every :class:`Session` with its read
:class:`Cursor` s (a file each, read when used: ``_store.Parts``), the scopes' time buckets (one
line each, see _windows) and the tables that features own (``LedgerState.tables``: an
orchestration's, the team's lease, the plan's marks), which each feature types itself through
``_records.feature_value``.

Each class reads its table with ``load``: a field of the wrong kind is a :class:`FieldError`, which
names it; the field is left out and the others kept, and the ledger keeps the file as it was beside
it and tells the user once (_ledger). ``dump`` writes the value back in the documented layout
(docs/ledger.md). Keys this version does not know are kept as they were. Inside the ledger part (``_runs``,
``_ledger``, ``_windows``) the state is changed through these classes' methods; every other module
reads it through :mod:`._records` and changes it through :mod:`._runs`.

Plain classes with ``__slots__``, not dataclasses: the hook imports this on every event (see _model).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, MutableMapping
from datetime import datetime
from itertools import chain
from typing import Any, ClassVar, Final, Protocol, TypeVar, runtime_checkable

from .._model import _RUN_FIELDS, MAX_COUNT, RECENT_RUNS, Usage, mark_value

COUNTS: Final = _RUN_FIELDS  # input, output, cache_creation, cache_read, usd_micros


class FieldError(ValueError):
    """A field of the ledger that is not what it should be; says which and what was found."""

    def __init__(self, where: str, expected: str, found: object) -> None:
        super().__init__(f"{where} is {_kind(found)}, expected {expected}")
        self.where = where


def _kind(value: object) -> str:
    if isinstance(value, (bool, int, float)):
        return f"{value!r}"
    if isinstance(value, str):
        return f"the text {value[:40]!r}"
    return f"a {type(value).__name__}"


# --- field readers: each returns the value or raises FieldError naming it --------------------------


def _count(value: object, where: str) -> int:
    if type(value) is int and 0 <= value <= MAX_COUNT:
        return value
    raise FieldError(where, "a count (a whole number from 0)", value)


def _time(value: object, where: str) -> datetime:
    if isinstance(value, datetime) and value.tzinfo is not None:
        return value
    if isinstance(value, str):
        try:
            when = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            pass
        else:
            if when.tzinfo is not None:
                return when
    raise FieldError(where, "a time with its zone (ISO 8601)", value)


def _text(value: object, where: str) -> str:
    if isinstance(value, str):
        return value
    raise FieldError(where, "a text", value)


def _flag(value: object, where: str) -> bool:
    if isinstance(value, bool):
        return value
    raise FieldError(where, "true or false", value)


def _texts(value: object, where: str) -> list[str]:
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return list(value)
    raise FieldError(where, "a list of texts", value)


def _links(value: object, where: str) -> dict[str, str]:
    if isinstance(value, dict) and all(isinstance(v, str) for v in value.values()):
        return {str(k): v for k, v in value.items()}
    raise FieldError(where, "a table of texts", value)


def _table(value: object, where: str) -> dict[str, Any]:
    if isinstance(value, dict):
        return value
    raise FieldError(where, "a table", value)


def _share(value: object, where: str) -> float:
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 0:
        return float(value)
    raise FieldError(where, "a percent", value)


def _mark(value: object, where: str) -> tuple[int, float]:
    found = mark_value(value)
    if found is None:
        raise FieldError(where, "[a reset in epoch seconds, a percent from 0 to 1000]", value)
    return found


_V = TypeVar("_V")


def _each(value: object, where: str, problems: list[FieldError], read: Callable[[object, str], _V]) -> dict[str, _V]:
    """A table's entries, each read with ``read``: one of the wrong kind is left out and named in
    ``problems``, the others are kept."""
    out: dict[str, _V] = {}
    for key, item in _table(value, where).items():
        try:
            out[str(key)] = read(item, f"{where}.{key}")
        except FieldError as e:
            problems.append(e)
    return out


def _row(value: object, where: str, size: int = len(COUNTS)) -> list[int]:
    if type(value) is list and len(value) == size:
        if all(type(v) is int and 0 <= v <= MAX_COUNT for v in value):
            return value  # the common case, checked in one pass
        return [_count(v, where) for v in value]
    raise FieldError(where, f"a list of {size} counts", value)


def _per_model(value: object, where: str) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}
    for model, counts in _table(value, where).items():
        at = f"{where}.{model}"
        table = _table(counts, at)
        if all(type(v) is int and 0 <= v <= MAX_COUNT for v in table.values()) and table.keys() <= _COUNT_SET:
            out[str(model)] = table  # the common case, checked in one pass
        else:
            out[str(model)] = {k: _count(v, f"{at}.{k}") for k, v in table.items() if k in _COUNT_SET}
    return out


_COUNT_SET: Final = frozenset(COUNTS)


def add_count(current: int, value: object, correction: bool) -> int:
    """``current`` plus a count (or, as a correction, a signed delta), kept within 0..MAX_COUNT."""
    if type(value) is not int:
        return current
    if not correction and value < 0:
        return current
    return max(0, min(current + value, MAX_COUNT))


def _read_fields(
    value: _Read,
    table: Mapping[str, Any],
    where: str,
    problems: list[FieldError],
) -> None:
    """Read each field of ``table`` into ``value``; one of the wrong kind reads as empty and is named in
    ``problems`` (the ledger then says which, and keeps the file as it was: _ledger._note_fields).

    A count or a time as the ledger writes it is taken here, in one check (a status reads 200
    commands' parts); anything else goes through the class's ``_field``, which names what is wrong."""
    plain = value._PLAIN
    for key, item in table.items():
        kind = plain.get(key)
        if kind is int:
            if type(item) is int and 0 <= item <= MAX_COUNT:
                setattr(value, key, item)
                continue
        elif kind is datetime and type(item) is str:
            try:
                when = datetime.fromisoformat(item)
            except ValueError:
                pass
            else:
                if when.tzinfo is not None:
                    setattr(value, key, when)
                    continue
        try:
            value._field(key, item, where, problems)
        except FieldError as e:
            problems.append(e)


def _put(out: dict[str, Any], key: str, value: object) -> None:
    """Set ``key`` unless the value is empty (TOML has no null; an empty field is an absent one)."""
    if value is not None and value != [] and value != {}:
        out[key] = value


_R = TypeVar("_R", bound="_Read")


class _Read:
    """A table read field by field (:meth:`_field`) into a new value: the ``load`` of a class made with no arguments."""

    __slots__ = ()
    #: the fields that are a count (int) or a time (datetime), by name: the attribute of the same name
    _PLAIN: ClassVar[Mapping[str, type]] = {}

    @classmethod
    def load(cls: type[_R], table: object, where: str, problems: list[FieldError]) -> _R:
        """Read a table written by ``dump``; a field of the wrong kind is left out, and named in ``problems``."""
        t = _table(table, where)
        value = cls()
        _read_fields(value, t, where, problems)
        return value

    def _field(self, key: str, value: object, where: str, problems: list[FieldError]) -> None:
        raise NotImplementedError


# --- the classes -----------------------------------------------------------------------------------


class Tally:
    """Token counts by category, micro-dollars, and the same per model: what a scope or a run adds up."""

    __slots__ = ("cache_creation", "cache_read", "input", "models", "output", "usd_micros")

    def __init__(self) -> None:
        self.input = self.output = self.cache_creation = self.cache_read = self.usd_micros = 0
        self.models: dict[str, dict[str, int]] = {}

    def add(self, usage: Mapping[str, object], model: str | None = None, *, correction: bool = False) -> None:
        """Add counts (by name: the four categories and ``usd_micros``; other names are ignored).
        ``correction``: they may be negative (an earlier estimate taken back); none goes below 0."""
        for k in COUNTS:
            if k in usage:
                setattr(self, k, add_count(getattr(self, k), usage[k], correction))
        if model:
            per = self.models.setdefault(model, {})
            for k in COUNTS:
                if k in usage:
                    per[k] = add_count(per.get(k, 0), usage[k], correction)

    def usage(self) -> Usage:
        return Usage(self.input, self.output, self.cache_creation, self.cache_read)

    def totals(self) -> list[int]:
        """``[input, output, cache_creation, cache_read, usd_micros]``."""
        return [self.input, self.output, self.cache_creation, self.cache_read, self.usd_micros]

    def counters(self) -> dict[str, int]:
        return dict(zip(COUNTS, self.totals()))

    def amount(self, metric: str, counted: tuple[str, ...]) -> int:
        """Micro-dollars (``usd``) or the counted tokens (as ``_records.ScopeTotals.amount``)."""
        return self.usd_micros if metric == "usd" else self.usage().total(counted)

    def read_counts(self, table: Mapping[str, Any]) -> None:
        """The counts of a feature's own table (an orchestration's), leniently: what is not a count is 0."""
        for k in COUNTS:
            value = table.get(k)
            setattr(self, k, value if type(value) is int and 0 <= value <= MAX_COUNT else 0)
        models = table.get("models")
        if isinstance(models, dict):
            self.models = {
                str(m): {k: v for k, v in c.items() if k in COUNTS and type(v) is int and 0 <= v <= MAX_COUNT}
                for m, c in models.items()
                if isinstance(c, dict)
            }

    def _load_field(self, key: str, value: object, where: str) -> bool:
        """Read one of the tally's own fields; False when ``key`` is not one."""
        if key in COUNTS:
            setattr(self, key, _count(value, f"{where}.{key}"))
        elif key == "models":
            self.models = _per_model(value, f"{where}.models")
        else:
            return False
        return True

    def dump_counts(self, out: dict[str, Any]) -> None:
        for k in COUNTS:
            v = getattr(self, k)
            if v:
                out[k] = v
        if self.models:
            out["models"] = {m: dict(c) for m, c in self.models.items()}


class Scope(Tally, _Read):
    """``overall`` or one command: its counters since its last reset, its runs, and what it was told."""

    __slots__ = (
        "extra",
        "last_run",
        "plan",
        "recent",
        "runs",
        "since",
        "spent_at",
        "unpriced",
        "unpriced_told",
        "warned",
        "warned_limits",
    )
    _PLAIN: ClassVar[Mapping[str, type]] = {
        **dict.fromkeys((*COUNTS, "runs", "warned"), int),
        "last_run": datetime,
        "spent_at": datetime,
        "since": datetime,
    }

    def __init__(self, since: datetime | None = None) -> None:
        super().__init__()
        self.runs = 0
        self.last_run: datetime | None = None
        #: when it last spent (its buckets' newest minute): a reader need not open them to know it is idle
        self.spent_at: datetime | None = None
        self.since = since
        self.warned = 0  # the highest threshold of the token limit announced (70, 90, 100)
        self.warned_limits: dict[str, int] = {}  # the same for every other limit, by LimitStatus.key
        self.recent: list[list[int]] = []  # the totals of its last finished runs, oldest first
        self.unpriced: list[str] = []  # overall: models seen without a price
        self.unpriced_told: list[str] = []
        self.plan = PlanShare()  # what budgets._plan charged to it of the plan's windows
        self.extra: dict[str, Any] = {}

    def _field(self, key: str, value: object, where: str, problems: list[FieldError]) -> None:
        """Read one field of the table (FieldError when it is of the wrong kind; ``problems``: a part of it)."""
        if self._load_field(key, value, where):
            return
        at = f"{where}.{key}"
        if key == "runs":
            self.runs = _count(value, at)
        elif key in ("last_run", "spent_at"):
            setattr(self, key, _time(value, at))
        elif key == "since":
            self.since = _time(value, at)
        elif key == "warned":
            self.warned = _count(value, at)
        elif key == "warned_limits":
            self.warned_limits = {str(k): _count(v, f"{at}.{k}") for k, v in _table(value, at).items()}
        elif key == "recent":
            self.recent = recent_rows(value, at, problems)
        elif key == "unpriced":
            self.unpriced = _texts(value, at)
        elif key == "unpriced_told":
            self.unpriced_told = _texts(value, at)
        elif not self.plan.read(key, value, at, problems):
            self.extra[key] = value

    def dump(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        self.dump_counts(out)
        _put(out, "runs", self.runs or None)
        _put(out, "last_run", self.last_run)
        _put(out, "spent_at", self.spent_at)
        _put(out, "since", self.since)
        _put(out, "warned", self.warned or None)
        _put(out, "warned_limits", self.warned_limits)
        _put(out, "recent", self.recent)
        _put(out, "unpriced", self.unpriced)
        _put(out, "unpriced_told", self.unpriced_told)
        self.plan.dump_into(out)
        out.update(self.extra)
        return out

    def count_run(self, now: datetime) -> None:
        """One more run started now."""
        self.runs = min(self.runs + 1, MAX_COUNT)
        self.last_run = now
        if self.since is None:
            self.since = now

    def remember(self, run: Run) -> None:
        """Keep a finished run's totals in ``recent`` (the last :data:`RECENT_RUNS`)."""
        self.recent = [*self.recent[-(RECENT_RUNS - 1) :], run.totals()]

    def warned_at(self, key: str) -> int:
        """The highest threshold of the limit ``key`` (``LimitStatus.key``) already announced."""
        return self.warned if key == "tokens" else self.warned_limits.get(key, 0)

    def set_warned(self, key: str, level: int) -> None:
        if key == "tokens":
            self.warned = level
        elif level:
            self.warned_limits[key] = level
        else:
            self.warned_limits.pop(key, None)


def charged_in(charged: Mapping[str, tuple[int, float]], window: str, resets_at: int, /) -> float:
    """The percent ``charged`` holds of the window ``window`` that resets at ``resets_at`` (0 when
    none, or when what it holds was charged to an earlier one)."""
    mark = charged.get(window)
    return mark[1] if mark is not None and mark[0] == resets_at else 0.0


class PlanShare:
    """What :mod:`budgets._plan <budget_state.budgets._plan>` charged to a scope of the plan's windows
    (an estimate: each move of a window, split over the runs that spent tokens in it).

    ``charged``: per window, the reset of the window it was charged in (epoch seconds) and the
    percent of that window charged (the scope's ``quota``: ``{"five_hour": [resets_at, %]}``);
    ``runs``: a command's last runs (by prompt id), each with its share of the 5-hour window, the
    newest last (``quota_runs``); ``unattributed``: overall's, per window, the moves with no tokens
    counted here (``quota_unattributed``)."""

    __slots__ = ("charged", "runs", "unattributed")

    def __init__(self) -> None:
        self.charged: dict[str, tuple[int, float]] = {}
        self.runs: dict[str, float] = {}
        self.unattributed: dict[str, float] = {}

    def read(self, key: str, value: object, where: str, problems: list[FieldError]) -> bool:
        """Read one field of the scope's table, if it is one of these (False when it is not): an
        entry of the wrong kind is left out and named in ``problems``, the others are kept."""
        if key == "quota":
            self.charged = _each(value, where, problems, _mark)
        elif key == "quota_runs":
            self.runs = _each(value, where, problems, _share)
        elif key == "quota_unattributed":
            self.unattributed = _each(value, where, problems, _share)
        else:
            return False
        return True

    def dump_into(self, out: dict[str, Any]) -> None:
        """Its fields, as the scope's table keeps them (none when empty)."""
        if self.charged:
            out["quota"] = {name: list(mark) for name, mark in self.charged.items()}
        if self.runs:
            out["quota_runs"] = dict(self.runs)
        if self.unattributed:
            out["quota_unattributed"] = dict(self.unattributed)

    def charge(self, window: str, resets_at: int, move: float) -> None:
        """Add ``move`` (a percent) to what it was charged of the window ``window`` that resets at
        ``resets_at``; a window that reset since starts again from 0."""
        self.charged[window] = (resets_at, round(charged_in(self.charged, window, resets_at) + move, 4))

    def charge_unattributed(self, window: str, move: float) -> None:
        self.unattributed[window] = round(self.unattributed.get(window, 0.0) + move, 4)

    def note_run(self, prompt: str, share: float, keep: int) -> None:
        """The run of ``prompt`` took ``share`` of the 5-hour window so far: it is now the newest of
        ``runs``, which keeps the last ``keep``."""
        remember(self.runs, prompt, share, keep)


def recent_rows(value: object, where: str, problems: list[FieldError]) -> list[list[int]]:
    """A command's last runs' totals. A row a hand edit broke is left out and named; the others stay."""
    if isinstance(value, str):  # schema 2 kept "i,o,cc,cr,usd i,o,…" in the TOML ledger
        value = [item.split(",") for item in value.split()]
        value = [[int(v) if v.isdigit() else v for v in row] for row in value]
    if type(value) is not list:
        raise FieldError(where, "a list of runs' totals", value)
    if not value:
        return value
    if set(map(type, value)) == {list} and set(map(len, value)) == {len(COUNTS)}:
        flat = list(chain.from_iterable(value))
        if set(map(type, flat)) == {int} and min(flat) >= 0 and max(flat) <= MAX_COUNT:
            return value  # the common case, checked in a few passes of C (a status reads 200 of these)
    rows = []
    for n, r in enumerate(value):
        try:
            rows.append(_row(r, f"{where}[{n}]"))
        except FieldError as e:
            problems.append(e)
    return rows


#: a run's frontmatter budgets, as it started with them
_FRONT: Final = ("tokens", "usd_micros", "window", "quota_5h", "quota_7d")


class Run(Tally, _Read):
    """One command run the ledger file holds: open, or finished in the last minutes."""

    __slots__ = (
        "budget",
        "command",
        "ended",
        "extra",
        "file",
        "limit",
        "prompt",
        "session",
        "shares",
        "source",
        "started",
    )
    _PLAIN: ClassVar[Mapping[str, type]] = {**dict.fromkeys(COUNTS, int), "started": datetime, "ended": datetime}

    def __init__(self, prompt: str, command: str | None = None, session: str | None = None) -> None:
        super().__init__()
        self.prompt = prompt
        self.command = command
        self.session = session
        self.started: datetime | None = None
        self.ended: datetime | None = None
        self.source: str | None = None  # "api": recorded through record_usage; before 0.3, the limit's source
        self.file: str | None = None  # the command file it started from
        #: the frontmatter budgets it started with (``tokens``, ``usd_micros``, ``window``, ``quota_5h``, ``quota_7d``)
        self.budget: dict[str, int | float | str] = {}
        self.limit: int | None = None  # a run started before 0.3: its limit
        self.shares: dict[str, float] = {}  # its share of the plan's windows (``quota_5h``, ``quota_7d``), %
        self.extra: dict[str, Any] = {}

    @classmethod
    def load(cls, table: object, where: str, problems: list[FieldError]) -> Run:
        """Read a table written by :meth:`dump`; a field of the wrong kind is left out, and named in ``problems``."""
        t = _table(table, where)
        r = cls(_text(t.get("prompt"), f"{where}.prompt"))  # a run without its prompt id is no run: raised
        _read_fields(r, t, where, problems)
        return r

    def _field(self, key: str, value: object, where: str, problems: list[FieldError]) -> None:
        """Read one field of the table (FieldError when it is of the wrong kind; ``problems``: a part of it)."""
        if self._load_field(key, value, where):
            return
        at = f"{where}.{key}"
        if key == "prompt":
            return
        if key == "command":
            self.command = _text(value, at)
        elif key == "session":
            self.session = _text(value, at)
        elif key == "started":
            self.started = _time(value, at)
        elif key == "ended":
            self.ended = _time(value, at)
        elif key == "source":
            self.source = _text(value, at)
        elif key == "file":
            self.file = _text(value, at)
        elif key == "limit":
            self.limit = _count(value, at)
        elif key == "budget":
            self.budget = _front(value, at)
        elif key in ("quota_5h", "quota_7d"):
            self.shares[key] = _share(value, at)
        else:
            self.extra[key] = value

    def dump(self) -> dict[str, Any]:
        out: dict[str, Any] = {"prompt": self.prompt}
        _put(out, "command", self.command)
        _put(out, "session", self.session)
        _put(out, "started", self.started)
        _put(out, "ended", self.ended)
        _put(out, "source", self.source)
        self.dump_counts(out)
        _put(out, "budget", dict(self.budget))
        _put(out, "file", self.file)
        _put(out, "limit", self.limit)
        out.update(self.shares)
        out.update(self.extra)
        return out

    def as_log(self) -> dict[str, Any]:
        """The run as the run log keeps it (see _runlog)."""
        return self.dump()

    @property
    def open(self) -> bool:
        return self.ended is None

    def end(self, now: datetime) -> None:
        if self.ended is None:
            self.ended = now

    def set_budget(self, front: Mapping[str, int | float | str | None]) -> None:
        """The frontmatter budgets it starts with (what a legacy run kept as its limit goes)."""
        self.budget = {k: v for k, v in front.items() if k in _FRONT and v is not None}
        self.limit = None
        if self.source != "api":
            self.source = None

    def add_share(self, key: str, share: float) -> float:
        self.shares[key] = total = round(self.shares.get(key, 0.0) + share, 4)
        return total


def _front(value: object, where: str) -> dict[str, int | float | str]:
    t = _table(value, where)
    out: dict[str, int | float | str] = {}
    for key, v in t.items():
        at = f"{where}.{key}"
        if key in ("tokens", "usd_micros"):
            out[key] = _count(v, at)
        elif key == "window":
            out[key] = _text(v, at)
        elif key in ("quota_5h", "quota_7d"):
            out[key] = _share(v, at)
    return out


MAX_LINKS: Final = 64  # tool calls, follow-up turns and subagents remembered per session


def remember(table: dict[str, _V], key: str, value: _V, keep: int = MAX_LINKS) -> None:
    """Set ``key`` as the newest of ``table``, forgetting the oldest beyond ``keep``."""
    table.pop(key, None)
    table[key] = value
    while len(table) > keep:
        del table[next(iter(table))]


class Cursor(_Read):
    """Where the reading of one transcript file stands: ``_accounting.read_new`` moves it on (the
    rules it follows are that module's); a session keeps one per file it reads (``Session.files``)."""

    __slots__ = ("after", "extra", "inherited", "inode", "last_ts", "offset", "prompt", "recent", "replay", "skipped")
    _PLAIN: ClassVar[Mapping[str, type]] = {"offset": int, "skipped": int}

    def __init__(self, offset: int = 0) -> None:
        self.offset = offset  # bytes counted: up to the end of the last complete line read
        self.inode: int | None = None  # the file's when last read: another one means it was replaced
        self.prompt: str | None = None  # the prompt id of the last user record: what follows is its
        self.last_ts: str | None = None  # the newest counted response's time, as the transcript writes it
        #: the last responses' largest counts (four, and micro-dollars) by ``<message id>|<request id>``:
        #: a repeated line adds only what grew (oldest first, the last RECENT_KEYS kept)
        self.recent: dict[str, list[int]] = {}
        self.replay: str | None = None  # a fork's copy of its parent, skipped up to this tool call's result
        self.after: str | None = None  # a session first seen at its prompt: older responses are copied history
        self.inherited = False  # the file held spend from before it was followed (Claude Code's totals include it)
        self.skipped = 0  # lines that were not JSON or too long
        self.extra: dict[str, Any] = {}

    @classmethod
    def load(cls, table: object, where: str, problems: list[FieldError]) -> Cursor:
        """As ``_Read.load``, but where the reading stands (``offset``, ``inode``) is no field to leave
        out: a cursor without it would count its file again from the start. That raises, and the
        session's ``files`` go whole (its next hook starts at each file's end, as for a new session)."""
        found: list[FieldError] = []
        cursor = super().load(table, where, found)
        for problem in found:
            if problem.where in (f"{where}.offset", f"{where}.inode"):
                raise problem
        problems.extend(found)
        return cursor

    def _field(self, key: str, value: object, where: str, problems: list[FieldError]) -> None:
        at = f"{where}.{key}"
        if key in ("offset", "skipped"):
            setattr(self, key, _count(value, at))
        elif key == "inode":  # a file system's number: it may pass a count's 2**63 - 1
            if type(value) is not int or value < 0:
                raise FieldError(at, "a file's inode number", value)
            self.inode = value
        elif key in ("prompt", "last_ts", "replay", "after"):
            setattr(self, key, _text(value, at))
        elif key == "inherited":
            self.inherited = _flag(value, at)
        elif key == "recent":
            self.recent = _seen_responses(value, at, problems)
        else:
            self.extra[key] = value

    def dump(self) -> dict[str, Any]:
        out: dict[str, Any] = {"offset": self.offset}
        _put(out, "inode", self.inode)
        _put(out, "prompt", self.prompt)
        _put(out, "last_ts", self.last_ts)
        _put(out, "replay", self.replay)
        _put(out, "after", self.after)
        _put(out, "inherited", True if self.inherited else None)
        _put(out, "skipped", self.skipped or None)
        _put(out, "recent", [f"{k} {' '.join(map(str, v))}" for k, v in self.recent.items()])
        out.update(self.extra)
        return out


def _seen_responses(value: object, where: str, problems: list[FieldError]) -> dict[str, list[int]]:
    """A cursor's ``recent``: ``"<key> <input> <output> <cache_creation> <cache_read> [<usd_micros>]"``
    per response (no price before dollars were counted). A broken item is left out and named."""
    out: dict[str, list[int]] = {}
    for n, item in enumerate(_texts(value, where)):
        key, *numbers = item.split(" ")
        if len(numbers) in (4, 5) and all(x.isdigit() for x in numbers):
            out[key] = [int(x) for x in numbers]
        else:
            problems.append(FieldError(f"{where}[{n}]", "a response's key and its four or five counts", item))
    return out


class Session(_Read):
    """One Claude Code session: its read cursors, its open run, and the links from its tool calls,
    follow-up turns and subagents to the runs they belong to."""

    __slots__ = (
        "alias",
        "counted",
        "ended",
        "extra",
        "files",
        "handled",
        "last",
        "mod_agents",
        "mod_seq",
        "orchestration",
        "peak",
        "reconciled_runs",
        "run",
        "run_extra",
        "seen",
        "tools",
        "unlogged",
        "unlogged_run",
    )
    _PLAIN: ClassVar[Mapping[str, type]] = {"seen": datetime}

    def __init__(self, seen: datetime | None = None) -> None:
        self.files: dict[str, Cursor] = {}  # transcript path -> where its reading stands
        self.seen = seen
        self.ended = False  # its SessionEnd came
        self.run: str | None = None  # the prompt id of its open run
        self.last: str | None = None  # its latest typed prompt
        self.handled: list[str] = []  # the prompts its prompt hook saw through, the latest last
        self.tools: dict[str, str] = {}  # tool call id -> the run (prompt id) it belongs to
        self.alias: dict[str, str] = {}  # follow-up turn's prompt id -> its cause's
        self.counted: dict[str, list[int]] = {}  # per model, what its transcripts gave (five counts)
        self.peak = (0, 0)  # its largest response: (tokens, micro-dollars)
        self.unlogged = [0] * len(COUNTS)  # what reconciling with Claude Code's totals added
        self.unlogged_run: str | None = None  # the run that extra was charged to
        self.run_extra: list[int] | None = None  # what of it that run holds, if not all of it
        self.reconciled_runs: list[str] = []  # the runs an earlier reconciliation saw
        self.mod_agents: dict[str, str] = {}  # a mod's subagent id -> the run it belongs to
        self.mod_seq: tuple[str, int] | None = None  # the last mod record charged: (instance, n)
        self.orchestration: str | None = None
        self.extra: dict[str, Any] = {}

    def _field(self, key: str, value: object, where: str, problems: list[FieldError]) -> None:
        """Read one field of the table (FieldError when it is of the wrong kind; ``problems``: a part of it)."""
        at = f"{where}.{key}"
        if key == "files":  # whole or not at all (see Cursor.load)
            found: list[FieldError] = []
            self.files = {str(k): Cursor.load(v, f"{at}.{k}", found) for k, v in _table(value, at).items()}
            problems.extend(found)
        elif key == "seen":
            self.seen = _time(value, at)
        elif key == "ended":
            self.ended = _flag(value, at)
        elif key == "run":
            self.run = _text(value, at)
        elif key == "last":
            self.last = _text(value, at)
        elif key == "handled":
            self.handled = _texts(value, at)
        elif key == "tools":
            self.tools = _links(value, at)
        elif key == "alias":
            self.alias = _links(value, at)
        elif key == "counted":
            self.counted = {str(m): _counted(v, f"{at}.{m}") for m, v in _table(value, at).items()}
        elif key == "peak":
            a, b = _row(value, at, 2)
            self.peak = (a, b)
        elif key == "unlogged":
            self.unlogged = _counted(value, at)
        elif key == "unlogged_run":
            self.unlogged_run = _text(value, at)
        elif key == "run_extra":
            self.run_extra = _counted(value, at)
        elif key == "reconciled_runs":
            self.reconciled_runs = _texts(value, at)
        elif key == "mod_agents":
            self.mod_agents = _links(value, at)
        elif key == "mod_seq":
            if not (isinstance(value, list) and len(value) == 2 and isinstance(value[0], str)):
                raise FieldError(at, "[mod instance, number]", value)
            self.mod_seq = (value[0], _count(value[1], at))
        elif key == "orchestration":
            self.orchestration = _text(value, at)
        elif key not in _SESSION_LEGACY:
            self.extra[key] = value

    def dump(self) -> dict[str, Any]:
        out: dict[str, Any] = {"files": {k: v.dump() for k, v in self.files.items()}}
        _put(out, "seen", self.seen)
        _put(out, "ended", True if self.ended else None)
        _put(out, "run", self.run)
        _put(out, "last", self.last)
        _put(out, "handled", self.handled)
        _put(out, "tools", self.tools)
        _put(out, "alias", self.alias)
        _put(out, "counted", {m: list(v) for m, v in self.counted.items()})
        _put(out, "peak", list(self.peak) if any(self.peak) else None)
        _put(out, "unlogged", list(self.unlogged) if any(self.unlogged) else None)
        _put(out, "unlogged_run", self.unlogged_run)
        _put(out, "run_extra", self.run_extra)
        _put(out, "reconciled_runs", self.reconciled_runs)
        _put(out, "mod_agents", self.mod_agents)
        _put(out, "mod_seq", list(self.mod_seq) if self.mod_seq else None)
        _put(out, "orchestration", self.orchestration)
        out.update(self.extra)
        return out

    def run_share(self, prompt: str) -> list[int]:
        """Of what reconciling added (``unlogged``), what the run ``prompt`` holds."""
        if prompt != self.unlogged_run:
            return [0] * len(COUNTS)
        return list(self.unlogged if self.run_extra is None else self.run_extra)

    def hold(self, prompt: str, share: list[int]) -> None:
        """The run ``prompt`` now holds ``share`` of ``unlogged`` (set that first)."""
        if any(share):
            self.unlogged_run = prompt
            self.run_extra = None if share == self.unlogged else share
        elif self.unlogged_run == prompt:
            self.unlogged_run = self.run_extra = None

    def owner(self, prompt: str) -> str:
        """The prompt whose run ``prompt`` belongs to: itself, or, for a follow-up turn, its cause."""
        return self.alias.get(prompt, prompt)

    def mark_handled(self, prompt: str, *, typed: bool) -> None:
        if typed:
            self.last = prompt
        self.handled = [*[p for p in self.handled if p != prompt][-7:], prompt]

    def note_peak(self, usage: Mapping[str, int]) -> None:
        tokens = sum(usage.get(c, 0) for c in COUNTS[:4])
        micros = usage.get("usd_micros", 0)
        if tokens > self.peak[0] or micros > self.peak[1]:
            self.peak = (max(tokens, self.peak[0]), max(micros, self.peak[1]))

    def add_counted(self, usage: Mapping[str, int], model: str | None) -> None:
        """What its transcripts gave, per model: what Claude Code's own totals are checked against."""
        key = model or "?"
        values = self.counted.get(key, [0] * len(COUNTS))
        self.counted[key] = [add_count(v, usage.get(c, 0), False) for v, c in zip(values, COUNTS)]


#: what sessions of ledgers before 0.2 kept of their running limit: dropped when read
_SESSION_LEGACY: Final = frozenset(("limit", "source", "file"))


def _counted(value: object, where: str) -> list[int]:
    """Five counts (four in ledgers before dollars were counted)."""
    if isinstance(value, list) and len(value) == len(COUNTS) - 1:
        value = [*value, 0]
    return _row(value, where)


@runtime_checkable
class FeatureValue(Protocol):
    """A feature's own table as the feature's typed value (``_records.feature_value``): the state
    keeps it and writes back what its ``dump`` gives."""

    def dump(self) -> dict[str, Any]: ...


_PARTS: Final = ("commands", "sessions", "minutes", "quarters")


def bucket_line(value: object, where: str) -> str:
    """A scope's buckets: one line of text (its content is _windows' to read)."""
    if isinstance(value, str) and "\n" not in value and "'" not in value:
        return value.strip()
    raise FieldError(where, "one line of buckets", value)


class LedgerState:
    """The whole state of one ledger, as a transaction changes it (see the module).

    ``commands``, ``sessions``, ``minutes``, ``quarters``: mappings from a key to its entry, read
    when asked for (a ``_store.Parts``), or whole (a ledger being migrated, a test's own state).
    """

    __slots__ = ("commands", "created", "minutes", "overall", "quarters", "runs", "sessions", "tables", "version")

    def __init__(self, now: datetime | None = None, *, version: int = 3) -> None:
        self.version = version
        self.created = now
        self.overall = Scope(since=now)
        self.runs: list[Run] = []
        self.commands: MutableMapping[str, Scope] = {}
        self.sessions: MutableMapping[str, Session] = {}
        self.minutes: MutableMapping[str, str] = {}
        self.quarters: MutableMapping[str, str] = {}
        #: the tables features own (``orchestrations``, ``team``, ``quota``) and one-line notices
        #: (``config_warned``): kept as they were read, the feature's to validate
        self.tables: dict[str, Any] = {}

    # --- the ledger file ----------------------------------------------------------------------

    @classmethod
    def load(
        cls, doc: Mapping[str, Any], problems: list[FieldError], *, where: str = "", whole: bool = False
    ) -> LedgerState:
        """The ledger file's document. Schema 3 keeps its parts beside it (the ledger adds them);
        ``whole``: a document that holds them too (an older ledger, migrated forward). A field of
        the wrong kind is left out (an entry without which nothing else reads: the entry) and named
        in ``problems``."""
        state = cls(version=_count(doc.get("schema_version"), f"{where}schema_version"))

        def each(value: object, at: str) -> list[tuple[str, object]]:
            try:
                return [(str(k), v) for k, v in _table(value, at).items()]
            except FieldError as e:
                problems.append(e)
                return []

        for key, value in doc.items():
            at = f"{where}{key}"
            try:
                if key == "schema_version":
                    continue
                if key == "created":
                    state.created = _time(value, at)
                elif key == "overall":
                    state.overall = Scope.load(value, at, problems)
                elif key == "runs":
                    if not isinstance(value, list):
                        raise FieldError(at, "a list of runs", value)
                    for n, r in enumerate(value):
                        try:
                            state.runs.append(Run.load(r, f"{at}[{n}]", problems))
                        except FieldError as e:
                            problems.append(e)
                elif key in _PARTS:
                    if not whole:
                        raise FieldError(at, f"nothing: schema 3 keeps {key} in files of their own", value)
                    for k, v in each(value, at):
                        try:
                            if key == "commands":
                                state.commands[k] = Scope.load(v, f"{at}.{k}", problems)
                            elif key == "sessions":
                                state.sessions[k] = Session.load(v, f"{at}.{k}", problems)
                            else:
                                state.buckets(key)[k] = bucket_line(v, f"{at}.{k}")
                        except FieldError as e:
                            problems.append(e)
                else:
                    state.tables[key] = value
            except FieldError as e:
                problems.append(e)
        return state

    def dump(self) -> dict[str, Any]:
        """The ledger file's document (its parts are written by the ledger)."""
        out: dict[str, Any] = {"schema_version": self.version}
        _put(out, "created", self.created)
        out["overall"] = self.overall.dump()
        out["runs"] = [r.dump() for r in self.runs]
        for key, value in self.tables.items():
            if isinstance(value, FeatureValue):
                out[key] = value.dump()
            elif value is not None:
                out[key] = value
        return out

    # --- reading ------------------------------------------------------------------------------

    def scope(self, name: str) -> Scope | None:
        """``overall`` or a command's scope; None for a command with no counters."""
        return self.overall if name == "overall" else self.commands.get(name)

    def command(self, name: str) -> Scope:
        """A command's scope, made when it has none."""
        found = self.commands.get(name)
        if found is None:
            found = self.commands[name] = Scope()
        return found

    def run(self, prompt: str | None) -> Run | None:
        """The run of ``prompt`` the ledger file holds."""
        if prompt is None:
            return None
        for r in self.runs:
            if r.prompt == prompt:
                return r
        return None

    def runs_of(self, session: str) -> list[Run]:
        return [r for r in self.runs if r.session == session]

    def session(self, sid: str) -> Session | None:
        return self.sessions.get(sid)

    def buckets(self, kind: str) -> MutableMapping[str, str]:
        """A bucket table: ``minutes`` or ``quarters``."""
        if kind == "minutes":
            return self.minutes
        if kind == "quarters":
            return self.quarters
        raise ValueError(f"{kind} is not a bucket table")
