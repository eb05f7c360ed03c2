"""The ledger's files (schema 3): a small ledger file, a file per command, session and scope's buckets
beside it, one commit across them (the journal), and the migration from the one-file schema 2."""

from __future__ import annotations

import json
import os
import stat
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import kit
import pytest
from hypothesis import given
from hypothesis import strategies as st

from budget_state._errors import LedgerError
from budget_state._model import Usage
from budget_state.ledger import _records, _store
from budget_state.ledger._ledger import BUCKETS_MARKER, MIGRATIONS, SCHEMA_VERSION, Ledger
from budget_state.ledger._runs import close_run, open_run, record
from budget_state.ledger._state import LedgerState, Session
from budget_state.ledger._windows import charge

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=timezone.utc)


def _spend(state: LedgerState, command: str, n: int) -> None:
    state.overall.add({"input": n}, "m")
    state.command(command).add({"input": n}, "m")
    charge(state, ["overall", command], datetime.now(timezone.utc), {"input": n})


def test_the_ledger_file_holds_no_command_session_or_bucket_and_the_parts_hold_one_each(tmp_path: Path) -> None:
    import tomllib

    path = tmp_path / "budget-ledger.toml"
    with Ledger(path).transaction() as state:
        _spend(state, "/review-pr", 5)
        state.sessions["s-1"] = Session(seen=datetime.now(timezone.utc).replace(microsecond=0))
    doc = tomllib.loads(path.read_text())
    assert doc["schema_version"] == SCHEMA_VERSION == 3
    assert not {"commands", "sessions", "minutes", "quarters"} & set(doc)
    parts = tmp_path / "budget-ledger.d"
    assert sorted(os.listdir(parts)) == ["commands", "minutes", "quarters", "sessions"]
    assert json.loads((parts / "commands" / "%2Freview-pr.json").read_text())["input"] == 5  # plain JSON
    assert json.loads((parts / "sessions" / "s-1.json").read_text())["files"] == {}
    assert sorted(os.listdir(parts / "minutes")) == ["%2Freview-pr", "overall"]
    assert stat.S_IMODE((parts / "sessions").stat().st_mode) & 0o077 == 0  # private folders
    assert not (parts / _store.JOURNAL).exists()  # applied, then removed


def test_a_writer_killed_after_its_commit_is_finished_by_the_next_and_read_through_before(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "budget-ledger.toml"
    with Ledger(path).transaction() as state:
        _spend(state, "/a", 1)
    real_apply = _store._apply

    def killed(ledger: Path, folder: Path, changes: list[tuple[str, bytes | None]]) -> None:
        real_apply(ledger, folder, changes[:1])  # one file replaced, then the process dies
        raise KeyboardInterrupt

    monkeypatch.setattr(_store, "_apply", killed)
    with pytest.raises(KeyboardInterrupt), Ledger(path).transaction() as state:
        _spend(state, "/a", 10)
    monkeypatch.setattr(_store, "_apply", real_apply)
    journal = tmp_path / "budget-ledger.d" / _store.JOURNAL
    assert journal.exists()
    seen = Ledger(path).read()  # a reader without the lock: the committed state, through the journal
    assert kit.tokens(seen, "overall")["input"] == 11 and kit.tokens(seen, "/a")["input"] == 11
    with Ledger(path).transaction() as state:  # the next writer applies it first
        assert kit.tokens(state, "overall")["input"] == 11 and kit.tokens(state, "/a")["input"] == 11
    assert not journal.exists()
    got = Ledger(path).read()
    assert kit.tokens(got, "/a")["input"] == 11 and got.minutes["/a"].endswith(":11,0,0,0,0")


def test_a_writer_killed_before_its_commit_changed_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "budget-ledger.toml"
    with Ledger(path).transaction() as state:
        _spend(state, "/a", 1)
    before = {p.relative_to(tmp_path): p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}

    def killed(*args: Any, **kw: Any) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(_store, "write_atomic", killed)
    with pytest.raises(KeyboardInterrupt), Ledger(path).transaction() as state:
        _spend(state, "/a", 10)
    after = {p.relative_to(tmp_path): p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    assert after == before


def test_an_event_reads_and_writes_only_the_files_it_changes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "budget-ledger.toml"
    with Ledger(path).transaction() as state:
        for i in range(200):
            _spend(state, f"/cmd-{i:03d}", 1)
            state.sessions[f"s{i}"] = Session(seen=datetime.now(timezone.utc))
    read: list[Path] = []
    written: list[str] = []
    real_read, real_commit = _store.read_private, _store.commit
    monkeypatch.setattr(_store, "read_private", lambda p, **kw: read.append(p) or real_read(p, **kw))
    monkeypatch.setattr(
        _store, "commit", lambda ledger, changes: written.extend(r for r, _ in changes) or real_commit(ledger, changes)
    )
    now = datetime.now(timezone.utc)
    with Ledger(path).transaction() as state:  # one session's command starts, and its response is counted
        open_run(state, session="s7", prompt="p1", command="/cmd-007", now=now)
        _spend(state, "/cmd-007", 3)
        close_run(state, session="s7", now=now)
    assert sorted(str(Path(p).relative_to(tmp_path)) for p in read if Path(p).name != _store.JOURNAL) == sorted(
        ["budget-ledger.toml", "budget-ledger.d/commands/%2Fcmd-007.json", "budget-ledger.d/sessions/s7.json"]
        + [f"budget-ledger.d/{t}/{s}" for t in ("minutes", "quarters") for s in ("overall", "%2Fcmd-007")]
    )
    assert sorted(written) == sorted(
        ["ledger", "commands/%2Fcmd-007.json", "sessions/s7.json"]
        + [f"{t}/{s}" for t in ("minutes", "quarters") for s in ("overall", "%2Fcmd-007")]
    )


def test_a_schema_2_ledger_is_split_on_its_first_write_keeping_every_total(tmp_path: Path) -> None:
    import tomli_w

    path = tmp_path / "budget-ledger.toml"
    minute = int(datetime.now(timezone.utc).timestamp() // 60)
    one_file = {
        "schema_version": 2,
        "overall": {"input": 100, "usd_micros": 9},
        "commands": {"/a": {"runs": 3, "input": 30, "recent": "1,2,0,0,0"}, "/b": "a hand edit: not a table"},
        "runs": [],
        "sessions": {"s1": {"seen": datetime.now(timezone.utc).replace(microsecond=0), "files": {"/t": {"offset": 4}}}},
    }
    path.write_text(
        tomli_w.dumps(one_file)
        + BUCKETS_MARKER
        + f"[minutes]\n\"overall\" = '{minute}:100,0,0,0,9'\n\"/a\" = '{minute}:30,0,0,0,0'\n"
    )
    before = Ledger(path).read()  # read as it is, before any write
    assert kit.tokens(before, "/a")["input"] == 30 and before.minutes["/a"] == f"{minute}:30,0,0,0,0"
    with Ledger(path).transaction():
        pass
    got = Ledger(path).read()
    assert got.version == 3 and BUCKETS_MARKER not in path.read_text()
    assert got.overall.dump() == one_file["overall"]
    # /a whole (schema 2's one-string "recent" is read as its list of runs), /b (not a table) dropped
    assert {k: v.dump() for k, v in got.commands.items()} == {
        "/a": {"runs": 3, "input": 30, "recent": [[1, 2, 0, 0, 0]]}
    }
    assert _records.recent(got, "/a") == [[1, 2, 0, 0, 0]]
    assert {path: cursor.dump() for path, cursor in got.sessions["s1"].files.items()} == {"/t": {"offset": 4}}
    assert got.minutes["overall"] == f"{minute}:100,0,0,0,9" and got.minutes["/a"] == f"{minute}:30,0,0,0,0"
    assert [m[0] for m in MIGRATIONS] == [1, 2]  # named, forward-only, in order


def test_sessions_idle_too_long_are_forgotten_when_a_session_starts_without_reading_them(tmp_path: Path) -> None:
    path = tmp_path / "budget-ledger.toml"
    now = datetime.now(timezone.utc)
    with Ledger(path).transaction() as state:
        for sid in ("old", "recent"):
            state.sessions[sid] = Session(seen=now)
    folder = tmp_path / "budget-ledger.d" / "sessions"
    eight_days = (now - timedelta(days=8)).timestamp()
    os.utime(folder / "old.json", (eight_days, eight_days))
    (folder / "old.json").write_text("{not json")  # never read: its time says it all
    os.utime(folder / "old.json", (eight_days, eight_days))
    with Ledger(path).transaction() as state:
        state.sessions["new"] = Session(seen=now)
    assert sorted(os.listdir(folder)) == ["new.json", "recent.json"]


def test_an_api_run_goes_to_the_run_log_and_the_command_keeps_its_totals(tmp_path: Path) -> None:
    from budget_state.ledger._runlog import read_runs

    path = tmp_path / "budget-ledger.toml"
    for i in range(60):
        with Ledger(path).transaction() as state:
            record(
                state,
                Usage(1, 2),
                command="/a",
                model="m",
                session=None,
                prompt=f"p{i}",
                now=datetime.now(timezone.utc),
            )
    got = Ledger(path).read()
    assert kit.totals(got, "/a")["runs"] == 60 and kit.totals(got, "/a")["output"] == 120
    assert len(_records.runs(got)) + len(list(read_runs(path))) == 60


@pytest.mark.parametrize("plant", ["symlink", "world-writable"])
def test_a_part_file_that_is_not_the_users_own_private_file_is_never_read(tmp_path: Path, plant: str) -> None:
    path = tmp_path / "budget-ledger.toml"
    with Ledger(path).transaction() as state:
        _spend(state, "/a", 1)
    part = tmp_path / "budget-ledger.d" / "commands" / "%2Fa.json"
    if plant == "symlink":
        elsewhere = tmp_path / "elsewhere.json"
        elsewhere.write_text('{"input": 999999}\n')
        part.unlink()
        part.symlink_to(elsewhere)
    else:
        part.chmod(0o666)
    with pytest.raises(LedgerError, match=r"budget-ledger\.d/commands"):
        _records.scope(Ledger(path).read(), "/a")
    with pytest.raises(LedgerError), Ledger(path).transaction() as state:
        _records.scope(state, "/a")


def test_a_parts_folder_others_can_write_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "budget-ledger.toml"
    with Ledger(path).transaction() as state:
        _spend(state, "/a", 1)
    (tmp_path / "budget-ledger.d").chmod(0o777)
    with pytest.raises(LedgerError, match="other users can write"):
        Ledger(path).read()
    with pytest.raises(LedgerError, match="other users can write"), Ledger(path).transaction():
        pass


def test_a_journal_naming_a_file_outside_the_parts_is_refused(tmp_path: Path) -> None:
    import json

    path = tmp_path / "budget-ledger.toml"
    with Ledger(path).transaction() as state:
        _spend(state, "/a", 1)
    journal = tmp_path / "budget-ledger.d" / _store.JOURNAL
    journal.write_text(json.dumps({"entries": {"commands/../../../evil": "x"}}))
    with pytest.raises(LedgerError, match="journal"), Ledger(path).transaction():
        pass
    assert not (tmp_path.parent / "evil").exists()


@given(st.text(min_size=1, max_size=200))
def test_a_key_and_its_file_name_round_trip(key: str) -> None:
    name = _store.encode(key)
    assert "/" not in name and not name.startswith(".") and 0 < len(name) <= 120
    if "~" not in name:
        assert _store.decode(name) == key


@pytest.mark.parametrize("name", ["%2", "%2G", "a%", "a b", "a.json", "%C3", "%FF", ".hidden", "", "x~1"])
def test_a_file_name_encode_did_not_make_has_no_key(name: str) -> None:
    assert _store.decode(name) is None  # a stray file in a parts folder is not an entry


def test_a_reader_never_shows_a_command_from_after_a_commit_and_overall_from_before(tmp_path: Path) -> None:
    """Read without the lock, a command's part is read when used, after the ledger file: a writer
    committing in between would give a status /a's totals from after it and overall's from before.
    ``Ledger.consistent`` sees that the ledger file changed under it and reads again; after
    CONSISTENT_TRIES changes in a row it reads under the lock, which no writer holds meanwhile."""
    from budget_state.ledger._ledger import CONSISTENT_TRIES
    from budget_state.ledger._lock import LedgerLock, LockTimeout

    path = tmp_path / "budget-ledger.toml"
    ledger = Ledger(path)
    with ledger.transaction() as state:
        _spend(state, "/a", 10)

    for interfering in (1, CONSISTENT_TRIES):
        calls: list[bool] = []

        def use(state: LedgerState, interfering: int = interfering, calls: list[bool] = calls) -> tuple[int, int]:
            overall = _records.scope(state, "overall").usage.input  # the ledger file, read already
            if len(calls) < interfering:  # a writer commits before this reader gets to /a's part
                with ledger.transaction() as other:
                    _spend(other, "/a", 5)
                calls.append(False)
            else:
                try:  # is the lock held (by this reader's last try)?
                    with LedgerLock(ledger.lock_path, timeout=0):
                        calls.append(False)
                except LockTimeout:
                    calls.append(True)
            return overall, _records.scope(state, "/a").usage.input

        overall, a = ledger.consistent(use)
        assert overall == a  # one commit's view: never /a from after a commit and overall from before
        assert len(calls) == interfering + 1
        assert calls[-1] is (interfering == CONSISTENT_TRIES)  # busy writers: the last read took the lock
        assert ledger.read().overall.input == overall
