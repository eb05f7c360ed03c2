"""The status line process (Claude Code starts one per refresh) vs a hook and vs the floor."""

from __future__ import annotations

import json
import random
import re
from pathlib import Path
from typing import Callable

from _harness import (
    FLOOR,
    HOOK,
    HOOK_GOAL,
    PYTHON,
    Config,
    Section,
    Stats,
    Variant,
    floor_row,
    floor_variant,
    fmt_ms,
    interleave,
    new_lines,
    stats_row,
    verdict,
)
from _world import Sandbox, record_usage

CAPTURED = Path(__file__).resolve().parent.parent / "tests" / "data" / "statusline" / "cc2.1.332.json"
STATUSLINE = [PYTHON, "-m", "budget_state.statusline"]
VIA_CLI = [PYTHON, "-m", "budget_state", "statusline"]
VIA_CLI_NAME = "statusline: python -m budget_state statusline (the CLI; for comparison)"
SAME_AS_HOOK = 1.1  # "as fast as the hook": within 10 % of the PreToolUse hook's median


def statusline(box: Sandbox, cfg: Config) -> Section:
    proj = box.project(
        "statusline",
        commands={"review-pr": '"100M"', "deploy": '"20k"', "lint": None, "changelog": None},
        mode="block",
    )
    (proj.root / ".claude" / "budget.toml").write_text('overall_tokens = "5M"\n', encoding="utf-8")
    for i in range(10):
        record_usage(proj, 4000 + 100 * i, command="/review-pr")
    for _ in range(5):
        record_usage(proj, 3000, command="/deploy")
    for _ in range(10):
        record_usage(proj, 2000, command=None)
    rng = random.Random(13)
    session = proj.session(31)
    proj.hook(session.payload("UserPromptSubmit", prompt="/review-pr 7"))  # a /review-pr run in progress
    session.activity(3)
    proj.hook(session.payload("PreToolUse"))

    captured = json.loads(CAPTURED.read_text(encoding="utf-8"))
    captured.update(session_id=session.id, prompt_id=session.prompt_id, transcript_path=str(session.transcript))
    captured.update(cwd=str(proj.root))
    captured["workspace"].update(current_dir=str(proj.root), project_dir=str(proj.root))
    status_input = json.dumps(captured).encode()

    def tool() -> bytes:
        session.activity(new_lines(rng))
        return session.payload("PreToolUse")

    def status() -> bytes:
        return status_input

    env = {k: v for k, v in proj.env.items() if k != "CLAUDE_PROJECT_DIR"}  # the project comes from the input
    cases: list[tuple[str, list[str], Callable[[], bytes], dict[str, str]]] = [
        ("hook: PreToolUse (in a /review-pr run)", HOOK, tool, proj.env),
        ("statusline: python -m budget_state.statusline", STATUSLINE, status, env),
        (VIA_CLI_NAME, VIA_CLI, status, env),
    ]
    variants = [floor_variant(env, proj.root)] + [Variant(n, argv, e, proj.root, prep) for n, argv, prep, e in cases]
    results = interleave(variants, runs=cfg.runs, warmup=cfg.warmup, seed=5)
    floor = Stats.of(results[FLOOR].ns)
    hook = Stats.of(results[cases[0][0]].ns)
    line = re.sub(r"\x1b\[[0-9;]*m", "", results[cases[1][0]].last_stdout.decode("utf-8", "replace").strip())
    section = Section(
        "7. Status line",
        "`claude-budget statusline` as Claude Code runs it: a new process per refresh, the statusLine JSON that "
        "Claude Code 2.1.332 sent (tests/data/statusline/cc2.1.332.json, its session and paths pointed at a "
        "session with a /review-pr run in progress) on stdin, against the ledger of section 1's shape (4 commands, "
        "25 runs recorded through `budget_state.record_usage`, an overall budget). Interleaved with the PreToolUse "
        "hook of that same run (1–5 new assistant lines before each call, untimed) and the floor. The `python -m budget_state.statusline` row is "
        "what `claude-budget install --statusline` wires.",
        ["process", "median ms", "p90 ms", "min–max ms", "× floor", "× hook", "goal", "verdict"],
    )
    section.rows.append(floor_row(floor, after=3))
    for name, *_ in cases:
        row, s = stats_row(name, results[name], floor)
        to_hook = s.median / hook.median
        if name.startswith("hook"):
            section.rows.append(
                [*row, "1.00×", f"≤ {HOOK_GOAL:g}× floor", verdict(s.median / floor.median <= HOOK_GOAL)]
            )
            continue
        if name == VIA_CLI_NAME:  # for comparison: install wires the module, not the CLI
            section.rows.append([*row, f"{to_hook:.2f}×", "—", "—"])
            continue
        ok = to_hook <= SAME_AS_HOOK
        section.rows.append([*row, f"{to_hook:.2f}×", f"≤ {SAME_AS_HOOK:g}× hook", verdict(ok)])
        section.summary.append(
            (
                name,
                f"{fmt_ms(s.median)} ms = {s.median / floor.median:.2f}× floor, {to_hook:.2f}× the hook",
                f"≤ {SAME_AS_HOOK:g}× hook",
                verdict(ok),
            )
        )
    section.notes.append(f"What it printed (last call, without its colours): `{line}`")
    for name, *_ in cases[1:]:
        if results[name].replies.keys() != {"text"}:
            section.notes.append(f"{name}: expected one line of text every call, got {dict(results[name].replies)}.")
    return section
