"""How a hook line finds claude-budget (1c): the committed, portable line vs an interpreter path.

Every variant is the whole thing Claude Code starts for a UserPromptSubmit of a plain prompt:
``/bin/sh -c LINE`` with the event on stdin, through to the hook's exit. The line of earlier
installs named the interpreter; today's finds it with shell builtins (``$CLAUDE_BUDGET_PYTHON``,
the project's ``.venv``, ``PATH``); the plugin runs a small sh script first.
"""

from __future__ import annotations

import shlex
import shutil
import sys
from pathlib import Path
from typing import Callable

from _harness import FLOOR, PYTHON, Config, Section, Stats, Variant, floor_row, floor_variant, interleave, stats_row
from _world import Sandbox

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from budget_state._wiring import hook_command  # noqa: E402 (after the path fix)

BEFORE = "interpreter path (the line before this change)"
LOOKUP_BEFORE = "line alone, interpreter path (/bin/true as the interpreter)"
LOOKUP_AFTER = "line alone, portable via $CLAUDE_BUDGET_PYTHON (/bin/true)"
LOOKUP_PATH = "line alone, portable via PATH (/bin/true)"
GOAL = 1.03  # a portable line may cost at most 3 % more than the interpreter-path line


def console_script(path: Path) -> None:
    """A ``claude-budget-hook`` as pip writes it for this interpreter."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        f"#!{PYTHON}\nimport re\nimport sys\nfrom budget_state.hook import main\n"
        "if __name__ == '__main__':\n    sys.argv[0] = re.sub(r'(-script\\.pyw|\\.exe)?$', '', sys.argv[0])\n"
        "    sys.exit(main())\n"
    )
    path.chmod(0o755)


def portable(box: Sandbox, cfg: Config) -> Section:
    proj = box.project("portable", commands={"review-pr": '"100M"'}, mode="warn")
    (proj.root / ".claude" / "settings.local.json").unlink(missing_ok=True)
    line = hook_command(event="UserPromptSubmit")
    base = dict(proj.env)
    base["PATH"] = "/usr/bin:/bin"  # nothing of ours on it unless a variant puts it there
    pipx = box.root / "pipx-bin"
    console_script(pipx / "claude-budget-hook")
    venv_project = box.root / "venv-project"  # the same project, with its own .venv
    if not venv_project.exists():
        shutil.copytree(proj.root, venv_project, symlinks=True)
    venv_root = Path(PYTHON).parent.parent  # this venv, as the project's own: its python and its console script
    if not (venv_project / ".venv").exists():
        (venv_project / ".venv").symlink_to(venv_root)
    bare = box.root / "bare"  # a project without claude-budget installed
    (bare / ".claude").mkdir(parents=True, exist_ok=True)
    plugin_data = box.root / "plugin-data"
    plugin_data.mkdir(exist_ok=True)
    if not (plugin_data / "venv").exists():
        (plugin_data / "venv").symlink_to(venv_root)  # the plugin's venv: this one
    plugin_env = {
        **base,
        "CLAUDE_PLUGIN_ROOT": str(REPO / "plugin"),
        "CLAUDE_PLUGIN_DATA": str(plugin_data),
        "PYTHONPATH": "",
    }
    shim = f'sh "{REPO / "plugin" / "hooks" / "claude-budget.sh"}" UserPromptSubmit'
    true_bin = box.root / "true-bin"  # a claude-budget-hook that is /bin/true, last on a PATH lookup
    true_bin.mkdir(exist_ok=True)
    if not (true_bin / "claude-budget-hook").exists():
        (true_bin / "claude-budget-hook").symlink_to("/bin/true")

    def prompt(seed: int, root: Path) -> Callable[[], bytes]:
        s = proj.session(seed)

        def prepare() -> bytes:
            s.new_prompt()
            return s.payload("UserPromptSubmit", prompt="explain the build").replace(
                str(proj.root).encode(), str(root).encode()
            )

        return prepare

    def sh(name: str, command: str, env: dict[str, str], root: Path, seed: int) -> Variant:
        return Variant(
            name, ["/bin/sh", "-c", command], {**env, "CLAUDE_PROJECT_DIR": str(root)}, root, prompt(seed, root)
        )

    variants = [
        floor_variant(base, proj.root),
        Variant("sh -c true", ["/bin/sh", "-c", "true"], base, proj.root, lambda: b"{}"),
        sh(BEFORE, f"{shlex.quote(PYTHON)} -m budget_state.hook", base, proj.root, 1),
        sh(
            "portable: $CLAUDE_BUDGET_PYTHON (settings.local.json)",
            line,
            {**base, "CLAUDE_BUDGET_PYTHON": PYTHON},
            proj.root,
            2,
        ),
        sh("portable: the project's .venv", line, base, venv_project, 3),
        sh(
            "portable: claude-budget-hook on PATH (pipx, uv tool)",
            line,
            {**base, "PATH": f"{pipx}:/usr/bin:/bin"},
            proj.root,
            4,
        ),
        sh("plugin: claude-budget.sh", shim, plugin_env, bare, 5),
        sh("portable: not installed (says so once, then nothing)", line, {**base, "TMPDIR": str(box.root)}, bare, 6),
        # The lookup alone: the same lines with /bin/true as the interpreter, so Python's start-up
        # (and its noise) is out of the difference.
        sh(LOOKUP_BEFORE, "/bin/true -m budget_state.hook", base, proj.root, 7),
        sh(LOOKUP_AFTER, line, {**base, "CLAUDE_BUDGET_PYTHON": "/bin/true"}, proj.root, 8),
        sh(LOOKUP_PATH, line, {**base, "PATH": f"{true_bin}:/usr/bin:/bin"}, proj.root, 9),
    ]
    results = interleave(variants, runs=cfg.runs, warmup=cfg.warmup, seed=41)
    floor = Stats.of(results[FLOOR].ns)
    before = Stats.of(results[BEFORE].ns)
    section = Section(
        "1c. How a hook line finds claude-budget",
        "The UserPromptSubmit hook of a plain prompt, started as Claude Code starts it (`/bin/sh -c LINE`), by each "
        "way the line can find claude-budget; `× before` is the median over the median of the line that named the "
        "interpreter (what `install` wrote before the settings became portable). The plugin row runs "
        "`plugin/hooks/claude-budget.sh` with this venv as its environment.",
        ["variant", "median ms", "p90 ms", "min–max ms", "× floor", "× before"],
    )
    section.rows.append(floor_row(floor, after=1))
    lookup = Stats.of(results[LOOKUP_BEFORE].ns)
    for v in variants[1:]:
        row, s = stats_row(v.name, results[v.name], floor)
        ratio = s.median / (lookup if v.name.startswith("line alone") else before).median
        section.rows.append([*row, f"{ratio:.3f}×"])
        if v.name.startswith(("portable: $", "portable: the", "portable: claude", "plugin")):
            section.summary.append(
                (
                    f"hook line: {v.name}",
                    f"{s.median:.1f} ms = {ratio:.3f}× before",
                    f"≤ {GOAL}× before",
                    "meets goal" if ratio <= GOAL else "**misses goal**",
                )
            )
    added = Stats.of(results[LOOKUP_AFTER].ns).median - lookup.median
    section.summary.append(
        (
            "hook line: the portable lookup itself",
            f"{added * 1000:+.0f} µs (median, vs the interpreter-path line)",
            "≤ 1 ms",
            "meets goal" if added <= 1.0 else "**misses goal**",
        )
    )
    section.notes.append(
        "`× before` of the *line alone* rows is against the interpreter-path line alone. "
        "The portable line's lookup is shell builtins only (`[ -x ]`, `command -v`): no process starts before "
        "Python. The plugin's runner adds a second `sh` and one `grep` (does a project install wire claude-budget?)."
    )
    return section
