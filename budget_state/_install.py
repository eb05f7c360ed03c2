"""``claude-budget install``: wire the hook, the ``/budget`` command and the config into a project.

Every change is planned first and written only when the whole plan is sound, so a broken
``settings.json`` leaves the project exactly as it was (and ``--dry-run`` stops there). Each file
is written atomically (a temp file in the same directory, then ``os.replace``), and a file that
needs no change is not rewritten at all, so a second install leaves every byte as it was.

The hook lines name no interpreter (see :mod:`._wiring`): ``.claude/settings.json`` can be
committed and works on every teammate's machine. Where this machine's install would not be
found by them, ``.claude/settings.local.json`` (per machine) points at it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final, Literal

from ._atomic import write_atomic
from ._errors import ConfigError
from ._paths import CACHE_NAME, CONFIG_NAME, LEDGER_NAME, claude_home
from ._version import __version__
from ._wiring import PYTHON_ENV, hook_command, is_ours, runs_with, statusline_command
from .budgets._config import on_error_alone

Scope = Literal["project", "user"]
HOOK_TIMEOUT: Final = 30
# Events the hook settles the ledger at. SessionEnd is needed: counting only up to Stop missed
# tokens in real `claude -p` runs (see claude-code-facts.md, "Transcript JSONL").
HOOK_EVENTS: Final = (
    "UserPromptSubmit",
    "PreToolUse",
    "SubagentStop",
    "Stop",
    "StopFailure",
    "SessionEnd",
)
# Not PostToolUse: nothing is spent between a tool's PreToolUse and its PostToolUse, and the hook
# is a new process (~30 ms) on every event — the next PreToolUse or Stop settles the same usage.
# Earlier installs registered it; install removes our entry there.
RETIRED_EVENTS: Final = ("PostToolUse",)
_TOOL_EVENTS: Final = frozenset({"PreToolUse", "PostToolUse"})
# With on_error = "closed", a hook Claude Code cannot run at all (its interpreter is gone, it timed
# out, it was killed) must refuse too, not only one that runs and fails: `onFailure: "block"`
# (honoured from Claude Code 2.1.295, ignored before). Only where a refusal means something.
_CLOSED_EVENTS: Final = frozenset({"UserPromptSubmit", "PreToolUse"})
MARKER: Final = "<!-- claude-budget"
HOOK_LOG_NAME: Final = "budget-hook.log"
GITIGNORE_LINES: Final = (
    LEDGER_NAME,
    LEDGER_NAME + ".lock",
    CACHE_NAME,
    LEDGER_NAME.replace(".toml", ".corrupt-*"),
    f".{LEDGER_NAME}.tmp",  # left behind only by a writer killed mid-write; the next write replaces it
    HOOK_LOG_NAME,
    HOOK_LOG_NAME + ".1",
    LEDGER_NAME.replace(".toml", ".d/"),  # its parts: a file per command, session and scope's buckets
    LEDGER_NAME.replace(".toml", ".runs.jsonl"),  # finished runs
)
LOCAL_SETTINGS_LINE: Final = "settings.local.json"

_Plan = list[tuple[Path, str]]


def install(
    target: Path,
    /,
    *,
    python: str,
    scope: Scope = "project",
    dry_run: bool = False,
    env: Mapping[str, str] | None = None,
) -> list[str]:
    """Wire claude-budget into ``target/.claude/`` and say what was done, one line per file.

    :param target: the project root; it must exist (``.claude/`` is created if missing). For
        ``scope="user"``, Claude Code's user folder (``~/.claude``) instead.
    :param python: the interpreter that has claude-budget (where nothing else would find it,
        the per-machine settings point the hooks at it).
    :param dry_run: plan and report, write nothing.
    :raises ConfigError: ``target`` is not a directory, a settings file is not a JSON object
        of the expected shape, or a file cannot be written.
    """
    env = os.environ if env is None else env
    if scope == "user":
        claude = target
    else:
        if not target.is_dir():
            raise ConfigError(
                f"install target {target} is not a directory — create it or pass an existing project",
                path=target,
            )
        claude = target / ".claude"
    if claude.exists() and not claude.is_dir():
        raise ConfigError(f"{claude} exists but is not a directory — move it aside and run install again", path=claude)

    plan: _Plan = []
    closed = scope == "project" and on_error_alone(target, {}) == "closed"
    # The project line finds a .venv of the project and PATH; for --user the project varies, so
    # only PATH counts (a path nothing is under stands in for the project).
    where = target if scope == "project" else Path(os.devnull) / "no-project"
    needs_pointer = not runs_with(where, env, python)
    names = _Names(scope)
    lines: list[str | None]

    mod = (claude if scope == "user" else claude_home(env)) / "skills" / MOD_FOLDER
    if scope == "user":
        lines = [
            _plan_settings(
                claude / "settings.json", plan, closed=False, name=names.settings, python=python, pointer=needs_pointer
            ),
            _plan_command(claude / "commands" / "budget.md", plan, name=names.command),
            _plan_mod(mod, plan),
        ]
    else:
        lines = [
            _plan_settings(claude / "settings.json", plan, closed=closed, name=names.settings),
            _plan_local(claude / "settings.local.json", plan, python=python if needs_pointer else None),
            _plan_command(claude / "commands" / "budget.md", plan, name=names.command),
            _plan_gitignore(claude / ".gitignore", plan, local=needs_pointer),
            _plan_config(claude / CONFIG_NAME, plan),
            _plan_mod(mod, plan),
        ]
    if not dry_run:
        write_plan(plan)
    return [line for line in lines if line]


class _Names:
    def __init__(self, scope: Scope) -> None:
        base = "~/.claude" if scope == "user" else ".claude"
        self.settings = f"{base}/settings.json"
        self.command = f"{base}/commands/budget.md"


def write_plan(plan: _Plan) -> None:
    for path, text in plan:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            _write_atomic(path, text)
        except OSError as e:
            raise ConfigError(f"cannot write {path}: {e.strerror or e}", path=path) from None


# --- .claude/settings.json ---------------------------------------------------------------------


def _plan_settings(
    path: Path, plan: _Plan, *, closed: bool, name: str, python: str | None = None, pointer: bool = False
) -> str:
    """Our hooks in ``path``; with ``python`` (the user's settings), also the interpreter pointer."""
    settings = read_settings(path)
    hooks = settings.setdefault("hooks", {})
    if not isinstance(hooks, dict):
        raise _shape_error(path, '"hooks"', "an object", hooks)
    added: list[str] = []
    updated: list[str] = []
    deduplicated: list[str] = []
    failing: list[str] = []
    for event in HOOK_EVENTS:
        groups = hooks.setdefault(event, [])
        if not isinstance(groups, list):
            raise _shape_error(path, f'"hooks"."{event}"', "an array", groups)
        found = find_ours(path, event, groups)
        block = closed and event in _CLOSED_EVENTS
        command = hook_command(event=event)
        if not found:
            group: dict[str, Any] = {"matcher": "*"} if event in _TOOL_EVENTS else {}
            handler: dict[str, Any] = {"type": "command", "command": command, "timeout": HOOK_TIMEOUT}
            if block:
                handler["onFailure"] = "block"
            group["hooks"] = [handler]
            groups.append(group)
            added.append(event)
            continue
        first = found[0]
        if first["command"] != command:
            first["command"] = command
            updated.append(event)
        if block and first.get("onFailure") != "block":
            first["onFailure"] = "block"
            failing.append(event)
        elif not block and "onFailure" in first:
            del first["onFailure"]
            failing.append(event)
        if len(found) > 1:
            drop_handlers(groups, found[1:])
            deduplicated.append(event)

    retired: list[str] = []
    for event in RETIRED_EVENTS:
        groups = hooks.get(event)
        if not isinstance(groups, list):
            continue
        found = find_ours(path, event, groups)
        if found:
            drop_handlers(groups, found)
            if not groups:
                del hooks[event]
            retired.append(event)

    pointed = _set_pointer(settings, python if pointer else None) if python is not None else None
    if not (added or updated or deduplicated or retired or failing or pointed):
        return f"{name}: unchanged (the hook is already installed)"
    plan.append((path, json.dumps(settings, indent=2, ensure_ascii=False) + "\n"))
    parts = []
    if added:
        parts.append(f"added the hook for {', '.join(added)}")
    if updated:
        parts.append(f"set the hook command for {', '.join(updated)}")
    if deduplicated:
        parts.append(f"removed duplicate claude-budget hooks from {', '.join(deduplicated)}")
    if retired:
        parts.append(f"removed the hook from {', '.join(retired)} (no longer needed)")
    if failing:
        how = 'onFailure "block" (on_error is closed)' if closed else "no onFailure (on_error is open)"
        parts.append(f"{how} for {', '.join(failing)}")
    if pointed:
        parts.append(pointed)
    return f"{name}: {'; '.join(parts)}"


def _set_pointer(settings: dict[str, Any], python: str | None) -> str | None:
    """Set (or, with None, drop) ``env.CLAUDE_BUDGET_PYTHON``; say what changed, or None."""
    env = settings.get("env")
    if env is not None and not isinstance(env, dict):
        raise ConfigError('"env" in the settings should be an object — fix it and run install again')
    current = env.get(PYTHON_ENV) if env else None
    if current == python:
        return None
    if python is None:
        assert env is not None
        del env[PYTHON_ENV]
        if not env:
            del settings["env"]
        return f"removed env {PYTHON_ENV} (claude-budget-hook is found without it)"
    settings.setdefault("env", {})[PYTHON_ENV] = python
    return f"set env {PYTHON_ENV}={python} (this machine's interpreter with claude-budget)"


# --- .claude/settings.local.json ---------------------------------------------------------------


def _plan_local(path: Path, plan: _Plan, *, python: str | None) -> str | None:
    """Point this machine's hooks at ``python``, in the settings that are not committed.

    Only where the portable line would not find this install by itself (no ``.venv`` in the
    project, no ``claude-budget-hook`` of this interpreter on PATH); a pointer we set earlier and
    no longer need is taken out.
    """
    name = ".claude/settings.local.json"
    if python is None and not path.exists():
        return None
    settings = read_settings(path)
    said = _set_pointer(settings, python)
    if said is None:
        return f"{name}: unchanged" if python is not None else None
    plan.append((path, json.dumps(settings, indent=2, ensure_ascii=False) + "\n"))
    return f"{name}: {said}"


def read_settings(path: Path) -> dict[str, Any]:
    try:
        # utf-8-sig: editors on Windows like to prepend a BOM, which json.loads rejects.
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"cannot read {path}: {e} — fix it and run install again", path=path) from None
    if not text.strip():
        return {}
    try:
        data = json.loads(text, object_pairs_hook=_no_duplicate_keys)
    except json.JSONDecodeError as e:
        raise ConfigError(
            f"invalid JSON in {path}: {e.msg} (at line {e.lineno}, column {e.colno})"
            " — fix it and run install again (nothing was changed)",
            path=path,
        ) from None
    except _DuplicateKey as e:
        raise ConfigError(
            f"invalid settings in {path}: the key {json.dumps(e.key)} appears twice in one object"
            " — keep one and run install again (nothing was changed)",
            path=path,
        ) from None
    if not isinstance(data, dict):
        raise _shape_error(path, "the top level", "an object", data)
    return data


class _DuplicateKey(ValueError):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # A rewrite would silently keep only the last of two equal keys; refuse instead.
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _DuplicateKey(key)
        out[key] = value
    return out


def find_ours(path: Path, event: str, groups: list[Any]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for i, group in enumerate(groups):
        if not isinstance(group, dict):
            raise _shape_error(path, f'"hooks"."{event}"[{i}]', "an object", group)
        handlers = group.get("hooks", [])
        if not isinstance(handlers, list):
            raise _shape_error(path, f'"hooks"."{event}"[{i}]."hooks"', "an array", handlers)
        found.extend(h for h in handlers if is_ours(h))
    return found


def drop_handlers(groups: list[Any], extras: list[dict[str, Any]]) -> None:
    """Remove ``extras`` (by identity), and any group that held nothing but them."""
    ids = {id(h) for h in extras}
    for group in list(groups):
        handlers = group.get("hooks", [])
        kept = [h for h in handlers if id(h) not in ids]
        if len(kept) == len(handlers):
            continue
        if kept:
            group["hooks"] = kept
        else:
            groups.remove(group)


def _shape_error(path: Path, where: str, expected: str, found: object) -> ConfigError:
    kind = {dict: "an object", list: "an array", str: "a string", bool: "a boolean", type(None): "null"}
    got = kind.get(type(found), "a number")
    return ConfigError(
        f"invalid settings in {path}: {where} should be {expected}, found {got}"
        " — fix it and run install again (nothing was changed)",
        path=path,
    )


# --- .claude/commands/budget.md ----------------------------------------------------------------


COMMAND_FILE: Final = f"""\
---
description: Show token budgets (answered by the claude-budget hook; no model call)
argument-hint: "[/command]"
---
{MARKER}: written by `claude-budget install`, which updates this file; delete this line to keep your own version -->

Reply with exactly this line and nothing else: "claude-budget did not answer /budget: its hooks are \
not running in this session, so budgets are not counted or enforced. Run `claude-budget doctor` in \
this project to see why (or install it: pipx install claude-budget)."
"""


def _existing(path: Path) -> str | None:
    """The text of a file install would write, None when there is none; one that cannot be read is
    an error saying so (install never replaces what it could not look at)."""
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"cannot read {path}: {e} — move it aside and run install again", path=path) from None


def _plan_command(path: Path, plan: _Plan, *, name: str) -> str:
    """``/budget``: for autocomplete; the hook answers it. Its body only runs when the hook did not."""
    text = COMMAND_FILE
    current = _existing(path)
    if current is None:
        plan.append((path, text))
        return f"{name}: written (the /budget command)"
    if MARKER not in current:
        return (
            f"{name}: kept as is (written by you: it lacks the {MARKER} --> marker); "
            "the hook still answers /budget, or delete the file and run install again to get ours"
        )
    if current == text:
        return f"{name}: unchanged"
    plan.append((path, text))
    return f"{name}: updated"


# --- the mod: ~/.claude/skills/claude-budget/ -------------------------------------------------

# Claude Code 2.1.286+ loads a plugin folder placed in ~/.claude/skills/<name>/ with no install step
# (not one in a project's .claude/skills/: checked on 2.1.332), so that is where install puts the mod,
# for a project install too. In a project where claude-budget is not wired it stays out (see _mod).
MOD_FOLDER: Final = "claude-budget"
MOD_PLUGIN_NAME: Final = "claude-budget-mod"
MOD_SOURCE: Final = "claude-budget.mod.ts"


def mod_files() -> dict[str, str]:
    """The mod's plugin folder, file by file (relative path -> text), as this version ships it."""

    source = (Path(__file__).parent / MOD_SOURCE).read_text(encoding="utf-8")
    manifest = {
        "name": MOD_PLUGIN_NAME,
        "version": __version__,
        "description": "claude-budget's mod: counts each model request into the project's ledger, "
        "stops kill mode's runs at the exact request, /budget without a model call, a live band.",
        "author": {"name": "claude-budget maintainers"},
    }
    hooks = {"description": "claude-budget's mod (written by claude-budget install)", "modules": [f"./{MOD_SOURCE}"]}
    return {
        ".claude-plugin/plugin.json": json.dumps(manifest, indent=2) + "\n",
        "hooks/hooks.json": json.dumps(hooks, indent=2) + "\n",
        f"hooks/{MOD_SOURCE}": source,
    }


def _plan_mod(folder: Path, plan: _Plan) -> str:
    name = f"~/.claude/skills/{MOD_FOLDER}/"
    changed = []
    for rel, text in mod_files().items():
        path = folder / rel
        if _existing(path) != text:
            plan.append((path, text))
            changed.append(rel)
    if not changed:
        return f"{name}: unchanged (the mod Claude Code 2.1.286+ loads)"
    return (
        f"{name}: written (the mod: Claude Code 2.1.286+ counts each request in-process; older versions use the hooks)"
    )


# --- .claude/.gitignore ------------------------------------------------------------------------

GITIGNORE_HEADER: Final = "# claude-budget: the ledger and its lock/cache are per machine"


def _plan_gitignore(path: Path, plan: _Plan, *, local: bool = False) -> str:
    name = ".claude/.gitignore"
    wanted = (*GITIGNORE_LINES, LOCAL_SETTINGS_LINE) if local else GITIGNORE_LINES
    try:
        current = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        current = ""
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"cannot read {path}: {e} — fix it and run install again", path=path) from None
    present = {line.strip() for line in current.splitlines()}
    missing = [line for line in wanted if line not in present]
    if not missing:
        return f"{name}: unchanged"
    text = current
    if text and not text.endswith("\n"):
        text += "\n"
    if not any(line.startswith("# claude-budget") for line in present):
        text += GITIGNORE_HEADER + "\n"
    text += "".join(line + "\n" for line in missing)
    plan.append((path, text))
    return f"{name}: added {', '.join(missing)}"


# --- .claude/budget.toml -----------------------------------------------------------------------

CONFIG_TEMPLATE: Final = """\
# claude-budget settings for this project. Every key is optional: uncomment one to set it.
# Environment variables beat this file; `claude-budget status` shows what is in force.
# Token amounts may be written 200000, 200_000, "200k" or "1.5M".

# What happens when a budget is spent (env: CLAUDE_BUDGET_MODE):
#   "warn"  - tell the user and let the work go on (the default)
#   "block" - refuse new prompts while a budget is spent; a running turn finishes
#   "kill"  - also stop a running turn at its next tool call
# mode = "warn"

# A cap on the tokens of every prompt in this project, commands or not; none by default
# (env: CLAUDE_BUDGET_OVERALL, "none" to lift it).
# overall_tokens = "5M"

# The token categories a budget counts (default: all four).
# count = ["input", "output", "cache_creation", "cache_read"]

# When the hook itself fails - unreadable ledger, lock timeout, a bug (env: CLAUDE_BUDGET_ON_ERROR):
#   "open"   - let the prompt or tool call through (the default)
#   "closed" - refuse it
# on_error = "open"

# Seconds to wait for the ledger lock before giving up (env: CLAUDE_BUDGET_LOCK_TIMEOUT).
# lock_timeout = 5

# Where the ledger lives; a relative path is relative to the project root
# (env: CLAUDE_BUDGET_STATE; `claude-budget path` prints the one in use).
# ledger = ".claude/budget-ledger.toml"

# One table per command, named as you type it. A command file can instead set
# `tokenBudget: 200000` in its frontmatter; a table here wins over that.
# [commands."/review-pr"]
# tokens = "200k"
"""


def _plan_config(path: Path, plan: _Plan) -> str:
    name = f".claude/{CONFIG_NAME}"
    if path.exists() or path.is_symlink():
        return f"{name}: kept as is (already there)"
    plan.append((path, CONFIG_TEMPLATE))
    return f"{name}: written (a commented template; every setting is off until you uncomment it)"


# --- writing -----------------------------------------------------------------------------------


def _write_atomic(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` in one step, keeping its permissions (and its symlink)."""

    write_atomic(path.resolve() if path.is_symlink() else path, text.encode("utf-8"))


# --- statusLine (install --statusline) ---------------------------------------------------------

STATUSLINE_MODULE: Final = "budget_state.statusline"
# Claude Code runs the status line when a response arrives, which can be a moment before the
# hooks have counted it; and windows, resets and forecasts move with the clock. Every 10 s is
# ~40 ms of one core, and catches both up.
STATUSLINE_REFRESH: Final = 10


def install_statusline(target: Path, /, *, home: Path, scope: Scope = "project", dry_run: bool = False) -> list[str]:
    """Make claude-budget the ``statusLine`` (the project's; ``scope="user"``: ``target`` is ``~/.claude``),
    unless one is set already.

    Claude Code shows one status line, and a project's setting hides the user's: so an existing
    one — in the project's ``settings.json`` or ``settings.local.json``, or the user's
    ``~/.claude/settings.json`` (``home``) — is never replaced. The lines say how to show both.
    The command names no interpreter (:func:`._wiring.statusline_command`): it runs where the
    hooks run, with the pointer ``install`` sets where it is needed.
    """
    others: tuple[Path, ...] = ()
    if scope == "user":
        path, name = target / "settings.json", "~/.claude/settings.json"
    else:
        path, name = target / ".claude" / "settings.json", ".claude/settings.json"
        others = (target / ".claude" / "settings.local.json", home / "settings.json")
    ours = statusline_command()
    settings = read_settings(path)
    current = settings.get("statusLine")
    if _is_our_statusline(current):
        assert isinstance(current, dict)
        if current.get("command") == ours:
            return [f"{name}: statusLine unchanged (claude-budget's)"]
        current["command"] = ours
        if not dry_run:
            _write_atomic(path, json.dumps(settings, indent=2, ensure_ascii=False) + "\n")
        return [f"{name}: set the statusLine command (claude-budget's)"]
    if current is not None:
        return _combine_advice(name, current, ours)
    # Set here, ours would hide one the user set for every project, or for this one on this machine.
    for where in others:
        other = _statusline_in(where)
        if other is not None:
            return _combine_advice(str(where), other, ours)
    settings["statusLine"] = {"type": "command", "command": ours, "padding": 0, "refreshInterval": STATUSLINE_REFRESH}
    if not dry_run:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            _write_atomic(path, json.dumps(settings, indent=2, ensure_ascii=False) + "\n")
        except OSError as e:
            raise ConfigError(f"cannot write {path}: {e.strerror or e}", path=path) from None
    return [f"{name}: set statusLine to claude-budget's status line"]


def _is_our_statusline(value: object) -> bool:
    return isinstance(value, dict) and STATUSLINE_MODULE in str(value.get("command", ""))


def _statusline_in(path: Path) -> object:
    """The ``statusLine`` another settings file sets, or None (a file that cannot be read sets none)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8-sig"))
    except (OSError, ValueError):
        return None
    return data.get("statusLine") if isinstance(data, dict) else None


def _combine_advice(where: str, other: object, ours: str) -> list[str]:
    if _is_our_statusline(other):
        return [f"{where}: statusLine is already claude-budget's"]
    lines = [f"{where}: statusLine kept as is (it is yours; claude-budget never replaces it)"]
    command = other.get("command") if isinstance(other, dict) else None
    if not isinstance(command, str) or not command.strip():
        lines.append(f"To show claude-budget's line, make the statusLine command run: {ours}")
        return lines
    # Both read the same stdin: keep it once, feed it to each; each prints its own line under the prompt.
    both = f'input=$(cat); printf "%s" "$input" | {{ {command.strip()}; }}; printf "%s" "$input" | {ours}'
    lines.append("To show both, one line each, set its command to:")
    lines.append(f"  {both}")
    lines.append(
        '  (in JSON: "statusLine": ' + json.dumps({"type": "command", "command": both}, ensure_ascii=False) + ")"
    )
    return lines
