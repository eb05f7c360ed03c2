"""Timing whole processes, interleaved, and the statistics and machine facts the report needs."""

from __future__ import annotations

import gc
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

PYTHON = sys.executable
FLOOR = "python -c pass"
HOOK = [PYTHON, "-m", "budget_state.hook"]
HOOK_GOAL = 2.0  # a hook may cost at most twice the bare interpreter start


@dataclass
class Variant:
    """One thing to time: ``prepare()`` (untimed) sets the scene and returns this call's stdin."""

    name: str
    argv: Sequence[str]
    env: Mapping[str, str]
    cwd: Path
    prepare: Callable[[], bytes]


@dataclass
class Section:
    """One part of the report: a table, notes under it, and its rows for the summary."""

    title: str
    intro: str
    header: list[str]
    rows: list[list[str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    summary: list[tuple[str, str, str, str]] = field(default_factory=list)  # measure, result, goal, verdict


@dataclass
class Timing:
    ns: list[int] = field(default_factory=list)
    replies: Counter = field(default_factory=Counter)
    last_stdout: bytes = b""
    last_stderr: bytes = b""


@dataclass(frozen=True)
class Stats:
    n: int
    median: float  # milliseconds
    p90: float
    min: float
    max: float

    @classmethod
    def of(cls, ns: Sequence[int]) -> Stats:
        ms = sorted(v / 1e6 for v in ns)
        return cls(len(ms), statistics.median(ms), percentile(ms, 90), ms[0], ms[-1])


def percentile(sorted_values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile of an already sorted sequence."""
    if not sorted_values:
        return float("nan")
    rank = max(1, -(-len(sorted_values) * p // 100))
    return sorted_values[int(rank) - 1]


def spawn(argv: Sequence[str], stdin: bytes, *, env: Mapping[str, str], cwd: Path) -> tuple[int, int, bytes, bytes]:
    """Run one process to completion: (elapsed ns from spawn to exit, exit code, stdout, stderr).

    stdin/stdout/stderr are files, not pipes, so the harness does no I/O while the clock runs.
    """
    with tempfile.TemporaryFile() as fin, tempfile.TemporaryFile() as fout, tempfile.TemporaryFile() as ferr:
        fin.write(stdin)
        fin.seek(0)
        gc.disable()
        try:
            t0 = time.perf_counter_ns()
            proc = subprocess.Popen(list(argv), stdin=fin, stdout=fout, stderr=ferr, env=dict(env), cwd=cwd)
            rc = proc.wait()
            elapsed = time.perf_counter_ns() - t0
        finally:
            gc.enable()
        fout.seek(0)
        ferr.seek(0)
        return elapsed, rc, fout.read(), ferr.read()


def classify(rc: int, out: bytes) -> str:
    """A short name for what a hook answered: silent, block, stop, message: …, or rc=N."""
    if rc != 0:
        return f"rc={rc}"
    text = out.strip()
    if not text:
        return "silent"
    try:
        reply = json.loads(text)
    except ValueError:
        return "text"
    if not isinstance(reply, dict):
        return "json"
    if reply.get("decision") == "block":
        return "block"
    if reply.get("continue") is False:
        return "stop"
    if "systemMessage" in reply:
        return "message: " + str(reply["systemMessage"])[:120]
    return "json"


def interleave(variants: Sequence[Variant], *, runs: int, warmup: int, seed: int = 1) -> dict[str, Timing]:
    """Round-robin: every round runs every variant once, in a fresh random order; warm-up rounds are dropped."""
    rng = random.Random(seed)
    results = {v.name: Timing() for v in variants}
    for round_no in range(warmup + runs):
        order = list(variants)
        rng.shuffle(order)
        for v in order:
            stdin = v.prepare()
            ns, rc, out, err = spawn(v.argv, stdin, env=v.env, cwd=v.cwd)
            t = results[v.name]
            t.last_stdout, t.last_stderr = out, err
            if round_no >= warmup:
                t.ns.append(ns)
                t.replies[classify(rc, out)] += 1
    return results


def floor_variant(env: Mapping[str, str], cwd: Path, stdin: bytes = b"{}") -> Variant:
    return Variant(FLOOR, [PYTHON, "-c", "pass"], env, cwd, lambda: stdin)


def verdict(ok: bool) -> str:
    return "meets goal" if ok else "**misses goal**"


def fmt_ms(v: float) -> str:
    return f"{v:.1f}"


# --- the machine --------------------------------------------------------------------------------


def _first(path: str, key: str) -> str | None:
    try:
        with open(path, encoding="utf-8") as f:
            for line in f:
                name, _, value = line.partition(":" if path.startswith("/proc") else "=")
                if name.strip() == key:
                    return value.strip().strip('"')
    except OSError:
        return None
    return None


def _filesystem(path: Path) -> str:
    best, kind = "", "?"
    try:
        with open("/proc/mounts", encoding="utf-8") as f:
            for line in f:
                parts = line.split()
                if len(parts) >= 3 and str(path).startswith(parts[1]) and len(parts[1]) >= len(best):
                    best, kind = parts[1], f"{parts[2]} ({parts[0]} on {parts[1]})"
    except OSError:
        pass
    return kind


def _git(*args: str) -> str:
    try:
        return subprocess.run(
            ["git", *args], capture_output=True, text=True, check=True, cwd=Path(__file__).resolve().parent.parent
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return ""


def code_fingerprint() -> str:
    """A hash of the source files of budget_state/ as they are on disk now (the code being measured)."""
    import hashlib

    digest = hashlib.sha1()
    package = Path(__file__).resolve().parent.parent / "budget_state"
    for path in sorted(package.rglob("*.py")):
        digest.update(str(path.relative_to(package)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:10]


def product_version() -> str:
    """The commit, whether budget_state/ differs from it, and the fingerprint of the code on disk."""
    commit = _git("rev-parse", "--short", "HEAD")
    dirty = _git("status", "--porcelain", "--", "budget_state")
    state = "+ uncommitted changes in budget_state/" if dirty else "(clean budget_state/)"
    return f"git {commit} {state}, code sha1 {code_fingerprint()}"


def machine(tmp: Path) -> list[tuple[str, str]]:
    mem = _first("/proc/meminfo", "MemTotal")
    ram = f"{int(mem.split()[0]) / 1024 / 1024:.1f} GiB" if mem else "?"
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count() or 0
    os_name = _first("/etc/os-release", "PRETTY_NAME") or platform.system()
    product = product_version()
    return [
        ("CPU", _first("/proc/cpuinfo", "model name") or platform.processor() or "?"),
        ("Cores", f"{os.cpu_count()} logical, {usable} usable by this process"),
        ("RAM", ram),
        ("OS", f"{os_name}, kernel {platform.release()} ({platform.machine()})"),
        ("Python", f"{platform.python_implementation()} {platform.python_version()} ({PYTHON})"),
        ("Temp files on", _filesystem(tmp)),
        ("Product", product),
        (
            "Bytecode",
            "budget_state compiled before timing (PYTHONDONTWRITEBYTECODE="
            f"{os.environ.get('PYTHONDONTWRITEBYTECODE', 'unset')} here)",
        ),
        ("Load average at start", " ".join(f"{x:.2f}" for x in os.getloadavg()) + " (1, 5, 15 min)"),
        ("Date", datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")),
    ]


# --- shared by the suites ---------------------------------------------------------------------


@dataclass(frozen=True)
class Config:
    runs: int
    warmup: int
    contention_procs: tuple[int, ...]
    contention_updates: int
    growth_runs: int
    growth_sessions: int
    growth_commands: int
    big_mb: int


def new_lines(rng: random.Random) -> int:
    return rng.randint(1, 5)  # new assistant lines per timed call


def stats_row(name: str, t: Timing, floor: Stats, extra: Sequence[str] = ()) -> tuple[list[str], Stats]:
    s = Stats.of(t.ns)
    return [
        name,
        *extra,
        fmt_ms(s.median),
        fmt_ms(s.p90),
        f"{fmt_ms(s.min)}–{fmt_ms(s.max)}",
        f"{s.median / floor.median:.2f}×",
    ], s


def floor_row(floor: Stats, /, *, before: int = 0, after: int) -> list[str]:
    """The `python -c pass` row of a table: ``before`` blank cells after the name, ``after`` at the end."""
    return [
        FLOOR,
        *["—"] * before,
        fmt_ms(floor.median),
        fmt_ms(floor.p90),
        f"{fmt_ms(floor.min)}–{fmt_ms(floor.max)}",
        "1.00×",
        *["—"] * after,
    ]


def reply_kinds(t: Timing) -> str:
    return ", ".join(f"{k} ×{n}" if len(t.replies) > 1 else k for k, n in t.replies.most_common())


def slowest(variants: dict[str, Variant], results: dict[str, Timing]) -> Variant | None:
    """The hook with the highest median, leaving out rows that time a deliberate wait."""
    hooks = [n for n in results if n != FLOOR and "worst case" not in n]
    if not hooks:
        return None
    return variants[max(hooks, key=lambda n: Stats.of(results[n].ns).median)]
