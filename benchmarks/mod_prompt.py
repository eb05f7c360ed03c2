"""Interactive prompt latency on Claude Code 2.1.332: Enter pressed -> the turn's first request at the API.

Variants (the same project, each in its own tmux TUI): *hooks* (install, mod folder removed) and
*mod* (install as shipped). Each round types a budgeted command (``/review-pr N``, one request) into
the idle prompt, presses Enter and times until the fake API has the request, then waits for the idle
prompt. The first prompt of each session is dropped (the mod's Python child starts then).
Run: ``.venv/bin/python benchmarks/mod_prompt.py [ROUNDS]``; prints Markdown.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO / "tests" / "e2e"))
from e2e_harness import ClaudeCLI, FakeAPI, Interactive, Project, pane_idle, pinned_path, tmux_bin  # noqa: E402


def session(root: Path, variant: str, rounds: int) -> list[float]:
    api = FakeAPI().start()
    proj, home = root / f"{variant}-proj", root / f"{variant}-home"
    (proj / ".claude" / "commands").mkdir(parents=True)
    home.mkdir()
    (home / ".claude.json").write_text(json.dumps({"hasCompletedOnboarding": True}))
    env = {**os.environ, "HOME": str(home)}
    subprocess.run(
        [sys.executable, "-m", "budget_state", "install", str(proj)], env=env, check=True, capture_output=True
    )
    if variant == "hooks":
        shutil.rmtree(home / ".claude" / "skills" / "claude-budget")
    (proj / ".claude" / "commands" / "review-pr.md").write_text(
        "---\ndescription: b\ntokenBudget: 10000000\n---\nReview. SCRIPT: text\n"
    )
    p = Project(proj, home, api, ClaudeCLI(pinned_path("2.1.332"), (2, 1, 332)))
    tui = Interactive(p, socket=f"cb-modprompt-{os.getpid()}-{variant}", tmux=tmux_bin())
    times: list[float] = []
    try:
        tui.start()
        for n in range(rounds + 1):
            tui.type(f"/review-pr {n}")
            before = api.requests
            t = time.perf_counter()
            tui._tmux("send-keys", "-t", "main", "Enter")
            while api.requests == before:
                time.sleep(0.001)
            took = (time.perf_counter() - t) * 1000
            tui.wait(lambda pane: pane_idle(pane) and api.requests > before, "idle after the turn")
            time.sleep(0.3)
            if n:
                times.append(took)
    finally:
        tui.close()
        api.stop()
    return times


def main() -> None:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 10
    root = Path(tempfile.mkdtemp(prefix="cb-modprompt-"))
    try:
        results = {v: session(root, v, rounds) for v in ("hooks", "mod")}
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print(f"### Interactive prompt latency — 2.1.332, Enter to the first request ({rounds} prompts each)\n")
    print("| variant | median ms | min–max ms |")
    print("|---|---|---|")
    for v, ts in results.items():
        print(f"| {v} | {statistics.median(ts):.0f} | {min(ts):.0f}–{max(ts):.0f} |")


if __name__ == "__main__":
    main()
