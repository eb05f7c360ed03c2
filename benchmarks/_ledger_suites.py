"""The shared ledger under load: contention (3), growth (4), status with many commands (5)."""

from __future__ import annotations

import json
import os
import random
import subprocess
import time
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
    reply_kinds,
    stats_row,
    verdict,
)
from _profile import ledger_io
from _world import Project, Sandbox, simulate_history

# --- 3. contention -------------------------------------------------------------------------------


def contention(box: Sandbox, cfg: Config) -> Section:
    import _contention
    from _harness import percentile

    section = Section(
        "3. Contention",
        "N processes (each its own `python`, started with subprocess, everything imported before a common start "
        f"signal) each call `budget_state.record_usage` {cfg.contention_updates} times on ONE ledger (a fresh one "
        f"per N; {_contention.COMMANDS} commands). Per update: the time the call took, and the part of it spent "
        "waiting for the "
        "ledger lock (`LedgerLock.acquire` wrapped in the worker). Lost tokens: what the workers' successful calls "
        "added minus what the ledger holds afterwards (read directly: tomllib for the ledger file, json for its parts).",
        [
            "processes",
            "updates",
            "wall s",
            "updates/s",
            "call p50 ms",
            "call p99 ms",
            "lock wait p50 ms",
            "lock wait p99 ms",
            "failed calls",
            "lost tokens",
            "lost runs",
            "goal",
            "verdict",
        ],
    )
    per = sum(_contention.USAGE.values())
    for procs in cfg.contention_procs:
        proj = box.project(f"contention-{procs}", commands={})
        r = _contention.run_level(PYTHON, proj.root, proj.env, procs, cfg.contention_updates)
        got = _contention.ledger_totals(proj.ledger)
        lost = r["ok"] * per - got["tokens"]
        lost_runs = r["ok"] - got["runs"]
        lat = [x / 1e6 for x in r["lat"]]
        wait = [x / 1e6 for x in r["wait"]]
        failed = ", ".join(f"{n} {k}" for k, n in r["failed"].items()) or "0"
        ok = lost == 0 and lost_runs == 0 and got["command_tokens"] == r["ok"] * per
        w = f"{percentile(wait, 50):.1f}" if wait else "n/a", f"{percentile(wait, 99):.1f}" if wait else "n/a"
        section.rows.append(
            [
                str(procs),
                f"{r['ok']:,} of {procs * cfg.contention_updates:,}",
                f"{r['wall'] / 1e9:.2f}",
                f"{r['ok'] / (r['wall'] / 1e9):.0f}",
                f"{percentile(lat, 50):.1f}",
                f"{percentile(lat, 99):.1f}",
                *w,
                failed,
                f"{lost:,}",
                f"{lost_runs:,}",
                "0 lost, 0 failed",
                verdict(ok and not r["failed"]),
            ]
        )
        section.summary.append(
            (
                f"contention, {procs} processes × {cfg.contention_updates}",
                f"{lost:,} tokens lost, {failed} failed calls, {r['ok'] / (r['wall'] / 1e9):.0f} updates/s",
                "0 lost, 0 failed",
                verdict(ok and not r["failed"]),
            )
        )
    section.notes.append(
        "`updates/s` is all processes together; `call` is one `record_usage` (lock wait + read + write + fsync), "
        "so its p50 grows with N while the lock serialises the writers."
    )
    return section


# --- 4. growth ------------------------------------------------------------------------------------


def _project_hooks(proj: Project, names: list[str], label: str, seed: int) -> list[Variant]:
    rng = random.Random(seed)
    ups, stop = proj.session(seed), proj.session(seed + 1)
    for s in (ups, stop):
        proj.hook(s.payload("UserPromptSubmit", prompt="hello"))  # first sight of the session

    def ups_prepare() -> bytes:
        ups.activity(new_lines(rng))
        ups.new_prompt()
        return ups.payload("UserPromptSubmit", prompt=f"/{rng.choice(names)} fix the flaky test")

    def stop_prepare() -> bytes:
        stop.new_prompt()
        proj.hook(stop.payload("UserPromptSubmit", prompt=f"/{rng.choice(names)} 12"))
        stop.activity(new_lines(rng), final=True)
        return stop.payload("Stop")

    return [
        Variant(f"UserPromptSubmit /cmd, {label} ledger", HOOK, proj.env, proj.root, ups_prepare),
        Variant(f"Stop, {label} ledger", HOOK, proj.env, proj.root, stop_prepare),
    ]


def _prompt_line(proj: Project, names: list[str], label: str, seed: int) -> Variant:
    """UserPromptSubmit's line from settings.json, as Claude Code runs it (``/bin/sh -c``)."""
    settings = json.loads((proj.root / ".claude" / "settings.json").read_text())
    line = settings["hooks"]["UserPromptSubmit"][0]["hooks"][0]["command"]
    rng = random.Random(seed)
    s = proj.session(seed)
    proj.hook(s.payload("UserPromptSubmit", prompt="hello"))

    def prepare() -> bytes:
        s.activity(new_lines(rng))
        s.new_prompt()
        return s.payload("UserPromptSubmit", prompt=f"/{rng.choice(names)} fix the flaky test")

    env = {**proj.env, "CLAUDE_BUDGET_PYTHON": PYTHON}
    return Variant(f"UserPromptSubmit /cmd line, {label} ledger", ["/bin/sh", "-c", line], env, proj.root, prepare)


def _counts(path: os.PathLike) -> str:
    from pathlib import Path

    from budget_state.ledger._ledger import Ledger

    state = Ledger(Path(path)).read()
    return (
        f"{len(state.commands)} commands, {len(state.runs)} whole runs, {len(state.sessions)} sessions "
        f"and the time buckets of {len(state.minutes)} scopes"
    )


def state_bytes(path: os.PathLike) -> int:
    """The bytes of every file the state spans: the ledger file and its parts (``<stem>.d/``)."""
    from pathlib import Path

    ledger = Path(path)
    parts = ledger.with_name(ledger.stem + ".d")
    total = ledger.stat().st_size if ledger.exists() else 0
    return total + sum(p.stat().st_size for p in parts.rglob("*") if p.is_file())


def state_size(path: os.PathLike) -> str:
    """``"7,580 bytes of ledger file + 812,113 in 1,203 part files"``."""
    from pathlib import Path

    ledger = Path(path)
    parts = [p for p in ledger.with_name(ledger.stem + ".d").rglob("*") if p.is_file()]
    main = ledger.stat().st_size if ledger.exists() else 0
    return f"{main:,} bytes of ledger file + {sum(p.stat().st_size for p in parts):,} in {len(parts):,} part files"


def growth(box: Sandbox, cfg: Config) -> Section:
    names = [f"cmd-{i:03d}" for i in range(cfg.growth_commands)]
    commands = {n: '"50M"' for n in names}
    fresh = box.project("fresh", commands=commands)
    grown = box.project("grown", commands=commands)
    t0 = time.perf_counter()
    marks = simulate_history(grown, runs=cfg.growth_runs, commands=names, days=60, sessions=cfg.growth_sessions)
    built = time.perf_counter() - t0
    for proj in (fresh, grown):  # fill the frontmatter cache: no timed call should pay for parsing YAML
        subprocess.run(
            [PYTHON, "-m", "budget_state", "status"], env=proj.env, cwd=proj.root, check=True, capture_output=True
        )
    variants = _project_hooks(fresh, names, "fresh", 31) + _project_hooks(grown, names, "grown", 41)
    variants += [_prompt_line(fresh, names, "fresh", 51), _prompt_line(grown, names, "grown", 61)]
    before = {p: state_bytes(p.ledger) for p in (fresh, grown)}
    shape_before = _counts(grown.ledger)
    results = interleave([floor_variant(fresh.env, fresh.root), *variants], runs=cfg.runs, warmup=cfg.warmup)
    after = {p: state_bytes(p.ledger) for p in (fresh, grown)}
    floor = Stats.of(results[FLOOR].ns)
    section = Section(
        "4. Growth",
        f"{cfg.growth_runs:,} runs over {cfg.growth_commands} budgeted commands, spread evenly over 60 simulated "
        f"days, built in-process through the product's own code in {built:.0f} s: "
        f"{cfg.growth_runs - cfg.growth_sessions:,} runs recorded the way `record_usage` records them "
        "(`_runs.record`, 100 per ledger transaction, the ledger clock set to the simulated time so the 35-day "
        f"rollup and session expiry apply), then {cfg.growth_sessions} sessions each running one command the way "
        "the hook does (`settle` + `open_run`, transcript lines, `settle` + `close_run`). Timed: the hook as a "
        "process on that ledger vs a fresh one, same command files (frontmatter cache filled first), interleaved.",
        [
            "process",
            "state bytes, every file (before → after timing)",
            "median ms",
            "p90 ms",
            "min–max ms",
            "× floor",
            "reply",
            "× fresh",
            "goal",
            "verdict",
        ],
    )
    section.rows.append(floor_row(floor, before=1, after=4))
    fresh_median: dict[str, float] = {}
    for v in variants:
        proj = fresh if "fresh" in v.name else grown
        row, s = stats_row(v.name, results[v.name], floor, extra=[f"{before[proj]:,} → {after[proj]:,}"])
        kind = v.name.split(",")[0]
        if proj is fresh:
            fresh_median[kind] = s.median
        ratio = s.median / floor.median
        section.rows.append(
            [
                *row,
                reply_kinds(results[v.name]),
                f"{s.median / fresh_median[kind]:.2f}×",
                f"≤ {HOOK_GOAL:g}× floor",
                verdict(ratio <= HOOK_GOAL),
            ]
        )
        if proj is grown:
            vs_fresh = s.median / fresh_median[kind]
            section.summary.append(
                (
                    f"hook on a grown ledger vs a fresh one: {kind}",
                    f"{vs_fresh:.2f}× fresh",
                    "≤ 1.2× fresh",
                    verdict(vs_fresh <= 1.2),
                )
            )
            section.summary.append(
                (
                    f"hook on a grown ledger: {kind}",
                    f"{fmt_ms(s.median)} ms = {ratio:.2f}× floor ({s.median / fresh_median[kind]:.1f}× fresh)",
                    f"≤ {HOOK_GOAL:g}× floor",
                    verdict(ratio <= HOOK_GOAL),
                )
            )
    io_rows = [f"{label}: {ledger_io(proj.ledger)}" for label, proj in (("fresh", fresh), ("grown", grown))]
    recorded = marks[:-1] if cfg.growth_sessions else marks  # the last mark adds the sessions
    section.notes.append(
        "Ledger size while growing: "
        + "; ".join(f"{r:,} runs (simulated day {d:.0f}): {b:,} bytes" for r, d, b in recorded)
        + (f"; then {cfg.growth_sessions} hook sessions: {marks[-1][2]:,} bytes." if cfg.growth_sessions else ".")
    )
    section.notes.append(
        f"The grown ledger holds {shape_before}; {state_size(grown.ledger)}. What bounds it: a fixed number of "
        "whole runs in the ledger file (the rest in the run log), at most 100 sessions, and buckets for the "
        "longest window. What keeps an event's cost flat: it reads the ledger file and the parts it touches "
        "(its session, its command, their buckets), and writes back only those that changed."
    )
    section.notes.append("Ledger I/O in-process, median of 5: " + "; ".join(io_rows) + ".")
    plateau = [m for m in recorded if m[1] > 35 + 1]  # both past the 35-day rollup horizon
    if len(plateau) >= 2:
        a, b = plateau[0], plateau[-1]
        r = b[2] / a[2]
        section.summary.append(
            (
                f"ledger size bounded: day {a[1]:.0f} vs day {b[1]:.0f} (both past the 35-day rollup)",
                f"{a[2]:,} → {b[2]:,} bytes ({r:.2f}×); {after[grown]:,} with sessions; fresh {after[fresh]:,}",
                "≤ 1.1× (a plateau)",
                verdict(r <= 1.1),
            )
        )
    return section


# --- 5. status ------------------------------------------------------------------------------------


def status(box: Sandbox, cfg: Config, *, before: str | None = None) -> Section:
    """`status` and `/budget` on a grown ledger against a fresh one with the same 200 command files.

    ``before``: a commit whose code runs the same eight calls too, interleaved (rows marked "(before)")."""
    rng = random.Random(5)
    names = [f"cmd-{i:03d}" for i in range(cfg.growth_commands)]
    commands = {n: f'"{rng.choice((50, 100, 200, 500))}k"' for n in names}
    fresh = box.project("status-fresh", commands=commands)
    grown = box.project("status-grown", commands=commands)
    simulate_history(grown, runs=cfg.growth_runs, commands=names, days=60, sessions=cfg.growth_sessions)
    cli = [PYTHON, "-m", "budget_state", "status"]
    variants = [floor_variant(fresh.env, fresh.root, b"")]
    for label, proj in (("fresh", fresh), ("grown", grown)):
        sess = proj.session(51)
        proj.hook(sess.payload("UserPromptSubmit", prompt="hello"))

        def budget_payload(sess: object = sess) -> bytes:
            sess.activity(new_lines(rng))  # type: ignore[attr-defined]
            sess.new_prompt()  # type: ignore[attr-defined]
            return sess.payload("UserPromptSubmit", prompt="/budget")  # type: ignore[attr-defined,no-any-return]

        def warm(
            make: Callable[[], bytes], proj: Project = proj, again: Callable[[], bytes] = budget_payload
        ) -> Callable[[], bytes]:
            def prepare() -> bytes:
                if not proj.cache.exists():
                    proj.hook(again())
                return make()

            return prepare

        def cold(make: Callable[[], bytes], proj: Project = proj) -> Callable[[], bytes]:
            def prepare() -> bytes:
                proj.cache.unlink(missing_ok=True)
                return make()

            return prepare

        env, cwd = proj.env, proj.root
        variants += [
            Variant(f"claude-budget status, cold, {label}", cli, env, cwd, cold(lambda: b"")),
            Variant(f"claude-budget status, warm, {label}", cli, env, cwd, warm(lambda: b"")),
            Variant(f"/budget via the hook, cold, {label}", HOOK, env, cwd, cold(budget_payload)),
            Variant(f"/budget via the hook, warm, {label}", HOOK, env, cwd, warm(budget_payload)),
        ]
    if before is not None:  # the same calls with that commit's code (its own venv: compare its rows with each other)
        from _overhead import before_python

        old = before_python(box.root / "status-before", before)
        variants += [
            Variant(f"{v.name} (before)", [old, *v.argv[1:]], v.env, v.cwd, v.prepare)
            for v in variants[1:]
            if v.argv[0] == PYTHON
        ]
    results = interleave(variants, runs=cfg.runs, warmup=cfg.warmup)
    floor = Stats.of(results[FLOOR].ns)
    section = Section(
        "5. Status",
        f"`python -m budget_state status` and `/budget` (UserPromptSubmit) with {len(names)} command files "
        f"carrying `tokenBudget`: on a fresh ledger, and on one grown as in 4 ({cfg.growth_runs:,} runs over "
        f"60 days, {cfg.growth_sessions} sessions; {state_size(grown.ledger)}), interleaved. Cold: the frontmatter "
        "cache (`.claude/budget-cache.json`) deleted before the call, so every file's YAML is parsed; warm: "
        "the cache is there.",
        ["process", "median ms", "p90 ms", "min–max ms", "× floor", "reply", "× fresh", "goal", "verdict"],
    )
    section.rows.append(floor_row(floor, after=4))
    fresh_median: dict[str, float] = {}
    for v in variants[1:]:
        t = results[v.name]
        row, s = stats_row(v.name, t, floor)
        old_code = v.name.endswith(" (before)")
        kind, _, label = v.name.removesuffix(" (before)").rpartition(", ")
        kind += " (before)" if old_code else ""
        reply = reply_kinds(t) if "hook" in v.name else f"{t.last_stdout.count(b'/cmd-')} command lines"
        if label == "fresh":
            fresh_median[kind] = s.median
            section.rows.append([*row, reply, "1.00×", "—", "—"])
            continue
        ratio = s.median / fresh_median[kind]
        section.rows.append([*row, reply, f"{ratio:.2f}×", "≤ 1.2× fresh", verdict(ratio <= 1.2)])
        if old_code:
            continue  # the commit's own rows, for comparison: the summary is about this code
        section.summary.append(
            (
                f"{kind} on a grown ledger",
                f"{fmt_ms(s.median)} ms = {ratio:.2f}× fresh",
                "≤ 1.2× fresh",
                verdict(ratio <= 1.2),
            )
        )
    if b"/cmd-" not in results["claude-budget status, warm, grown"].last_stdout:
        section.notes.append(
            "status printed no commands: "
            + results["claude-budget status, warm, grown"].last_stderr.decode(errors="replace")[:300]
        )
    section.notes.append(
        "Both print all 200 commands (fresh ones at 0): what grows is what the ledger holds, not what is shown."
    )
    if before is not None:
        section.notes.append(
            f"Rows marked (before) run the code of commit {before} (a venv of the same Python that imports it, "
            "without this venv's editable-install finder: compare them with each other, not with the rows above)."
        )
    return section
