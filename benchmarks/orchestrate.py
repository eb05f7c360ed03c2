"""The orchestrator's own overhead: ``claude-budget orchestrate`` against ``xargs -P`` starting the same instances.

``.venv/bin/python benchmarks/orchestrate.py [--rounds N] [--instances N] [--concurrency N] [--version X]``
prints a Markdown section for BENCHMARKS.md.

Both variants run the same ``claude -p "/garden i" --output-format json`` instances, at the same
concurrency, in a project with the hooks installed (so both pay the hooks), against the fake API
(``tests/fakeapi.py``, answering at once). Each run gets a fresh project and HOME, set up outside
the timing. The variants alternate in a fresh random order every round; the overhead is the
median over rounds of (orchestrate − xargs), and its ratio to the xargs wall time.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))

from fakeapi import FakeAPI  # noqa: E402

SCRIPT = "Tend the garden $ARGUMENTS. SCRIPT: bash, text"  # two requests and one tool call: a short real run
PYTHON = str(REPO / ".venv" / "bin" / "python")


def claude_path(version: str) -> Path:
    return REPO / "node_modules" / f"claude-code-{version}" / "bin" / "claude.exe"


def setup(base: Path, api: FakeAPI) -> tuple[Path, dict[str, str]]:
    root, home = base / "proj", base / "home"
    (root / ".claude" / "commands").mkdir(parents=True)
    home.mkdir()
    (home / ".claude.json").write_text(json.dumps({"hasCompletedOnboarding": True}))
    (root / ".claude" / "commands" / "garden.md").write_text(f"---\ndescription: bench\n---\n{SCRIPT}\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CLAUDE", "ANTHROPIC", "XDG_"))}
    env.update(
        HOME=str(home),
        ANTHROPIC_BASE_URL=api.url,
        ANTHROPIC_API_KEY="sk-ant-bench",
        CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC="1",
    )
    subprocess.run(
        [PYTHON, "-m", "budget_state", "install", str(root)], cwd=root, env=env, check=True, capture_output=True
    )
    return root, env


def run_xargs(claude: Path, root: Path, env: dict[str, str], n: int, concurrency: int) -> float:
    items = "".join(f"{i}\n" for i in range(n))
    # `setsid -w`: each instance in a session of its own, as the orchestrator starts them (without it,
    # the same instances ran markedly slower here — see BENCHMARKS.md), and waited for.
    argv = ["xargs", "-P", str(concurrency), "-I{}", "setsid", "-w", str(claude), "-p", "/garden {}"]
    argv += ["--output-format", "json"]
    argv += ["--allowedTools", "Bash"]
    started = time.perf_counter()
    subprocess.run(
        argv,
        input=items,
        cwd=root,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        text=True,
        check=True,
    )
    return time.perf_counter() - started


CPU: list[float] = []  # the orchestrator process's own CPU seconds (user + system, its children excluded)


def run_orchestrate(claude: Path, root: Path, env: dict[str, str], n: int, concurrency: int) -> float:
    argv = [PYTHON, "-m", "budget_state", "orchestrate", "--claude", str(claude), "--max-concurrent", str(concurrency)]
    argv += ["--budget-dashboard-mode", "off", "--overall-token-budget", "100M"]
    for i in range(n):
        argv += ["--instance", f"/garden {i}"]
    argv += ["--", "--allowedTools", "Bash"]
    started = time.perf_counter()
    proc = subprocess.Popen(argv, cwd=root, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    # Wait for its exit without reaping it, so /proc still has its own CPU times (fields 14, 15).
    os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOWAIT)
    took = time.perf_counter() - started
    fields = Path(f"/proc/{proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
    CPU.append((int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK"))
    if proc.wait() != 0:
        raise SystemExit(f"orchestrate failed ({proc.returncode})")
    return took


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--instances", type=int, default=12)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--version", default="2.1.332")
    args = parser.parse_args()
    claude = claude_path(args.version)
    api = FakeAPI().start()
    times: dict[str, list[float]] = {"xargs": [], "orchestrate": []}
    diffs: list[float] = []
    ratios: list[float] = []
    try:
        for r in range(args.warmup + args.rounds):
            variants = ["xargs", "orchestrate"]
            random.shuffle(variants)
            took: dict[str, float] = {}
            for v in variants:
                base = Path(tempfile.mkdtemp(prefix="cb-orch-bench-"))
                try:
                    root, env = setup(base, api)
                    fn = run_xargs if v == "xargs" else run_orchestrate
                    took[v] = fn(claude, root, env, args.instances, args.concurrency)
                finally:
                    shutil.rmtree(base, ignore_errors=True)
            if r >= args.warmup:
                for v, t in took.items():
                    times[v].append(t)
                diffs.append(took["orchestrate"] - took["xargs"])
                ratios.append(took["orchestrate"] / took["xargs"] - 1)
    finally:
        api.stop()
    med = {v: statistics.median(t) for v, t in times.items()}
    overhead = statistics.median(diffs)
    pct = statistics.median(ratios) * 100
    print("## Orchestrator overhead against `xargs -P`")
    print()
    print(
        f"`benchmarks/orchestrate.py --rounds {args.rounds} --instances {args.instances} "
        f"--concurrency {args.concurrency} --version {args.version}`: "
        f'{args.instances} instances of `claude -p "/garden i"` (2 requests, 1 Bash call '
        f"each, hooks installed) at {args.concurrency} at a time, started by "
        f"`xargs -P {args.concurrency} setsid -w` or by "
        f"`claude-budget orchestrate --max-concurrent {args.concurrency}` (with an overall budget, so every start is "
        "checked and every end settled). Fresh project and HOME per run; variants in a random order each round; "
        f"{args.warmup} warm-up round dropped, {args.rounds} timed. Machine: {platform.machine()}, "
        f"{os.cpu_count()} logical CPUs, Python {platform.python_version()}, "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, load average at the end {os.getloadavg()[0]:.1f}."
    )
    print()
    print("| variant | median wall | min | max |")
    print("|---|---|---|---|")
    for v in ("xargs", "orchestrate"):
        print(f"| {v} | {med[v]:.2f} s | {min(times[v]):.2f} s | {max(times[v]):.2f} s |")
    cpu = statistics.median(CPU[args.warmup :] if len(CPU) > args.warmup else CPU)
    print()
    print(
        f"The orchestrator process itself (its children excluded) used a median **{cpu:.2f} s of CPU** per run, "
        f"= {cpu / med['orchestrate'] * 100:.1f} % of its wall time: its share of the machine, whatever the noise."
    )
    verdict = "meets" if pct < 5 else "**misses**"
    print()
    print(
        f"Overhead (median of per-round differences): **{overhead * 1000:+.0f} ms = {pct:+.1f} %** of the xargs wall "
        f"time — goal < 5 %: {verdict} goal."
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
