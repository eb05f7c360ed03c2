"""Benchmarks for claude-budget: ``.venv/bin/python benchmarks/run.py [--quick] [--out BENCHMARKS.md]``.

Everything runs in a temporary folder (its own projects, homes, transcripts and ledgers), never in
``~/.claude`` or this repo's ``.claude/``. Processes are timed whole, from spawn to exit, with the
variants of one table interleaved round-robin (a fresh random order every round) so machine noise
hits them alike; warm-up rounds are dropped. These are measurements, not tests: each row says
whether it meets its goal, nothing fails.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Callable

REPO = Path(__file__).resolve().parent.parent
# This venv's editable install lists budget_state as a namespace package, so outside the repo
# `import budget_state` skips __init__.py (and `budget_state.record_usage` is missing): import the
# real package from the repo. The measured processes are not affected (they run `-m budget_state…`).
sys.path.insert(1, str(REPO))

import _forecast  # noqa: E402 (after the path fix)
import _hook_suites  # noqa: E402
import _ledger_suites  # noqa: E402
import _lines  # noqa: E402
import _overhead  # noqa: E402
import _portable  # noqa: E402
import _statusline_suite  # noqa: E402
from _harness import Config, Section, code_fingerprint, machine, product_version, slowest  # noqa: E402
from _profile import breakdown, phases  # noqa: E402
from _world import Sandbox  # noqa: E402

OVERHEAD_ROUNDS = {False: (20, 1), True: (4, 1)}  # (timed, warm-up) rounds of whole claude -p runs, by --quick
FULL = Config(
    runs=30,
    warmup=3,
    contention_procs=(1, 4, 16, 32),
    contention_updates=200,
    growth_runs=10_000,
    growth_sessions=100,
    growth_commands=200,
    big_mb=200,
)
QUICK = Config(
    runs=10,
    warmup=2,
    contention_procs=(1, 4, 16, 32),
    contention_updates=25,
    growth_runs=2_000,
    growth_sessions=20,
    growth_commands=200,
    big_mb=50,
)
SECTIONS = (
    "overhead",
    "lines",
    "hooks",
    "portable",
    "history",
    "windows",
    "contention",
    "growth",
    "status",
    "forecast",
    "statusline",
)
#: Below this line BENCHMARKS.md holds what benchmarks/orchestrate.py and benchmarks/team.py produce.
SEPARATE = "<!-- produced separately: run.py keeps what follows -->"
FORECAST_TRIALS = {False: 400, True: 100}  # held-out trials per trace family, by --quick


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    def cell(v: str) -> str:
        return str(v).replace("|", "\\|")

    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def render_section(s: Section) -> str:
    out = [f"## {s.title}", "", s.intro, "", _table(s.header, s.rows)]
    if s.notes:
        out += [""] + [f"- {n}" for n in s.notes]
    return "\n".join(out) + "\n"


def render(sections: list[Section], *, facts: list[tuple], command: str, cfg: Config, quick: bool, took: float) -> str:
    summary = [row for s in sections for row in s.summary]
    misses = sum(1 for row in summary if "misses" in row[3])
    out = [
        "# Benchmarks",
        "",
        f"Produced by `{command}` in {took / 60:.1f} min"
        + (" — **a --quick sanity run: fewer runs and smaller sizes than the full benchmark.**" if quick else "."),
        "",
        "Method: every number is a whole process, timed from spawn to exit with `time.perf_counter_ns` "
        f"(stdin/stdout are files). In each table the variants are interleaved round-robin, a fresh random order per "
        f"round, {cfg.warmup} warm-up rounds dropped, then {cfg.runs} timed rounds: median, p90 (nearest rank) and "
        "min–max. `× floor` is the median over the median of `python -c pass` run by the same interpreter in the same "
        "interleaved run. Goals are reported, not asserted. Temporary projects, homes, transcripts and ledgers only "
        "(`HOME` and `CLAUDE_PROJECT_DIR` point into a temp folder; deleted afterwards).",
        "",
        "## Machine",
        "",
        _table(["", ""], facts),
        "",
        f"## Summary — {len(summary) - misses} of {len(summary)} rows meet their goal",
        "",
        _table(["measure", "result", "goal", "verdict"], summary),
        "",
    ]
    out += [render_section(s) for s in sections]
    return "\n".join(out)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="benchmarks/run.py", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a 1–2 minute sanity run: fewer runs, smaller sizes")
    parser.add_argument(
        "--out", default=str(REPO / "BENCHMARKS.md"), help="the Markdown report to write (default: %(default)s)"
    )
    parser.add_argument("--only", action="append", choices=SECTIONS, help="run only this part (repeatable)")
    parser.add_argument("--tmp", default=None, help="where to make the temporary folder (default: the system's)")
    parser.add_argument(
        "--before",
        default=None,
        metavar="COMMIT",
        help="also run this commit's code in the whole-run overhead table and the status table",
    )
    args = parser.parse_args(argv)
    cfg = QUICK if args.quick else FULL
    only = args.only or list(SECTIONS)
    for key in [k for k in os.environ if k.startswith(("CLAUDE_", "ANTHROPIC_"))]:
        del os.environ[key]  # nothing of the caller's Claude setup may leak into a measured process
    # Time what users run: compiled bytecode. Python would write it itself on first import, but not
    # where PYTHONDONTWRITEBYTECODE is set (it is on these machines): then every hook would compile
    # every changed module from source, ~10 ms that no user with a normal install pays.
    import compileall

    compileall.compile_dir(str(REPO / "budget_state"), quiet=1)
    box = Sandbox(args.tmp)
    os.environ["HOME"] = str(box.root / "no-home")  # in-process API calls pass env=; this is a backstop
    started = time.perf_counter()
    sections: list[Section] = []
    facts = machine(box.root)
    code = code_fingerprint()

    def part(name: str, run: Callable[[], list[Section]]) -> None:
        if name not in only:
            return
        t0 = time.perf_counter()
        print(f"[{name}] running…", file=sys.stderr, flush=True)
        for section in run():
            sections.append(section)
            print(render_section(section), flush=True)
        print(f"[{name}] {time.perf_counter() - t0:.0f} s", file=sys.stderr, flush=True)

    def hooks() -> list[Section]:
        section, variants, results = _hook_suites.hook_latency(box, cfg)
        worst = slowest(variants, results)
        plain = box.plain_python(REPO)
        extra = []
        if worst is not None:
            extra = [
                breakdown(worst, label="in .venv (editable install)"),
                breakdown(worst, python=plain, label="regular layout (as in 1b)"),
                phases(worst),
            ]
        return [section, _hook_suites.plain_install(box, cfg, REPO), *extra]

    def whole_run() -> list[Section]:
        rounds, warmup = OVERHEAD_ROUNDS[args.quick]
        results = _overhead.overhead(box.root / "overhead", rounds=rounds, warmup=warmup, before=args.before)
        return [_overhead.section(results, rounds=rounds, warmup=warmup, before=args.before)]

    try:
        part("overhead", whole_run)
        part("lines", lambda: [_lines.lines(box, cfg)])
        part("hooks", hooks)
        part("portable", lambda: [_portable.portable(box, cfg)])
        part("history", lambda: [_hook_suites.history(box, cfg)])
        part("windows", lambda: [_hook_suites.windows(box, cfg)])
        part("contention", lambda: [_ledger_suites.contention(box, cfg)])
        part("growth", lambda: [_ledger_suites.growth(box, cfg)])
        part("status", lambda: [_ledger_suites.status(box, cfg, before=args.before)])
        part("forecast", lambda: [_forecast.section(FORECAST_TRIALS[args.quick])])
        part("statusline", lambda: [_statusline_suite.statusline(box, cfg)])
    finally:
        box.cleanup()
    command = shlex.join(getattr(sys, "orig_argv", [sys.executable, *sys.argv]))
    if code_fingerprint() != code:
        facts.append(("**Product changed during the run**", f"now {product_version()}: tables may mix versions"))
    facts.append(("Load average at end", " ".join(f"{x:.2f}" for x in os.getloadavg()) + " (1, 5, 15 min)"))
    text = render(sections, facts=facts, command=command, cfg=cfg, quick=args.quick, took=time.perf_counter() - started)
    out = Path(args.out)
    kept = out.read_text(encoding="utf-8").partition(SEPARATE)[2] if out.exists() else ""
    if kept:  # sections other scripts produce (the orchestrator's, the team's) stay as they were
        text = text.rstrip("\n") + "\n\n" + SEPARATE + kept
    out.write_text(text, encoding="utf-8")
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
