"""Crash safety at scale: ``.venv/bin/python benchmarks/crash.py [--trials 1000] [--out BENCHMARKS.md]``.

Real hook processes (``python -I -m budget_state.hook``, the events and ``--background`` flags that
``claude-budget install`` wires) of several Claude Code sessions write one project's ledger, 2–4
sessions at once, and are SIGKILLed at random moments. A *trial* is one turn of one session: its
prompt record and ``UserPromptSubmit``, one or two tool calls (``PreToolUse``, in the background), at
times a subagent (``SubagentStop``, in the background), the closing ``Stop`` — with one or two of
those hooks killed. Every other round an API writer (``record_usage`` in a loop, as an orchestrator
records runs) writes too, and is killed most times. Kill moments: 35 % over the whole run of a
process, 20 % from the moment it is seen holding the ledger lock, 25 % from the moment, holding it,
it begins to change a file beside the ledger — each within as long as that phase lasted on
processes that were not killed (measured first, and rescaled as the machine's load changes) — and
20 % within 3 ms of its first write that lands (a file other than a temp file changes: when the
state spans several files, between two of them), so that many kills land inside the transaction
and inside its writes.

After each round every file in the ledger's folder is listed and parsed (no names are assumed: the
state may span more files than the ledger and its run log), and the product reads the state. Then
each session settles once, cleanly (a ``Stop`` that is not killed), and the product's read
interfaces — the Python API every round, ``claude-budget status --json`` every few rounds and at
the end — must give, exactly to the token, the sums of the usage written to the transcripts:
overall and per command, the number of runs per command, and every run (kept in the ledger or the
run log, one per prompt) with its own turn's usage. Verdict: torn (a file that does not parse, a
read that fails, a file moved aside as corrupt), lost (less than the transcripts hold), counted
twice (more). ``CLAUDE_BUDGET_TIME_OFFSET`` moves the clock 5 minutes a round (for every process) so
that finished runs age and leave the ledger for the run log while writers are being killed.

``run()`` is also what ``tests/reliability/test_crash_safety.py`` runs, with a small sample.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
for _path in (str(REPO), str(HERE)):  # the real package (see run.py), and _world/_harness by name
    if _path not in sys.path:
        sys.path.insert(1, _path)

from _harness import PYTHON, machine  # noqa: E402 (after the path fix)
from _world import Project, Sandbox, Session  # noqa: E402

CATEGORIES = ("input", "output", "cache_creation", "cache_read")
FIELDS = {
    "input": "input_tokens",
    "output": "output_tokens",
    "cache_creation": "cache_creation_input_tokens",
    "cache_read": "cache_read_input_tokens",
}
COMMANDS = ("alpha", "beta", "gamma")
SESSIONS = 6
SEED_COMMAND = "/seed"
API_COMMAND = "/api"  # what the API writers record (see API_WRITER)
API_EVENT = "record_usage"  # how the report names an API writer
API_CALLS = 8  # record_usage calls per API writer
API_USAGE = {"input": 1, "output": 20, "cache_creation": 0, "cache_read": 300}
# A writer through the public API, as an orchestrator is one: record_usage in a loop, one "." on
# stdout per call that returned (the call in flight when it is killed may or may not have landed).
API_WRITER = """
import os, sys
import budget_state
for _ in range(int(sys.argv[2])):
    budget_state.record_usage(
        {"input": 1, "output": 20, "cache_creation": 0, "cache_read": 300}, command="/api", project=sys.argv[1]
    )
    os.write(1, b".")
"""
SEEDED_RUNS = 45  # API runs (they may leave the ledger at once): a few more finished runs and a batch moves
ROUND_SECONDS = 300  # the clock moves this much a round, so finished runs age out of the ledger
OFFSET_ENV = "CLAUDE_BUDGET_TIME_OFFSET"
BACKGROUND = frozenset({"PreToolUse", "SubagentStop"})  # as install wires them in warn mode
#: A hook's reply that says it failed (hook.failure): never expected from a hook that was not killed.
FAILED = ("budgets not enforced for this step", "internal error")
MARK_START, MARK_END = "<!-- crash:start -->", "<!-- crash:end -->"
_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|[0-9a-f]{16,}|\d{6,}")


# --- what the transcripts hold --------------------------------------------------------------------


def usage_in(data: bytes) -> Counter[str]:
    """The usage of the API responses in transcript lines: each response once (by message and request
    id, the largest value of each field), summed — what Claude Code itself reports."""
    responses: dict[tuple[str, str], dict[str, int]] = {}
    for line in data.splitlines():
        rec = json.loads(line)
        if rec.get("type") != "assistant":
            continue
        msg = rec["message"]
        key = (str(msg.get("id")), str(rec.get("requestId")))
        seen = responses.setdefault(key, dict.fromkeys(CATEGORIES, 0))
        for c in CATEGORIES:
            seen[c] = max(seen[c], int(msg["usage"].get(FIELDS[c], 0)))
    total: Counter[str] = Counter(dict.fromkeys(CATEGORIES, 0))
    for u in responses.values():
        total.update(u)
    return total


def tokens(counts: Mapping[str, Any]) -> dict[str, int]:
    return {c: int(counts.get(c, 0)) for c in CATEGORIES}


# --- the lock, seen from outside ------------------------------------------------------------------


def lock_holders(folder: Path) -> set[int] | None:
    """The pids holding a ``flock`` on a ``*.lock`` file of ``folder`` (Linux ``/proc/locks``), or None
    where that cannot be seen. Waiters (``->`` lines) do not hold it."""
    try:
        inodes = {str(p.stat().st_ino) for p in folder.glob("*.lock")}
        text = Path("/proc/locks").read_text()
    except OSError:
        return None
    pids = set()
    for line in text.splitlines():
        parts = line.split()
        if len(parts) >= 6 and parts[1] == "FLOCK" and parts[5].rpartition(":")[2] in inodes:
            pids.add(int(parts[4]))
    return pids


def temp_files(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*.tmp") if "commands" not in p.relative_to(folder).parts]


def committed(before: Mapping[str, tuple[int, int, int]], now: Mapping[str, tuple[int, int, int]]) -> bool:
    """Whether a file other than a temp file appeared or changed between two signatures: a write landed
    (a rename over the ledger, an append, another state file) — in a state of several files, a kill
    just after it is one between two of them."""
    return any(not path.endswith(".tmp") and before.get(path) != st for path, st in now.items())


def appended(before: Mapping[str, tuple[int, int, int]], now: Mapping[str, tuple[int, int, int]]) -> bool:
    """Whether a file grew in place (same inode, more bytes) between two signatures."""
    return any(path in before and st[0] == before[path][0] and st[1] > before[path][1] for path, st in now.items())


def signature(folder: Path) -> dict[str, tuple[int, int, int]]:
    """Every file of the folder (its command files aside) by name: inode, size, modification time —
    a change means a writer has begun writing (a temp file, an append, a rename)."""
    out = {}
    for top, dirs, names in os.walk(folder):
        if top == str(folder) and "commands" in dirs:
            dirs.remove("commands")
        for name in names:
            try:
                st = os.stat(os.path.join(top, name))
            except FileNotFoundError:
                continue  # gone between the listing and the stat: a rename under way
            out[os.path.join(top, name)] = (st.st_ino, st.st_size, st.st_mtime_ns)
    return out


@dataclass(frozen=True)
class Phases:
    """One hook watched at calibration, in seconds: its whole run, how long it held the lock, and how
    long, holding it, from its first change of a file beside the ledger to the release (None: not seen)."""

    whole: float
    held: float | None
    writing: float | None

    @staticmethod
    def median(samples: list[Phases]) -> Phases:
        def of(values: list[float | None]) -> float | None:
            seen = [v for v in values if v is not None]
            return statistics.median(seen) if seen else None

        return Phases(
            statistics.median(s.whole for s in samples), of([s.held for s in samples]), of([s.writing for s in samples])
        )

    def __str__(self) -> str:
        def ms(v: float | None) -> str:
            return "?" if v is None else f"{1000 * v:.0f} ms"

        return f"{ms(self.whole)}, lock held {ms(self.held)}, of which writing {ms(self.writing)}"


# --- one hook process -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Kill:
    """When to SIGKILL a hook: ``after`` seconds from a moment of its run — its start (``aim="any"``),
    the moment it is first seen holding the ledger lock (``"lock"``), the moment, with the lock held,
    a file beside the ledger first changes (``"write"``), a file other than a temp file first changes
    (``"commit"``: a write has landed, others of the same transaction may not have), or one grows in
    place — an append, as to the run log (``"append"``, which most transactions never make). Watched
    every millisecond; a process that never shows the moment is not killed."""

    after: float
    aim: str = "any"
    skip: int = 0  # with an aim: let this many transactions go by first (an API writer makes several)


class Hook:
    """``python -I -m budget_state.hook`` with a payload; optionally SIGKILLed (by a thread of its own,
    so the caller goes on as Claude Code does with a background hook)."""

    def __init__(
        self,
        project: Project,
        event: str,
        stdin: bytes,
        env: Mapping[str, str],
        kill: Kill | None,
        argv: list[str] | None = None,
    ):
        self.event = event
        self.folder = project.ledger.parent
        if argv is None:
            argv = [PYTHON, "-I", "-m", "budget_state.hook"] + (["--background"] if event in BACKGROUND else [])
        self.started = time.monotonic()
        self.proc = subprocess.Popen(
            argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=dict(env),
            cwd=project.root,
        )
        assert self.proc.stdin is not None
        self.proc.stdin.write(stdin)  # small: the pipe takes it whole, as Claude Code hands it over
        self.proc.stdin.close()
        self.proc.stdin = None  # given: communicate() has nothing more to send
        self.kill = kill
        self.held_lock: bool | None = None  # at the moment of the kill
        self.writing = False  # at the moment of the kill: it held the lock and had begun writing
        self.temp_left = False  # a temp file beside the ledger just after it died holding the lock
        self.out = b""
        self.err = b""
        self.ended: float | None = None
        self._timer: threading.Thread | None = None
        if kill is not None:
            self._timer = threading.Thread(target=self._kill, args=(kill,))
            self._timer.start()

    def _holds(self) -> bool:
        return self.proc.pid in (lock_holders(self.folder) or ())

    def _running(self) -> bool:
        return self.proc.poll() is None

    def _wait_for_lock(self) -> None:
        while self._running() and not self._holds():
            time.sleep(0.001)

    def _watch(
        self, change: Callable[[dict[str, tuple[int, int, int]], dict[str, tuple[int, int, int]]], bool]
    ) -> bool:
        """While it holds the lock: whether ``change(before, now)`` comes true of the folder's signature."""
        before = signature(self.folder)
        while self._running() and self._holds():
            if change(before, signature(self.folder)):
                return True
            time.sleep(0.001)
        return False

    def _kill(self, kill: Kill) -> None:
        wrote = False
        if kill.aim in ("lock", "write", "commit"):
            for _ in range(kill.skip):
                self._wait_for_lock()
                while self._running() and self._holds():
                    time.sleep(0.001)
            self._wait_for_lock()
            if kill.aim == "write":
                wrote = self._watch(lambda before, now: before != now)
            elif kill.aim == "commit":
                wrote = self._watch(committed)
                if not wrote:
                    return  # its transaction wrote nothing (nothing new to count): not killed
        elif kill.aim == "append":  # every transaction, until one appends
            while self._running() and not wrote:
                self._wait_for_lock()
                wrote = self._watch(appended)
            if not wrote:
                return  # it made no append while holding the lock: not killed
        time.sleep(kill.after)
        if self.proc.poll() is not None:
            return  # it finished first
        holders = lock_holders(self.folder)
        self.proc.kill()
        self.proc.wait()
        if self.proc.returncode == -signal.SIGKILL:
            self.held_lock = None if holders is None else self.proc.pid in holders
            self.writing = wrote and bool(self.held_lock)
            self.temp_left = bool(self.held_lock) and bool(temp_files(self.folder))

    def finish(self) -> Hook:
        out, err = self.proc.communicate()
        if self._timer is not None:
            self._timer.join()
        self.out, self.err = out, err
        self.ended = time.monotonic()
        return self

    @property
    def killed(self) -> bool:
        return self.proc.returncode == -signal.SIGKILL

    @property
    def duration(self) -> float:
        assert self.ended is not None
        return self.ended - self.started

    def problem(self) -> str | None:
        """What is wrong with a hook that was not killed: a non-zero exit, a traceback, a failure reply."""
        if self.killed:
            return None
        text = self.out.decode("utf-8", "replace") + self.err.decode("utf-8", "replace")
        if self.proc.returncode != 0 or "Traceback" in text or any(f in text for f in FAILED):
            return f"{self.event} exited {self.proc.returncode}: {text.strip()[-400:]}"
        return None


# --- the report -----------------------------------------------------------------------------------


@dataclass
class Report:
    trials: int = 0  # turns with at least one hook chosen to be killed
    rounds: int = 0
    hooks: int = 0  # hook processes started (calibration and clean settles included)
    kills: int = 0  # SIGKILLs that landed (the process was still running)
    kills_by_event: Counter[str] = field(default_factory=Counter)
    finished_first: int = 0  # chosen for a kill, but done before it came
    aims: Counter[str] = field(default_factory=Counter)  # kills chosen, by aim (see Kill)
    writing: int = 0  # kills that landed while the victim held the lock and had begun changing files
    in_transaction: int | None = 0  # kills that landed while the victim held the ledger lock (None: not visible)
    temp_left: int = 0  # ... and left a temp file behind (killed between creating it and the rename)
    runlog_batches: int = 0  # times the run log grew (runs left the ledger)
    runlog_repeats: int = 0  # run-log lines repeating a run already there (a writer killed between the two files)
    cut_lines: Counter[str] = field(default_factory=Counter)  # file pattern -> lines that are not whole records
    files: Counter[str] = field(default_factory=Counter)  # file patterns seen beside the ledger (rounds seen in)
    unparsed: set[str] = field(default_factory=set)  # file patterns of an unknown format (not parsed)
    torn: list[str] = field(default_factory=list)
    lost: list[str] = field(default_factory=list)
    double: list[str] = field(default_factory=list)
    hook_problems: list[str] = field(default_factory=list)  # hooks not killed that failed or said so
    checks_api: int = 0
    checks_status: int = 0
    checks_runs: int = 0
    runs_checked: int = 0  # runs compared one by one at the last check
    tokens_checked: int = 0  # overall tokens at the end
    calibrated: dict[str, Phases] = field(default_factory=dict)  # per event, medians of its hooks watched
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not (self.torn or self.lost or self.double or self.hook_problems)


def _pattern(rel: Path) -> str:
    return _ID.sub("<id>", str(rel))


def _problem(where: list[str], text: str) -> None:
    if len(where) < 50:  # enough to diagnose; the count is what the report states
        where.append(text)
    elif len(where) == 50:
        where.append("… (more)")


# --- the job --------------------------------------------------------------------------------------


class CrashJob:
    """One project, ``SESSIONS`` sessions, hooks killed at random moments; ``run()`` does the rounds."""

    def __init__(self, box: Sandbox, *, seed: int, writers: int, status_every: int) -> None:
        self.rng = random.Random(seed)
        self.seed = seed
        self.writers = writers
        self.status_every = status_every
        self.project = box.project("crash", commands=dict.fromkeys(COMMANDS, "900M"), mode=None)
        self.folder = self.project.ledger.parent
        self.sessions = [self.project.session(seed=seed * 100 + k) for k in range(SESSIONS)]
        self.env = {**self.project.env, "CLAUDE_BUDGET_LOCK_TIMEOUT": "60"}  # a loaded machine is not a crash
        self.report = Report()
        self.overall: Counter[str] = Counter(dict.fromkeys(CATEGORIES, 0))
        self.commands: dict[str, Counter[str]] = {}
        self.runs: Counter[str] = Counter()
        self.turns: dict[str, tuple[str, Counter[str]]] = {}  # prompt -> (command, usage) of command turns
        self.lock = threading.Lock()
        self.calibration: dict[str, list[Phases]] = {}
        self.recent: list[float] = []  # durations of hooks not killed, over their calibration median
        self.log_lines = 0
        self.hooklog_lines = 0

    # -- the clock --------------------------------------------------------------------------------

    def set_clock(self, seconds: int) -> None:
        """Every process (and this one's API reads) sees the same moved clock."""
        self.env[OFFSET_ENV] = str(seconds)
        os.environ[OFFSET_ENV] = str(seconds)

    # -- expected totals --------------------------------------------------------------------------

    def expect(self, command: str | None, prompt: str | None, usage: Counter[str]) -> None:
        """A turn (or API call) that wrote ``usage``; ``prompt`` None: a run whose prompt id is not known here."""
        with self.lock:
            self.overall.update(usage)
            if command is None:
                return
            self.commands.setdefault(command, Counter(dict.fromkeys(CATEGORIES, 0))).update(usage)
            self.runs[command] += 1
            if prompt is not None:
                self.turns[prompt] = (command, usage)

    def seed_runs(self) -> None:
        """Runs recorded through the API, before any hook: they leave the ledger early (see compact)."""
        import budget_state

        for i in range(SEEDED_RUNS):
            usage = Counter({"input": 10 + i, "output": 200, "cache_creation": 0, "cache_read": 3000})
            budget_state.record_usage(dict(usage), command=SEED_COMMAND, project=self.project.root, env=self.env)
            self.expect(SEED_COMMAND, None, usage)

    # -- kill moments ------------------------------------------------------------------------------

    def kill_moment(self, event: str, rng: random.Random) -> Kill:
        """35 % over the hook's whole run; 20 % inside its transaction (from the moment it holds the
        lock, within as long as it held it at calibration); 25 % at its writes (from the moment a file
        beside the ledger changes while it holds the lock, within as long as that lasted at
        calibration); 20 % within 3 ms of its first landed write (see Kill). Rescaled by how much
        slower than at calibration the hooks that were not killed ran lately. An aimed kill may still
        come after the release, or never find its moment."""
        samples = self.calibration.get(event) or self.calibration["Stop"]
        scale = statistics.median(self.recent[-40:]) if self.recent else 1.0
        whole = statistics.median(s.whole for s in samples)
        held = [s.held for s in samples if s.held is not None]
        writing = [s.writing for s in samples if s.writing is not None]
        pick = rng.random()
        if lock_holders(self.folder) is not None:
            if held and pick < 0.2:
                return Kill(rng.uniform(0.0, statistics.median(held) + 0.002) * scale, aim="lock")
            if writing and pick < 0.45:
                return Kill(rng.uniform(0.0, statistics.median(writing) + 0.002) * scale, aim="write")
            if pick < 0.65:
                return Kill(rng.uniform(0.0, 0.003), aim="commit")
        return Kill(rng.uniform(0.0, 1.2 * whole) * scale)

    # -- hooks -------------------------------------------------------------------------------------

    def spawn(self, s: Session | None, event: str, kill: Kill | None = None, **fields: Any) -> Hook:
        """A hook of session ``s``'s current turn — or, with ``event`` API_EVENT, an API writer."""
        with self.lock:
            self.report.hooks += 1
            if kill is not None:
                self.report.aims[kill.aim] += 1
        if s is None:
            argv = [PYTHON, "-I", "-c", API_WRITER, str(self.project.root), str(API_CALLS)]
            return Hook(self.project, event, b"", self.env, kill, argv)
        return Hook(self.project, event, s.payload(event, **fields), self.env, kill)

    def done(self, hook: Hook, *, chosen: bool) -> None:
        """Account for a finished (or killed) hook."""
        hook.finish()
        with self.lock:
            r = self.report
            if hook.killed:
                r.kills += 1
                r.kills_by_event[hook.event] += 1
                if hook.held_lock is None:
                    r.in_transaction = None
                elif r.in_transaction is not None and hook.held_lock:
                    r.in_transaction += 1
                r.temp_left += hook.temp_left
                r.writing += hook.writing
                return
            if chosen:
                r.finished_first += 1
            if (problem := hook.problem()) is not None:
                _problem(r.hook_problems, problem)
            base = self.calibration.get(hook.event)
            if base and hook.event not in BACKGROUND:  # a background hook is reaped late: no duration
                self.recent.append(hook.duration / statistics.median(x.whole for x in base))

    def measured(self, s: Session | None, event: str, **fields: Any) -> Hook:
        """A hook (or API writer) run to its end while watching when it holds the lock and when, holding
        it, it begins to change files (calibration: not killed). Per transaction: [start, first change, end]."""
        hook = self.spawn(s, event, **fields)
        spans: list[list[float | None]] = []
        before: dict[str, tuple[int, int, int]] = {}
        holding = False
        while hook.proc.poll() is None:
            now = time.monotonic() - hook.started
            if hook.proc.pid in (lock_holders(self.folder) or ()):
                if not holding:
                    spans.append([now, None, now])
                    before = signature(self.folder)
                holding = True
                spans[-1][2] = now
                if spans[-1][1] is None and signature(self.folder) != before:
                    spans[-1][1] = now
            else:
                holding = False
            time.sleep(0.0005)
        self.done(hook, chosen=False)
        held = [e - b for b, _, e in spans if b is not None and e is not None]
        writing = [e - w for _, w, e in spans if w is not None and e is not None]
        phases = Phases(
            hook.duration,
            statistics.median(held) if held else None,
            statistics.median(writing) if writing else None,
        )
        self.calibration.setdefault(event, []).append(phases)
        return hook

    # -- one turn ----------------------------------------------------------------------------------

    def turn(self, s: Session, rng: random.Random, *, kills: int, calibrate: bool = False) -> None:
        """One turn of session ``s`` with ``kills`` of its hooks SIGKILLed (none when calibrating)."""
        command = rng.choice([*COMMANDS, None])
        text = f"/{command} {rng.randint(1, 999)}" if command else "Why does the nightly build fail?"
        prompt = s.prompt(text)
        plan = ["UserPromptSubmit"] + ["PreToolUse"] * rng.randint(1, 2)
        plan += ["SubagentStop"] if rng.random() < 0.3 else []
        plan += ["Stop"]
        victims = set(rng.sample(range(len(plan)), min(kills, len(plan))))
        usage: Counter[str] = Counter(dict.fromkeys(CATEGORIES, 0))
        running: list[tuple[Hook, bool]] = []
        for step, event in enumerate(plan):
            fields: dict[str, Any] = {"prompt": text} if event == "UserPromptSubmit" else {}
            # Responses are dated when they arrive: after the hooks before them started (a prompt hook
            # takes a response dated before it for history copied into the session, and skips it).
            s.lines.catch_up()
            if event == "PreToolUse":
                usage.update(usage_in(s.activity(rng.randint(1, 4))))
            elif event == "SubagentStop":
                s.agent(f"{rng.getrandbits(64):016x}")
                usage.update(usage_in(s.activity(rng.randint(1, 3), subagent=True)))
            elif event == "Stop":
                usage.update(usage_in(s.activity(rng.randint(1, 2), final=True)))
            if calibrate:
                self.measured(s, event, **fields)
                continue
            chosen = step in victims
            hook = self.spawn(s, event, self.kill_moment(event, rng) if chosen else None, **fields)
            if event in BACKGROUND:
                running.append((hook, chosen))  # Claude Code does not wait for it
            else:
                self.done(hook, chosen=chosen)
        for hook, chosen in running:
            self.done(hook, chosen=chosen)
        self.expect(f"/{command}" if command else None, prompt, usage)

    def api_done(self, hook: Hook, when: str) -> None:
        """What an API writer recorded: each call it reported, and the one in flight if it landed
        (asked of the product: within [reported, reported + 1] when killed, else exactly reported)."""
        if hook.ended is None:
            self.done(hook, chosen=False)
        said = hook.out.count(b".")
        try:
            snap = self.snapshot()
            have = (snap.commands[API_COMMAND].runs if API_COMMAND in snap.commands else 0) - self.runs[API_COMMAND]
        except Exception:  # noqa: BLE001 (check_files has said so)
            have = said
        top = said + (1 if hook.killed else 0)
        if not said <= have <= top:
            where = self.report.lost if have < said else self.report.double
            _problem(where, f"{when}: an API writer recorded {said} calls (+1 in flight: {hook.killed}), {have} landed")
        for _ in range(min(max(have, said), top)):
            self.expect(API_COMMAND, None, Counter(API_USAGE))

    # -- checks ------------------------------------------------------------------------------------

    def check_files(self, when: str) -> None:
        """Every file beside the ledger parses; none was moved aside as corrupt; the product reads the state."""
        import tomllib

        r = self.report
        for path in sorted(self.folder.rglob("*")):
            rel = path.relative_to(self.folder)
            if path.is_dir() or rel.parts[0] == "commands":
                continue  # the project's command files are not state
            kind = _pattern(rel)
            r.files[kind] += 1
            name = path.name
            if name.endswith((".lock", ".tmp")):
                continue  # a lock file holds nothing; a temp file is a write in progress (or a killed one's)
            if "corrupt" in name:
                _problem(r.torn, f"{when}: {rel} — the product found a file corrupt and moved it aside")
                continue
            data = path.read_bytes()
            try:
                if name.endswith(".toml"):
                    tomllib.loads(data.decode("utf-8"))
                elif name.endswith(".json"):
                    json.loads(data)
                elif ".jsonl" in name:
                    self._cut_lines(kind, data)
                elif name.endswith(".log"):
                    data.decode("utf-8")
                elif len(rel.parts) >= 3 and rel.parts[-2] in ("minutes", "quarters"):
                    _bucket_line(data)  # a scope's time buckets: one line of <minute>:<5 counts>
                else:
                    r.unparsed.add(kind)
            except ValueError as e:  # TOMLDecodeError, JSONDecodeError, UnicodeDecodeError
                _problem(r.torn, f"{when}: {rel} does not parse: {e}")
        try:
            self.snapshot()
        except Exception as e:  # noqa: BLE001 (any failure to read the state is the finding)
            _problem(r.torn, f"{when}: the product cannot read the state: {type(e).__name__}: {e}")

    def _cut_lines(self, kind: str, data: bytes) -> None:
        """An append-only log: lines that are not whole JSON records (a writer killed mid-line).

        Counted, not a verdict: such a log's writer appends before it changes the ledger, and its
        readers skip such lines (the ledger still holds what the line was to say: checked by the runs).
        """
        cut = 0
        for line in data.split(b"\n"):
            if not line:
                continue
            try:
                json.loads(line)
            except ValueError:
                cut += 1
        self.report.cut_lines[kind] = cut

    def snapshot(self) -> Any:
        import budget_state

        return budget_state.snapshot(self.project.root, env=self.env)

    def status_json(self) -> dict[str, Any]:
        done = subprocess.run(
            [PYTHON, "-I", "-m", "budget_state", "status", "--json"],
            env=self.env,
            cwd=self.project.root,
            capture_output=True,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"status --json exited {done.returncode}: {done.stderr.decode()[-400:]}")
        out: dict[str, Any] = json.loads(done.stdout)
        return out

    def compare(self, where: str, name: str, got: Mapping[str, int], want: Mapping[str, int]) -> None:
        if dict(got) == dict(want):
            return
        text = f"{where}: {name} holds {dict(got)}, the transcripts {dict(want)}"
        keys = [k for k in want if got.get(k, 0) != want[k]]
        if all(got.get(k, 0) <= want[k] for k in keys):
            _problem(self.report.lost, text)
        elif all(got.get(k, 0) >= want[k] for k in keys):
            _problem(self.report.double, text)
        else:
            _problem(self.report.lost, text + " (some fields less, some more)")

    def check_not_over(self, when: str) -> None:
        """Before the sessions settle, with hooks killed mid-way: nothing is counted more than once."""
        try:
            snap = self.snapshot()
        except Exception:  # noqa: BLE001 (check_files has said so)
            return
        self.report.checks_api += 1
        scopes = [("overall", snap.overall.usage.as_dict(), self.overall)]
        scopes += [(n, c.usage.as_dict(), self.commands.get(n, Counter())) for n, c in snap.commands.items()]
        for name, got, want in scopes:
            if any(got[c] > want.get(c, 0) for c in CATEGORIES):
                _problem(self.report.double, f"{when}: {name} holds {got}, the transcripts only {tokens(want)}")
            runs = snap.commands[name].runs if name in snap.commands else 0
            if runs > self.runs[name]:
                _problem(self.report.double, f"{when}: {name} has {runs} runs, the transcripts {self.runs[name]} turns")

    def check_totals(self, when: str, *, status: bool) -> None:
        """The product's totals are the transcripts' to the token, through the API (and status --json)."""
        snap = self.snapshot()
        self.report.checks_api += 1
        views: list[tuple[str, dict[str, int], dict[str, tuple[dict[str, int], int]]]] = [
            (
                "API",
                snap.overall.usage.as_dict(),
                {n: (c.usage.as_dict(), c.runs) for n, c in snap.commands.items()},
            )
        ]
        if status:
            data = self.status_json()
            self.report.checks_status += 1
            views.append(
                (
                    "status --json",
                    tokens(data["overall"]["tokens"]),
                    {n: (tokens(c["tokens"]), int(c["runs"])) for n, c in data["commands"].items()},
                )
            )
        for view, overall, commands in views:
            where = f"{when}, {view}"
            self.compare(where, "overall", overall, tokens(self.overall))
            for name in sorted(set(commands) | set(self.commands)):
                got, runs = commands.get(name, (dict.fromkeys(CATEGORIES, 0), 0))
                self.compare(where, name, got, tokens(self.commands.get(name, {})))
                if runs != self.runs[name]:
                    where_to = self.report.lost if runs < self.runs[name] else self.report.double
                    _problem(where_to, f"{where}: {name} has {runs} runs, the transcripts {self.runs[name]} turns")
        self.report.tokens_checked = sum(overall.values())

    def check_runs(self, when: str) -> None:
        """Every command turn is one run, kept once (the ledger's or the run log's), with its turn's usage."""
        runs = runs_kept(self.project.ledger)
        kept = runs.kept
        r = self.report
        r.checks_runs += 1
        r.runlog_repeats = runs.repeated_lines
        if runs.lines > self.log_lines:
            r.runlog_batches += 1
        self.log_lines = runs.lines
        if runs.read_twice:
            _problem(r.double, f"{when}: the run log's reader gives these prompts twice: {runs.read_twice[:5]}")
        for name in (SEED_COMMAND, API_COMMAND):  # API runs: prompt ids made by record_usage
            mine = [run for run in kept.values() if run.get("command") == name]
            if len(mine) != self.runs[name]:
                where = r.lost if len(mine) < self.runs[name] else r.double
                _problem(where, f"{when}: {len(mine)} runs of {name} kept, {self.runs[name]} recorded")
            total: Counter[str] = Counter(dict.fromkeys(CATEGORIES, 0))
            for run in mine:
                total.update(tokens(run))
            self.compare(when, f"the runs of {name}", tokens(total), tokens(self.commands.get(name, {})))
        for prompt, (command, usage) in self.turns.items():
            run = kept.get(prompt)
            if run is None:
                _problem(
                    r.lost, f"{when}: the run of {command} for prompt {prompt} is neither in the ledger nor the log"
                )
            elif run.get("command") != command:
                _problem(r.double, f"{when}: prompt {prompt} of {command} is kept as a run of {run.get('command')}")
            else:
                self.compare(when, f"the run {prompt} of {command}", tokens(run), tokens(usage))
        extra = {
            p
            for p, run in kept.items()
            if p not in self.turns and run.get("command") not in (SEED_COMMAND, API_COMMAND)
        }
        if extra:
            _problem(r.double, f"{when}: runs no turn made: {sorted(extra)[:5]}")
        r.runs_checked = len(kept)

    def check_hook_log(self, when: str) -> None:
        """The log beside the ledger where a hook keeps what it could not do: nothing new."""
        lines = [p for p in self.folder.glob("budget-hook.log*")]
        count = sum(len(p.read_text(errors="replace").splitlines()) for p in lines)
        if count > self.hooklog_lines:
            tail = lines[-1].read_text(errors="replace").splitlines()[-1] if lines else ""
            _problem(self.report.hook_problems, f"{when}: a hook logged a failure: {tail[:300]}")
        self.hooklog_lines = count

    # -- the rounds --------------------------------------------------------------------------------

    def run(self, trials: int, progress: Callable[[str], None] | None = None) -> Report:
        started = time.monotonic()
        saved = os.environ.get(OFFSET_ENV)
        try:
            self.set_clock(0)
            self.seed_runs()
            for k in range(3):  # calibration: whole hooks, watched, none killed (and the oracle without kills)
                self.turn(self.sessions[k], random.Random(self.seed + k), kills=0, calibrate=True)
                self.settle(self.sessions[k : k + 1], "calibration")
                self.api_done(self.measured(None, API_EVENT), "calibration")
            r = self.report
            r.calibrated = {e: Phases.median(v) for e, v in self.calibration.items()}
            rounds = 0
            while r.trials < trials:
                rounds += 1
                self.set_clock(rounds * ROUND_SECONDS)
                n = min(self.rng.randint(min(2, self.writers), self.writers), trials - r.trials)
                chosen = self.rng.sample(self.sessions, n)
                seeds = [self.rng.getrandbits(32) for _ in chosen]
                kills = [self.rng.choice((1, 1, 2)) for _ in chosen]
                threads = [
                    threading.Thread(target=self.turn, args=(s, random.Random(x)), kwargs={"kills": k})
                    for s, x, k in zip(chosen, seeds, kills)
                ]
                api = None
                if self.rng.random() < 0.5:  # an API writer too, killed most times
                    kill = self.kill_moment(API_EVENT, self.rng) if self.rng.random() < 0.8 else None
                    if kill is not None and self.rng.random() < 0.5:  # at the run log's append, if it makes one
                        kill = Kill(self.rng.uniform(0.0, 0.003), "append", skip=self.rng.randrange(API_CALLS))
                    elif kill is not None and kill.aim != "any":
                        kill = Kill(kill.after, kill.aim, skip=self.rng.randrange(API_CALLS))
                    api = self.spawn(None, API_EVENT, kill)
                for t in threads:
                    t.start()
                for t in threads:
                    t.join()
                r.trials += n
                if api is not None:
                    self.done(api, chosen=api.kill is not None)
                self.check_files(f"round {rounds}, after the kills")
                if api is not None:
                    self.api_done(api, f"round {rounds}")
                self.check_not_over(f"round {rounds}, after the kills")
                self.settle(chosen, f"round {rounds}", status=rounds % self.status_every == 0)
                if progress is not None and rounds % 20 == 0:
                    progress(f"{r.trials}/{trials} trials, {r.kills} kills, {time.monotonic() - started:.0f} s")
            r.rounds = rounds
            # The sessions end (SessionEnd, not killed); then everything once more, status --json included.
            self.set_clock((rounds + 1) * ROUND_SECONDS)
            for s in self.sessions:
                self.done(self.spawn(s, "SessionEnd", reason="other"), chosen=False)
            self.check_files("at the end")
            self.check_totals("at the end", status=True)
            self.check_runs("at the end")
            self.check_hook_log("at the end")
        finally:
            if saved is None:
                os.environ.pop(OFFSET_ENV, None)
            else:
                os.environ[OFFSET_ENV] = saved
        self.report.seconds = time.monotonic() - started
        return self.report

    def settle(self, sessions: Iterable[Session], when: str, *, status: bool = False) -> None:
        """Each session settles once, cleanly (a Stop not killed); then the totals must be exact."""
        hooks = [self.spawn(s, "Stop") for s in sessions]
        for hook in hooks:
            self.done(hook, chosen=False)
        self.check_files(f"{when}, settled")
        try:
            self.check_totals(f"{when}, settled", status=status)
            self.check_runs(f"{when}, settled")
        except Exception as e:  # noqa: BLE001 (any failure to read the state is the finding)
            _problem(self.report.torn, f"{when}, settled: the product cannot read the state: {type(e).__name__}: {e}")
        self.check_hook_log(when)


@dataclass
class Runs:
    """The runs the product keeps, as its readers see them."""

    kept: dict[str, dict[str, Any]]  # prompt -> run: the run log's, then the ledger's own (which win)
    read_twice: list[str]  # prompts the run log's reader gives more than once (it keeps one per prompt)
    repeated_lines: int  # log lines repeating a run already logged (a writer killed between the two files)
    lines: int  # lines in the run log (rotated part included)


def _bucket_line(data: bytes) -> None:
    """:raises ValueError: ``data`` is not one whole line of ``<minute>:<i>,<o>,<cc>,<cr>,<usd>`` buckets."""
    text = data.decode("utf-8")
    if text.startswith("# "):  # a cut name's whole key
        text = text.split("\n", 1)[1]
    if not text.endswith("\n") or "\n" in text[:-1]:
        raise ValueError("not one whole line")
    for item in text.split():
        minute, sep, counts = item.partition(":")
        values = counts.split(",")
        if not sep or len(values) != 5 or not all(v.isdigit() for v in [minute, *values]):
            raise ValueError(f"not a bucket: {item!r}")


def runs_kept(ledger: Path) -> Runs:
    """Every run the product keeps, one per prompt: the run log's (through its reader), then the
    ledger's own, which win (a run is in both when its writer was killed between the two files).

    Read through the product's typed records (``_records.runs``), as every reader outside the ledger.
    """
    from budget_state.ledger import _records as records
    from budget_state.ledger._ledger import Ledger
    from budget_state.ledger._runlog import read_runs, runlog_path

    read = Counter(str(run["prompt"]) for run in read_runs(ledger))
    kept = {str(run["prompt"]): run for run in read_runs(ledger)}
    kept.update({run.prompt: run.as_log() for run in records.runs(Ledger(ledger).read())})
    logged: Counter[str] = Counter()
    lines = 0
    log = runlog_path(ledger)
    for path in (log.with_name(log.name + ".1"), log):
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            continue
        for line in data.splitlines():
            lines += 1
            try:
                logged[str(json.loads(line).get("prompt"))] += 1
            except (ValueError, AttributeError):
                continue
    twice = [p for p, n in read.items() if n > 1]
    return Runs(kept, twice, sum(n - 1 for n in logged.values() if n > 1), lines)


def run(
    box: Sandbox,
    *,
    trials: int,
    seed: int = 20261207,
    writers: int = 4,
    status_every: int = 5,
    progress: Callable[[str], None] | None = None,
) -> Report:
    """``trials`` turns with hooks killed, 2..``writers`` sessions at once, in a project made in ``box``."""
    return CrashJob(box, seed=seed, writers=writers, status_every=status_every).run(trials, progress)


# --- the section of BENCHMARKS.md ------------------------------------------------------------------


def section(r: Report, *, command: str, facts: list[tuple[str, str]], load: tuple[float, float]) -> str:
    def verdict(found: list[str]) -> str:
        return "**0**" if not found else f"**{len(found)}** ✗"

    where = ", ".join(f"{k} {v}" for k, v in facts if k in ("CPU", "Cores", "Python", "Temp files on", "Product"))
    kinds = ", ".join(f"{e} {n}" for e, n in sorted(r.kills_by_event.items()))
    inside = (
        "n/a (no /proc/locks)"
        if r.in_transaction is None
        else f"{r.in_transaction} ({r.in_transaction / max(r.kills, 1):.0%})"
    )
    files = ", ".join(f"`{k}`" + (" (not parsed: unknown format)" if k in r.unparsed else "") for k in sorted(r.files))
    cut = ", ".join(f"`{k}` {n}" for k, n in sorted(r.cut_lines.items()) if n) or "none"
    calib = "; ".join(f"{e} {phases}" for e, phases in sorted(r.calibrated.items()))
    aims = r.aims
    rows = [
        ("trials (turns with 1–2 of their hooks chosen for a SIGKILL)", f"{r.trials:,}"),
        ("rounds (2–4 sessions' turns at once on one ledger)", f"{r.rounds:,}"),
        ("processes started (hooks and API writers)", f"{r.hooks:,}"),
        ("SIGKILLs that landed", f"{r.kills:,} ({kinds})"),
        (
            "kills chosen: at any moment / holding the lock / writing / after a landed write / after an append",
            f"{aims['any']:,} / {aims['lock']:,} / {aims['write']:,} / {aims['commit']:,} / {aims['append']:,}",
        ),
        ("SIGKILLs that landed while the victim held the ledger lock (mid-transaction)", inside),
        ("… of those, after it had begun changing files beside the ledger (mid-write)", f"{r.writing:,}"),
        ("… of those, leaving the temp file of its write behind", f"{r.temp_left:,}"),
        ("chosen, but finished before the kill (or never showed the moment aimed at)", f"{r.finished_first:,}"),
        ("run-log batches appended (runs leaving the ledger)", f"{r.runlog_batches:,}"),
        ("run-log lines repeating a run (killed between the log and the ledger)", f"{r.runlog_repeats:,}"),
        ("lines cut by a kill in append-only logs (skipped by readers)", cut),
        ("checks: API / `status --json` / every run", f"{r.checks_api:,} / {r.checks_status:,} / {r.checks_runs:,}"),
        ("tokens at the end, all exact", f"{r.tokens_checked:,} in {r.runs_checked:,} runs"),
        ("**torn**: checks finding a file that does not parse, a failed read, a file moved aside", verdict(r.torn)),
        ("**lost**: checks finding less than the transcripts hold", verdict(r.lost)),
        ("**counted twice**: checks finding more than the transcripts hold", verdict(r.double)),
        ("hooks not killed that failed", verdict(r.hook_problems)),
    ]
    table = "\n".join(["| | |", "|---|---|", *(f"| {a} | {b} |" for a, b in rows)])
    found = [*r.torn, *r.lost, *r.double, *r.hook_problems][:10]
    details = ("\n\nFirst findings:\n\n" + "\n".join(f"- {x}" for x in found)) if found else ""
    produced = (
        f"Produced by `{command}` in {r.seconds / 60:.1f} min, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; "
        f"machine: {where}; load average {load[0]:.1f} at the start, {load[1]:.1f} at the end "
        "(a machine shared with other jobs)."
    )
    method = (
        f"{SESSIONS} sessions of one project write its ledger through real hook processes "
        "(`python -I -m budget_state.hook`, `--background` where `claude-budget install` puts it), 2–4 sessions' "
        "turns at once. Each turn writes its prompt record and responses to its transcript the way Claude Code "
        "does and runs `UserPromptSubmit`, 1–2 `PreToolUse`, sometimes `SubagentStop`, and `Stop`; 1–2 of those "
        "hooks get a SIGKILL. Every other round an API writer (`record_usage` in a loop, as an orchestrator "
        f"records runs: {API_CALLS} calls) writes too, and is killed 4 times in 5; the call in flight when it dies "
        "may land or not, anything else must be exact; half of its kills wait for an append (the run log's, "
        "when its runs leave the ledger) and land within 3 ms of it. Other kill moments: 35 % drawn over the "
        "process's whole run, 20 % a moment after it is seen (in `/proc/locks`, every millisecond) taking the "
        "ledger lock, 25 % a moment after a file beside the ledger changes while it holds the lock — each "
        f"within as long as that phase lasted on processes that were not killed (medians: {calib}), rescaled "
        "to the load as it goes — and 20 % within 3 ms of its first write that lands (a file other than a temp "
        "file changes: with the state in several files, a kill between two of them). "
        f"After the kills every file in the ledger's folder is listed and parsed ({len(r.files)} kinds seen: "
        f"{files}) and the product's totals must not exceed the transcripts'; then each session settles once "
        "with a `Stop` that is not killed, and the product's read interfaces must give the transcripts' usage "
        "exactly: overall and per command, the runs per command, and every run one by one (ledger or run log, "
        f"one per prompt). The clock moves {ROUND_SECONDS // 60} minutes a round (`CLAUDE_BUDGET_TIME_OFFSET`) so "
        "that finished runs leave the ledger for the run log while writers are killed."
    )
    title = "## Crash safety: SIGKILLed writers (issue 19)"
    return "\n\n".join([f"{MARK_START}\n{title}", produced, method, table + details]) + f"\n{MARK_END}\n"


def write_section(out: Path, text: str) -> None:
    """Replace this job's section of ``out`` (between its markers), or add it at the end."""
    old = out.read_text(encoding="utf-8") if out.exists() else ""
    if MARK_START in old:
        head, _, rest = old.partition(MARK_START)
        old = head.rstrip("\n") + "\n\n" + rest.partition(MARK_END + "\n")[2].lstrip("\n")
    out.write_text(old.rstrip("\n") + "\n\n" + text, encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="benchmarks/crash.py", description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=1000, help="turns with hooks killed (default: %(default)s)")
    ap.add_argument("--writers", type=int, default=4, help="sessions' turns at once, at most (default: %(default)s)")
    ap.add_argument("--seed", type=int, default=20261207)
    ap.add_argument("--out", type=Path, help="write the section into this Markdown file (e.g. BENCHMARKS.md)")
    ap.add_argument("--tmp", default=None, help="where to make the temporary folder (default: the system's)")
    ap.add_argument(
        "--python",
        default=None,
        help="run the hooks, API writers and status with this interpreter (e.g. another checkout's venv); "
        "this process's own reads stay this checkout's",
    )
    args = ap.parse_args(argv)
    if args.python:
        global PYTHON
        PYTHON = args.python
    for key in [k for k in os.environ if k.startswith(("CLAUDE_", "ANTHROPIC_"))]:
        del os.environ[key]  # nothing of the caller's Claude setup may leak into the job
    import compileall

    compileall.compile_dir(str(REPO / "budget_state"), quiet=1)  # as a regular install has it (see run.py)
    box = Sandbox(args.tmp)
    os.environ["HOME"] = str(box.root / "no-home")  # the API calls here pass env=; this is a backstop
    load_start = os.getloadavg()[0]
    try:
        facts = machine(box.root)
        report = run(
            box,
            trials=args.trials,
            seed=args.seed,
            writers=args.writers,
            progress=lambda text: print(text, file=sys.stderr, flush=True),
        )
    finally:
        box.cleanup()
    command = " ".join([".venv/bin/python", "benchmarks/crash.py", *(sys.argv[1:] if argv is None else argv)])
    text = section(report, command=command, facts=facts, load=(load_start, os.getloadavg()[0]))
    print(text)
    if args.out:
        write_section(args.out, text)
    return 0 if report.ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
