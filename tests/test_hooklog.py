"""The hook's log beside the ledger: what it could not do, bounded, with the version."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

from budget_state import __version__, _hooklog
from budget_state.hook import main


def test_lines_carry_time_version_and_event(tmp_path: Path) -> None:
    ledger = tmp_path / "budget-ledger.toml"

    _hooklog.write(ledger, "PreToolUse", "the ledger lock\nwas held", now=86400)

    assert (tmp_path / "budget-hook.log").read_text() == (
        f"1970-01-02T00:00:00Z claude-budget {__version__} pid {os.getpid()} PreToolUse: the ledger lock was held\n"
    )


def test_the_log_stays_bounded(tmp_path: Path) -> None:
    ledger = tmp_path / "budget-ledger.toml"

    for i in range(2000):
        _hooklog.write(ledger, "Stop", f"failure number {i:04d} " + "x" * 100)

    current = tmp_path / "budget-hook.log"
    rotated = tmp_path / "budget-hook.log.1"
    assert current.stat().st_size <= _hooklog.MAX_BYTES
    assert rotated.stat().st_size <= _hooklog.MAX_BYTES
    last = _hooklog.tail(ledger, lines=3)
    assert [line.split(": ", 1)[1][:19] for line in last] == [f"failure number {i}" for i in (1997, 1998, 1999)]
    assert len(_hooklog.tail(ledger, lines=10_000)) > 300  # the last few hundred lines are kept


def test_no_project_folder_no_log(tmp_path: Path) -> None:
    _hooklog.write(tmp_path / "missing" / "budget-ledger.toml", "Stop", "x")

    assert not (tmp_path / "missing").exists()


def test_a_failing_hook_logs_what_it_told_the_user(tmp_path: Path) -> None:
    (tmp_path / ".claude").mkdir()
    out = io.StringIO()

    assert main([], stdin=io.BytesIO(b"not json"), stdout=out, env={"CLAUDE_PROJECT_DIR": str(tmp_path)}) == 0

    said = json.loads(out.getvalue())["systemMessage"]
    logged = _hooklog.tail(tmp_path / ".claude" / "budget-ledger.toml")
    assert len(logged) == 1
    assert logged[0].endswith(f"claude-budget {__version__} pid {os.getpid()} ?: {said}")


def test_version_flag_names_the_package() -> None:
    out = io.StringIO()

    assert main(["--version"], stdin=io.BytesIO(b""), stdout=out, env={}) == 0

    assert out.getvalue() == f"claude-budget {__version__}\n"
