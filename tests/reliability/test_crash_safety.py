"""kill -9 at any moment: the ledger always parses, keeps every update whose writer returned, and
gains at most the one that was in flight. Writers are real processes (``record_usage`` in a loop,
or ``python -m budget_state.hook``) that report each finished update on a pipe before the next one.

The same job at scale (1,000 trials, several sessions' hooks at once, every file beside the ledger)
is ``benchmarks/crash.py``; a sample of it runs here.
"""

from __future__ import annotations

import importlib.util
import os
import random
import signal
import subprocess
import sys
import time
import traceback
import warnings
from pathlib import Path
from typing import Any

import kit

import budget_state
from budget_state.ledger import _records
from budget_state.ledger._ledger import Ledger

WORKERS = 3
TRIALS = 210  # kills of record_usage writers at random moments
HOOK_TRIALS = 40  # kills of hook processes at random moments
SAMPLE_TRIALS = 36  # turns of benchmarks/crash.py, with 1-2 of their hooks killed each
SEED = 20261125

# Stops a single record_usage at one point of the write (patched at the syscall level, so the test
# does not depend on private names), says "S", and waits there to be killed.
STAGED_WRITER = """
import fcntl, os, sys
import budget_state
project, stage = sys.argv[1], sys.argv[2]

def pause():
    os.write(1, b"S")
    os.read(0, 1)  # the test never writes: we wait here for SIGKILL
    raise SystemExit("not killed")

real_flock, real_fsync, real_replace = fcntl.flock, os.fsync, os.replace
if stage == "locked":
    def flock(fd, op):
        real_flock(fd, op)
        if op & fcntl.LOCK_EX:
            pause()
    fcntl.flock = flock
elif stage == "written":
    def fsync(fd):
        pause()
    os.fsync = fsync
elif stage == "synced":
    def replace(src, dst):
        pause()
    os.replace = replace
elif stage == "renamed":
    def replace(src, dst):
        real_replace(src, dst)
        pause()
    os.replace = replace
budget_state.record_usage({"input": 1}, command="/staged", project=project)
os.write(1, b"done")
"""

# Loops record_usage (one "." on stdout per call done) until a call's transaction appends runs to the
# run log, and stops that call at its ledger's os.replace: just before it ("logged": the runs are in
# the log and still in the ledger) or just after it ("renamed"). Says "S" and waits to be killed.
STAGED_MOVER = """
import fcntl, os, sys
import budget_state
from budget_state.ledger._runlog import runlog_path
project, ledger, stage = sys.argv[1], sys.argv[2], sys.argv[3]
log = runlog_path(__import__("pathlib").Path(ledger))

def size():
    try:
        return os.stat(log).st_size
    except FileNotFoundError:
        return 0

locked_at = [0]
real_flock, real_replace = fcntl.flock, os.replace

def flock(fd, op):
    real_flock(fd, op)
    if op & fcntl.LOCK_EX:
        locked_at[0] = size()

def replace(src, dst):
    if stage == "renamed":
        real_replace(src, dst)
    if size() != locked_at[0]:  # this transaction moved runs to the log
        os.write(1, b"S")
        os.read(0, 1)  # the test never writes: we wait here for SIGKILL
        raise SystemExit("not killed")
    if stage != "renamed":
        real_replace(src, dst)

fcntl.flock, os.replace = flock, replace
for _ in range(400):
    budget_state.record_usage({"input": 1, "output": 2}, command="/api", project=project)
    os.write(1, b".")
os.write(1, b"never moved")
"""


def _crash_job() -> Any:
    """benchmarks/crash.py, the crash-safety job (it finds its own helpers beside it)."""
    if "crash" not in sys.modules:
        spec = importlib.util.spec_from_file_location("crash", Path(__file__).parents[2] / "benchmarks" / "crash.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules["crash"] = module  # before running it: its dataclasses look themselves up there
        spec.loader.exec_module(module)
    return sys.modules["crash"]


def _spawn(kit: Any, code: str, *args: str, env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [kit.PYTHON, "-c", code, *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )


def _kill(proc: subprocess.Popen[bytes], kit: Any, *, may_finish: bool = False) -> bytes:
    """SIGKILL, reap, and return what the process had still to say on stdout.

    :param may_finish: the process may have ended by itself (exit 0) just before the kill.
    """
    proc.kill()
    proc.wait(timeout=kit.TIMEOUT)
    assert proc.stdout is not None and proc.stderr is not None
    rest = proc.stdout.read()
    err = proc.stderr.read()
    for stream in (proc.stdin, proc.stdout, proc.stderr):
        if stream is not None:
            stream.close()
    ok = (-signal.SIGKILL, 0) if may_finish else (-signal.SIGKILL,)
    assert proc.returncode in ok, f"the writer died on its own ({proc.returncode}): {err.decode()[-3000:]}"
    return rest


def _leftovers(folder: Path) -> list[str]:
    """Files beside the ledger that are neither the ledger, its lock, nor the frontmatter cache."""
    keep = {"budget-ledger.toml", "budget-ledger.toml.lock", "budget-cache.json", "commands"}
    return sorted(n for n in os.listdir(folder) if n not in keep)


def _fork_writer(command: str, project: Path, env: dict[str, str]) -> tuple[int, int]:
    """A writer process looping ``record_usage``; it writes one "." to the returned pipe per update done.

    Forked from the test process (which has imported everything) so that 200+ writers cost
    milliseconds each instead of an interpreter start-up.
    """
    r, w = os.pipe()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # 3.12+: fork with threads; none run here
        pid = os.fork()
    if pid == 0:  # the writer: never returns into pytest
        try:
            os.close(r)
            while True:
                budget_state.record_usage({"input": 1, "output": 2}, command=command, project=project, env=env)
                os.write(w, b".")
                # A breath between updates: waiters poll the lock (LOCK_NB, then sleep up to 50 ms),
                # so a writer that re-locks at once starves the others and the trials would crawl.
                time.sleep(random.random() * 0.003)
        except BaseException:  # noqa: BLE001 (report anything on the pipe, then leave)
            os.write(w, b"!" + traceback.format_exc().encode()[-3000:])
        finally:
            os._exit(1)
    os.close(w)
    return pid, r


def _kill_writer(pid: int, r: int) -> bytes:
    """SIGKILL and reap a forked writer; everything it reported (its pipe read to the end)."""
    os.kill(pid, signal.SIGKILL)
    _, status = os.waitpid(pid, 0)
    data = b""
    while chunk := os.read(r, 65536):
        data += chunk
    os.close(r)
    assert b"!" not in data, data[data.index(b"!") :].decode(errors="replace")
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL, status
    return data


def test_kill9_writers_at_random_moments_lose_nothing(proj: Any) -> None:
    env = {**proj.env, "CLAUDE_BUDGET_LOCK_TIMEOUT": "60"}
    rng = random.Random(SEED)
    committed = [0] * WORKERS  # what the ledger held for /w<k> after its writer's last kill
    writers = [_fork_writer(f"/w{k}", proj.root, env) for k in range(WORKERS)]
    alive = set(range(WORKERS))
    try:
        for trial in range(TRIALS + WORKERS):
            k = trial % WORKERS
            pid, r = writers[k]
            # Let it into its loop (0-1 finished updates), then kill it a random moment later.
            reported = kit.read_exactly(r, rng.randint(0, 1)).count(b".")
            time.sleep(rng.uniform(0, 0.012))
            reported += _kill_writer(pid, r).count(b".")
            alive.discard(k)

            state = Ledger(proj.ledger_path).read(history=True)  # always parses, with other writers still going
            table = kit.totals(state, f"/w{k}")
            got = table.get("input", 0)
            assert committed[k] + reported <= got <= committed[k] + reported + 1, (
                f"trial {trial}: /w{k} had {committed[k]}, its writer reported {reported} more, the ledger holds {got}"
            )
            assert table.get("output", 0) == 2 * got and table.get("runs", 0) == got, table
            if trial % 7 == 0:  # the API's view agrees (not every time: it reads every command file)
                snap = budget_state.snapshot(proj.root, env=env)
                assert (snap.commands[f"/w{k}"].used if got else 0) == 3 * got
            committed[k] = got
            if trial < TRIALS:
                writers[k] = _fork_writer(f"/w{k}", proj.root, env)
                alive.add(k)
    finally:
        for k in alive:
            os.kill(writers[k][0], signal.SIGKILL)
            os.waitpid(writers[k][0], 0)
            os.close(writers[k][1])

    # Every writer is dead now: the whole ledger adds up.
    budget_state.record_usage({"input": 1, "output": 2}, command="/after", project=proj.root, env=env)
    state = Ledger(proj.ledger_path).read(history=True)
    names = [f"/w{k}" for k in range(WORKERS)] + ["/after"]
    inputs = {n: kit.totals(state, n)["input"] for n in names}
    assert inputs == {**{f"/w{k}": committed[k] for k in range(WORKERS)}, "/after": 1}
    assert kit.totals(state, "overall")["input"] == sum(inputs.values())
    assert kit.totals(state, "overall")["output"] == 2 * sum(inputs.values())
    from budget_state.ledger._runlog import read_runs

    # A writer killed between the run log's append and the ledger's write leaves a run in both:
    # one per prompt, the ledger's copy winning.
    every = {r["prompt"]: r for r in read_runs(proj.ledger_path)}
    every.update({r.prompt: r.as_log() for r in _records.runs(state)})
    for name in names:  # runs in the ledger + runs in the log == the command's run count
        kept = [r for r in every.values() if r.get("command") == name]
        assert len(kept) == kit.totals(state, name)["runs"] == inputs[name]
        assert sum(r["input"] for r in kept) == inputs[name]


def _staged(proj: Any, kit: Any, stage: str, env: dict[str, str]) -> None:
    proc = _spawn(kit, STAGED_WRITER, str(proj.root), stage, env=env)
    try:
        assert kit.read_exactly(proc.stdout, 1) == b"S"
    finally:
        _kill(proc, kit)


def test_kill9_at_each_stage_of_a_write(proj: Any) -> None:
    env = {**proj.env, "CLAUDE_BUDGET_LOCK_TIMEOUT": "10"}
    budget_state.record_usage({"input": 1}, command="/staged", project=proj.root, env=env)
    expected = 1
    for stage, lands in (("locked", False), ("written", False), ("synced", False), ("renamed", True)):
        _staged(proj, kit, stage, env)
        expected += lands
        assert kit.tokens(Ledger(proj.ledger_path).read(), "/staged")["input"] == expected, stage
        # The dead writer's lock went with it: the next writer gets in at once.
        start = time.monotonic()
        budget_state.record_usage({"input": 1}, command="/staged", project=proj.root, env=env)
        assert time.monotonic() - start < 5, f"after a writer was killed {stage}, the lock was still held"
        expected += 1
        assert kit.tokens(Ledger(proj.ledger_path).read(), "/staged")["input"] == expected, stage
    reply = proj.hook_proc("Stop", prompt_id="p1")
    assert (reply.rc, reply.out, reply.err) == (0, "", "")


def test_stale_temp_files_of_killed_writers_do_not_accumulate(proj: Any) -> None:
    env = {**proj.env, "CLAUDE_BUDGET_LOCK_TIMEOUT": "10"}
    for _ in range(5):
        _staged(proj, kit, "synced", env)  # killed with its temp file written and fsynced
    budget_state.record_usage({"input": 7}, command="/ok", project=proj.root, env=env)
    assert kit.tokens(Ledger(proj.ledger_path).read(), "/ok")["input"] == 7  # nothing broke
    left = _leftovers(proj.ledger_path.parent)
    assert len(left) <= 1, f"temp files of killed writers pile up beside the ledger: {left}"


def test_kill9_hooks_at_random_moments_never_count_twice(proj: Any) -> None:
    rng = random.Random(SEED)
    proj.command("alpha", "1B")
    t = proj.writer("s1")
    assert proj.hook("UserPromptSubmit", prompt="/alpha 1", prompt_id="p1").out == ""
    t.user("p1")
    expected = {c: 0 for c in kit.CATEGORIES}
    for trial in range(HOOK_TRIALS):
        usage = {c: rng.randint(0, 5000) for c in kit.CATEGORIES}
        kit.add(expected, t.response(usage, repeats=rng.randint(1, 4), grow=rng.choice([0, 0, 17])))
        proc = proj.spawn_hook(rng.choice(["PreToolUse", "SubagentStop", "SubagentStop"]), prompt_id="p1")
        time.sleep(rng.uniform(0, 0.12))
        _kill(proc, kit, may_finish=True)
        state = proj.ledger()  # parses
        got = kit.tokens(state, "overall")
        assert all(got[c] <= expected[c] for c in kit.CATEGORIES), (
            f"trial {trial}: counted {got}, the transcript holds {expected}"
        )
        assert kit.tokens(state, "/alpha") == got
        if trial % 5 == 4:  # a hook that finishes catches up exactly
            assert proj.hook("SubagentStop", prompt_id="p1").out == ""
            assert proj.tokens("overall") == expected, f"trial {trial}"
    assert proj.hook("Stop", prompt_id="p1").out == ""
    state = proj.ledger()
    assert kit.tokens(state, "overall") == expected
    assert kit.tokens(state, "/alpha") == expected
    assert kit.totals(state, "/alpha")["runs"] == 1


def test_sigkilled_hooks_of_sessions_at_once_lose_nothing_and_count_nothing_twice(tmp_path: Path) -> None:
    """A sample of benchmarks/crash.py: 2-4 sessions' turns at once, 1-2 hooks of each turn killed at a
    random moment, in its transaction or at its writes; every file beside the ledger parses after the
    kills; once each session settles, the API, ``status --json`` and the runs (ledger and run log)
    hold exactly the transcripts' usage."""
    crash = _crash_job()
    report = crash.run(crash.Sandbox(str(tmp_path)), trials=SAMPLE_TRIALS, seed=SEED, status_every=4)
    found = {"torn": report.torn, "lost": report.lost, "counted twice": report.double}
    assert not any(found.values()), found
    assert not report.hook_problems, report.hook_problems
    assert report.kills >= SAMPLE_TRIALS // 2, report
    assert report.in_transaction is None or report.in_transaction > 0, report  # None: no /proc/locks here
    assert report.checks_status >= 2 and report.runs_checked > crash.SEEDED_RUNS, report
    assert report.runlog_batches >= 1, "no run left the ledger for the run log: that file went untested"


def test_kill9_between_the_run_log_and_the_ledger(proj: Any) -> None:
    """A transaction that moves finished runs to the run log writes the log first, then the ledger: killed
    between the two, the runs are in both and read once; killed after, in the log only. Never lost."""
    crash = _crash_job()
    env = {**proj.env, "CLAUDE_BUDGET_LOCK_TIMEOUT": "10"}
    done = 0
    for stage, lands in (("logged", False), ("renamed", True)):
        proc = _spawn(kit, STAGED_MOVER, str(proj.root), str(proj.ledger_path), stage, env=env)
        said = b""
        while not said.endswith((b"S", b"moved")):
            said += kit.read_exactly(proc.stdout, 1)
        # The log is written before the ledger is replaced: the other order loses the runs to a kill between.
        assert said.endswith(b"S"), "no call appended runs to the run log before it replaced the ledger"
        done += said.count(b".") + lands
        _kill(proc, kit)
        for _ in range(2):  # as the kill left it, then after one more write (which logs the runs again)
            runs = crash.runs_kept(proj.ledger_path)
            mine = [r for r in runs.kept.values() if r.get("command") == "/api"]
            assert not runs.read_twice, runs.read_twice
            assert len(mine) == done and sum(r["input"] for r in mine) == done, (stage, len(mine), done)
            snap = budget_state.snapshot(proj.root, env=env)
            assert (snap.commands["/api"].runs, snap.commands["/api"].usage.input) == (done, done), stage
            assert snap.overall.usage.output == 2 * done, stage
            budget_state.record_usage({"input": 1, "output": 2}, command="/api", project=proj.root, env=env)
            done += 1
    assert crash.runs_kept(proj.ledger_path).repeated_lines > 0, "the 'logged' kill left no run in both files"
