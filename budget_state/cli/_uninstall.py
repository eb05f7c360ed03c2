"""``claude-budget uninstall``: take out exactly what ``install`` put in.

Our hook handlers (and groups or events left empty by that), the ``CLAUDE_BUDGET_PYTHON``
pointer, ``/budget`` while it still carries our marker, our ``.gitignore`` lines, and
``budget.toml`` only while it is the untouched template. Everything else is kept, and so is the
ledger unless ``purge`` is asked for (it is the record of what was spent). Planned first, then
written, as install does; a file left holding nothing is removed.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

from .._errors import ConfigError
from .._hooklog import LOG_NAME
from .._install import (
    CONFIG_TEMPLATE,
    GITIGNORE_HEADER,
    GITIGNORE_LINES,
    LOCAL_SETTINGS_LINE,
    MARKER,
    MOD_FOLDER,
    MOD_PLUGIN_NAME,
    Scope,
    drop_handlers,
    find_ours,
    read_settings,
    write_plan,
)
from .._paths import CACHE_NAME, CONFIG_NAME, ledger_path, lock_path
from .._toml import loads
from .._wiring import PYTHON_ENV
from ..ledger._ledger import parts_folder
from ..ledger._runlog import runlog_path

_Plan = list[tuple[Path, str]]


def uninstall(target: Path, /, *, scope: Scope = "project", dry_run: bool = False, purge: bool = False) -> list[str]:
    """Remove claude-budget from ``target/.claude/`` (``scope="user"``: ``target`` is ``~/.claude``).

    :param purge: also delete the ledger and the files beside it (lock, cache, hook log).
    :raises ConfigError: a settings file cannot be read or written.
    """
    claude = target if scope == "user" else target / ".claude"
    base = "~/.claude" if scope == "user" else ".claude"
    plan: _Plan = []
    removals: list[Path] = []
    lines = [_settings(claude / "settings.json", f"{base}/settings.json", plan, removals)]
    if scope == "project":
        lines.append(_settings(claude / "settings.local.json", f"{base}/settings.local.json", plan, removals))
    lines.append(_command(claude / "commands" / "budget.md", f"{base}/commands/budget.md", removals))
    mod = claude / "skills" / MOD_FOLDER if scope == "user" else None
    if mod is not None:  # a project's uninstall keeps it: other projects may use it (it stays out elsewhere)
        lines.append(_mod(mod))
    if scope == "project":
        lines.append(_gitignore(claude / ".gitignore", plan, removals))
        lines.append(_config(claude / CONFIG_NAME, removals))
        if purge:
            lines.append(_purge(target, removals))
    if not dry_run:
        write_plan(plan)
        if mod is not None and _mod(mod):
            shutil.rmtree(mod, ignore_errors=True)
        for path in removals:
            try:
                if path.is_dir() and not path.is_symlink():  # the ledger's parts: our own folder
                    shutil.rmtree(path)
                    continue
                path.unlink(missing_ok=True)
            except OSError as e:
                raise ConfigError(f"cannot remove {path}: {e.strerror or e}", path=path) from None
        # folders install may have made, if nothing else is in them now
        for folder in (claude / "commands", *(() if scope == "user" else (claude,))):
            try:
                folder.rmdir()
            except OSError:  # not empty, or not there: either way not ours to remove
                pass
    return [line for line in lines if line]


def _settings(path: Path, name: str, plan: _Plan, removals: list[Path]) -> str | None:
    if not path.exists():
        return None
    settings = read_settings(path)
    removed: list[str] = []
    hooks = settings.get("hooks")
    if isinstance(hooks, dict):
        for event in list(hooks):
            groups = hooks[event]
            if not isinstance(groups, list):
                continue
            found = find_ours(path, event, groups)
            if found:
                drop_handlers(groups, found)
                removed.append(event)
                if not groups:
                    del hooks[event]
        if not hooks:
            del settings["hooks"]
    env = settings.get("env")
    pointer = isinstance(env, dict) and PYTHON_ENV in env
    if isinstance(env, dict) and pointer:
        del env[PYTHON_ENV]
        if not env:
            del settings["env"]
    if not removed and not pointer:
        return f"{name}: nothing of claude-budget's"
    parts = [f"removed the hook from {', '.join(removed)}"] if removed else []
    if pointer:
        parts.append(f"removed env {PYTHON_ENV}")
    if settings:
        plan.append((path, json.dumps(settings, indent=2, ensure_ascii=False) + "\n"))
    else:
        removals.append(path)
        parts.append("deleted the file (nothing else was in it)")
    return f"{name}: {'; '.join(parts)}"


def _read(path: Path) -> str | None:
    """A file install wrote, or None when it is gone."""
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"cannot read {path}: {e}", path=path) from None


def _command(path: Path, name: str, removals: list[Path]) -> str | None:
    text = _read(path)
    if text is None:
        return None
    if MARKER not in text:
        return f"{name}: kept (written by you: it lacks the {MARKER} --> marker)"
    removals.append(path)
    return f"{name}: deleted"


def _mod(folder: Path) -> str | None:
    """The mod install put in ~/.claude/skills/ (with what Claude Code wrote beside it): only while
    its manifest is ours."""
    try:
        name = json.loads((folder / ".claude-plugin" / "plugin.json").read_text(encoding="utf-8")).get("name")
    except (OSError, ValueError, AttributeError):
        return None
    if name != MOD_PLUGIN_NAME:
        return None
    return f"~/.claude/skills/{MOD_FOLDER}/: deleted (the mod)"


def _gitignore(path: Path, plan: _Plan, removals: list[Path]) -> str | None:
    text = _read(path)
    if text is None:
        return None
    ours = {*GITIGNORE_LINES, LOCAL_SETTINGS_LINE, GITIGNORE_HEADER}
    lines = text.splitlines()
    kept = [line for line in lines if line.strip() not in ours]
    if len(kept) == len(lines):
        return ".claude/.gitignore: nothing of claude-budget's"
    if any(line.strip() for line in kept):
        plan.append((path, "\n".join(kept) + "\n"))
        return ".claude/.gitignore: removed claude-budget's lines"
    removals.append(path)
    return ".claude/.gitignore: deleted (it held only claude-budget's lines)"


def _config(path: Path, removals: list[Path]) -> str | None:
    text = _read(path)
    if text is None:
        return None
    if text != CONFIG_TEMPLATE:
        return f".claude/{CONFIG_NAME}: kept (you changed it; delete it yourself if you no longer want it)"
    removals.append(path)
    return f".claude/{CONFIG_NAME}: deleted (the untouched template)"


def _purge(project: Path, removals: list[Path]) -> str:
    ledger = ledger_path(project, os.environ, _configured(project))
    found: list[Any] = []
    for path in (
        ledger,
        parts_folder(ledger),
        runlog_path(ledger),
        lock_path(ledger),
        ledger.with_name(CACHE_NAME),
        ledger.with_name(f".{ledger.name}.tmp"),
        ledger.with_name(LOG_NAME),
        ledger.with_name(LOG_NAME + ".1"),
        *sorted(ledger.parent.glob(ledger.stem + ".corrupt-*")),
    ):
        if path.exists():
            removals.append(path)
            found.append(path.name)
    if not found:
        return f"ledger: none at {ledger}"
    return f"ledger: deleted {', '.join(found)} in {ledger.parent}"


def _configured(project: Path) -> str | None:
    try:
        data = loads((project / ".claude" / CONFIG_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    ledger = data.get("ledger")
    return ledger if isinstance(ledger, str) and ledger else None
