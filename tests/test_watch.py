"""``claude-budget watch``: when it rebuilds, what it prints off a terminal, how it stops."""

from __future__ import annotations

import io
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import budget_state
from budget_state.cli import _cli, _watch
from budget_state._api import Context

STAMP = re.compile(r"^--- \d\d:\d\d:\d\d ---$", re.MULTILINE)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / ".claude").mkdir()
    (tmp_path / ".claude" / "budget.toml").write_text('[commands."/review-pr"]\ntokens = "10k"\n')
    return tmp_path


def ctx_of(project: Path) -> Context:
    return Context.load(project, env={"HOME": str(project)})


def test_rebuilds_when_the_ledger_changes_or_the_clock_says_so(project: Path) -> None:
    ctx = ctx_of(project)
    clock = [0.0]
    ticks = _watch.changes(
        ctx, interval=1.0, clock=lambda: clock[0], sleep=lambda s: clock.__setitem__(0, clock[0] + s)
    )
    assert next(ticks) is True  # the first look, no ledger yet
    assert next(ticks) is False
    budget_state.record_usage({"input": 5}, command="/review-pr", project=project, env={"HOME": str(project)})
    assert next(ticks) is True  # the ledger appeared
    assert next(ticks) is False
    budget_state.record_usage({"input": 5}, command="/review-pr", project=project, env={"HOME": str(project)})
    assert next(ticks) is True  # replaced by a writer
    seen = [next(ticks) for _ in range(int(_watch.REFRESH))]
    assert seen[-1] is True and not any(seen[:-1])  # and at least every REFRESH seconds anyway


def test_plain_output_is_one_block_per_interval(project: Path) -> None:
    budget_state.record_usage({"input": 2500}, command="/review-pr", project=project, env={"HOME": str(project)})
    out = io.StringIO()
    _watch.watch_plain(ctx_of(project), interval=0.01, out=out, width=80, ticks=3)
    text = out.getvalue()
    assert len(STAMP.findall(text)) == 3
    blocks = STAMP.split(text)[1:]
    assert all("/review-pr" in b and "2.5K/10K  25%" in b for b in blocks), text
    assert "\x1b" not in text


def test_a_ledger_being_repaired_is_shown_not_fatal(project: Path) -> None:
    (project / ".claude" / "budget-ledger.toml").write_text("schema_version = 3\n[overall\n")
    text = _watch.render(ctx_of(project), width=80, color=False)
    assert text.startswith("claude-budget: the ledger ") and "not valid TOML" in text


def test_interval_must_be_a_positive_number(capsys: pytest.CaptureFixture[str]) -> None:
    for bad in ("0", "-1", "soon", "1e9"):
        assert _cli.main(["watch", "--interval", bad]) == 2
        assert "not an interval in seconds" in capsys.readouterr().err


def test_piped_watch_prints_blocks_and_ctrl_c_ends_it_with_0(project: Path) -> None:
    """The real command, its stdout a pipe: plain blocks as usage lands; SIGINT exits 0, quietly."""
    env = {**os.environ, "HOME": str(project), "CLAUDE_PROJECT_DIR": str(project), "NO_COLOR": ""}
    proc = subprocess.Popen(
        [sys.executable, "-m", "budget_state", "watch", "--interval", "0.2"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        time.sleep(1.0)
        budget_state.record_usage({"input": 7000}, command="/review-pr", project=project, env={"HOME": str(project)})
        time.sleep(1.0)
    finally:
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=20)
    assert (proc.returncode, err) == (0, "")
    blocks = STAMP.split(out)[1:]
    assert len(blocks) >= 5, out
    assert " 0/10K" in blocks[0] and "7.0K" not in blocks[0], blocks[0]  # before: nothing spent
    assert "7.0K/10K  70%" in blocks[-1], blocks[-1]
    assert "\x1b" not in out
