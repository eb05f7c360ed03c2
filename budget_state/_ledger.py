"""The shared ledger: one TOML file, changed only by read–modify–write under the lock.

Layout (schema 2) — see README "The ledger" for the documented form::

    schema_version = 2
    [overall]                 input, output, cache_creation, cache_read, usd_micros, since, warned, [overall.models.<m>]
    [commands."/name"]        the same + runs, last_run, recent (the last finished runs' totals)
    [[runs]]                  open and recently finished runs: prompt, command, session, started, ended, tokens
    [sessions.<id>]           seen, run, limit, ended, [sessions.<id>.files."<path>"] read cursors
    [minutes] / [quarters]    usage by time per scope, for windowed limits (see _windows)

Finished runs leave the file in batches for the run log beside it (``<ledger>.runs.jsonl``, see
_runlog), so the file's size — and a hook's cost — does not grow with history. A schema-1 ledger
(whose runs went below a history marker) is migrated on its first write, keeping every total.

Writers replace the file atomically (temp file in the same folder, fsync, ``os.replace``, fsync
of the folder), so a reader without the lock sees either the old or the new ledger, never a torn
one, and a writer killed at any point leaves the previous ledger intact. The file keeps its mode
(a private 0600 or a shared 0664 ledger stays so); a new one is 0644 under the umask.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from ._atomic import write_atomic
from ._errors import LedgerCorrupt, LedgerError
from ._lock import LedgerLock
from ._model import _RUN_FIELDS, MAX_COUNT, RECENT_RUNS, count_value, recent_runs, run_totals
from ._paths import lock_path
from ._toml import loads

SCHEMA_VERSION = 2
HOT_RUNS = 20  # finished runs kept above the marker, besides open and just-finished ones
HOT_RUNS_MAX = 50  # more than this many and the older ones move below, as one batch
RECENT = timedelta(minutes=10)  # a run that ended this recently may still get late usage: stays above
# Schema 1 kept older runs below this line (parsed only when a batch moved there): read for migration.
COLD_MARKER = "# ---- history: older runs, rewritten only when a batch of runs moves here ----\n"
MAX_SESSIONS = 100
SESSION_IDLE = timedelta(days=7)
ENDED_SESSION_KEEP = timedelta(minutes=10)

State = dict[str, Any]
_BUCKET_TABLES = ("minutes", "quarters")
# Above this line, the ledger as tomli_w writes it; below, the bucket tables as this module writes
# them: a table header, then one ``"<scope>" = '<buckets>'`` line per scope. Still TOML (any reader
# parses the whole file), but a hook reads that part line by line and parses the bucket strings
# of the scopes it evaluates only: a day of minute buckets for 200 commands is ~0.4 MB, which
# tomllib would take ~10 ms to scan on every hook.
BUCKETS_MARKER = (
    "# ---- time buckets per scope: <epoch minute>:<input>,<output>,<cache_creation>,<cache_read>,<usd_micros> ----\n"
)


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
    """The ledger file at ``path``; ``transaction()`` for changes, ``read()`` for a snapshot."""

    def __init__(self, path: Path, /, *, timeout: float = 5.0, own_process: bool = False) -> None:
        self.path = path
        self.lock_path = lock_path(path)
        self.timeout = timeout
        self.own_process = own_process  # see LedgerLock
        #: minute buckets kept at least this long: the longest rolling window configured (a call: it
        #: reads the config's keys, which is needed only once buckets older than a day are there)
        self.minutes_kept: Callable[[], int] = lambda: 0
        #: set by transaction() when it found the ledger corrupt and moved it aside
        self.recovered: LedgerCorrupt | None = None
        self._old: State | None = None  # a schema-1 ledger's history part, to migrate on write

    def read(self, *, history: bool = False) -> State:
        """The ledger as last written (no lock needed: writes are atomic). Missing -> empty.

        ``history`` is accepted for callers of schema 1 and ignored: history is in the run log now.
        """
        self._refuse_symlink()
        raw = self._read_bytes()
        if raw is None:
            return new_state(utcnow())
        self._refuse_foreign(raw)
        try:
            text = raw.decode("utf-8").partition(COLD_MARKER)[0]
            return self._check(_parse(text))
        except (ValueError, UnicodeDecodeError) as e:
            raise LedgerCorrupt(
                f"the ledger {self.path} is not valid TOML ({e}) — the next hook moves it aside and starts a "
                "new one; or run: claude-budget reset --all",
                path=self.path,
            ) from None

    @contextmanager
    def transaction(self) -> Iterator[State]:
        """Lock, re-read, let the caller change the state, write it back atomically."""
        self._refuse_symlink()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise LedgerError(
                f"cannot create the ledger folder {self.path.parent}: {e.strerror}", path=self.path
            ) from None
        private_folder(self.path.parent, what=f"the ledger {self.path}")  # before the lock file is made in it
        with LedgerLock(self.lock_path, timeout=self.timeout, own_process=self.own_process):
            raw = self._read_bytes()
            state = self._read_locked(raw)
            # A hook that found nothing new (the response not in the transcript yet, an event
            # already settled) changes nothing: then the file is not written again (~2-3 ms of
            # serialising and fsync). repr, not a deep copy: cheap, exact for these types, no import.
            before = repr(state) if self._old is None and raw is not None else None
            yield state
            now = utcnow()
            moved = compact(state, now, minutes_kept=self.minutes_kept)
            if self._old is not None:
                moved = _migrate(state, self._old, now) + moved
            if (
                before is not None
                and not moved
                and state.get("schema_version") == SCHEMA_VERSION
                and repr(state) == before
            ):
                return
            if moved:
                # The log first: killed between the two, a run is in both (the log's readers keep
                # one per prompt), never in neither.
                from ._runlog import append_runs

                append_runs(self.path, moved)
            state["schema_version"] = SCHEMA_VERSION
            self._write(state)
            self._old = None

    def _read_bytes(self) -> bytes | None:
        """The file's bytes, or None when there is no ledger yet.

        Read only when it and its folder are the user's own (checked on the open descriptor, not
        following a link): a ledger another user could write is never trusted.
        """
        what = f"the ledger {self.path}"
        private_folder(self.path.parent, what=what)
        try:
            fd = os.open(self.path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0))
        except FileNotFoundError:
            return None
        except OSError as e:
            raise LedgerError(f"cannot read {what}: {e.strerror}", path=self.path) from None
        try:
            chunks = []
            while chunk := os.read(fd, 1 << 20):
                chunks.append(chunk)
            st = os.fstat(fd)
        except OSError as e:
            raise LedgerError(f"cannot read {what}: {e.strerror}", path=self.path) from None
        finally:
            os.close(fd)
        own_file(st, what=what, path=self.path)
        return b"".join(chunks)

    def _refuse_foreign(self, raw: bytes) -> None:
        """A file that is not empty and does not look like a ledger is left alone: never parsed as
        one, moved aside or overwritten (``ledger =`` or ``CLAUDE_BUDGET_STATE`` naming the wrong file)."""
        if raw.strip() and b"schema_version" not in raw[:65536]:
            raise LedgerError(
                f"{self.path} does not look like a claude-budget ledger (no schema_version), so it is left as it is "
                "— point ledger in .claude/budget.toml (or CLAUDE_BUDGET_STATE) at another file",
                path=self.path,
            )

    def _read_locked(self, raw: bytes | None) -> State:
        self._old = None
        if raw is None:
            return new_state(utcnow())
        self._refuse_foreign(raw)
        try:
            text = raw.decode("utf-8")
            hot, _, cold = text.partition(COLD_MARKER)
            state = self._check(_parse(hot))
            if state.get("schema_version") == 1:
                self._old = self._schema1_history(cold, state)
            return state
        except (ValueError, UnicodeDecodeError) as e:
            moved = self._move_aside()
            self.recovered = LedgerCorrupt(
                f"the ledger {self.path} was corrupt ({str(e)[:200]}); it was moved to {moved} and a new one started",
                path=self.path,
                moved_to=moved,
            )
            return new_state(utcnow())

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
        version = state.get("schema_version")
        if not isinstance(version, int) or isinstance(version, bool):
            raise ValueError("schema_version is missing or not a number")
        if version > SCHEMA_VERSION:
            raise LedgerError(
                f"the ledger {self.path} has schema_version {version}, written by a newer claude-budget — "
                "upgrade claude-budget (pip install -U claude-budget)",
                path=self.path,
            )
        checks = (("overall", dict), ("commands", dict), ("runs", list), ("sessions", dict))
        for key, kind in checks:
            if key in state and not isinstance(state[key], kind):
                raise ValueError(f"{key} is a {type(state[key]).__name__}, expected a {kind.__name__}")
        state.setdefault("overall", {})
        state.setdefault("commands", {})
        state.setdefault("runs", [])
        return state

    def _corrupt_name(self) -> Path:
        stamp = utcnow().strftime("%Y%m%dT%H%M%SZ")
        target = self.path.with_name(f"{self.path.stem}.corrupt-{stamp}{self.path.suffix}")
        n = 1
        while target.exists():
            n += 1
            target = self.path.with_name(f"{self.path.stem}.corrupt-{stamp}-{n}{self.path.suffix}")
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

    def _write(self, state: State) -> None:
        """Write ``state`` atomically and durably."""
        import tomli_w

        buckets = {k: state.pop(k) for k in _BUCKET_TABLES if k in state}
        try:
            text = tomli_w.dumps(state) + BUCKETS_MARKER + _bucket_tables(buckets)
        finally:
            state.update(buckets)
        try:
            write_atomic(self.path, text.encode("utf-8"), locked=True)  # transaction() holds the lock
        except OSError as e:
            raise LedgerError(
                f"cannot write the ledger {self.path}: {e.strerror} — check that the folder is writable, "
                "or point CLAUDE_BUDGET_STATE at a writable place",
                path=self.path,
            ) from None

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
    """Keep the ledger bounded: finished runs leave in batches (returned, for the run log), and
    buckets no window needs any more are dropped. Each command keeps its last runs' totals."""
    from ._windows import MINUTES_KEPT, trim_buckets

    runs: list[dict[str, Any]] = [r for r in state.get("runs", []) if isinstance(r, dict)]
    open_prompts = {s.get("run") for s in state.get("sessions", {}).values() if isinstance(s, dict)}

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
    sessions = state.get("sessions")
    if isinstance(sessions, dict):
        for sid in list(sessions):
            s = sessions[sid]
            seen = s.get("seen") if isinstance(s, dict) else None
            if (
                not isinstance(seen, datetime)
                or now - seen > SESSION_IDLE
                or (s.get("ended") and now - seen > ENDED_SESSION_KEEP)
            ):
                del sessions[sid]
        if len(sessions) > MAX_SESSIONS:
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
    # One string, not an array of arrays: every hook parses the ledger's hot part, and TOML
    # parsers take ~50x longer over 200 commands' nested arrays than over as many strings.
    table["recent"] = " ".join(",".join(map(str, r)) for r in [*kept[-(RECENT_RUNS - 1) :], run_totals(run)])


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


def _mine(uid: int) -> bool:
    return uid == os.geteuid() or uid == 0


def _private_group(gid: int) -> bool:
    """A group-writable folder is still private when its group is the user's own and has no one else
    (the user-private groups of ``umask 002`` systems)."""
    if gid != os.getegid():
        return False
    try:
        import grp
        import pwd

        me = pwd.getpwuid(os.geteuid()).pw_name
        return set(grp.getgrgid(gid).gr_mem) <= {me}
    except (ImportError, KeyError):
        return False


def private_folder(folder: Path, *, what: str) -> None:
    """Raise :class:`LedgerError` unless ``folder`` (where ``what`` lives) is the user's (or root's)
    and no other user can write it: another user could swap or plant the files in it."""
    try:
        st = os.stat(folder)
    except FileNotFoundError:
        return  # made by this user, with the umask, when the first write needs it
    except OSError as e:
        raise LedgerError(f"cannot look at the folder of {what}: {e.strerror}") from None

    shared = st.st_mode & stat.S_IWOTH or (st.st_mode & stat.S_IWGRP and not _private_group(st.st_gid))
    if not _mine(st.st_uid) or shared:
        whose = "another user owns" if not _mine(st.st_uid) else "other users can write"
        raise LedgerError(
            f"{what} is in {folder}, a folder {whose}"
            " — claude-budget keeps its state only where no one else can change it: chmod go-w the folder, or "
            "move the ledger (ledger in .claude/budget.toml, or CLAUDE_BUDGET_STATE)"
        )


def own_file(st: os.stat_result, *, what: str, path: Path) -> None:
    """Raise :class:`LedgerError` unless the opened file is the user's and no one else can write it."""

    if not _mine(st.st_uid) or st.st_mode & stat.S_IWOTH or not stat.S_ISREG(st.st_mode):
        raise LedgerError(
            f"{what} belongs to another user or others can write it (uid {st.st_uid}, mode "
            f"{stat.S_IMODE(st.st_mode):o}) — claude-budget reads only your own state: remove it, or chown/chmod it",
            path=path,
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


def _bucket_tables(tables: dict[str, Any]) -> str:
    """The bucket tables as TOML, their strings literal, a scope a line (see :data:`BUCKETS_MARKER`)."""
    import json

    out = []
    for name in _BUCKET_TABLES:
        per_scope = tables.get(name)
        if not isinstance(per_scope, dict) or not per_scope:
            continue
        out.append(f"[{name}]\n")
        for scope, text in per_scope.items():
            if not isinstance(text, str) or not text or "'" in text or "\n" in text:
                continue  # only _windows writes these; anything else is not a bucket string
            # A JSON string is a TOML basic string, but for DEL (TOML wants it escaped)
            key = json.dumps(str(scope), ensure_ascii=False).replace("\x7f", "\\u007f")
            out.append(f"{key} = '{text}'\n")
    return "".join(out)
