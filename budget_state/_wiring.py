"""The hook command lines ``install`` writes, and how to tell where claude-budget is wired.

A committed ``.claude/settings.json`` is run on every teammate's machine, so its hook lines name
no interpreter. Each line is POSIX ``sh`` that finds the hook with builtins only (no process is
started before Python), in this order:

1. ``$CLAUDE_BUDGET_PYTHON`` — an interpreter that has claude-budget; ``install`` sets it in the
   ``env`` of ``.claude/settings.local.json`` (or of ``~/.claude/settings.json`` for ``--user``),
   which are per machine, when 2 and 3 would not find the installing interpreter;
2. ``$CLAUDE_PROJECT_DIR/.venv/bin/claude-budget-hook`` — the project's own virtualenv;
3. ``claude-budget-hook`` on ``PATH`` — ``pipx``, ``uv tool``, ``pip --user``, an activated venv.

Found, the hook runs as a process of its own, isolated (``python -I``): nothing in the project
folder or in ``PYTHONPATH`` can stand in for a module it imports. No resident process, socket or
cache is involved (see docs/security.md).

When none is there, the hooks do nothing, and the prompt hook says so once per Claude Code
process (one line, not an error per event) — or refuses the prompt where ``on_error`` is
``closed``, so a team that requires enforcement does not silently lose it. Where the plugin is
enabled it counts instead (its own runner, ``plugin/hooks/claude-budget.sh``), and the line stays
silent.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final, NamedTuple

HOOK_SCRIPT: Final = "claude-budget-hook"
STATUSLINE_SCRIPT: Final = "claude-budget-statusline"
PYTHON_ENV: Final = "CLAUDE_BUDGET_PYTHON"
PLUGIN_ID: Final = "claude-budget@claude-budget"
# Hook commands that are ours: today's line, the absolute-interpreter lines of earlier installs,
# and `budget_hook.py`, the earlier stand-alone script (and this repository's own wiring).
OUR_MARKS: Final = ("budget_state.hook", HOOK_SCRIPT, "budget_hook.py")

# Events whose answer nobody waits for (kept in step with hook.BACKGROUND_EVENTS, which a unit
# test checks; not imported from there so that building a line loads no hook code).
_BACKGROUND: Final = ("PreToolUse", "SubagentStop", "Stop")

# Every form ends in ``<python> -I -m budget_state.hook``: isolated mode, so neither the project
# folder (the current directory) nor a PYTHONPATH, PYTHONHOME or user site can put a module of
# theirs in front of the standard library or ours. A console script on PATH is run by the
# interpreter its ``#!`` line names (pip, pipx and uv write one); pip's ``#!/bin/sh`` form for
# long paths is run as it is, with the variables that steer imports cleared.
_FIND: Final = (
    'if [ -x "${CLAUDE_BUDGET_PYTHON:-}" ]; then set -- "$CLAUDE_BUDGET_PYTHON" -I -m budget_state.hook; '
    'elif [ -x "$CLAUDE_PROJECT_DIR/.venv/bin/claude-budget-hook" ] && [ -x "$CLAUDE_PROJECT_DIR/.venv/bin/python" ]; '
    'then set -- "$CLAUDE_PROJECT_DIR/.venv/bin/python" -I -m budget_state.hook; '
    'elif h=$(command -v claude-budget-hook 2>/dev/null); then l=; read -r l <"$h"; '
    "case $l in '#!/'*' '*|'#!/bin/sh') "
    "unset PYTHONPATH PYTHONHOME PYTHONUSERBASE PYTHONSTARTUP PYTHONWARNINGS PYTHONPLATLIBDIR; "
    'PYTHONNOUSERSITE=1; export PYTHONNOUSERSITE; set -- "$h";; '
    '\'#!/\'*) set -- "${l#??}" -I -m budget_state.hook;; *) set -- "$h";; esac; '
    "else {missing}; fi; "
)
# Whether the mode may be kill or on_error closed, as the shell can tell without Python: the
# variables, or a line of budget.toml (not a comment) naming them. A false alarm only costs a
# foreground hook (which then decides by the real settings); a change of mode needs no install.
MAY_DECIDE: Final = (
    'case "${CLAUDE_BUDGET_MODE:-} ${CLAUDE_BUDGET_ON_ERROR:-}" in '
    "*[Kk][Ii][Ll][Ll]*|*[Cc][Ll][Oo][Ss][Ee][Dd]*) m=wait;; esac; "
    "[ \"$m\" = wait ] || ! grep -Eqis '^[^#]*(mode[^#]*=[^#]*kill|on_error[^#]*=[^#]*closed)' "
    '"${CLAUDE_PROJECT_DIR:-.}/.claude/budget.toml" || m=wait; '
)
_CLOSED: Final = (
    'case "${CLAUDE_BUDGET_ON_ERROR:-}" in *[Cc][Ll][Oo][Ss][Ee][Dd]*) c=1;; *) c=; '
    "grep -Eqis '^[^#]*on_error[^#]*=[^#]*closed' \"${CLAUDE_PROJECT_DIR:-.}/.claude/budget.toml\" && c=1;; esac; "
)
NOT_INSTALLED: Final = (
    "claude-budget is not installed on this machine, so token budgets are not counted or enforced here: "
    "install it (pipx install claude-budget, or uv tool install claude-budget, or pip install claude-budget "
    "into the project .venv) and run claude-budget doctor"
)
# The prompt hook when nothing is found: silent where the plugin is enabled (it counts instead);
# a refusal where on_error is closed; else one line per Claude Code process ($PPID), remembered in
# one file of the user's own Claude Code folder (not a shared temp folder another user could fill).
_MISSING_PROMPT: Final = (
    "d=${CLAUDE_CONFIG_DIR:-$HOME/.claude}; "
    "grep -qsE '\"" + PLUGIN_ID + '" *: *true\' "$d/settings.json" '
    '"${CLAUDE_PROJECT_DIR:-.}/.claude/settings.json" && exit 0; '
    + _CLOSED
    + "m='"
    + NOT_INSTALLED
    + "'; "
    + 'if [ -n "$c" ]; then printf \'{"decision":"block","reason":"%s (on_error is closed)"}\\n\' "$m"; exit 0; fi; '
    + 'f="$d/claude-budget-missing"; p=; read -r p 2>/dev/null <"$f"; [ "$p" = "$PPID" ] && exit 0; '
    + 'echo "$PPID" 2>/dev/null >"$f"; printf \'{"systemMessage":"%s"}\\n\' "$m"; exit 0'
)


def hook_command(*, event: str = "UserPromptSubmit") -> str:
    """The shell line Claude Code runs for ``event``: find the hook, then run it.

    An event whose answer nobody waits for (:data:`_BACKGROUND`) starts the hook with its stdin
    and returns at once (``exec 3<&0`` first: sh gives a background command /dev/null as stdin,
    even with ``<&0``). It runs in the foreground after all where it may have to answer:
    PreToolUse when the mode may be kill or on_error closed (:data:`MAY_DECIDE`), Stop in the
    interactive TUI (its message there is shown under the last response; ``claude -p`` shows it
    nowhere).
    """
    find = _FIND.replace("{missing}", _MISSING_PROMPT if event == "UserPromptSubmit" else "exit 0")
    if event not in _BACKGROUND:
        return find + 'exec "$@"'
    if event == "PreToolUse":
        mode = "m=background; " + MAY_DECIDE
    elif event == "Stop":
        mode = 'm=background; [ "${CLAUDE_CODE_ENTRYPOINT:-}" = cli ] && m=wait; '
    else:
        mode = "m=background; "
    return find + mode + _BACKGROUND_RUN


# A waited-for event runs the hook; else it starts it with its stdin and returns.
_BACKGROUND_RUN: Final = '[ "$m" = wait ] && exec "$@"; exec 3<&0; "$@" --background <&3 3<&- >/dev/null 2>&1 &'


def statusline_command() -> str:
    """The ``statusLine`` command: the status line module, found as the hook lines find the hook.

    Nothing found prints nothing (an empty status line), never an error under the prompt.
    """
    venv = '"${CLAUDE_PROJECT_DIR:-.}/.venv/bin/' + STATUSLINE_SCRIPT + '"'
    return (
        'if [ -x "${CLAUDE_BUDGET_PYTHON:-}" ]; then exec "$CLAUDE_BUDGET_PYTHON" -m budget_state.statusline; '
        f"elif [ -x {venv} ]; then exec {venv}; "
        f"elif command -v {STATUSLINE_SCRIPT} >/dev/null 2>&1; then exec {STATUSLINE_SCRIPT}; fi"
    )


def is_ours(handler: object) -> bool:
    if not isinstance(handler, dict):
        return False
    command = handler.get("command")
    return isinstance(command, str) and any(mark in command for mark in OUR_MARKS)


# --- which interpreter a line would run ---------------------------------------------------------


class Runner(NamedTuple):
    """What a hook line resolves to on this machine: the command, and how it was found."""

    argv: tuple[str, ...]
    how: str


def find_runner(project: Path, env: Mapping[str, str]) -> Runner | None:
    """The hook the portable line would run here, by the same rules (see the module docstring)."""
    python = env.get(PYTHON_ENV)
    if python and os.access(python, os.X_OK) and os.path.isfile(python):
        return Runner((python, "-m", "budget_state.hook"), f"${PYTHON_ENV} ({python})")
    local = project / ".venv" / "bin" / HOOK_SCRIPT
    if os.access(local, os.X_OK) and local.is_file():
        return Runner((str(local),), f"the project's virtualenv ({local})")
    found = shutil.which(HOOK_SCRIPT, path=env.get("PATH", os.defpath))
    if found:
        return Runner((found,), f"{HOOK_SCRIPT} on PATH ({found})")
    return None


def interpreter_of(script: str | Path) -> str | None:
    """The interpreter a console script's ``#!`` line names (pip, pipx and uv all write one)."""
    try:
        with open(script, "rb") as f:
            first = f.readline(4096)
    except OSError:
        return None
    if not first.startswith(b"#!"):
        return None
    words = first[2:].decode("utf-8", "replace").split()
    if not words or os.path.basename(words[0]) == "sh":  # pip's `#!/bin/sh` + exec form for long paths
        return None
    return words[0]


def same_environment(a: str | Path, b: str | Path) -> bool:
    """Whether two interpreter paths are one environment: the same ``bin/`` folder.

    Not ``samefile``: every venv's ``python`` links to its base interpreter, so two venvs with
    different packages would compare equal.
    """
    return os.path.realpath(os.path.dirname(a)) == os.path.realpath(os.path.dirname(b))


def runs_with(project: Path, env: Mapping[str, str], python: str) -> bool:
    """Whether the portable line, without ``$CLAUDE_BUDGET_PYTHON``, would run the hook with ``python``."""
    runner = find_runner(project, {k: v for k, v in env.items() if k != PYTHON_ENV})
    if runner is None:
        return False
    interpreter = interpreter_of(runner.argv[0])
    return interpreter is not None and same_environment(interpreter, python)


# --- where claude-budget is wired -----------------------------------------------------------------


class Wiring(NamedTuple):
    """Where Claude Code would run claude-budget's hooks for one project."""

    project_settings: tuple[Path, ...]  # settings files of the project with our hooks
    user_settings: Path | None  # ~/.claude/settings.json, if it has our hooks
    plugin: bool  # the claude-budget plugin is enabled (user or project settings)
    commands: dict[str, set[str]]  # event -> our distinct hook commands, all files together


def read_json(path: Path) -> dict[str, Any] | None:
    """A settings file as a dict; None when it is missing or not a JSON object."""
    try:
        data = json.loads(path.read_text(encoding="utf-8-sig"))
    except (OSError, UnicodeDecodeError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def our_commands(settings: Mapping[str, Any] | None) -> list[tuple[str, str]]:
    """``(event, command)`` of each of our hook handlers in ``settings``."""
    hooks = settings.get("hooks") if settings else None
    if not isinstance(hooks, dict):
        return []
    out: list[tuple[str, str]] = []
    for event, groups in hooks.items():
        for group in groups if isinstance(groups, list) else []:
            handlers = group.get("hooks") if isinstance(group, dict) else None
            for h in handlers if isinstance(handlers, list) else []:
                if is_ours(h):
                    out.append((event, h["command"]))
    return out


def plugin_enabled(settings: Mapping[str, Any] | None) -> bool:
    enabled = settings.get("enabledPlugins") if settings else None
    return isinstance(enabled, dict) and enabled.get(PLUGIN_ID) is True


def settings_files(project: Path, claude_home: Path) -> tuple[Path, Path, Path]:
    """Project, local and user settings, in the order Claude Code documents them."""
    return (
        project / ".claude" / "settings.json",
        project / ".claude" / "settings.local.json",
        claude_home / "settings.json",
    )


def wiring(project: Path, claude_home: Path) -> Wiring:
    shared, local, user = settings_files(project, claude_home)
    data = {p: read_json(p) for p in (shared, local, user)}
    commands: dict[str, set[str]] = {}
    for d in data.values():
        for event, command in our_commands(d):
            commands.setdefault(event, set()).add(command)
    return Wiring(
        project_settings=tuple(p for p in (shared, local) if our_commands(data[p])),
        user_settings=user if our_commands(data[user]) else None,
        plugin=any(plugin_enabled(d) for d in data.values()),
        commands=commands,
    )


def problems(project: Path, claude_home: Path) -> list[str]:
    """What in the wiring makes counts wrong: hooks that would run twice for one event.

    Claude Code runs an identical command once however many settings files hold it, so a
    project and a ``--user`` install of this version never double; an older install's line
    (an interpreter path) next to today's does.
    """
    w = wiring(project, claude_home)
    twice = sorted(event for event, commands in w.commands.items() if len(commands) > 1)
    if not twice:
        return []
    where = ", ".join(str(p) for p in (*w.project_settings, w.user_settings) if p is not None)
    return [
        f"claude-budget's hooks for {', '.join(twice)} are wired with different commands ({where}), "
        "so each runs and usage is counted twice — run claude-budget install (and install --user) again "
        "to make them one, or claude-budget uninstall one of them"
    ]
