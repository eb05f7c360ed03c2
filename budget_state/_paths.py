"""Where things live. Every path the package touches is resolved here, with one precedence.

- project root: ``CLAUDE_PROJECT_DIR`` (set by Claude Code for every hook), else the hook's ``cwd``,
  else the nearest parent of the current directory that has a ``.claude/`` folder, stopping below
  ``$HOME`` (its ``.claude`` is Claude Code's user folder, not a project), else the current directory;
- ledger: ``CLAUDE_BUDGET_STATE``, else ``ledger = "…"`` in ``.claude/budget.toml``, else
  ``<project>/.claude/budget-ledger.toml``;
- the lock is ``<ledger>.lock`` and the frontmatter cache ``budget-cache.json`` beside the ledger;
- user-level commands: ``$CLAUDE_CONFIG_DIR`` (Claude Code's own override), else ``~/.claude``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

LEDGER_NAME = "budget-ledger.toml"
CONFIG_NAME = "budget.toml"
CACHE_NAME = "budget-cache.json"


def find_project(env: Mapping[str, str], cwd: str | None = None) -> Path:
    explicit = env.get("CLAUDE_PROJECT_DIR")
    if explicit:
        return Path(explicit)
    if cwd:
        return Path(cwd)
    here = Path.cwd()
    home = Path(os.path.realpath(_home(env)))  # cwd is a real path: compare like with like
    for candidate in (here, *here.parents):
        if candidate == home:
            break  # ~/.claude holds Claude Code's user settings; a folder holding $HOME is no project either
        if (candidate / ".claude").is_dir():
            return candidate
    return here


def _home(env: Mapping[str, str]) -> Path:
    """``$HOME`` of ``env`` (the hook's environment, not necessarily this process's)."""
    home = env.get("HOME")
    return Path(home) if home else Path.home()


def config_path(project: Path) -> Path:
    return project / ".claude" / CONFIG_NAME


def ledger_path(project: Path, env: Mapping[str, str], configured: str | None = None) -> Path:
    """``CLAUDE_BUDGET_STATE`` (the user's own choice: anywhere), else ``ledger =`` of a budget.toml
    (which a cloned repository may have written: see :func:`confined`), else the project's own."""
    explicit = env.get("CLAUDE_BUDGET_STATE")
    if explicit:
        p = Path(os.path.expanduser(explicit))
        return p if p.is_absolute() else project / p
    if configured:
        return confined(configured, project, env)
    return project / ".claude" / LEDGER_NAME


def state_home(env: Mapping[str, str]) -> Path:
    """The user's own state folder for claude-budget: ``$XDG_STATE_HOME/claude-budget``, else
    ``~/.local/state/claude-budget``."""
    base = env.get("XDG_STATE_HOME")
    return (Path(base) if base else _home(env) / ".local" / "state") / "claude-budget"


def confined(raw: str, project: Path, env: Mapping[str, str]) -> Path:
    """The ledger a ``budget.toml`` names, if it is a ``.toml`` file inside the project, the user's
    Claude Code folder or :func:`state_home`; else :class:`ConfigError` (a committed file must not
    point the ledger at, say, ``~/.bashrc``)."""
    p = Path(os.path.expanduser(raw))
    p = p if p.is_absolute() else project / p
    real = Path(os.path.realpath(p))
    roots = [project, claude_home(env), state_home(env)]
    inside = any(real == r or r in real.parents for r in (Path(os.path.realpath(root)) for root in roots))
    if p.suffix != ".toml" or not inside:
        from ._errors import ConfigError

        why = "is not a .toml file" if p.suffix != ".toml" else "is outside the project"
        raise ConfigError(
            f"ledger = {raw!r} in {config_path(project)} {why}: a budget.toml (which a repository may commit) may "
            f"put the ledger only in a .toml file inside the project, {claude_home(env)} or {state_home(env)} — "
            "change it, or set CLAUDE_BUDGET_STATE in your own environment to put it anywhere",
            path=config_path(project),
        )
    return p


def lock_path(ledger: Path) -> Path:
    return ledger.with_name(ledger.name + ".lock")


def cache_path(ledger: Path) -> Path:
    return ledger.with_name(CACHE_NAME)


def claude_home(env: Mapping[str, str]) -> Path:
    configured = env.get("CLAUDE_CONFIG_DIR")
    if configured:
        return Path(os.path.expanduser(configured.split(",")[0]))
    return _home(env) / ".claude"


def display(path: Path, project: Path) -> str:
    """A path as the user would type it: relative to the project when inside it."""
    try:
        return str(path.relative_to(project))
    except ValueError:
        return str(path)
