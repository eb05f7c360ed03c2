from __future__ import annotations

import errno
import multiprocessing
import os
import stat
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import filelock
import kit
import pytest

from budget_state._errors import LedgerCorrupt, LedgerError, LockTimeout
from budget_state._model import RECENT_RUNS
from budget_state.ledger import _records
from budget_state.ledger._ledger import (
    COLD_MARKER,
    HOT_RUNS,
    HOT_RUNS_MAX,
    MAX_SESSIONS,
    Ledger,
    compact,
    new_state,
)
from budget_state.ledger._lock import LedgerLock
from budget_state.ledger._runs import open_run
from budget_state.ledger._state import Run, Session

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=timezone.utc)


def test_round_trip(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "l.toml")
    with ledger.transaction() as state:
        state.overall.add({"input": 1, "output": 2, "cache_creation": 3, "cache_read": 4}, "claude-x")
        review = state.command("/review-pr")
        review.runs, review.input, review.since = 1, 5, NOW
    got = ledger.read()
    assert got.version == 3
    assert kit.tokens(got, "overall")["input"] == 1
    assert got.overall.models == {"claude-x": {"input": 1, "output": 2, "cache_creation": 3, "cache_read": 4}}
    assert got.commands["/review-pr"].dump() == {"runs": 1, "input": 5, "since": NOW}


def test_missing_ledger_reads_empty(tmp_path: Path) -> None:
    state = Ledger(tmp_path / "none.toml").read()
    assert _records.command_names(state) == [] and _records.runs(state) == []


def test_corrupt_ledger_is_moved_aside_never_overwritten(tmp_path: Path) -> None:
    path = tmp_path / "budget-ledger.toml"
    path.write_text("schema_version = 1\n[overall\ninput = 5\n")
    ledger = Ledger(path)
    with pytest.raises(LedgerCorrupt, match="is not valid TOML"):
        ledger.read()
    with ledger.transaction() as state:
        assert _records.command_names(state) == []
    assert ledger.recovered is not None
    moved = ledger.recovered.moved_to
    assert moved is not None and moved.read_text() == "schema_version = 1\n[overall\ninput = 5\n"
    assert moved.name.startswith("budget-ledger.corrupt-")
    assert "moved to" in str(ledger.recovered)
    assert ledger.read().version == 3


@pytest.mark.parametrize(
    "text",
    ["", "overall = 5\nschema_version = 1\n", "schema_version = 'one'\n", "schema_version = 1\nruns = 3\n"],
    ids=["empty", "overall-not-table", "version-string", "runs-not-list"],
)
def test_wrong_shapes_count_as_corrupt(tmp_path: Path, text: str) -> None:
    path = tmp_path / "l.toml"
    path.write_text(text)
    with pytest.raises(LedgerCorrupt):
        Ledger(path).read()


def test_newer_schema_is_refused_not_moved(tmp_path: Path) -> None:
    path = tmp_path / "l.toml"
    path.write_text("schema_version = 99\n")
    with pytest.raises(LedgerError, match="newer claude-budget"), Ledger(path).transaction():
        pass
    assert path.read_text() == "schema_version = 99\n"


def test_symlinked_ledger_is_refused(tmp_path: Path) -> None:
    target = tmp_path / "elsewhere.toml"
    target.write_text("precious\n")
    link = tmp_path / "l.toml"
    link.symlink_to(target)
    with pytest.raises(LedgerError, match="is a symbolic link"), Ledger(link).transaction():
        pass
    assert target.read_text() == "precious\n"


def test_symlinked_lock_is_refused(tmp_path: Path) -> None:
    target = tmp_path / "elsewhere"
    target.write_text("precious\n")
    (tmp_path / "l.toml.lock").symlink_to(target)
    with pytest.raises(LedgerError, match=r"lock .* is a symbolic link"), Ledger(tmp_path / "l.toml").transaction():
        pass
    assert target.read_text() == "precious\n"


def test_unusable_folder_is_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder\n")
    ledger = Ledger(blocker / "sub" / "l.toml")
    with pytest.raises(LedgerError, match="cannot create the ledger folder"), ledger.transaction():
        pass
    assert blocker.read_text() == "not a folder\n"


def _hold_with_filelock(path: str, ready, seconds: float) -> None:
    with filelock.FileLock(path):
        ready.set()
        time.sleep(seconds)


def test_filelock_holder_excludes_us(tmp_path: Path) -> None:
    lock = tmp_path / "l.toml.lock"
    ready = multiprocessing.Event()
    p = multiprocessing.Process(target=_hold_with_filelock, args=(str(lock), ready, 1.5))
    p.start()
    try:
        assert ready.wait(10)
        with pytest.raises(LockTimeout, match="held by another process"), LedgerLock(lock, timeout=0.3):
            pass
    finally:
        p.join()
    with LedgerLock(lock, timeout=1):
        pass


def test_we_exclude_a_filelock_user(tmp_path: Path) -> None:
    lock = tmp_path / "l.toml.lock"
    with LedgerLock(lock, timeout=1), pytest.raises(filelock.Timeout):
        filelock.FileLock(str(lock), timeout=0.2).acquire()
    assert lock.exists()  # never deleted: every waiter locks the same inode


def _finished(i: int, *, ended: datetime = NOW - timedelta(days=1)) -> Run:
    run = Run(f"p{i}", "/a")
    run.started = run.ended = ended
    run.add({"input": 1, "output": 2}, "m")
    return run


def test_finished_runs_leave_in_batches_and_commands_keep_their_totals() -> None:
    state = new_state(NOW)
    state.command("/a").runs = HOT_RUNS_MAX + 1
    state.runs = [_finished(i) for i in range(HOT_RUNS_MAX)]
    assert compact(state, NOW) == []  # not yet a batch
    assert len(_records.runs(state)) == HOT_RUNS_MAX
    state.runs.append(_finished(HOT_RUNS_MAX))
    moved = compact(state, NOW)
    assert [r.prompt for r in _records.runs(state)] == [
        f"p{i}" for i in range(HOT_RUNS_MAX + 1 - HOT_RUNS, HOT_RUNS_MAX + 1)
    ]
    assert [r.prompt for r in moved] == [f"p{i}" for i in range(HOT_RUNS_MAX + 1 - HOT_RUNS)]
    assert _records.recent(state, "/a") == [[1, 2, 0, 0, 0]] * RECENT_RUNS  # the last ones only


def test_open_and_just_finished_runs_stay() -> None:
    state = new_state(NOW)
    state.runs = [_finished(i) for i in range(HOT_RUNS_MAX + 5)]
    open_run(state, session="s", prompt="open", command="/a", now=NOW)  # the session "s", seen now, runs it
    state.runs.append(_finished(999, ended=NOW - timedelta(minutes=1)))
    compact(state, NOW)
    assert [r.prompt for r in _records.runs(state)][-2:] == ["open", "p999"]


def test_runs_go_to_the_run_log_and_buckets_to_a_file_per_scope(tmp_path: Path) -> None:
    import tomllib

    from budget_state.ledger._runlog import read_runs

    path = tmp_path / "l.toml"
    ledger = Ledger(path)
    now = datetime.now(timezone.utc)
    with ledger.transaction() as state:
        state.runs = [_finished(i) for i in range(HOT_RUNS_MAX + 1)]
        from budget_state.ledger._windows import charge

        charge(state, ["overall", "/a"], now, {"input": 5, "usd_micros": 7})
    logged = list(read_runs(path))
    assert [r["prompt"] for r in logged] == [f"p{i}" for i in range(HOT_RUNS_MAX + 1 - HOT_RUNS)]
    assert logged[0]["input"] == 1
    assert logged[0]["models"] == {
        "m": {"input": 1, "output": 2, "cache_creation": 0, "cache_read": 0, "usd_micros": 0}
    }
    text = path.read_text()
    assert COLD_MARKER not in text and "[[history]]" not in text
    doc = tomllib.loads(text)  # any TOML reader takes the whole file
    assert "minutes" not in doc and len(doc["runs"]) == HOT_RUNS
    minute = int(now.timestamp() // 60)
    parts = tmp_path / "l.d"
    assert (parts / "minutes" / "overall").read_text() == f"{minute}:5,0,0,0,7\n"  # one plain line a scope
    assert (parts / "minutes" / "%2Fa").read_text() == f"{minute}:5,0,0,0,7\n"
    assert dict(ledger.read().minutes.items()) == {"overall": f"{minute}:5,0,0,0,7", "/a": f"{minute}:5,0,0,0,7"}


def test_a_schema_1_ledger_is_migrated_on_first_write_keeping_every_total(tmp_path: Path) -> None:
    import tomli_w

    from budget_state.ledger._runlog import read_runs

    path = tmp_path / "l.toml"
    now = datetime.now(timezone.utc).replace(microsecond=0)
    hot = {
        "schema_version": 1,
        "overall": {"input": 100, "output": 50, "usd_micros": 900},
        "commands": {"/a": {"runs": 3, "input": 30, "output": 6}},
        "runs": [_finished(2, ended=now - timedelta(minutes=30)).dump()],  # the file's form of a run
    }
    cold = {
        "history": [
            _finished(0, ended=now - timedelta(hours=2)).dump(),
            _finished(1, ended=now - timedelta(days=3)).dump(),
        ],
        "rollup": {"/a": {(now - timedelta(days=2)).strftime("%Y-%m-%d"): {"runs": 1, "input": 20, "output": 2}}},
    }
    path.write_text(tomli_w.dumps(hot) + COLD_MARKER + tomli_w.dumps(cold))
    assert kit.tokens(Ledger(path).read(), "overall")["input"] == 100  # read as it is, before any write
    with Ledger(path).transaction():
        pass
    got = Ledger(path).read()
    assert got.version == 3
    assert got.overall.dump() == hot["overall"] and kit.tokens(got, "/a")["input"] == 30
    assert [r["prompt"] for r in read_runs(path)] == ["p0", "p1"]
    assert _records.recent(got, "/a") == [[1, 2, 0, 0, 0]] * 2
    from budget_state.ledger._windows import minute_of, scope_buckets

    quarters = scope_buckets(got, "/a", table="quarters")
    assert quarters.total(0)[0].input == 1 + 1 + 1 + 20  # three runs and a day's sum, by when they happened
    minutes = scope_buckets(got, "/a")
    assert minutes.total(minute_of(now) - 24 * 60)[0].input == 2  # the last day: p0 and p2
    assert COLD_MARKER not in path.read_text()


def test_a_schema_1_ledger_with_a_corrupt_history_part_keeps_its_totals(tmp_path: Path) -> None:
    path = tmp_path / "l.toml"
    path.write_text("schema_version = 1\n[overall]\ninput = 7\n" + COLD_MARKER + "[[history]\nbroken = \n")
    ledger = Ledger(path)
    with ledger.transaction():
        pass
    assert ledger.recovered is not None and "history part" in str(ledger.recovered)
    assert ledger.recovered.moved_to is not None
    assert ledger.recovered.moved_to.read_text() == "[[history]\nbroken = \n"
    assert kit.tokens(Ledger(path).read(), "overall")["input"] == 7


def test_compact_drops_stale_sessions_and_old_buckets() -> None:
    from budget_state.ledger._windows import MINUTES_KEPT, charge

    state = new_state(NOW)
    charge(state, ["overall"], NOW - timedelta(minutes=MINUTES_KEPT + 5), {"input": 1})
    charge(state, ["overall"], NOW, {"input": 2})
    ended = Session(seen=NOW - timedelta(hours=1))
    ended.ended = True
    state.sessions = {"old": Session(seen=NOW - timedelta(days=8)), "ended": ended, "live": Session(seen=ended.seen)}
    compact(state, NOW)
    assert state.minutes["overall"] == f"{int(NOW.timestamp() // 60)}:2,0,0,0,0"
    assert state.quarters["overall"].count(":") == 2  # quarter hours are kept for a month
    assert set(state.sessions) == {"live"}


def test_compact_caps_sessions() -> None:
    state = new_state(NOW)
    state.sessions = {f"s{i}": Session(seen=NOW - timedelta(seconds=i)) for i in range(MAX_SESSIONS + 5)}
    compact(state, NOW)
    assert len(state.sessions) == MAX_SESSIONS
    assert "s0" in state.sessions and f"s{MAX_SESSIONS + 4}" not in state.sessions


def _hold_until_told(path: str, ready, release, releasing) -> None:
    with filelock.FileLock(path):
        ready.set()
        release.wait(30)
        releasing.set()  # before the lock goes: whoever gets it next must see this
        time.sleep(0.05)  # so a waiter is most likely already waiting (not asserted: no timing)


@pytest.mark.parametrize("own_process", [True, False], ids=["alarm", "polling"])
def test_lock_waits_its_turn_and_times_out(tmp_path: Path, own_process: bool) -> None:
    """Order, not durations: the timeout fires while the holder still holds; the wait ends after it lets go."""
    lock = tmp_path / "l.toml.lock"
    ready, release, releasing = (multiprocessing.Event() for _ in range(3))
    p = multiprocessing.Process(target=_hold_until_told, args=(str(lock), ready, release, releasing))
    p.start()
    try:
        assert ready.wait(30)
        start = time.monotonic()
        with pytest.raises(LockTimeout), LedgerLock(lock, timeout=0.1, own_process=own_process):
            pass
        assert not releasing.is_set()  # it gave up while the lock was held, not because it was let go
        assert time.monotonic() - start < 20  # only catches a hang; the timeout itself is 0.1 s
        release.set()
        with LedgerLock(lock, timeout=30, own_process=own_process):
            assert releasing.is_set()  # got it only once the holder let go
    finally:
        release.set()
        p.join(30)
    import signal

    assert signal.getsignal(signal.SIGALRM) == signal.SIG_DFL
    assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)


class _Syscalls:
    """Records, in order, which paths were fsynced and renamed onto (through the real calls)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, *, folder_fsync_error: int | None = None) -> None:
        self.events: list[tuple[str, Path]] = []
        self._fds: dict[int, Path] = {}
        real_open, real_fsync, real_replace = os.open, os.fsync, os.replace

        def open_(path: object, flags: int, *args: object, **kwargs: object) -> int:
            fd = real_open(path, flags, *args, **kwargs)  # type: ignore[arg-type]
            self._fds[fd] = Path(str(path))
            return fd

        def fsync(fd: int) -> None:
            path = self._fds.get(fd, Path("?"))
            self.events.append(("fsync", path))
            if folder_fsync_error is not None and path.is_dir():
                raise OSError(folder_fsync_error, os.strerror(folder_fsync_error))
            real_fsync(fd)

        def replace(src: object, dst: object) -> None:
            self.events.append(("replace", Path(str(dst))))
            real_replace(src, dst)  # type: ignore[arg-type]

        monkeypatch.setattr(os, "open", open_)
        monkeypatch.setattr(os, "fsync", fsync)
        monkeypatch.setattr(os, "replace", replace)


def test_the_folder_is_fsynced_after_the_rename(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without it a crash after os.replace can bring the old ledger back (docs/ledger.md: "fsynced and renamed")."""
    path = tmp_path / "l.toml"
    calls = _Syscalls(monkeypatch)
    with Ledger(path).transaction() as state:
        state.overall.input = 1
    assert calls.events == [
        ("fsync", tmp_path / ".l.toml.tmp"),
        ("replace", path),
        ("fsync", tmp_path),
    ]


@pytest.mark.parametrize("code", [errno.EINVAL, errno.EBADF], ids=["EINVAL", "EBADF"])
def test_a_filesystem_that_refuses_to_fsync_a_folder_is_not_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, code: int
) -> None:
    path = tmp_path / "l.toml"
    _Syscalls(monkeypatch, folder_fsync_error=code)
    with Ledger(path).transaction() as state:
        state.overall.input = 7
    assert kit.tokens(Ledger(path).read(), "overall")["input"] == 7


@pytest.mark.parametrize("mode", [0o600, 0o664, 0o640], ids=["private", "group-writable", "group-readable"])
def test_a_write_keeps_the_ledgers_mode(tmp_path: Path, mode: int) -> None:
    path = tmp_path / "l.toml"
    with Ledger(path).transaction():
        pass
    path.chmod(mode)
    with Ledger(path).transaction() as state:
        state.overall.input = 1
    assert stat.S_IMODE(path.stat().st_mode) == mode


def test_a_new_ledger_is_created_0644_under_the_umask(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        with Ledger(tmp_path / "l.toml").transaction():
            pass
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "l.toml").stat().st_mode) == 0o644


def test_bucket_files_round_trip_for_any_scope_name(tmp_path: Path) -> None:
    from budget_state.ledger._windows import charge

    path = tmp_path / "l.toml"
    names = ["overall", "/review-pr", '/we"ird\\name', "/rév-iew", "/👩\u200d💻dev", "/del\x7f", "/.", "/" + "x" * 300]
    now = datetime.now(timezone.utc)
    with Ledger(path).transaction() as state:
        charge(state, names, now, {"input": 3, "usd_micros": 1})
    files = sorted(p.name for p in (tmp_path / "l.d" / "minutes").iterdir())
    assert len(files) == len(names) and all(len(f) <= 120 and not f.startswith(".") for f in files)
    got = Ledger(path).read()
    assert set(got.minutes) == set(names)
    assert all(got.minutes[n] == f"{int(now.timestamp() // 60)}:3,0,0,0,1" for n in names)
    # a hand edit that broke one scope's file: that scope's buckets start again, the others are kept
    (tmp_path / "l.d" / "minutes" / "%2Freview-pr").write_text("not\na bucket line\n")
    ledger = Ledger(path)
    with ledger.transaction() as state:
        assert "/review-pr" not in state.minutes and "/rév-iew" in state.minutes
        charge(state, ["/review-pr"], now, {"input": 1})
    assert ledger.recovered is not None and "%2Freview-pr" in str(ledger.recovered)
    assert Ledger(path).read().minutes["/review-pr"] == f"{int(now.timestamp() // 60)}:1,0,0,0,0"


def test_a_transaction_that_changes_nothing_does_not_write(tmp_path: Path) -> None:
    path = tmp_path / "budget-ledger.toml"
    ledger = Ledger(path)
    with ledger.transaction() as state:
        state.overall.input = 5
    before = path.stat()
    with ledger.transaction() as state:
        assert kit.tokens(state, "overall")["input"] == 5
    assert path.stat().st_ino == before.st_ino and path.stat().st_mtime_ns == before.st_mtime_ns
    with ledger.transaction() as state:
        state.overall.input = 7
    assert kit.tokens(Ledger(path).read(), "overall")["input"] == 7
