"""Whole-run time of ``claude -p`` 2.1.332 with the mod beside hooks-only and bare (issue 20).

Variants, interleaved round-robin in a fresh random order per round (2 warm-up rounds dropped):

- bare: no claude-budget in the project;
- hooks: ``claude-budget install`` with the mod folder it writes removed (the hooks count);
- mod: ``claude-budget install`` as shipped (Claude Code loads ~/.claude/skills/claude-budget/, the mod
  counts each request through ``budget_state.hook --mod``, the hooks stand down for counting);
  Python is one child per session (``$.process.spawn``; requests through a FIFO in the user's 0700
  state folder, answers on its stdout);
- mod-run: the same mod with ``CLAUDE_BUDGET_MOD_CHILD=off``: one ``$.process.run`` per request;
- *-kill: the same in kill mode (the mod then waits for each request's record before the next
  request and each tool call; warn and block modes let the records run behind).

Each run is a 5-request budgeted command (``SCRIPT: bash, bash, bash, bash, text``) against the local
fake API. Also reported: the mod's own Python round trip per request, as Claude Code's debug log
times each ``$.process.run``. Run: ``.venv/bin/python benchmarks/mod.py [ROUNDS [VARIANTS]]`` (VARIANTS
comma-separated, e.g. ``bare,hooks,mod``; default all); prints Markdown.
"""

from __future__ import annotations

import json
import os
import platform
import random
import resource
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
from fakeapi import FakeAPI  # noqa: E402

CLAUDE = REPO / "node_modules" / "claude-code-2.1.332" / "bin" / "claude.exe"
PROMPT = "/review-pr 1"
BODY = "---\ndescription: bench\ntokenBudget: 10000000\n---\nReview. SCRIPT: bash, bash, bash, bash, text\n"


def make(root: Path, variant: str) -> tuple[Path, Path]:
    proj, home = root / f"{variant}-proj", root / f"{variant}-home"
    (proj / ".claude" / "commands").mkdir(parents=True)
    home.mkdir()
    (home / ".claude.json").write_text(json.dumps({"hasCompletedOnboarding": True}))
    (proj / ".claude" / "commands" / "review-pr.md").write_text(BODY)
    if variant != "bare":
        env = {**os.environ, "HOME": str(home)}
        subprocess.run(
            [sys.executable, "-m", "budget_state", "install", str(proj)], env=env, check=True, capture_output=True
        )
        if variant.startswith("hooks") or variant == "bare":
            shutil.rmtree(home / ".claude" / "skills" / "claude-budget")
        if variant.endswith("kill"):
            (proj / ".claude" / "budget.toml").write_text('mode = "kill"\n')
    return proj, home


CPU: dict[str, list[float]] = {}


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def run(proj: Path, home: Path, url: str, debug: bool = False) -> float:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CLAUDE", "ANTHROPIC", "XDG_"))}
    if "mod-run" in proj.name:  # the mod without its Python child: one process per request
        env["CLAUDE_BUDGET_MOD_CHILD"] = "off"
    env.update(
        HOME=str(home), ANTHROPIC_BASE_URL=url, ANTHROPIC_API_KEY="x", CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC="1"
    )
    argv = [str(CLAUDE), "-p", PROMPT, "--output-format", "json", "--allowedTools", "Bash Task Agent"]
    if debug:
        argv.append("--debug")
    t, c = time.perf_counter(), _cpu()
    done = subprocess.run(argv, cwd=proj, env=env, capture_output=True, text=True, timeout=120)
    took = time.perf_counter() - t
    CPU.setdefault(proj.name.removesuffix("-proj"), []).append((_cpu() - c) * 1000)
    if done.returncode != 0 or json.loads(done.stdout).get("num_turns", 0) < 1:
        raise SystemExit(f"run failed: {done.stdout[-500:]} {done.stderr[-500:]}")
    return took * 1000


def debug_log(proj: Path, home: Path, url: str) -> str:
    """One run of ``proj`` with Claude Code's debug log on; what that log says."""
    for f in (home / ".claude" / "debug").glob("*.txt"):
        f.unlink()
    run(proj, home, url, debug=True)
    return "".join(f.read_text() for f in (home / ".claude" / "debug").glob("*.txt"))


def main() -> None:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 10
    every = ("bare", "hooks", "mod", "mod-run", "hooks-kill", "mod-kill", "mod-run-kill")
    # an optional second argument: the variants to run, comma-separated (default: all)
    names = tuple(sys.argv[2].split(",")) if len(sys.argv) > 2 else every
    if "bare" not in names or not set(names) <= set(every):
        raise SystemExit(f"variants: a comma-separated choice of {', '.join(every)}, bare among them")
    api = FakeAPI().start()
    root = Path(tempfile.mkdtemp(prefix="cb-modbench-"))
    try:
        variants = {v: make(root, v) for v in names}
        times: dict[str, list[float]] = {v: [] for v in variants}
        for r in range(rounds + 2):
            order = list(variants)
            random.shuffle(order)
            for v in order:
                ms = run(*variants[v], api.url)
                if r >= 2:
                    times[v].append(ms)
        # from Claude Code's debug log: the mod's turn.step times (child) and its process round trips (mod-run)
        log = debug_log(*variants["mod"], api.url) if "mod" in variants else ""
        run_log = debug_log(*variants["mod-run"], api.url) if "mod-run" in variants else ""
        trips = [int(m) for m in re.findall(r"\$\.process\.run \(claude-budget-mod\): sh exited 0 in (\d+)ms", run_log)]
        steps = [
            float(m) for m in re.findall(r"claude-budget-mod@skills-dir turn\.step stream settled in ([\d.]+)ms", log)
        ]
    finally:
        api.stop()
        shutil.rmtree(root, ignore_errors=True)
    bare = statistics.median(times["bare"])
    load = os.getloadavg()
    print(f"### Mod vs hooks vs bare — Claude Code 2.1.332, `claude -p` of a 5-request command ({rounds} rounds)\n")
    print(
        f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, load {load[0]:.2f} at the end.\n"
    )
    print("| variant | median ms | p90 ms | min–max ms | vs bare | CPU ms (median) |")
    print("|---|---|---|---|---|---|")
    for v, ts in times.items():
        ts = sorted(ts)
        med = statistics.median(ts)
        p90 = ts[min(len(ts) - 1, int(0.9 * len(ts)))]
        rel = "—" if v == "bare" else f"{(med / bare - 1) * 100:+.1f} % ({med - bare:+.0f} ms)"
        cpu = statistics.median(CPU[v][2:]) if len(CPU.get(v, [])) > 2 else float("nan")
        print(f"| {v} | {med:.0f} | {p90:.0f} | {ts[0]:.0f}–{ts[-1]:.0f} | {rel} | {cpu:.0f} |")
    if trips:
        print(
            f"\nmod-run: one `$.process.run` of Python per call (hello, 5 steps, measure): median {statistics.median(trips):.0f} ms, "
            f"min {min(trips)}, max {max(trips)} ({len(trips)} calls)."
        )
    if steps:
        print(
            f"mod (child): `turn.step` settled in median {statistics.median(steps):.0f} ms per request as Claude Code's debug log "
            "times it (the request itself included; the record runs behind it)."
        )


if __name__ == "__main__":
    main()
