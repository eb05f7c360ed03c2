"""3. Contention: N worker processes, each recording usage into ONE ledger through ``budget_state.record_usage``.

Run by ``run.py`` (``contention()``); each worker is this file run as a script (``worker()``): it
imports everything first, says "ready", waits for "go" on stdin so all start together, then times
each ``record_usage`` call (and, by wrapping ``LedgerLock.acquire``, the part spent waiting for
the lock) and prints one JSON line.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

USAGE = {"input": 3, "output": 5, "cache_creation": 7, "cache_read": 11}
COMMANDS = 8


def _now() -> int:
    return time.clock_gettime_ns(time.CLOCK_MONOTONIC)  # one clock for every process on the machine


def worker(index: int, updates: int, project: str) -> None:
    sys.path.insert(1, str(Path(__file__).resolve().parent.parent))  # the real package (see run.py)
    import budget_state
    from budget_state import _api  # noqa: F401 (import before the clock starts)

    waits: list[int] = []
    try:
        from budget_state.ledger import _lock

        original = _lock.LedgerLock.acquire

        def timed_acquire(self: Any) -> None:
            t = _now()
            try:
                original(self)
            finally:
                waits.append(_now() - t)

        _lock.LedgerLock.acquire = timed_acquire  # type: ignore[method-assign]  # measuring only
    except (ImportError, AttributeError):
        pass  # the lock moved: report the wait as n/a
    for name in ("tomllib", "tomli_w", "uuid"):  # lazy imports of the write path, paid once
        __import__(name)
    env = {"CLAUDE_PROJECT_DIR": project, "HOME": str(Path(project).parent / "home")}
    print("ready", flush=True)
    sys.stdin.readline()
    latencies: list[int] = []
    failed: dict[str, int] = {}
    start = _now()
    for i in range(updates):
        t = _now()
        try:
            budget_state.record_usage(
                USAGE, command=f"/bench-{(index + i) % COMMANDS}", model="claude-bench", project=project, env=env
            )
        except Exception as e:  # noqa: BLE001 (counted and reported, e.g. LockTimeout)
            failed[type(e).__name__] = failed.get(type(e).__name__, 0) + 1
            continue
        latencies.append(_now() - t)
    end = _now()
    print(json.dumps({"lat": latencies, "wait": waits, "start": start, "end": end, "failed": failed}), flush=True)


def run_level(python: str, project: Path, env: dict[str, str], procs: int, updates: int) -> dict[str, Any]:
    """Start ``procs`` workers, release them together, gather their timings."""
    cmd = [python, __file__, "--worker", "", str(updates), str(project)]
    workers = []
    for i in range(procs):
        cmd[3] = str(i)
        workers.append(subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env, cwd=project))
    for w in workers:
        assert w.stdout is not None and w.stdout.readline().strip() == b"ready", "a contention worker did not start"
    for w in workers:
        assert w.stdin is not None
        w.stdin.write(b"go\n")
        w.stdin.flush()
    reports = []
    for w in workers:
        out, _ = w.communicate()
        reports.append(json.loads(out))
    return {
        "lat": sorted(x for r in reports for x in r["lat"]),
        "wait": sorted(x for r in reports for x in r["wait"]),
        "wall": max(r["end"] for r in reports) - min(r["start"] for r in reports),
        "ok": sum(len(r["lat"]) for r in reports),
        "failed": {k: sum(r["failed"].get(k, 0) for r in reports) for r in reports for k in r["failed"]},
    }


def ledger_totals(path: Path) -> dict[str, int]:
    """What the ledger holds, read directly (not through the product): overall from the ledger file
    (tomllib), each command from its part file beside it (``<stem>.d/commands/*.json``)."""
    import json
    import tomllib

    with open(path, "rb") as f:
        state = tomllib.load(f)
    overall = state.get("overall", {})
    parts = path.with_name(path.stem + ".d") / "commands"
    commands = [json.loads(p.read_bytes()) for p in parts.glob("*.json")] if parts.is_dir() else []
    commands += list(state.get("commands", {}).values())  # a ledger of schema 2 or before
    return {
        "tokens": sum(int(overall.get(k, 0)) for k in USAGE),
        "runs": sum(int(c.get("runs", 0)) for c in commands),
        "command_tokens": sum(int(c.get(k, 0)) for c in commands for k in USAGE),
    }


if __name__ == "__main__" and len(sys.argv) == 5 and sys.argv[1] == "--worker":
    worker(int(sys.argv[2]), int(sys.argv[3]), sys.argv[4])
