"""The hook lines as Claude Code runs them (``/bin/sh -c <line>``).

Section 1 times the hook as a Python process; what Claude Code waits for is the line in
settings.json: sh finds the interpreter and runs ``python -I -m budget_state.hook`` (waited for),
or starts it and returns (handed over). Each event's line is interleaved with ``sh -c 'exit 0'``
(what any hook costs) and ``python -c pass`` (the interpreter floor).
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable

from _harness import FLOOR, PYTHON, Config, Section, Stats, Variant, fmt_ms, interleave, new_lines
from _world import Sandbox

SH_FLOOR = "sh -c 'exit 0'"


def lines(box: Sandbox, cfg: Config) -> Section:
    proj = box.project("lines", commands={"review-pr": '"100M"', "deploy": '"20k"'}, mode="warn")
    kill = box.project("lines-kill", commands={"review-pr": '"100M"'}, mode="kill")
    settings = json.loads((proj.root / ".claude" / "settings.json").read_text())
    line = {event: groups[0]["hooks"][0]["command"] for event, groups in settings["hooks"].items()}
    rng = random.Random(5)

    def env_of(p) -> dict[str, str]:
        return {**p.env, "CLAUDE_BUDGET_PYTHON": PYTHON}

    def prompt(p, seed: int) -> Callable[[], bytes]:
        s = p.session(seed)

        def prepare() -> bytes:
            s.activity(new_lines(rng))
            s.new_prompt()
            return s.payload("UserPromptSubmit", prompt="/review-pr 12")

        return prepare

    def tool(p, seed: int) -> Callable[[], bytes]:
        s = p.session(seed)
        s.new_prompt()

        def prepare() -> bytes:
            s.activity(new_lines(rng))
            return s.payload("PreToolUse")

        return prepare

    def end(p, seed: int) -> Callable[[], bytes]:
        s = p.session(seed)

        def prepare() -> bytes:
            s.activity(new_lines(rng))
            return s.payload("SessionEnd", reason="other")

        return prepare

    variants = [
        Variant(SH_FLOOR, ["/bin/sh", "-c", "exit 0"], proj.env, proj.root, lambda: b"{}"),
        Variant(FLOOR, [PYTHON, "-c", "pass"], proj.env, proj.root, lambda: b"{}"),
    ]
    cases = [
        ("UserPromptSubmit", proj, prompt, "waited for"),
        ("SessionEnd", proj, end, "waited for"),
        ("PreToolUse", proj, tool, "handed over"),
        ("PreToolUse", kill, tool, "waited for (kill mode)"),
    ]
    described: dict[str, str] = {}
    for n, (event, p, make, how) in enumerate(cases):
        name = f"{event}{' (kill)' if p is kill else ''}"
        described[name] = how
        argv = ["/bin/sh", "-c", line[event]]
        variants.append(Variant(name, argv, env_of(p), p.root, make(p, 10 * n)))
    results = interleave(variants, runs=cfg.runs, warmup=cfg.warmup)
    sh = Stats.of(results[SH_FLOOR].ns)
    py = Stats.of(results[FLOOR].ns)
    section = Section(
        "1d. Hook lines as Claude Code runs them",
        __doc__.split("\n\n", 1)[1].replace("\n", " ").strip()
        + f" {cfg.runs} interleaved runs per row after {cfg.warmup} warm-up rounds.",
        ["line", "what Claude Code does", "median ms", "p90 ms", "× sh floor", "× python floor"],
    )
    for name, floor in ((SH_FLOOR, sh), (FLOOR, py)):
        section.rows.append(
            [
                name,
                "—",
                fmt_ms(floor.median),
                fmt_ms(floor.p90),
                f"{floor.median / sh.median:.2f}×",
                f"{floor.median / py.median:.2f}×",
            ]
        )
    for name, how in described.items():
        s = Stats.of(results[name].ns)
        section.rows.append(
            [name, how, fmt_ms(s.median), fmt_ms(s.p90), f"{s.median / sh.median:.2f}×", f"{s.median / py.median:.2f}×"]
        )
        if name == "UserPromptSubmit":
            section.summary.append(
                (
                    "UserPromptSubmit line",
                    f"{fmt_ms(s.median)} ms ({s.median / py.median:.2f}× python -c pass)",
                    "as fast as it can be",
                    "—",
                )
            )
    section.notes.append(
        "A waited-for line is sh + the Python start (isolated, -I) + the hook's own work (ledger TOML read and "
        "write, most of it); a handed-over one returns once sh has started Python in the background. There is no "
        "resident process, socket or cache since 0.5 (docs/security.md). The hook's own work is what section 1 "
        "shows above its floor."
    )
    return section
