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
from typing import Any, TypeVar

from .._errors import LedgerCorrupt, LedgerError
from .._model import _RUN_FIELDS, RECENT_RUNS, count_value, run_totals
from .._paths import lock_path
from .._private import private_folder
from .._toml import loads
from . import _store
from ._lock import LedgerLock
from ._state import FieldError, LedgerState, Run, recent_rows

__all__ = ["Ledger", "LedgerCorrupt", "LedgerError"]

SCHEMA_VERSION = 3
HOT_RUNS = 20  # finished runs kept in the ledger file, besides open and just-finished ones
HOT_RUNS_MAX = 50  # more than this many and the older ones move to the run log, as one batch
#: reads of a ledger that changed under them before :meth:`Ledger.consistent` takes the lock
CONSISTENT_TRIES = 3
_T = TypeVar("_T")
RECENT = timedelta(minutes=10)  # a run that ended this recently may still get late usage: stays
# Schema 1 kept older runs below this line (parsed only when a batch moved there): read for migration.
COLD_MARKER = "# ---- history: older runs, rewritten only when a batch of runs moves here ----\n"
MAX_SESSIONS = 100
SESSION_IDLE = timedelta(days=7)
ENDED_SESSION_KEEP = timedelta(minutes=10)

State = LedgerState
Document = dict[str, Any]  # a ledger file as parsed, before it is typed (what a migration step changes)
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
    return LedgerState(now, version=SCHEMA_VERSION)


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
        journal a killed writer left is read through). Missing -> empty. Parts are read when used:
        a caller that reads several (totals, a status) reads through :meth:`consistent`.

        ``history`` is accepted for callers of schema 1 and ignored: history is in the run log now.
        """
        return self._read()[0]

    def consistent(self, use: Callable[[State], _T], /) -> _T:
        """``use(state)`` on the state as one commit left it, read without the lock.

        :meth:`read` reads the ledger file at once and each part when used, so a writer can commit
        in between: a status would show a command's totals from after that commit and overall's
        from before. Every commit that changes a total changes overall's, in the ledger file; so
        after ``use`` the ledger file (or the journal's copy of it) is read again, and when it
        changed ``use`` runs again on a new read. After :data:`CONSISTENT_TRIES` changes in a row
        (writers busy without a pause) it runs under the lock, which waits for them.
        """
        for _ in range(CONSISTENT_TRIES):
            state, raw = self._read()
            result = use(state)
            if self._committed() == raw:
                return result
        with LedgerLock(self.lock_path, timeout=self.timeout, own_process=self.own_process):
            return use(self.read())

    def _read(self) -> tuple[State, bytes | None]:
        """:meth:`read`, and the ledger file's bytes it read (see :meth:`_committed`)."""
        self._refuse_symlink()
        journal = self._journal()
        raw = journal.pop("ledger") if journal is not None and "ledger" in journal else self._read_bytes()
        if raw is None:
            return self._with_parts(new_state(utcnow()), journal), raw
        self._refuse_foreign(raw)
        try:
            hot, _, cold = raw.decode("utf-8").partition(COLD_MARKER)
            doc = self._check(_parse(hot))
            if doc["schema_version"] >= SCHEMA_VERSION:
                return self._with_parts(LedgerState.load(doc, []), journal), raw  # a bad field reads as empty
            # an older ledger, read as it is (``status`` never writes): brought forward in memory
            state, _ = self._upgrade(doc, cold, keep_corrupt=False)
            return state, raw
        except (ValueError, UnicodeDecodeError) as e:
            what = "has a field of the wrong kind" if isinstance(e, FieldError) else "is not valid TOML"
            raise LedgerCorrupt(
                f"the ledger {self.path} {what} ({str(e)[:200]}) — the next hook moves it aside and starts a new "
                "one; or run: claude-budget reset --all",
                path=self.path,
            ) from None

    def _committed(self) -> bytes | None:
        """The ledger file's bytes as the last commit left them: the journal's copy while one is there."""
        journal = self._journal()
        if journal is not None and "ledger" in journal:
            return journal["ledger"]
        return self._read_bytes()

    def _journal(self) -> dict[str, bytes | None] | None:
        if not os.path.isdir(self.parts):
            return None
        private_folder(self.parts, what=f"the parts of the ledger {self.path}")
        return _store.read_journal(self.parts)

    def _with_parts(self, state: State, overlay: dict[str, bytes | None] | None) -> State:
        state.commands = _store.Parts(self.parts, "commands", overlay)
        state.sessions = _store.Parts(self.parts, "sessions", overlay)
        state.minutes = _store.Parts(self.parts, "minutes", overlay)
        state.quarters = _store.Parts(self.parts, "quarters", overlay)
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
            state, moved, main_before = self._read_locked(raw)
            yield state
            self._commit(state, moved, main_before)

    def _commit(self, state: State, moved: list[dict[str, Any]], main_before: str | None) -> None:
        now = utcnow()
        moved = [*moved, *(r.as_log() for r in compact(state, now, minutes_kept=self.minutes_kept))]
        changes: list[tuple[str, bytes | None]] = []
        for kind in _store.KINDS:
            table = state.buckets(kind) if kind in ("minutes", "quarters") else getattr(state, kind)
            if isinstance(table, _store.Parts):
                changes += table.changes()
                self._note_bad(table)
            else:  # a ledger of one file being split, or a table a test gave whole
                changes += _store.all_entries(kind, dict(table), self.parts)
        state.version = SCHEMA_VERSION
        import tomli_w

        text = tomli_w.dumps(state.dump())
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

    def _note_fields(self, problems: list[FieldError], path: Path, raw: bytes) -> None:
        """Fields of the wrong kind (a hand edit's) were read as empty, and so go at this write: the
        file as it was is kept beside it, and the user told which fields and where the copy is."""
        if not problems:
            return
        kept = self._corrupt_name(path)
        try:
            with open(kept, "xb", opener=lambda p, f: os.open(p, f, 0o600)) as f:
                f.write(raw)
        except OSError as e:
            raise LedgerError(f"cannot keep a copy of {path} in {kept}: {e.strerror}", path=path) from None
        more = f" and {len(problems) - 1} more" if len(problems) > 1 else ""
        self.recovered = LedgerCorrupt(
            f"{path} had a field of the wrong kind ({problems[0]}{more}): read as empty, so it is gone from "
            f"the ledger; the file as it was is kept in {kept}",
            path=path,
            moved_to=kept,
        )

    def _note_bad(self, parts: _store.Parts) -> None:
        """A part file that could not be read was left out (its entry starts again): kept aside, told once."""
        for name, (problems, raw) in parts.problems.items():
            self._note_fields(problems, parts.folder / name, raw)
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

    def _read_locked(self, raw: bytes | None) -> tuple[State, list[dict[str, Any]], str | None]:
        """The state to change, the runs a migration moved out (for the run log), and the ledger
        file's text as this version would write it (None: it must be written)."""
        if raw is None:
            return self._with_parts(new_state(utcnow()), None), [], None
        self._refuse_foreign(raw)
        try:
            text = raw.decode("utf-8")
            hot, _, cold = text.partition(COLD_MARKER)
            doc = self._check(_parse(hot))
            if doc["schema_version"] >= SCHEMA_VERSION:
                problems: list[FieldError] = []
                state = LedgerState.load(doc, problems)
                self._note_fields(problems, self.path, raw)
                return self._with_parts(state, None), [], text if not problems else None
            state, moved = self._upgrade(doc, cold, keep_corrupt=True, raw=raw)
            return state, moved, None  # its tables are whole here: the commit writes every part
        except (ValueError, UnicodeDecodeError) as e:  # FieldError too: a field of the wrong kind
            moved_to = self._move_aside()
            self.recovered = LedgerCorrupt(
                f"the ledger {self.path} was corrupt ({str(e)[:200]}); it was moved to {moved_to} and a new one "
                "started",
                path=self.path,
                moved_to=moved_to,
            )
            return self._with_parts(new_state(utcnow()), None), [], None

    def _upgrade(
        self, doc: Document, cold: str, *, keep_corrupt: bool, raw: bytes = b""
    ) -> tuple[State, list[dict[str, Any]]]:
        """An older ledger's document brought to this schema by the steps of :data:`MIGRATIONS`, then
        typed whole (its parts are in it); and the runs the steps moved out, for the run log."""
        version = doc["schema_version"]
        old = self._schema1_history(cold, doc, keep_corrupt=keep_corrupt) if version == 1 else {}
        moved: list[dict[str, Any]] = []
        now = utcnow()
        for step_from, _, step in MIGRATIONS:
            if version <= step_from:
                moved += step(doc, old, now)
        doc["schema_version"] = SCHEMA_VERSION
        problems: list[FieldError] = []
        state = LedgerState.load(doc, problems, whole=True)
        if keep_corrupt:
            self._note_fields(problems, self.path, raw)
        return state, moved

    def _schema1_history(self, cold: str, doc: Document, *, keep_corrupt: bool) -> Document:
        """A schema-1 ledger's runs and day sums (below the marker, or in the one document), for migration.

        A corrupt history part is kept aside (``keep_corrupt``: a writer's) and left out: the totals
        above it are whole.
        """
        old: Document = {k: doc.pop(k) for k in ("history", "rollup") if k in doc}
        if not cold.strip():
            return old
        try:
            parsed = loads(cold)
        except ValueError as e:
            if not keep_corrupt:
                return old
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

    def _check(self, state: Document) -> Document:
        """The ledger file's document: its version known, its tables tables (or ValueError); the
        fields inside are checked as it is typed (_state)."""
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


def subtable(parent: dict[str, Any], key: str, /) -> dict[str, Any]:
    """``parent[key]`` as a table, replacing whatever a hand edit left there that is not one."""
    value = parent.get(key)
    if not isinstance(value, dict):
        value = parent[key] = {}
    return value


def compact(state: State, now: datetime, *, minutes_kept: Callable[[], int] | None = None) -> list[Run]:
    """Keep the state bounded: finished runs leave in batches (returned, for the run log), buckets
    no window needs any more are dropped from the scopes this change touched, and sessions idle too
    long are forgotten. Each command keeps its last runs' totals (``recent``).

    Proportional to the change, not to the history: only entries read by this transaction are
    looked at, and the session files are swept (by their times, unread) only when a session is new.
    """
    from ._windows import MINUTES_KEPT, trim_buckets

    runs = state.runs
    sessions = state.sessions
    looked_at = sessions.loaded() if isinstance(sessions, _store.Parts) else list(sessions)
    open_prompts = {s.run for k in looked_at if (s := sessions.get(k)) is not None}

    def movable(r: Run) -> bool:
        if r.prompt in open_prompts or r.ended is None:
            return False
        # Runs recorded through the API get no late usage; a hook's may, for a few minutes.
        return r.source == "api" or now - r.ended > RECENT

    candidates = [r for r in runs if movable(r)]
    if len(candidates) <= HOT_RUNS_MAX:
        finished = [r for r in runs if r.prompt not in open_prompts and r.ended is not None]
        if len(finished) > 2 * HOT_RUNS_MAX:  # a burst of short runs: bound the hot part anyway
            candidates = finished
    moved: list[Run] = []
    if len(candidates) > HOT_RUNS_MAX:
        moving = {id(r) for r in candidates[: len(candidates) - HOT_RUNS]}
        moved = [r for r in runs if id(r) in moving]
        state.runs = [r for r in runs if id(r) not in moving]
        for r in moved:
            remember_run(state, r)
    trim_buckets(state, now, minutes_kept=lambda: max(MINUTES_KEPT, minutes_kept() if minutes_kept else 0))
    for sid in looked_at:
        s = sessions.get(sid)
        if s is None:
            continue
        if s.seen is None or now - s.seen > SESSION_IDLE or (s.ended and now - s.seen > ENDED_SESSION_KEEP):
            sessions.pop(sid, None)
    if isinstance(sessions, _store.Parts):
        if sessions.new_keys():  # a session starts: forget those idle too long, and the oldest beyond the cap
            sessions.expire(idle=SESSION_IDLE.total_seconds(), keep=MAX_SESSIONS, now=now.timestamp())
    elif len(sessions) > MAX_SESSIONS:
        by_age = sorted(sessions, key=lambda k: sessions[k].seen or now)
        for sid in by_age[: len(sessions) - MAX_SESSIONS]:
            del sessions[sid]
    return moved


def remember_run(state: State, run: Run, /) -> None:
    """Keep a finished run's totals in its command's ``recent`` (the last :data:`RECENT_RUNS`)."""
    scope = state.commands.get(run.command) if run.command is not None else None
    if scope is not None:
        scope.remember(run)


def _remember_raw(doc: Document, run: dict[str, Any]) -> None:
    """:func:`remember_run` on a document being migrated."""
    commands, command = doc.get("commands"), run.get("command")
    table = commands.get(command) if isinstance(commands, dict) and isinstance(command, str) else None
    if isinstance(table, dict):
        try:  # what a hand edit broke is left out, as the typed read leaves it out
            kept = recent_rows(table.get("recent", []), "recent", [])
        except FieldError:
            kept = []
        table["recent"] = [*kept[-(RECENT_RUNS - 1) :], run_totals(run)]


def _migrate(state: Document, old: Document, now: datetime) -> list[dict[str, Any]]:
    """Schema 1 -> 2: history runs go to the run log; runs and day sums recent enough for a window
    seed the buckets, in the quarter hour (and minute) each ended — or each day began — in.

    Every cumulative total stays as it was: they are the tables above, untouched.
    """
    from ._windows import MINUTES_KEPT, QUARTERS_KEPT, Buckets, minute_of, quarter_of

    history = [r for r in old.get("history", []) if isinstance(r, dict)] if isinstance(old.get("history"), list) else []
    for r in history:
        _remember_raw(state, r)
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


def _split(state: Document, old: Document, now: datetime) -> list[dict[str, Any]]:
    """Schema 2 -> 3: commands, sessions and the bucket tables leave the ledger file for a file each
    (the commit writes a table given whole as its files). What is not a table, or a bucket line,
    was a hand edit's and is dropped here; every total stays."""
    for kind in _store.KINDS:
        table = state.get(kind)
        if not isinstance(table, dict):
            state.pop(kind, None)
            continue
        want = dict if kind in ("commands", "sessions") else str
        state[kind] = {str(k): v for k, v in table.items() if isinstance(v, want)}
    runs = state.get("runs")
    state["runs"] = (
        [r for r in runs if isinstance(r, dict) and isinstance(r.get("prompt"), str)] if isinstance(runs, list) else []
    )
    return []


#: The forward-only steps that bring an older ledger to :data:`SCHEMA_VERSION`, in order: a ledger of
#: schema N runs every step from N on, at its first write (``claude-budget status`` never writes).
MIGRATIONS: tuple[tuple[int, str, Callable[[Document, Document, datetime], list[dict[str, Any]]]], ...] = (
    (1, "1 -> 2: runs below the history marker go to the run log; recent ones seed the time buckets", _migrate),
    (2, "2 -> 3: commands, sessions and time buckets move to their own files beside the ledger", _split),
)


def _parse(text: str) -> Document:
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
