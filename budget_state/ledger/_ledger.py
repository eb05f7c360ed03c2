"""The shared ledger: a file-locked TOML state, changed only by read–modify–write under the lock.

Layout (schema 3) — see docs/ledger.md for the documented form. The ledger file::

    schema_version = 3
    [overall]                 input, output, cache_creation, cache_read, usd_micros, since, warned, [overall.models.<m>]
    [[runs]]                  open and recently finished runs: prompt, command, session, started, ended, tokens
    [orchestrations.<id>]     an orchestration's scope (orchestrator), [team] the team's lease, [quota] plan marks

and beside it, in ``<ledger stem>.d/``, one small file per command (its ``[commands."/name"]`` table:
the same counters + runs, last_run, recent), per session (read cursors and links) and per scope's
time buckets (see :mod:`._store`). A hook reads the ledger file and the few parts its event needs,
and writes back only what changed, so its cost does not grow with the number of commands,
sessions or days of history. Finished runs leave the ledger file in batches for the run log
beside it (``<ledger>.runs.jsonl``, see _runlog).

Older ledgers are migrated forward on their first write by the named steps of :data:`MIGRATIONS`
(schema 1: runs below a history marker; schema 2: one file with the bucket lines below a marker),
keeping every total.

Every file is replaced atomically; a change that spans several files is committed by a journal
(see :mod:`._store`), so a writer killed at any point leaves the previous state or the new one,
never a part, never a response counted twice. The ledger keeps its mode (a private 0600 or a shared
0664 ledger stays so); a new one is 0644 under the umask, its part folder 0700.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from .._errors import LedgerCorrupt, LedgerError
from .._model import _RUN_FIELDS, MAX_COUNT, RECENT_RUNS, count_value, recent_runs, run_totals
from .._paths import lock_path
from .._private import private_folder
from .._toml import loads
from . import _store
from ._lock import LedgerLock

__all__ = ["Ledger", "LedgerCorrupt", "LedgerError"]

SCHEMA_VERSION = 3
HOT_RUNS = 20  # finished runs kept in the ledger file, besides open and just-finished ones
HOT_RUNS_MAX = 50  # more than this many and the older ones move to the run log, as one batch
RECENT = timedelta(minutes=10)  # a run that ended this recently may still get late usage: stays
# Schema 1 kept older runs below this line (parsed only when a batch moved there): read for migration.
COLD_MARKER = "# ---- history: older runs, rewritten only when a batch of runs moves here ----\n"
MAX_SESSIONS = 100
SESSION_IDLE = timedelta(days=7)
ENDED_SESSION_KEEP = timedelta(minutes=10)

State = dict[str, Any]
_BUCKET_TABLES = ("minutes", "quarters")
# Schema 2 kept the bucket tables below this line of the one file (a table header, then one
# ``"<scope>" = '<buckets>'`` line per scope): read for migration, never written.
BUCKETS_MARKER = (
    "# ---- time buckets per scope: <epoch minute>:<input>,<output>,<cache_creation>,<cache_read>,<usd_micros> ----\n"
)


def parts_folder(path: Path, /) -> Path:
    """The folder of the ledger's parts, beside it (see _store)."""
    return _store.folder_of(path)


def new_state(now: datetime) -> State:
    return {"schema_version": SCHEMA_VERSION, "created": now, "overall": {"since": now}, "commands": {}, "runs": []}


TIME_OFFSET_ENV = "CLAUDE_BUDGET_TIME_OFFSET"


def utcnow() -> datetime:
    """Now, to the second. ``CLAUDE_BUDGET_TIME_OFFSET`` (seconds, may be negative) moves this clock,
    for tests and rehearsals of windows: it is how a test sees an hour pass (README "Testing")."""
    now = datetime.now(timezone.utc).replace(microsecond=0)
    offset = os.environ.get(TIME_OFFSET_ENV)
    if offset:
        try:
            now += timedelta(seconds=int(offset))
        except (ValueError, OverflowError):
            pass
    return now


class Ledger:
    """The ledger at ``path`` and its parts; ``transaction()`` for changes, ``read()`` for a snapshot."""

    def __init__(self, path: Path, /, *, timeout: float = 5.0, own_process: bool = False) -> None:
        self.path = path
        self.lock_path = lock_path(path)
        self.parts = _store.folder_of(path)
        self.timeout = timeout
        self.own_process = own_process  # see LedgerLock
        #: minute buckets kept at least this long: the longest rolling window configured (a call: it
        #: reads the config's keys, which is needed only once buckets older than a day are there)
        self.minutes_kept: Callable[[], int] = lambda: 0
        #: set by transaction() when it found the ledger (or a part of it) corrupt and moved it aside
        self.recovered: LedgerCorrupt | None = None

    def read(self, *, history: bool = False) -> State:
        """The state as last committed (no lock needed: every file is replaced whole, and a
        journal a killed writer left is read through). Missing -> empty. Parts are read when used.

        ``history`` is accepted for callers of schema 1 and ignored: history is in the run log now.
        """
        self._refuse_symlink()
        journal = self._journal()
        raw = journal.pop("ledger") if journal is not None and "ledger" in journal else self._read_bytes()
        if raw is None:
            return self._with_parts(new_state(utcnow()), journal)
        self._refuse_foreign(raw)
        try:
            state = self._check(_parse(raw.decode("utf-8").partition(COLD_MARKER)[0]))
        except (ValueError, UnicodeDecodeError) as e:
            raise LedgerCorrupt(
                f"the ledger {self.path} is not valid TOML ({e}) — the next hook moves it aside and starts a "
                "new one; or run: claude-budget reset --all",
                path=self.path,
            ) from None
        return self._with_parts(state, journal) if state["schema_version"] >= 3 else state

    def _journal(self) -> dict[str, bytes | None] | None:
        if not os.path.isdir(self.parts):
            return None
        private_folder(self.parts, what=f"the parts of the ledger {self.path}")
        return _store.read_journal(self.parts)

    def _with_parts(self, state: State, overlay: dict[str, bytes | None] | None) -> State:
        for kind in _store.KINDS:
            state[kind] = _store.Parts(self.parts, kind, overlay)
        return state

    @contextmanager
    def transaction(self) -> Iterator[State]:
        """Lock, re-read, let the caller change the state, write back what changed, as one commit."""
        self._refuse_symlink()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise LedgerError(
                f"cannot create the ledger folder {self.path.parent}: {e.strerror}", path=self.path
            ) from None
        private_folder(self.path.parent, what=f"the ledger {self.path}")  # before the lock file is made in it
        with LedgerLock(self.lock_path, timeout=self.timeout, own_process=self.own_process):
            if os.path.isdir(self.parts):
                private_folder(self.parts, what=f"the parts of the ledger {self.path}")
                _store.replay(self.path)  # what a writer killed after its commit did not apply
            raw = self._read_bytes()
            state, old, main_before = self._read_locked(raw)
            yield state
            self._commit(state, old, main_before)

    def _commit(self, state: State, old: State | None, main_before: str | None) -> None:
        now = utcnow()
        moved = []
        if old is not None:
            for version, _, step in MIGRATIONS:
                if old["from_version"] <= version:
                    moved += step(state, old, now)
        moved += compact(state, now, minutes_kept=self.minutes_kept)
        changes: list[tuple[str, bytes | None]] = []
        for kind in _store.KINDS:
            table = state.get(kind)
            if isinstance(table, _store.Parts):
                changes += table.changes()
                self._note_bad(table)
            else:  # a ledger of one file being split, or a table a reset replaced whole
                changes += _store.all_entries(kind, table if isinstance(table, dict) else {}, self.parts)
        main = {k: v for k, v in state.items() if k not in _store.KINDS}
        main["schema_version"] = SCHEMA_VERSION
        import tomli_w

        text = tomli_w.dumps(main)
        if text != main_before:
            changes.insert(0, ("ledger", text.encode("utf-8")))
        if moved:
            # The log first: killed between the two, a run is in both (the log's readers keep
            # one per prompt), never in neither.
            from ._runlog import append_runs

            append_runs(self.path, moved)
        try:
            _store.commit(self.path, changes)
        except OSError as e:
            raise LedgerError(
                f"cannot write the ledger {self.path}: {e.strerror} — check that the folder is writable, "
                "or point CLAUDE_BUDGET_STATE at a writable place",
                path=self.path,
            ) from None

    def _note_bad(self, parts: _store.Parts) -> None:
        """A part file that could not be read was left out (its entry starts again): kept aside, told once."""
        for bad in parts.bad:
            try:
                moved = self._corrupt_name(bad.path)
                os.replace(bad.path, moved)
            except OSError:
                continue
            self.recovered = LedgerCorrupt(
                f"a part of the ledger was corrupt ({bad}); it was moved to {moved} and started again",
                path=bad.path,
                moved_to=moved,
            )

    def _read_bytes(self) -> bytes | None:
        """The ledger file's bytes, or None when there is no ledger yet.

        Read only when it and its folder are the user's own (checked on the open descriptor, not
        following a link): a ledger another user could write is never trusted.
        """
        what = f"the ledger {self.path}"
        private_folder(self.path.parent, what=what)
        return _store.read_private(self.path, what=what)

    def _refuse_foreign(self, raw: bytes) -> None:
        """A file that is not empty and does not look like a ledger is left alone: never parsed as
        one, moved aside or overwritten (``ledger =`` or ``CLAUDE_BUDGET_STATE`` naming the wrong file)."""
        if raw.strip() and b"schema_version" not in raw[:65536]:
            raise LedgerError(
                f"{self.path} does not look like a claude-budget ledger (no schema_version), so it is left as it is "
                "— point ledger in .claude/budget.toml (or CLAUDE_BUDGET_STATE) at another file",
                path=self.path,
            )

    def _read_locked(self, raw: bytes | None) -> tuple[State, State | None, str | None]:
        """The state to change, what an older ledger needs migrated (None: nothing), and the ledger
        file's text as this version would write it (None: it must be written)."""
        if raw is None:
            return self._with_parts(new_state(utcnow()), None), None, None
        self._refuse_foreign(raw)
        try:
            text = raw.decode("utf-8")
            hot, _, cold = text.partition(COLD_MARKER)
            state = self._check(_parse(hot))
        except (ValueError, UnicodeDecodeError) as e:
            moved = self._move_aside()
            self.recovered = LedgerCorrupt(
                f"the ledger {self.path} was corrupt ({str(e)[:200]}); it was moved to {moved} and a new one started",
                path=self.path,
                moved_to=moved,
            )
            return self._with_parts(new_state(utcnow()), None), None, None
        version = state["schema_version"]
        if version >= SCHEMA_VERSION:
            return self._with_parts(state, None), None, text
        old = self._schema1_history(cold, state) if version == 1 else {}
        old["from_version"] = version
        return state, old, None  # its tables are whole here: the commit writes every part

    def _schema1_history(self, cold: str, state: State) -> State:
        """A schema-1 ledger's runs and day sums (below the marker, or in the one document), for migration.

        A corrupt history part is kept aside and left out: the totals above it are whole.
        """
        old: State = {k: state.pop(k) for k in ("history", "rollup") if k in state}
        if not cold.strip():
            return old
        try:
            parsed = loads(cold)
        except ValueError as e:
            kept = self._keep_corrupt(cold)
            self.recovered = LedgerCorrupt(
                f"the history part of the ledger {self.path} was corrupt ({str(e)[:200]}); it was saved to "
                f"{kept} and left out (totals are unaffected)",
                path=self.path,
                moved_to=kept,
            )
            return old
        for key in ("history", "rollup"):
            if key in parsed:
                old[key] = parsed[key]
        return old

    def _check(self, state: State) -> State:
        """The ledger file's document as a state: its version known, its tables tables (or ValueError)."""
        version = state.get("schema_version")
        if not isinstance(version, int) or isinstance(version, bool):
            raise ValueError("schema_version is missing or not a number")
        if version > SCHEMA_VERSION:
            raise LedgerError(
                f"the ledger {self.path} has schema_version {version}, written by a newer claude-budget — "
                "upgrade claude-budget (pip install -U claude-budget)",
                path=self.path,
            )
        checks = (
            ("overall", dict),
            ("commands", dict),
            ("runs", list),
            ("sessions", dict),
            ("orchestrations", dict),
            ("team", dict),
            ("quota", dict),
        )
        for key, kind in checks:
            if key in state and not isinstance(state[key], kind):
                raise ValueError(f"{key} is a {type(state[key]).__name__}, expected a {kind.__name__}")
        if version >= 3 and any(k in state for k in _store.KINDS):
            raise ValueError(f"schema {version} keeps {', '.join(_store.KINDS)} in their own files, not in the ledger")
        state.setdefault("overall", {})
        state.setdefault("commands", {})
        state.setdefault("runs", [])
        return state

    def _corrupt_name(self, path: Path | None = None) -> Path:
        path = path or self.path
        stamp = utcnow().strftime("%Y%m%dT%H%M%SZ")
        target = path.with_name(f"{path.stem}.corrupt-{stamp}{path.suffix}")
        n = 1
        while target.exists():
            n += 1
            target = path.with_name(f"{path.stem}.corrupt-{stamp}-{n}{path.suffix}")
        return target

    def _move_aside(self) -> Path:
        target = self._corrupt_name()
        try:
            os.replace(self.path, target)
        except OSError as e:
            raise LedgerError(
                f"the ledger {self.path} is corrupt and could not be moved aside ({e.strerror}) — "
                "move or delete it by hand",
                path=self.path,
            ) from None
        return target

    def _keep_corrupt(self, text: str) -> Path:
        target = self._corrupt_name()
        try:
            target.write_text(text, encoding="utf-8")
        except OSError as e:
            raise LedgerError(f"cannot save the corrupt part of {self.path} to {target}: {e.strerror}") from None
        return target

    def _refuse_symlink(self) -> None:
        if os.path.islink(self.path):
            raise LedgerError(
                f"the ledger {self.path} is a symbolic link — point CLAUDE_BUDGET_STATE at the real file instead "
                "(a link would be replaced by the first write)",
                path=self.path,
            )


def _add(table: dict[str, Any], usage: dict[str, int], correction: bool) -> None:
    for k, v in usage.items():
        # A correction may take back (a negative delta); a count only adds what is a real count.
        delta = v if correction and isinstance(v, int) and -MAX_COUNT <= v <= MAX_COUNT else count_value(v)
        table[k] = max(0, min(count_value(table.get(k, 0)) + delta, MAX_COUNT))


def subtable(parent: dict[str, Any], key: str, /) -> dict[str, Any]:
    """``parent[key]`` as a table, replacing whatever a hand edit left there that is not one."""
    value = parent.get(key)
    if not isinstance(value, dict):
        value = parent[key] = {}
    return value


def add_usage(table: dict[str, Any], usage: dict[str, int], model: str | None, *, correction: bool = False) -> None:
    """Add token counts (by category) to a ledger table and to its per-model breakdown.

    ``correction``: the counts may be negative (an earlier estimate taken back); no total goes below 0.
    """
    _add(table, usage, correction)
    if model:
        _add(subtable(subtable(table, "models"), model), usage, correction)


def compact(state: State, now: datetime, *, minutes_kept: Callable[[], int] | None = None) -> list[dict[str, Any]]:
    """Keep the state bounded: finished runs leave in batches (returned, for the run log), buckets
    no window needs any more are dropped from the scopes this change touched, and sessions idle too
    long are forgotten. Each command keeps its last runs' totals (``recent``).

    Proportional to the change, not to the history: only entries read by this transaction are
    looked at, and the session files are swept (by their times, unread) only when a session is new.
    """
    from ._windows import MINUTES_KEPT, trim_buckets

    runs: list[dict[str, Any]] = [r for r in state.get("runs", []) if isinstance(r, dict)]
    sessions = state.get("sessions")
    looked_at = sessions.loaded() if isinstance(sessions, _store.Parts) else list(sessions or ())
    open_prompts = {s.get("run") for k in looked_at if isinstance(s := sessions.get(k), dict)} if sessions else set()

    def movable(r: dict[str, Any]) -> bool:
        ended = r.get("ended")
        if r.get("prompt") in open_prompts or not isinstance(ended, datetime):
            return False
        # Runs recorded through the API get no late usage; a hook's may, for a few minutes.
        return r.get("source") == "api" or now - ended > RECENT

    candidates = [r for r in runs if movable(r)]
    if len(candidates) <= HOT_RUNS_MAX:
        finished = [r for r in runs if r.get("prompt") not in open_prompts and isinstance(r.get("ended"), datetime)]
        if len(finished) > 2 * HOT_RUNS_MAX:  # a burst of short runs: bound the hot part anyway
            candidates = finished
    moved: list[dict[str, Any]] = []
    if len(candidates) > HOT_RUNS_MAX:
        moving = {id(r) for r in candidates[: len(candidates) - HOT_RUNS]}
        moved = [r for r in runs if id(r) in moving]
        runs = [r for r in runs if id(r) not in moving]
        for r in moved:
            remember_run(state, r)
    state["runs"] = runs
    trim_buckets(state, now, minutes_kept=lambda: max(MINUTES_KEPT, minutes_kept() if minutes_kept else 0))
    if isinstance(sessions, dict):
        for sid in looked_at:
            s = sessions.get(sid)
            seen = s.get("seen") if isinstance(s, dict) else None
            if (
                not isinstance(seen, datetime)
                or now - seen > SESSION_IDLE
                or (isinstance(s, dict) and s.get("ended") and now - seen > ENDED_SESSION_KEEP)
            ):
                sessions.pop(sid, None)
        if isinstance(sessions, _store.Parts):
            if sessions.new_keys():  # a session starts: forget those idle too long, and the oldest beyond the cap
                sessions.expire(idle=SESSION_IDLE.total_seconds(), keep=MAX_SESSIONS, now=now.timestamp())
        elif len(sessions) > MAX_SESSIONS:
            for sid in sorted(sessions, key=lambda k: sessions[k]["seen"])[: len(sessions) - MAX_SESSIONS]:
                del sessions[sid]
    return moved


def remember_run(state: State, run: dict[str, Any], /) -> None:
    """Keep a finished run's totals in its command's ``recent`` (the last :data:`RECENT_RUNS`)."""
    command = run.get("command")
    if not isinstance(command, str):
        return
    table = state.get("commands", {}).get(command)
    if not isinstance(table, dict):
        return
    kept = recent_runs(table)
    # An array of arrays in the command's JSON part (schema 2 kept one string in the TOML ledger,
    # which recent_runs still reads).
    table["recent"] = [*kept[-(RECENT_RUNS - 1) :], run_totals(run)]


def _migrate(state: State, old: State, now: datetime) -> list[dict[str, Any]]:
    """Schema 1 -> 2: history runs go to the run log; runs and day sums recent enough for a window
    seed the buckets, in the quarter hour (and minute) each ended — or each day began — in.

    Every cumulative total stays as it was: they are the tables above, untouched.
    """
    from ._windows import MINUTES_KEPT, QUARTERS_KEPT, Buckets, minute_of, quarter_of

    history = [r for r in old.get("history", []) if isinstance(r, dict)] if isinstance(old.get("history"), list) else []
    for r in history:
        remember_run(state, r)
    placed: list[tuple[str, int, dict[str, int]]] = []
    for r in [*history, *(r for r in state.get("runs", []) if isinstance(r, dict))]:
        when = r.get("ended") or r.get("started")
        if isinstance(when, datetime) and isinstance(r.get("command"), str):
            usage = dict(zip(_RUN_FIELDS, run_totals(r)))
            placed += [("overall", minute_of(when), usage), (str(r["command"]), minute_of(when), usage)]
    rollup = old.get("rollup")
    for cmd, days in rollup.items() if isinstance(rollup, dict) else ():
        for day, sums in days.items() if isinstance(days, dict) else ():
            try:
                start = datetime.strptime(str(day), "%Y-%m-%d").replace(tzinfo=now.tzinfo)
            except ValueError:
                continue
            if isinstance(sums, dict):
                usage = {k: count_value(sums.get(k)) for k in _RUN_FIELDS}
                placed += [("overall", minute_of(start), usage), (str(cmd), minute_of(start), usage)]
    nowm = minute_of(now)
    tables: dict[str, dict[str, Buckets]] = {"minutes": {}, "quarters": {}}
    for scope, minute, usage in placed:
        if minute > nowm:
            continue
        if minute >= nowm - MINUTES_KEPT:
            tables["minutes"].setdefault(scope, Buckets()).add(minute, usage)
        if minute >= nowm - QUARTERS_KEPT * 15:
            tables["quarters"].setdefault(scope, Buckets()).add(quarter_of(minute), usage)
    for name, per_scope in tables.items():
        if per_scope:
            current = subtable(state, name)
            for scope, b in per_scope.items():
                for m, row in Buckets.parse(current.get(scope)).rows.items():
                    b.add(m, dict(zip(_RUN_FIELDS, row)))
                current[scope] = b.format()
    return history


def _split(state: State, old: State, now: datetime) -> list[dict[str, Any]]:
    """Schema 2 -> 3: commands, sessions and the bucket tables leave the ledger file for a file each
    (the commit writes a table given whole as its files). What is not a table, or a bucket line,
    was a hand edit's and is dropped here; every total stays."""
    for kind in _store.KINDS:
        table = state.get(kind)
        if not isinstance(table, dict) or isinstance(table, _store.Parts):
            continue
        want = dict if kind in ("commands", "sessions") else str
        state[kind] = {str(k): v for k, v in table.items() if isinstance(v, want)}
    return []


#: The forward-only steps that bring an older ledger to :data:`SCHEMA_VERSION`, in order: a ledger of
#: schema N runs every step from N on, at its first write (``claude-budget status`` never writes).
MIGRATIONS: tuple[tuple[int, str, Callable[[State, State, datetime], list[dict[str, Any]]]], ...] = (
    (1, "1 -> 2: runs below the history marker go to the run log; recent ones seed the time buckets", _migrate),
    (2, "2 -> 3: commands, sessions and time buckets move to their own files beside the ledger", _split),
)


def _parse(text: str) -> State:
    """The ledger's text as a state: TOML above :data:`BUCKETS_MARKER`, bucket lines below it."""
    hot, marker, buckets = text.partition(BUCKETS_MARKER)
    state = loads(hot)
    if marker:
        for name, per_scope in _read_bucket_tables(buckets).items():
            state[name] = per_scope
    return state


def _read_bucket_tables(text: str) -> dict[str, dict[str, str]]:
    """``{"minutes": {scope: buckets}, …}`` from the lines :func:`_bucket_tables` writes.

    A line that is not one of those (a hand edit) is dropped, and so gone at the next write:
    the buckets are a cache of the windows, never the totals.
    """
    import json

    out: dict[str, dict[str, str]] = {}
    table: dict[str, str] | None = None
    for line in text.split("\n"):
        if line.startswith("["):
            name = line.strip()[1:-1]
            table = out.setdefault(name, {}) if name in _BUCKET_TABLES else None
            continue
        key, sep, value = line.partition(" = '")
        if table is None or not sep or not value.endswith("'") or not key.startswith('"'):
            continue
        try:
            scope = json.loads(key)
        except ValueError:
            continue
        if isinstance(scope, str):
            table[scope] = value[:-1]
    return out
