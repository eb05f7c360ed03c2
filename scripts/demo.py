"""Show claude-budget working in the real Claude Code CLI, end to end, offline.

Starts the local stand-in for the Anthropic API (tests/fakeapi.py), makes a throwaway project
with a `/review-pr` command that has `tokenBudget: 20000`, wires the hooks with
`claude-budget install`, and then runs `claude -p` a few times in block mode:

1. `/review-pr 1` runs (Bash tools and a subagent) and is counted — compared with what Claude Code
   itself reports;
2. `/budget` prints the status without calling the model;
3. `/review-pr 2` is refused, and the API receives no request;
4. `/digest`, with `costBudget: "$0.01"` per rolling hour (`budgetWindow: 1h`), runs once, is
   refused the next time (the refusal says at what minute the hour frees up), and runs again an
   hour later — claude-budget's clock moved with CLAUDE_BUDGET_TIME_OFFSET, as the tests do;
5. `claude-budget status` shows every budget, its windows and dollars;
6. `claude-budget orchestrate` runs a small fleet under an overall budget: what does not fit is
   not started;
7. `claude-budget doctor` says what counts in this project, and why.

Usage: scripts/demo.sh (sets up first), or `.venv/bin/python scripts/demo.py [--keep]`.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

def _newest_pin() -> Path:
    """The newest Claude Code release package.json pins (what people run today)."""
    deps = json.loads((ROOT / "package.json").read_text(encoding="utf-8"))["devDependencies"]
    pins = sorted((n for n in deps if n.startswith("claude-code-")), key=lambda n: [int(x) for x in n[12:].split(".")])
    return ROOT / "node_modules" / pins[-1] / "bin" / "claude.exe"


CLAUDE = Path(os.environ.get("CLAUDE_BUDGET_CLAUDE_BIN") or _newest_pin())


def step(text: str) -> None:
    print(f"\n\033[1m== {text}\033[0m" if sys.stdout.isatty() and not os.environ.get("NO_COLOR") else f"\n== {text}")


def stats(url: str) -> dict:
    with urllib.request.urlopen(f"{url}/_fake/stats", timeout=10) as r:
        return json.load(r)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if not CLAUDE.exists():
        print(f"Error: {CLAUDE} is missing — run scripts/setup.sh first", file=sys.stderr)
        return 1
    work = Path(tempfile.mkdtemp(prefix="claude-budget-demo-"))
    project, home = work / "project", work / "home"
    (project / ".claude" / "commands").mkdir(parents=True)
    home.mkdir()
    (home / ".claude.json").write_text(json.dumps({"hasCompletedOnboarding": True}))
    api = subprocess.Popen([sys.executable, str(ROOT / "tests" / "fakeapi.py")], stdout=subprocess.PIPE, text=True)
    try:
        assert api.stdout is not None
        url = api.stdout.readline().strip()
        env = {k: v for k, v in os.environ.items() if not k.startswith(("CLAUDE", "ANTHROPIC"))}
        env.update(
            HOME=str(home),
            ANTHROPIC_BASE_URL=url,
            ANTHROPIC_API_KEY="demo-key-not-used",
            CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC="1",
            NO_COLOR="1",
        )

        version = subprocess.run([str(CLAUDE), "--version"], capture_output=True, text=True, env=env).stdout
        version = version.split(" (")[0]
        step(f"A project with one budgeted command ({project}), Claude Code {version}")
        subprocess.run([sys.executable, "-m", "budget_state", "install", str(project)], check=True, env=env)
        cmd = project / ".claude" / "commands" / "review-pr.md"
        cmd.write_text(
            "---\ndescription: Review a pull request\ntokenBudget: 20000\n---\n"
            "Review pull request $ARGUMENTS. SCRIPT: bash, agent, bash, text\n"
        )
        (project / ".claude" / "budget.toml").write_text('mode = "block"\n')
        print(f'$ cat .claude/commands/review-pr.md\n{cmd.read_text()}$ cat .claude/budget.toml\nmode = "block"')

        def claude(prompt: str) -> dict:
            before = stats(url)["requests"]
            print(f"\n$ claude -p {prompt!r}")
            proc = subprocess.run(
                [str(CLAUDE), "-p", prompt, "--output-format", "json", "--allowedTools", "Bash Task Agent"],
                cwd=project,
                env=env,
                capture_output=True,
                text=True,
                timeout=180,
            )
            if proc.returncode != 0:
                print(proc.stdout, proc.stderr, file=sys.stderr)
                raise SystemExit(f"claude exited with {proc.returncode}")
            result = json.loads(proc.stdout)
            result["_requests"] = stats(url)["requests"] - before
            return result

        def status() -> dict:
            out = subprocess.run(
                [sys.executable, "-m", "budget_state", "status", "--json"],
                cwd=project,
                env=env,
                capture_output=True,
                text=True,
                check=True,
            )
            return json.loads(out.stdout)

        step("1. Run the command: the hook counts what it spends")
        r = claude("/review-pr 1")
        reported = {"input": 0, "output": 0, "cache_creation": 0, "cache_read": 0}
        for m in r["modelUsage"].values():
            reported["input"] += m["inputTokens"]
            reported["output"] += m["outputTokens"]
            reported["cache_creation"] += m["cacheCreationInputTokens"]
            reported["cache_read"] += m["cacheReadInputTokens"]
        counted = status()["commands"]["/review-pr"]
        cost = sum(m["costUSD"] for m in r["modelUsage"].values())
        print(f"API requests: {r['_requests']} (the main agent and its subagent, which runs in the background;")
        print("  if it outlives its turn, Claude Code's follow-up turn for it is refused: the command is spent)")
        print(f"Claude Code reports: {reported} = {sum(reported.values())} tokens, ${cost:.6f}")
        print(
            f"claude-budget counted: {counted['tokens']} = {counted['used']} tokens, ${counted['usd']['used']:.6f},"
            f" {counted['runs']} run"
        )
        exact = counted["tokens"] == reported and abs(counted["usd"]["used"] - cost) <= r["_requests"] * 1e-6
        print("exact match (dollars to within 1 µ$ a request)" if exact else "MISMATCH")

        step("2. /budget: answered by the hook, no model call")
        r = claude("/budget")
        print(r["result"])
        print(f"API requests: {r['_requests']}")

        step("3. Run it again: the budget is spent, so block mode refuses it")
        r = claude("/review-pr 2")
        print(r["result"])
        print(f"API requests: {r['_requests']}")

        step("4. Dollars per rolling hour: /digest may spend $0.01 an hour")
        digest = project / ".claude" / "commands" / "digest.md"
        digest.write_text(
            '---\ndescription: Summarise the day\ncostBudget: "$0.01"\nbudgetWindow: 1h\n---\n'
            "Summarise $ARGUMENTS. SCRIPT: text\n"
        )
        print(f"$ cat .claude/commands/digest.md\n{digest.read_text()}")
        r = claude("/digest today")
        hour = status()["commands"]["/digest"]["windows"][0]
        print(f"spent ${hour['usd']['used']:.4f} of ${hour['usd']['limit']:.2f} in the last hour ({hour['percent']}%)")
        r = claude("/digest again")
        print(r["result"])
        print(f"API requests: {r['_requests']}")
        print("\nAn hour later (CLAUDE_BUDGET_TIME_OFFSET=3600 moves claude-budget's clock, as the tests do):")
        env["CLAUDE_BUDGET_TIME_OFFSET"] = "3600"
        r = claude("/digest later")
        print(f"allowed again: {r['_requests']} API request(s); the hour that held the first run has passed")

        step("5. Every budget at a glance, still an hour later: claude-budget status")
        subprocess.run([sys.executable, "-m", "budget_state", "status"], cwd=project, env=env, check=True)

        step("The orchestrator's view: claude-budget status --json")
        print(json.dumps(status()["commands"]["/review-pr"], indent=2))

        step("6. A fleet: four /garden instances, two at a time, under 30K tokens for the lot")
        (project / ".claude" / "commands" / "garden.md").write_text(
            "---\ndescription: Tend the garden\n---\nTend garden bed $ARGUMENTS. SCRIPT: bash, text\n"
        )
        before = stats(url)["requests"]
        fleet = ["--instance", "/garden 1", "--instance", "/garden 2", "--instance", "/garden 3", "--instance", "/garden 4"]
        argv = ["orchestrate", *fleet, "--max-concurrent", "2", "--overall-token-budget", "30k"]
        argv += ["--budget-enforcement-mode", "stop-new", "--claude", str(CLAUDE), "--", "--allowedTools", "Bash"]
        print("$ claude-budget " + " ".join(a if " " not in a else repr(a) for a in argv))
        proc = subprocess.run([sys.executable, "-m", "budget_state", *argv], cwd=project, env=env, text=True, timeout=300)
        print(f"(exit code {proc.returncode}: 3 = some instances were held back by a budget)")
        print(f"API requests: {stats(url)['requests'] - before} (none for the skipped ones)")

        step("7. What counts here, and why: claude-budget doctor")
        print("$ claude-budget doctor")
        subprocess.run([sys.executable, "-m", "budget_state", "doctor"], cwd=project, env=env, check=False)
        return 0 if exact and proc.returncode in (0, 3) else 1
    finally:
        api.terminate()
        api.wait(10)
        if "--keep" in args:
            print(f"\n(kept {work})")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
