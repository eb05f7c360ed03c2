"""The run log beside the ledger: append, rotate, read back; torn and bad lines; many writers."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from budget_state._paths import lock_path
from budget_state.ledger._runlog import ROTATE_BYTES, append_runs, read_runs, runlog_path, to_record

T0 = datetime(2026, 12, 2, 10, 0, tzinfo=timezone.utc)


def run(i: int, *, command: str = "/review-pr", **extra: object) -> dict[str, object]:
    """A finished run as the ledger keeps it."""
    r: dict[str, object] = {
        "prompt": f"p{i}",
        "command": command,
        "session": "s1",
        "started": T0 + timedelta(minutes=i),
        "ended": T0 + timedelta(minutes=i, seconds=30),
        "input": i,
        "output": 2 * i,
        "cache_creation": 3,
        "cache_read": 4,
        "usd_micros": 1000 + i,
        "models": {
            "claude-sonnet-4-5": {
                "input": i,
                "output": 2 * i,
                "cache_creation": 3,
                "cache_read": 4,
                "usd_micros": 1000 + i,
            }
        },
        "limit": 50000,
        "file": ".claude/commands/review-pr.md",
    }
    r.update(extra)
    return r


def test_path_is_beside_the_ledger(tmp_path: Path) -> None:
    assert runlog_path(tmp_path / "budget-ledger.toml") == tmp_path / "budget-ledger.runs.jsonl"
    assert runlog_path(tmp_path / "shared.toml") == tmp_path / "shared.runs.jsonl"


def test_record_shape_on_disk(tmp_path: Path) -> None:
    ledger = tmp_path / "budget-ledger.toml"
    append_runs(ledger, [run(1, source="api", orchestration="o-7")])
    line = runlog_path(ledger).read_text(encoding="utf-8")
    assert line.endswith("\n") and line.count("\n") == 1
    assert json.loads(line) == {
        "v": 1,
        "prompt": "p1",
        "command": "/review-pr",
        "session": "s1",
        "started": "2026-12-02T10:01:00Z",
        "ended": "2026-12-02T10:01:30Z",
        "input": 1,
        "output": 2,
        "cache_creation": 3,
        "cache_read": 4,
        "usd_micros": 1001,
        "models": {
            "claude-sonnet-4-5": {"input": 1, "output": 2, "cache_creation": 3, "cache_read": 4, "usd_micros": 1001}
        },
        "source": "api",
        "orchestration": "o-7",
    }


def test_round_trip_with_datetimes(tmp_path: Path) -> None:
    ledger = tmp_path / "l.toml"
    append_runs(ledger, [run(i) for i in range(5)])
    append_runs(ledger, [run(5, command="/deploy")])
    got = list(read_runs(ledger))
    assert [r["prompt"] for r in got] == [f"p{i}" for i in range(6)]
    assert got[-1]["command"] == "/deploy"
    assert got[2]["started"] == T0 + timedelta(minutes=2)
    assert got[2]["ended"].tzinfo is not None
    assert "limit" not in got[0] and "source" not in got[0]  # not part of the record


def test_missing_fields_and_naive_times(tmp_path: Path) -> None:
    ledger = tmp_path / "l.toml"
    naive = datetime(2026, 12, 2, 10, 0)
    append_runs(ledger, [{"command": "/x", "started": naive, "ended": naive, "input": -5, "models": "junk"}])
    (r,) = read_runs(ledger)
    assert r["started"] == naive.replace(tzinfo=timezone.utc)
    assert (r["input"], r["output"], r["usd_micros"], r["models"], r["prompt"]) == (0, 0, 0, {}, None)


def test_a_run_logged_twice_is_read_once_as_last_logged(tmp_path: Path) -> None:
    ledger = tmp_path / "l.toml"
    append_runs(ledger, [run(0), run(1)])
    append_runs(ledger, [run(1, input=99), run(2)])  # the writer was killed before the ledger let p1 go
    reader = read_runs(ledger)
    assert [(r["prompt"], r["input"]) for r in reader] == [("p0", 0), ("p1", 99), ("p2", 2)]


def test_since(tmp_path: Path) -> None:
    ledger = tmp_path / "l.toml"
    append_runs(ledger, [run(i) for i in range(10)])
    cut = T0 + timedelta(minutes=7)
    assert [r["prompt"] for r in read_runs(ledger, since=cut)] == ["p7", "p8", "p9"]  # ended 7:30 >= 7:00
    naive_cut = cut.replace(tzinfo=None)
    assert len(list(read_runs(ledger, since=naive_cut))) == 3


def test_missing_log_is_empty(tmp_path: Path) -> None:
    reader = read_runs(tmp_path / "nowhere" / "l.toml")
    assert list(reader) == [] and reader.skipped == 0
    append_runs(tmp_path / "l.toml", [])  # nothing to append: no file
    assert not runlog_path(tmp_path / "l.toml").exists()


def test_rotation(tmp_path: Path) -> None:
    ledger = tmp_path / "l.toml"
    log = runlog_path(ledger)
    one = len(json.dumps(to_record(run(0)), separators=(",", ":"))) + 1
    limit = 3 * one  # rotate once past three lines
    for i in range(4):
        append_runs(ledger, [run(i)], max_bytes=limit)
    assert not log.with_name(log.name + ".1").exists()  # 4 lines: the 4th was appended at 3 (not past)
    append_runs(ledger, [run(4)], max_bytes=limit)
    rotated = log.with_name(log.name + ".1")
    assert rotated.exists() and len(rotated.read_text().splitlines()) == 4
    assert [r["prompt"] for r in read_runs(ledger)] == ["p0", "p1", "p2", "p3", "p4"]  # .1 first
    for i in range(5, 9):
        append_runs(ledger, [run(i)], max_bytes=limit)
    # the second rotation replaced the first .1: p0–p3 are gone, nothing else
    assert [r["prompt"] for r in read_runs(ledger)] == [f"p{i}" for i in range(4, 9)]


def test_default_rotation_size() -> None:
    assert ROTATE_BYTES == 4 * 1024 * 1024


def test_torn_last_line_is_kept_apart_and_counted(tmp_path: Path) -> None:
    ledger = tmp_path / "l.toml"
    append_runs(ledger, [run(0)])
    log = runlog_path(ledger)
    whole = json.dumps(to_record(run(1)))
    with open(log, "a", encoding="utf-8") as f:
        f.write(whole[: len(whole) // 2])  # a writer killed mid-line
    reader = read_runs(ledger)
    assert [r["prompt"] for r in reader] == ["p0"]
    assert reader.skipped == 1
    append_runs(ledger, [run(2)])
    reader = read_runs(ledger)
    assert [r["prompt"] for r in reader] == ["p0", "p2"]
    assert reader.skipped == 1


@pytest.mark.parametrize(
    "line",
    [
        b"not json\n",
        b"[1, 2]\n",
        b'{"v": 2, "command": "/x", "started": "2026-12-02T10:00:00Z", "ended": "2026-12-02T10:00:00Z"}\n',
        b'{"v": 1, "command": 5, "started": "2026-12-02T10:00:00Z", "ended": "2026-12-02T10:00:00Z"}\n',
        b'{"v": 1, "command": "/x", "started": "yesterday", "ended": "2026-12-02T10:00:00Z"}\n',
        b"\xff\xfe\n",
    ],
    ids=["text", "array", "newer version", "command not a string", "bad time", "not utf-8"],
)
def test_bad_line_is_skipped_and_counted(tmp_path: Path, line: bytes) -> None:
    ledger = tmp_path / "l.toml"
    append_runs(ledger, [run(0)])
    with open(runlog_path(ledger), "ab") as f:
        f.write(line + b"\n")  # a blank line after it is not counted
    append_runs(ledger, [run(1)])
    reader = read_runs(ledger)
    assert [r["prompt"] for r in reader] == ["p0", "p1"]
    assert reader.skipped == 1


@settings(max_examples=50, deadline=None)
@given(
    st.lists(
        st.fixed_dictionaries(
            {
                "prompt": st.text(max_size=20),
                "command": st.text(min_size=1, max_size=20),
                "input": st.integers(min_value=0, max_value=2**63 - 1),
                "usd_micros": st.integers(min_value=0, max_value=2**63 - 1),
                "models": st.dictionaries(
                    st.text(min_size=1, max_size=10), st.fixed_dictionaries({"output": st.integers(0, 10**12)})
                ),
            }
        ),
        max_size=8,
    )
)
def test_any_runs_round_trip(runs: list[dict[str, object]]) -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        ledger = Path(d) / "l.toml"
        stamped = [{**r, "started": T0 + timedelta(seconds=i), "ended": T0} for i, r in enumerate(runs)]
        append_runs(ledger, stamped)
        reader = read_runs(ledger)
        got = list(reader)
        assert reader.skipped == 0
        assert [(g["prompt"], g["command"], g["input"], g["usd_micros"]) for g in got] == [
            (r["prompt"], r["command"], r["input"], r["usd_micros"]) for r in runs
        ]
        assert [{m: u["output"] for m, u in g["models"].items()} for g in got] == [
            {m: u["output"] for m, u in r["models"].items()}
            for r in runs  # type: ignore[attr-defined]
        ]


# Several processes append batches under the ledger lock, as the ledger's writers do.
WRITER = """
import sys
from datetime import datetime, timezone
from pathlib import Path
from budget_state.ledger._lock import LedgerLock
from budget_state._paths import lock_path
from budget_state.ledger._runlog import append_runs
ledger, who, batches, size, limit = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
now = datetime.now(timezone.utc)
for b in range(batches):
    runs = [{"prompt": f"{who}-{b}-{i}", "command": "/c", "started": now, "ended": now, "input": 1,
             "models": {"m": {"input": 1}}} for i in range(size)]
    with LedgerLock(lock_path(ledger), timeout=30):
        append_runs(ledger, runs, max_bytes=limit)
"""


def _writers(ledger: Path, *, procs: int, batches: int, size: int, limit: int) -> None:
    ps = [
        subprocess.Popen([sys.executable, "-c", WRITER, str(ledger), f"w{k}", str(batches), str(size), str(limit)])
        for k in range(procs)
    ]
    assert [p.wait(timeout=120) for p in ps] == [0] * procs


def test_many_writers_lose_nothing(tmp_path: Path) -> None:
    ledger = tmp_path / "l.toml"
    _writers(ledger, procs=6, batches=20, size=5, limit=ROTATE_BYTES)
    reader = read_runs(ledger)
    got = [r["prompt"] for r in reader]
    assert reader.skipped == 0
    assert sorted(got) == sorted(f"w{k}-{b}-{i}" for k in range(6) for b in range(20) for i in range(5))
    for k in range(6):  # each writer's batches in its own order
        mine = [p for p in got if p.startswith(f"w{k}-")]
        assert mine == [f"w{k}-{b}-{i}" for b in range(20) for i in range(5)]
    assert lock_path(ledger).exists()


def test_many_writers_with_rotation_keep_whole_lines(tmp_path: Path) -> None:
    ledger = tmp_path / "l.toml"
    _writers(ledger, procs=4, batches=25, size=3, limit=4096)
    log = runlog_path(ledger)
    rotated = log.with_name(log.name + ".1")
    assert rotated.exists()
    reader = read_runs(ledger)
    got = [r["prompt"] for r in reader]
    assert reader.skipped == 0
    assert len(got) == len(set(got)) > 0
    # what survives is the newest stretch: nothing missing after the oldest line still held
    lines = rotated.read_bytes().count(b"\n") + log.read_bytes().count(b"\n")
    assert lines == len(got)
    batch = 3 * max(len(line) for line in rotated.read_bytes().splitlines(keepends=True))
    assert rotated.stat().st_size > 4096 >= rotated.stat().st_size - batch  # rotated at the first batch past it


def test_a_log_that_cannot_be_written_is_a_ledger_error(tmp_path: Path) -> None:
    from budget_state._errors import LedgerError

    ledger = tmp_path / "l.toml"
    (tmp_path / "elsewhere").write_text("")
    runlog_path(ledger).symlink_to(tmp_path / "elsewhere")
    with pytest.raises(LedgerError, match=r"run log .*l\.runs\.jsonl is a symbolic link — remove it"):
        append_runs(ledger, [run(0)])
    assert (tmp_path / "elsewhere").read_text() == ""
    with pytest.raises(LedgerError, match=r"cannot write the run log .* — check that the folder is writable"):
        append_runs(tmp_path / "missing" / "l.toml", [run(0)])
