"""Where a hook process spends its time: ``-X importtime`` against the floor, and cProfile by phase."""

from __future__ import annotations

import marshal
import os
import statistics
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable

from _harness import PYTHON, Section, Stats, Variant, spawn

Row = tuple[int, int, str, int]  # self µs, cumulative µs, module, depth


def parse(stderr: bytes) -> list[Row]:
    rows = []
    for line in stderr.decode(errors="replace").splitlines():
        if not line.startswith("import time:") or "imported package" in line:
            continue
        try:
            self_us, cum_us, name = line[len("import time:") :].split("|", 2)
            depth = (len(name) - len(name.lstrip(" "))) // 2
            rows.append((int(self_us), int(cum_us), name.strip(), depth))
        except ValueError:
            continue
    return rows


def _parents(rows: list[Row]) -> dict[str, str]:
    """Who imported whom: importtime prints a module after everything it imported, one level less indented."""
    parent: dict[str, str] = {}
    pending: dict[int, list[str]] = defaultdict(list)  # children waiting for their parent, by depth
    for _, _, name, depth in rows:
        for child in pending.pop(depth + 1, []):
            parent[child] = name
        pending[depth].append(name)
    return parent


def _chain(name: str, parent: dict[str, str]) -> str:
    chain = [name]
    while chain[-1] in parent and len(chain) < 6:
        chain.append(parent[chain[-1]])
    return " ← ".join(chain[1:]) or "(top level)"


def breakdown(variant: Variant, *, python: str = PYTHON, label: str = ".venv", reps: int = 7, top: int = 12) -> Section:
    """Import time of the modules the hook loads and ``python -c pass`` (same interpreter) does not."""
    _, _, _, floor_err = spawn([python, "-X", "importtime", "-c", "pass"], b"", env=variant.env, cwd=variant.cwd)
    floor_mods: set[str] = {r[2] for r in parse(floor_err)}
    self_us: dict[str, list[int]] = defaultdict(list)
    cum_us: dict[str, list[int]] = defaultdict(list)
    walls = []
    parent: dict[str, str] = {}
    for _ in range(reps):
        stdin = variant.prepare()
        ns, _, _, err = spawn([python, "-X", "importtime", *variant.argv[1:]], stdin, env=variant.env, cwd=variant.cwd)
        walls.append(ns)
        rows = parse(err)
        parent = _parents(rows)
        for s, c, name, _ in rows:
            self_us[name].append(s)
            cum_us[name].append(c)
    med = {n: statistics.median(v) for n, v in self_us.items()}
    extra = {n: v for n, v in med.items() if n not in floor_mods}
    own = sum(v for n, v in extra.items() if n.split(".")[0] == "budget_state")
    third = {"tomli_w", "tomli", "yaml", "_yaml", "filelock"}
    third_sum = sum(v for n, v in extra.items() if n.split(".")[0] in third)
    total = sum(extra.values())
    section = Section(
        f"Where the time goes: imports of the slowest hook ({variant.name}), {label}",
        f"`python -X importtime -m budget_state.hook` on that hook's payload, {reps} runs (median per module; "
        f"importtime itself slows the process: {Stats.of(walls).median:.0f} ms median here). Only modules that "
        "`python -c pass` does "
        f"not import: {len(extra)} modules, {total / 1000:.1f} ms of import time in all — budget_state's own "
        f"{own / 1000:.1f} ms, third-party (tomli_w, yaml, …) {third_sum / 1000:.1f} ms, the standard library "
        f"{(total - own - third_sum) / 1000:.1f} ms.",
        ["module", "self ms", "cumulative ms", "imported by"],
    )
    for name in sorted(extra, key=extra.get, reverse=True)[:top]:  # type: ignore[arg-type]
        section.rows.append(
            [
                f"`{name}`",
                f"{extra[name] / 1000:.2f}",
                f"{statistics.median(cum_us[name]) / 1000:.2f}",
                _chain(name, parent),
            ]
        )
    return section


def _median_ms(f: Callable[[], object], reps: int = 5) -> float:
    times = []
    for _ in range(reps):
        t0 = time.perf_counter_ns()
        f()
        times.append(time.perf_counter_ns() - t0)
    return Stats.of(times).median


def ledger_io(path: os.PathLike) -> str:
    """What reading and rewriting the ledger at ``path`` costs in-process (median of 5), as one sentence.

    The whole file (tomllib parse, tomli_w serialise, write + fsync) and, when the ledger has the
    product's history marker, the part above it (what a hook parses when no batch of runs moves).
    """
    import tomli_w
    import tomllib

    with open(path, encoding="utf-8") as f:
        text = f.read()
    state = tomllib.loads(text)
    data = tomli_w.dumps(state).encode()
    tmp = f"{path}.bench-io"

    def write() -> None:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)

    parse, dump, put = (
        _median_ms(lambda: tomllib.loads(text)),
        _median_ms(lambda: tomli_w.dumps(state)),
        _median_ms(write),
    )
    os.unlink(tmp)
    out = f"whole file ({len(text):,} bytes): parse {parse:.1f} ms, serialise {dump:.1f} ms, write + fsync {put:.1f} ms"
    try:
        from budget_state.ledger._ledger import COLD_MARKER  # absent before the ledger was split
    except ImportError:
        return out
    hot, found, _ = text.partition(COLD_MARKER)
    if found:
        hot_state = tomllib.loads(hot)
        hot_parse, hot_dump = _median_ms(lambda: tomllib.loads(hot)), _median_ms(lambda: tomli_w.dumps(hot_state))
        out += f"; the part above the history marker ({len(hot):,} bytes): parse {hot_parse:.1f} ms, "
        out += f"serialise {hot_dump:.1f} ms"
    return out


_PROFILE = """\
import cProfile, runpy, sys
profile = cProfile.Profile()
profile.enable()
try:
    runpy.run_module("budget_state.hook", run_name="__main__")
except SystemExit:
    pass
profile.disable()
profile.dump_stats(sys.argv[1])
"""

# (label, file suffix, function): cumulative times that together explain a hook call
PHASES = [
    ("all imports (cumulative, includes regex compiles at import)", "<frozen importlib._bootstrap>", "_find_and_load"),
    ("  regular expressions compiled", "re/_compiler.py", "compile"),
    (
        "hook main(): all after `import budget_state.hook` (with the lazy imports it makes)",
        "budget_state/hook/_protocol.py",
        "main",
    ),
    ("  load budget.toml (Context.load -> load_config)", "budget_state/budgets/_config.py", "load_config"),
    ("  take the ledger lock", "budget_state/ledger/_lock.py", "acquire"),
    ("  parse TOML (ledger file + budget.toml; tomllib.loads)", "tomllib/_parser.py", "loads"),
    ("  read the ledger's parts (a command's, a session's, buckets)", "budget_state/ledger/_store.py", "_load"),
    ("  read the transcripts (settle)", "budget_state/ledger/_runs.py", "settle"),
    ("  compact the ledger", "budget_state/ledger/_ledger.py", "compact"),
    ("  serialise the ledger file (tomli_w.dumps)", "tomli_w/_writer.py", "dumps"),
    ("  write what changed (the journal, each file)", "budget_state/ledger/_store.py", "commit"),
    ("  os.fsync of what was written", "~", "<built-in method posix.fsync>"),
    ("  frontmatter cache / command files", "budget_state/budgets/_commands.py", "read_budget"),
]


def phases(variant: Variant, *, reps: int = 7) -> Section:
    """cProfile the whole hook process (imports included); cumulative ms per phase, median of ``reps``."""
    found: dict[str, list[float]] = defaultdict(list)
    totals = []
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "hook.prof")
        for _ in range(reps):
            stdin = variant.prepare()
            spawn([PYTHON, "-c", _PROFILE, out], stdin, env=variant.env, cwd=variant.cwd)
            with open(out, "rb") as f:
                stats = marshal.load(f)  # the format pstats reads: {(file, line, func): (cc, nc, tt, ct, callers)}
            totals.append(sum(v[2] for v in stats.values()) * 1000)
            for label, suffix, func in PHASES:
                found[label].append(
                    sum(v[3] for (file, _, name), v in stats.items() if name == func and file.endswith(suffix)) * 1000
                )
    section = Section(
        f"Where the time goes: phases of the slowest hook ({variant.name})",
        f"cProfile over the whole hook process, imports included ({reps} runs, median; total profiled time "
        f"{statistics.median(totals):.1f} ms — the profiler inflates pure-Python work, so read the shares, not the "
        "absolute numbers; interpreter start-up and exit are outside it and are what `python -c pass` measures).",
        ["phase", "cumulative ms", "share of profiled"],
    )
    ledger = os.path.join(variant.env["CLAUDE_PROJECT_DIR"], ".claude", "budget-ledger.toml")
    section.notes.append(f"Without the profiler, in-process, on this ledger: {ledger_io(ledger)} (median of 5).")
    total = statistics.median(totals)
    for label, _, _ in PHASES:
        ms = statistics.median(found[label])
        section.rows.append([label.replace("  ", "&nbsp;&nbsp;"), f"{ms:.1f}", f"{100 * ms / total:.0f} %"])
    return section
