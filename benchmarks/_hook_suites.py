"""Hook process latency: every event vs the floor (1), without the editable install (1b), long history (2)."""

from __future__ import annotations

import random
import time
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
    Timing,
    Variant,
    floor_row,
    floor_variant,
    fmt_ms,
    interleave,
    new_lines,
    reply_kinds,
    stats_row,
    verdict,
)
from _world import Lines, Sandbox, record_usage, write_big

# --- 1. hook latency ------------------------------------------------------------------------------


def hook_latency(box: Sandbox, cfg: Config) -> tuple[Section, dict[str, Variant], dict[str, Timing]]:
    proj = box.project(
        "hooks",
        commands={"review-pr": '"100M"', "deploy": '"20k"', "spent": 1000, "lint": None, "changelog": None},
        mode="block",
    )
    for i in range(10):
        record_usage(proj, 4000 + 100 * i, command="/review-pr")
    for _ in range(5):
        record_usage(proj, 3000, command="/deploy")
    for _ in range(2):
        record_usage(proj, 800, command="/spent")  # 1600 of 1000: spent, so block mode refuses it
    for _ in range(10):
        record_usage(proj, 2000, command=None)
    rng = random.Random(11)

    def prompt(seed: int, text: str) -> Callable[[], bytes]:
        s = proj.session(seed)

        def prepare() -> bytes:
            s.activity(new_lines(rng))  # the previous turn's lines, read by this prompt's hook
            s.new_prompt()
            return s.payload("UserPromptSubmit", prompt=text)

        return prepare

    tools = proj.session(5)
    proj.hook(tools.payload("UserPromptSubmit", prompt="/review-pr 7"))  # a /review-pr run in progress
    sub = proj.session(7)
    proj.hook(sub.payload("UserPromptSubmit", prompt="/review-pr 8"))
    stop = proj.session(6)

    def tool(event: str) -> Callable[[], bytes]:
        def prepare() -> bytes:
            tools.activity(new_lines(rng))
            return tools.payload(event)

        return prepare

    def stop_prepare() -> bytes:
        stop.new_prompt()
        proj.hook(stop.payload("UserPromptSubmit", prompt="/review-pr 43"))  # untimed: the run Stop ends
        stop.activity(new_lines(rng), final=True)  # the turn's closing text, quoted by the payload
        return stop.payload("Stop")

    lagging = proj.session(8)

    def lagging_prepare() -> bytes:
        lagging.new_prompt()
        proj.hook(lagging.payload("UserPromptSubmit", prompt="/review-pr 44"))
        lagging.activity(new_lines(rng), final=True)
        lagging.last_message = f"A closing text not written yet ({lagging.prompt_id})."  # the hook waits for it
        return lagging.payload("Stop")

    def sub_prepare() -> bytes:
        sub.activity(new_lines(rng), subagent=True, final=True)
        return sub.payload("SubagentStop")

    env, cwd = proj.env, proj.root
    cases = [
        ("UserPromptSubmit: plain prompt", prompt(1, "why does test_api fail on CI but not locally?"), "silent"),
        ("UserPromptSubmit: /review-pr (budgeted)", prompt(2, "/review-pr 42"), "silent"),
        ("UserPromptSubmit: /spent (refused, block mode)", prompt(3, "/spent now"), "block"),
        ("UserPromptSubmit: /budget", prompt(4, "/budget"), "block"),
        ("PreToolUse (in a /review-pr run)", tool("PreToolUse"), "silent"),
        ("PostToolUse (in a /review-pr run)", tool("PostToolUse"), "silent"),
        ("Stop (ends a /review-pr run)", stop_prepare, "silent"),
        ("SubagentStop", sub_prepare, "silent"),
        ("Stop, closing text never written (worst case)", lagging_prepare, "silent"),
    ]
    variants = [floor_variant(env, cwd)] + [Variant(name, HOOK, env, cwd, prep) for name, prep, _ in cases]
    results = interleave(variants, runs=cfg.runs, warmup=cfg.warmup)
    floor = Stats.of(results[FLOOR].ns)
    section = Section(
        "1. Hook latency",
        "Each hook event as Claude Code sends it (payloads shaped like tests/data/hooks/), in block mode, against a "
        "ledger in steady state (5 commands, 27 runs recorded through `budget_state.record_usage`, then one session "
        "per row). Before every timed call 1–5 new assistant lines (plus tool results) are appended to the "
        "transcript, untimed, the last of them the turn's closing text that Stop's `last_assistant_message` quotes "
        "(the Stop hook waits up to 0.25 s for it to be in the transcript); the Stop rows also open their run with an "
        "untimed UserPromptSubmit. The last row is that wait's worst case: the quoted text never appears.",
        ["process", "median ms", "p90 ms", "min–max ms", "× floor", "reply", "goal", "verdict"],
    )
    section.rows.append(floor_row(floor, after=3))
    for name, _, expected in cases:
        row, s = stats_row(name, results[name], floor)
        ratio = s.median / floor.median
        section.rows.append([*row, reply_kinds(results[name]), f"≤ {HOOK_GOAL:g}× floor", verdict(ratio <= HOOK_GOAL)])
        section.summary.append(
            (
                f"hook: {name}",
                f"{fmt_ms(s.median)} ms = {ratio:.2f}× floor",
                f"≤ {HOOK_GOAL:g}× floor",
                verdict(ratio <= HOOK_GOAL),
            )
        )
        if set(results[name].replies) != {expected}:
            section.notes.append(f"{name}: expected a {expected} reply, got {reply_kinds(results[name])}.")
    return section, {v.name: v for v in variants}, results


# --- 2. cost independent of history --------------------------------------------------------------


def history(box: Sandbox, cfg: Config) -> Section:
    proj = box.project("history", commands={"review-pr": '"100M"'})
    small, big = proj.session(21), proj.session(22)
    chunk = Lines("old-session", str(proj.root), 5).block("old-prompt", 1 << 20)
    write_big(small.transcript, chunk, 1 << 20)
    t0 = time.perf_counter()
    write_big(big.transcript, chunk, cfg.big_mb << 20)
    made = time.perf_counter() - t0
    sizes = {s.id: s.transcript.stat().st_size for s in (small, big)}
    for s in (small, big):
        proj.hook(s.payload("UserPromptSubmit", prompt="/review-pr 1"))  # first sight: the cursor goes to the old end
    gen = Lines("appended", str(proj.root), 6)
    finals = [f"Done: step {i} of the refactor is in (12 tests green)." for i in range(cfg.runs + cfg.warmup)]
    blocks = [gen.block("p-new", 10 * 1024, final=text) for text in finals]
    queues = {small.id: list(zip(blocks, finals)), big.id: list(zip(blocks, finals))}  # the same bytes for both

    def stop(s) -> Callable[[], bytes]:
        def prepare() -> bytes:
            data, s.last_message = queues[s.id].pop(0)
            s.append(data)
            return s.payload("Stop")

        return prepare

    n_small, n_big = "Stop, 1 MB transcript", f"Stop, {cfg.big_mb} MB transcript"
    variants = [
        floor_variant(proj.env, proj.root),
        Variant(n_small, HOOK, proj.env, proj.root, stop(small)),
        Variant(n_big, HOOK, proj.env, proj.root, stop(big)),
    ]
    try:
        results = interleave(variants, runs=cfg.runs, warmup=cfg.warmup)
    finally:
        big.transcript.unlink()
    floor = Stats.of(results[FLOOR].ns)
    s_small, s_big = Stats.of(results[n_small].ns), Stats.of(results[n_big].ns)
    ratio = s_big.median / s_small.median
    assistant = blocks[0].count(b'"type":"assistant"')
    section = Section(
        "2. Cost independent of history",
        f"The Stop hook when the transcript already holds 1 MB vs {cfg.big_mb} MB (written as one realistic 1 MB "
        f"block repeated, in {made:.2f} s; deleted afterwards). The cursor starts at the old end (one untimed hook "
        "first); before every "
        f"timed call the same {len(blocks[0]) / 1024:.1f} KB of new lines ({assistant} assistant lines) "
        "is appended to each.",
        [
            "process",
            "transcript bytes",
            "median ms",
            "p90 ms",
            "min–max ms",
            "× floor",
            "reply",
            "× 1 MB",
            "goal",
            "verdict",
        ],
    )
    section.rows.append(floor_row(floor, before=1, after=4))
    for name, s, size in ((n_small, s_small, sizes[small.id]), (n_big, s_big, sizes[big.id])):
        row, st = stats_row(name, results[name], floor, extra=[f"{size:,}"])
        r = st.median / s_small.median
        section.rows.append(
            [
                *row,
                reply_kinds(results[name]),
                f"{r:.2f}×",
                "≤ 1.1× the 1 MB row",
                verdict(r <= 1.1) if s is s_big else "—",
            ]
        )
    section.summary.append(
        (f"Stop: {cfg.big_mb} MB vs 1 MB transcript", f"{ratio:.2f}×", "≤ 1.1×", verdict(ratio <= 1.1))
    )
    return section


# --- 1b. without the editable install ---------------------------------------------------------------


def plain_install(box: Sandbox, cfg: Config, repo: Path) -> Section:
    """The same hooks from this venv and from a venv without the editable-install finder, each vs its own floor."""
    plain = box.plain_python(repo)
    proj = box.project("plain", commands={"review-pr": '"100M"', "deploy": '"20k"'}, mode="block")
    for i in range(10):
        record_usage(proj, 4000 + 100 * i, command="/review-pr")
    rng = random.Random(13)
    seeds = iter(range(60, 80))

    def ups(python: str, label: str) -> Variant:
        s = proj.session(next(seeds))

        def prepare() -> bytes:
            s.activity(new_lines(rng))
            s.new_prompt()
            return s.payload("UserPromptSubmit", prompt="/review-pr 42")

        return Variant(
            f"UserPromptSubmit /review-pr, {label}", [python, "-m", "budget_state.hook"], proj.env, proj.root, prepare
        )

    def stop(python: str, label: str) -> Variant:
        s = proj.session(next(seeds))

        def prepare() -> bytes:
            s.new_prompt()
            proj.hook(s.payload("UserPromptSubmit", prompt="/review-pr 43"))
            s.activity(new_lines(rng), final=True)
            return s.payload("Stop")

        return Variant(f"Stop, {label}", [python, "-m", "budget_state.hook"], proj.env, proj.root, prepare)

    labels = {PYTHON: ".venv (editable)", plain: "regular layout"}
    floors = {
        py: Variant(f"python -c pass, {label}", [py, "-c", "pass"], proj.env, proj.root, lambda: b"{}")
        for py, label in labels.items()
    }
    hooks = {py: [ups(py, label), stop(py, label)] for py, label in labels.items()}
    variants = [*floors.values(), *(v for vs in hooks.values() for v in vs)]
    results = interleave(variants, runs=cfg.runs, warmup=cfg.warmup)
    section = Section(
        "1b. The same hooks without the editable install",
        "This repo's `.venv` has the package installed editable: its `__editable__…finder.pth` runs at every "
        "start-up and imports pathlib, re, urllib.parse, fnmatch and importlib.util, so `python -c pass` there "
        "already pays for modules the hook needs. A user's `pip install /path/to/claude-budget` has no such "
        "finder. Here a second venv of the same base Python (made offline, `venv --without-pip`) sees the repo and "
        "this venv's site-packages through a plain `.pth` (paths only), i.e. a regular install; each hook is "
        "compared with the floor of its own interpreter, all interleaved in one run.",
        ["process", "median ms", "p90 ms", "min–max ms", "× own floor", "reply", "goal", "verdict"],
    )
    for py in labels:
        floor = Stats.of(results[floors[py].name].ns)
        section.rows.append(
            [
                floors[py].name,
                fmt_ms(floor.median),
                fmt_ms(floor.p90),
                f"{fmt_ms(floor.min)}–{fmt_ms(floor.max)}",
                "1.00×",
                "—",
                "—",
                "—",
            ]
        )
        for v in hooks[py]:
            row, s = stats_row(v.name, results[v.name], floor)
            ratio = s.median / floor.median
            section.rows.append(
                [*row, reply_kinds(results[v.name]), f"≤ {HOOK_GOAL:g}× floor", verdict(ratio <= HOOK_GOAL)]
            )
            if py == plain:
                section.summary.append(
                    (
                        f"hook, regular install: {v.name.split(',')[0]}",
                        f"{fmt_ms(s.median)} ms = {ratio:.2f}× floor ({fmt_ms(floor.median)} ms)",
                        f"≤ {HOOK_GOAL:g}× floor",
                        verdict(ratio <= HOOK_GOAL),
                    )
                )
    return section


# --- 2b. cost independent of windows and of the number of commands ------------------------------

WIDE_COMMANDS = 200
WINDOWS_PER_COMMAND = 4


def windows(box: Sandbox, cfg: Config) -> Section:
    """The same hooks in a project with one budgeted command and no window, and in one with 200
    budgeted commands of 4 limits each (3 windows and a dollar cap), overall windows, and a day of
    minute buckets already in the ledger."""
    from datetime import datetime, timedelta, timezone

    from budget_state.ledger._ledger import Ledger
    from budget_state.ledger._windows import charge

    narrow = box.project("narrow", commands={"review-pr": '"100M"'}, mode="block")
    names = [f"task-{i:03d}" for i in range(WIDE_COMMANDS)]
    wide = box.project("wide", commands={"review-pr": '"100M"', **dict.fromkeys(names, '"100M"')}, mode="block")
    lines = ['mode = "block"', "overall_usd = 1000", "[window.hour]", 'span = "1h"', 'tokens = "1B"', "usd = 500"]
    for name in ["review-pr", *names]:
        lines += [
            f'[commands."/{name}"]',
            "usd = 900",
            "usd_per_day = 800",
            'tokens_per_1h = "1B"',
            'tokens_per_24h = "9B"',
        ]
    (wide.root / ".claude" / "budget.toml").write_text("\n".join(lines) + "\n")
    now = datetime.now(timezone.utc)
    rng = random.Random(5)
    with Ledger(wide.ledger).transaction() as state:  # a busy day: every minute used, each command ~30 minutes of it
        for minute in range(24 * 60):
            when = now - timedelta(minutes=minute)
            scopes = ["overall"] + [f"/{n}" for n in rng.sample(names, 4)]
            charge(state, scopes, when, {"input": 900, "output": 300, "cache_read": 4000, "usd_micros": 9000})
    for name in names[:50]:
        record_usage(wide, 1000, command=f"/{name}")
    for _ in range(50):
        record_usage(narrow, 1000, command="/review-pr")
    ledger_kb = {"narrow": narrow.ledger.stat().st_size / 1024, "wide": wide.ledger.stat().st_size / 1024}
    seed = iter(range(100, 200))

    def variants_for(proj, label: str) -> list[Variant]:
        prompt_s, tool_s, stop_s = (proj.session(next(seed)) for _ in range(3))
        proj.hook(tool_s.payload("UserPromptSubmit", prompt="/review-pr 7"))

        def prompt() -> bytes:
            prompt_s.activity(new_lines(rng))
            prompt_s.new_prompt()
            return prompt_s.payload("UserPromptSubmit", prompt="/review-pr 42")

        def tool() -> bytes:
            tool_s.activity(new_lines(rng))
            return tool_s.payload("PreToolUse")

        def stop() -> bytes:
            stop_s.new_prompt()
            proj.hook(stop_s.payload("UserPromptSubmit", prompt="/review-pr 43"))
            stop_s.activity(new_lines(rng), final=True)
            return stop_s.payload("Stop")

        return [
            Variant(f"UserPromptSubmit /review-pr, {label}", HOOK, proj.env, proj.root, prompt),
            Variant(f"PreToolUse, {label}", HOOK, proj.env, proj.root, tool),
            Variant(f"Stop, {label}", HOOK, proj.env, proj.root, stop),
        ]

    small, big = variants_for(narrow, "1 command"), variants_for(wide, f"{WIDE_COMMANDS} commands × 4 limits")
    variants = [floor_variant(narrow.env, narrow.root), *small, *big]
    results = interleave(variants, runs=cfg.runs, warmup=cfg.warmup)
    floor = Stats.of(results[FLOOR].ns)
    section = Section(
        "2b. Cost independent of windows and commands",
        f"The same three hooks (block mode) in a project with one budgeted command and no window "
        f"(ledger {ledger_kb['narrow']:.0f} KB) and in one with {WIDE_COMMANDS + 1} budgeted commands, each with a "
        f"dollar cap and 3 windowed limits (usd per day, tokens per 1h and 24h), overall dollar and hourly limits, "
        "and a busy day already in the ledger: a minute bucket for every minute of the last 24 h, each minute "
        f"charged to overall and 4 random commands (ledger {ledger_kb['wide']:.0f} KB).",
        ["process", "median ms", "p90 ms", "min–max ms", "× floor", "× 1 command", "goal", "verdict"],
    )
    section.rows.append(floor_row(floor, after=3))
    for a, b in zip(small, big):
        sa = Stats.of(results[a.name].ns)
        section.rows.append([*stats_row(a.name, results[a.name], floor)[0], "1.00×", "—", "—"])
        row, sb = stats_row(b.name, results[b.name], floor)
        ratio = sb.median / sa.median
        section.rows.append([*row, f"{ratio:.2f}×", "≤ 1.25× 1 command", verdict(ratio <= 1.25)])
        section.summary.append((f"{b.name} vs 1 command", f"{ratio:.2f}×", "≤ 1.25×", verdict(ratio <= 1.25)))
    return section
