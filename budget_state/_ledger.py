"""The shared ledger: one TOML file, changed only by read–modify–write under the lock.

Layout (schema 1) — see README "The ledger" for the documented form::

    schema_version = 1
    [overall]                 input, output, cache_creation, cache_read, since, warned, [overall.models.<m>]
    [commands."/name"]        the same + runs, last_run
    [[runs]]                  recent runs: prompt, command, session, started, ended, tokens, [runs.models.<m>]
    [sessions.<id>]           seen, run, limit, ended, [sessions.<id>.files."<path>"] read cursors
    # ---- history …            (COLD_MARKER) everything below changes only when runs are moved there:
    [[history]]               older runs, as in [[runs]]
    [rollup."/name".<day>]    runs older still, summed per UTC day (time windows read these)

The file is one TOML document. Hooks parse only the part above the marker and copy the part
below it as bytes, so a hook's cost does not grow with history; runs move below in batches.

Writers replace the file atomically (temp file in the same folder, fsync, ``os.replace``, fsync
of the folder), so a reader without the lock sees either the old or the new ledger, never a torn
one, and a writer killed at any point leaves the previous ledger intact. The file keeps its mode
(a private 0600 or a shared 0664 ledger stays so); a new one is 0644 under the umask.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from ._errors import LedgerCorrupt, LedgerError
from ._lock import LedgerLock
from ._model import MAX_COUNT, count_value
from ._paths import lock_path
from ._toml import loads

SCHEMA_VERSION = 1
HOT_RUNS = 20  # finished runs kept above the marker, besides open and just-finished ones
HOT_RUNS_MAX = 50  # more than this many and the older ones move below, as one batch
RECENT = timedelta(minutes=10)  # a run that ended this recently may still get late usage: stays above
MAX_HISTORY = 500  # runs kept whole below the marker; older ones are summed into [rollup]
ROLLUP_DAYS = 35  # daily sums kept for time windows (a week, a month)
COLD_KEYS = ("history", "rollup")
COLD_MARKER = "# ---- history: older runs, rewritten only when a batch of runs moves here ----\n"
MAX_SESSIONS = 100
SESSION_IDLE = timedelta(days=7)
ENDED_SESSION_KEEP = timedelta(minutes=10)

State = dict[str, Any]
_COLD_KINDS = (("history", list), ("rollup", dict))


def new_state(now: datetime) -> State:
    return {"schema_version": SCHEMA_VERSION, "created": now, "overall": {"since": now}, "commands": {}, "runs": []}


def utcnow() -> datetime:
    return datetime.now(timezone.utc).replace(microsecond=0)


class Ledger:
    """The ledger file at ``path``; ``transaction()`` for changes, ``read()`` for a snapshot."""

    def __init__(self, path: Path, /, *, timeout: float = 5.0, own_process: bool = False) -> None:
        self.path = path
        self.lock_path = lock_path(path)
        self.timeout = timeout
        self.own_process = own_process  # see LedgerLock
        #: set by transaction() when it found the ledger corrupt and moved it aside
        self.recovered: LedgerCorrupt | None = None
        self._cold_text = ""  # the part below COLD_MARKER, as read
        self._cold: State | None = None  # that part parsed, once something needed it

    def read(self, *, history: bool = False) -> State:
        """The ledger as last written (no lock needed: writes are atomic). Missing -> empty.

        Without ``history`` only the part above the history line is parsed (totals, sessions,
        recent runs): all that a status needs, at a cost that does not grow with history.
        """
        self._refuse_symlink()
        raw = self._read_bytes()
        if raw is None:
            return new_state(utcnow())
        try:
            text = raw.decode("utf-8")
            if not history:
                text = text.partition(COLD_MARKER)[0]
            return self._check(loads(text))
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
        with LedgerLock(self.lock_path, timeout=self.timeout, own_process=self.own_process):
            state = self._read_locked()
            yield state
            compact(state, utcnow(), cold=self.cold)
            self._write(state)

    def cold(self) -> State:
        """The part below the marker (history), parsed on first use within a transaction."""
        if self._cold is None:
            try:
                self._cold = loads(self._cold_text) if self._cold_text.strip() else {}
                for key, kind in (("history", list), ("rollup", dict)):
                    if key in self._cold and not isinstance(self._cold[key], kind):
                        raise ValueError(f"{key} is a {type(self._cold[key]).__name__}, expected a {kind.__name__}")
            except ValueError as e:
                kept = self._keep_corrupt(self._cold_text)
                self.recovered = LedgerCorrupt(
                    f"the history part of the ledger {self.path} was corrupt ({str(e)[:200]}); it was saved to "
                    f"{kept} and a new history started (totals are unaffected)",
                    path=self.path,
                    moved_to=kept,
                )
                self._cold = {}
        return self._cold

    def _read_bytes(self) -> bytes | None:
        """The file's bytes, or None when there is no ledger yet."""
        try:
            return self.path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as e:
            raise LedgerError(f"cannot read the ledger {self.path}: {e.strerror}", path=self.path) from None

    def _read_locked(self) -> State:
        self._cold_text, self._cold = "", None
        raw = self._read_bytes()
        if raw is None:
            return new_state(utcnow())
        try:
            text = raw.decode("utf-8")
            hot, marker, cold = text.partition(COLD_MARKER)
            state = self._check(loads(hot))
            if marker:
                self._cold_text = cold
            else:  # written by hand or by an older layout: one document, split it now
                self._cold = {k: state.pop(k) for k in COLD_KEYS if k in state}
            return state
        except (ValueError, UnicodeDecodeError) as e:
            moved = self._move_aside()
            self.recovered = LedgerCorrupt(
                f"the ledger {self.path} was corrupt ({str(e)[:200]}); it was moved to {moved} and a new one started",
                path=self.path,
                moved_to=moved,
            )
            return new_state(utcnow())

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
        checks = (("overall", dict), ("commands", dict), ("runs", list), ("sessions", dict), *_COLD_KINDS)
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
        import tomli_w

        cold = tomli_w.dumps(self._cold) if self._cold is not None else self._cold_text
        data = (tomli_w.dumps(state) + COLD_MARKER + cold).encode("utf-8")
        # One name, not one per process: writers hold the lock, and a writer killed mid-write
        # leaves a single stale file that the next write replaces.
        tmp = self.path.with_name(f".{self.path.name}.tmp")
        try:
            mode = _mode_of(self.path)
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_NOFOLLOW", 0), 0o644)
            try:
                if mode is not None:
                    _set_mode(fd, tmp, mode)
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view) :]
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(tmp, self.path)
            _fsync_folder(self.path.parent)
        except OSError as e:
            try:
                os.unlink(tmp)
            except OSError:
                pass
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


def _mode_of(path: Path) -> int | None:
    """The permission bits of the ledger now, to give the file that replaces it; None if there is none."""
    try:
        return stat.S_IMODE(os.stat(path).st_mode)
    except FileNotFoundError:
        return None


def _set_mode(fd: int, path: Path, mode: int) -> None:
    # Explicitly, not through os.open's mode: that one is cut by the umask (0664 would become 0644)
    # and ignored when a killed writer left the temp file behind.
    try:
        if hasattr(os, "fchmod"):
            os.fchmod(fd, mode)
        else:  # pragma: no cover (Windows before Python 3.13)
            os.chmod(path, mode)
    except OSError:
        pass  # a filesystem without Unix modes (FAT, some network shares): nothing to keep


# A filesystem or platform that cannot fsync a folder says so with one of these; the rename is
# then as durable as that filesystem makes it, and the write has still succeeded.
_NO_FOLDER_FSYNC = frozenset(
    getattr(errno, name) for name in ("EINVAL", "EBADF", "ENOTSUP", "EOPNOTSUPP", "ENOSYS") if hasattr(errno, name)
)


def _fsync_folder(folder: Path) -> None:
    """Make the rename durable: until the folder is flushed, a crash can bring the old ledger back."""
    try:
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return  # Windows cannot open a folder (and needs no folder fsync)
    try:
        os.fsync(fd)
    except OSError as e:
        if e.errno not in _NO_FOLDER_FSYNC:
            raise
    finally:
        os.close(fd)


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


def compact(state: State, now: datetime, *, cold: Callable[[], State] | None = None) -> None:
    """Keep the ledger bounded: finished runs move to history in batches, then into daily sums.

    ``cold`` gives the history part (parsed only when a batch moves); by default it is ``state`` itself.
    """
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
    if len(candidates) > HOT_RUNS_MAX:
        moving = {id(r) for r in candidates[: len(candidates) - HOT_RUNS]}
        history = (cold or (lambda: state))()
        past = history.setdefault("history", [])
        past.extend(r for r in runs if id(r) in moving)
        runs = [r for r in runs if id(r) not in moving]
        if len(past) > MAX_HISTORY:
            for r in past[: len(past) - MAX_HISTORY]:
                if isinstance(r, dict):
                    _roll_up(history, r)
            del past[: len(past) - MAX_HISTORY]
        _trim_rollup(history, now)
    state["runs"] = runs
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


def _trim_rollup(history: State, now: datetime) -> None:
    rollup = history.get("rollup")
    if not isinstance(rollup, dict):
        return
    horizon = (now - timedelta(days=ROLLUP_DAYS)).strftime("%Y-%m-%d")
    for cmd in list(rollup):
        days = rollup[cmd]
        if not isinstance(days, dict):
            del rollup[cmd]
            continue
        for day in [d for d in days if d < horizon]:
            del days[day]
        if not days:
            del rollup[cmd]


def _roll_up(state: State, run: dict[str, Any]) -> None:
    started = run.get("started")
    day = started.strftime("%Y-%m-%d") if isinstance(started, datetime) else "unknown"
    cmd = str(run.get("command") or "")
    bucket = state.setdefault("rollup", {}).setdefault(cmd, {}).setdefault(day, {})
    bucket["runs"] = int(bucket.get("runs", 0)) + 1
    models = run.get("models")
    if isinstance(models, dict) and models:
        for model, usage in models.items():
            if isinstance(usage, dict):
                add_usage(bucket, {k: v for k, v in usage.items() if isinstance(v, int)}, str(model))
    else:
        add_usage(
            bucket,
            {k: run[k] for k in ("input", "output", "cache_creation", "cache_read") if isinstance(run.get(k), int)},
            None,
        )
