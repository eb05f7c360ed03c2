"""``claude-budget doctor``: is claude-budget counting and enforcing in this project, and if not, why.

Each check is one line — ``ok``, ``warn`` (works, but worth knowing) or ``PROBLEM`` with its fix —
and the exit code is 1 when any check is a problem. Every check reads; none changes anything
(the lock is only tried, and only when its file is already there).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import shutil
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final, NamedTuple

from .._api import Context, snapshot
from .._errors import BudgetError, LockTimeout
from .._hooklog import default_ledger, tail
from .._install import MOD_FOLDER, mod_files, read_settings
from .._paths import claude_home, find_project, ledger_path, lock_path
from .._version import __version__
from .._wiring import (
    NOT_INSTALLED,
    PLUGIN_ID,
    PYTHON_ENV,
    find_runner,
    hook_command,
    problems,
    read_json,
    settings_files,
    wiring,
)
from ..budgets._plan import NO_PLAN, plan_path, plan_problem, read_plan
from ..ledger._ledger import Ledger, utcnow
from ..ledger._lock import LedgerLock

JSON_VERSION: Final = 1
OLDEST_SUPPORTED: Final = (2, 1, 197)
_MARK = {"ok": "ok", "warn": "warn", "problem": "PROBLEM"}


class Check(NamedTuple):
    check: str
    status: str  # "ok" | "warn" | "problem"
    detail: str
    fix: str | None = None


def run_doctor(args: argparse.Namespace) -> int:
    env = os.environ
    project = Path(os.path.abspath(args.project)) if args.project else find_project(env)
    home = claude_home(env)
    checks, ledger = diagnose(project, home, env)
    logs = tail(ledger, lines=args.log)
    default = default_ledger({**env, "CLAUDE_PROJECT_DIR": str(project)})
    if default != ledger:  # a hook that failed before reading budget.toml logs beside the default ledger
        logs = (tail(default, lines=args.log) + logs)[-args.log :] if args.log > 0 else []
    if args.json_:
        data = {
            "version": JSON_VERSION,
            "claude_budget": __version__,
            "project": str(project),
            "ok": not any(c.status == "problem" for c in checks),
            "checks": [c._asdict() for c in checks],
            "log": logs,
        }
        print(json.dumps(data, indent=2))
    else:
        print(f"claude-budget {__version__} doctor: {project}")
        width = max(len(c.check) for c in checks)
        for c in checks:
            print(f"  {_MARK[c.status]:<7}  {c.check:<{width}}  {c.detail}")
            if c.fix:
                print(f"  {'':<7}  {'':<{width}}  fix: {c.fix}")
        print(f"Hook log ({ledger.with_name('budget-hook.log')}):" if logs else "Hook log: nothing logged.")
        for line in logs:
            print(f"  {line}")
    return 1 if any(c.status == "problem" for c in checks) else 0


def diagnose(project: Path, home: Path, env: Mapping[str, str]) -> tuple[list[Check], Path]:
    """Every check for ``project``, and the ledger path they found."""

    checks = [*_settings_checks(project, home)]
    w = wiring(project, home)
    effective = _session_env(project, home, env)
    checks += _hook_checks(project, home, w, effective)
    version_check = _claude_version(env)
    checks.append(version_check)
    checks.append(_mod(home, w, version_check))
    checks.append(_trust(project, home, env))
    config, ledger = _config(project, env)
    checks.append(config)
    if ledger is None:
        ledger = ledger_path(project, env)
    checks += _ledger_checks(project, ledger, env)
    checks.append(_statusline(project, home))
    checks.append(_plan(env))
    team = _team(project, env)
    if team is not None:
        checks.append(team)
    return checks, ledger


def _team(project: Path, env: Mapping[str, str]) -> Check | None:
    """With ``team_url``: the database client is there, the database answers, its tables are current,
    the team has budgets; and what this machine holds of them (as ``status`` shows it)."""

    try:
        ctx = Context.load(project, env={k: v for k, v in env.items() if k != "CLAUDE_PROJECT_DIR"})
    except BudgetError:
        return None  # the config check reports it
    if not ctx.config.team_url:
        return None
    try:
        from ..budgets._teamconfig import team_name
        from ..team import db
        from ..team.hook import status_lines
    except ImportError:
        return Check(
            "team",
            "problem",
            "team_url is set but the PostgreSQL client (psycopg) is not installed",
            "pip install 'claude-budget[team]' into the environment the hooks run with",
        )
    name = team_name(ctx.config)
    try:
        with db.session(ctx.config.team_url, statement_ms=3000) as conn:
            db.require_schema(conn)
            declared = len(db.budgets(conn, name))
    except BudgetError as e:
        from ..budgets._teamconfig import redact

        text = redact(str(e), ctx.config.team_url)
        return Check("team", "problem", f"team {name!r}: {text}", "claude-budget team init (tables), or fix team_url")
    held = "; ".join(line.strip() for line in ctx.ledger.consistent(lambda s: status_lines(ctx, s)) if line.strip())
    if not declared:
        return Check(
            "team",
            "warn",
            f"team {name!r}: the database answers but no budget is declared",
            "claude-budget team set overall --usd 300 --per day",
        )
    return Check("team", "ok", f"team {name!r}: {declared} budget(s) in the database" + (f"; {held}" if held else ""))


def _settings_checks(project: Path, home: Path) -> list[Check]:
    """One problem per settings file that Claude Code cannot read, else one ok line."""

    problems: list[Check] = []
    valid: list[str] = []
    for path in settings_files(project, home):
        if not path.exists():
            continue
        try:
            read_settings(path)
        except BudgetError as e:
            problems.append(Check("settings", "problem", str(e).split(" — ")[0], f"fix the JSON in {path}"))
            continue
        valid.append(str(path))
    if problems:
        return problems
    return [Check("settings", "ok", f"valid: {', '.join(valid)}" if valid else "no settings files")]


def _session_env(project: Path, home: Path, env: Mapping[str, str]) -> dict[str, str]:
    """The environment a hook gets: ours, overlaid with the settings' ``env`` (user < project < local)."""
    shared, local, user = settings_files(project, home)
    merged = {**env, "CLAUDE_PROJECT_DIR": str(project)}
    for path in (user, shared, local):
        block = (read_json(path) or {}).get("env")
        if isinstance(block, dict):
            merged.update({k: str(v) for k, v in block.items()})
    return merged


def _hook_checks(project: Path, home: Path, w: Any, env: Mapping[str, str]) -> list[Check]:
    places = [str(p) for p in (*w.project_settings, w.user_settings) if p is not None]
    if w.plugin:
        places.append(f"the plugin {PLUGIN_ID}")
    if not places:
        return [
            Check(
                "hooks",
                "problem",
                "claude-budget's hooks are not wired for this project: nothing is counted or enforced",
                "claude-budget install (this project), claude-budget install --user (every project), "
                "or the plugin: /plugin install claude-budget@claude-budget",
            )
        ]
    out = [Check("hooks", "ok", f"wired in {', '.join(places)}")]
    old_helper = sorted(event for event, commands in w.commands.items() if any(_RESIDENT_HELPER in c for c in commands))
    if old_helper:
        out.append(
            Check(
                "helper line",
                "problem",
                f"the hook lines for {', '.join(old_helper)} are claude-budget 0.4's, which hand events to a resident "
                "helper over 127.0.0.1 that another local user could impersonate (the helper is gone since 0.5)",
                "claude-budget install (and install --user) again",
            )
        )
    fixed = sorted(
        event for event, commands in w.commands.items() if any(c != hook_command(event=event) for c in commands)
    )
    if fixed:
        out.append(
            Check(
                "portable",
                "warn",
                f"the hook lines for {', '.join(fixed)} are not today's portable line (an older install, or "
                "written by hand): they may name a path that a teammate's machine does not have",
                "claude-budget install (and install --user) again",
            )
        )
    runner = find_runner(project, env)
    settings_wired = bool(w.project_settings or w.user_settings)
    if settings_wired:
        out.append(_runner_check(runner, w, env))
    if w.plugin and not (settings_wired and runner is not None):
        out.append(_plugin_environment(home))
    twice = problems(project, home)
    if twice:
        out.append(Check("double count", "problem", twice[0].split(" — ")[0], twice[0].split(" — ")[1]))
    elif w.plugin and settings_wired:
        if runner is not None:
            detail = "the plugin and the settings both wire claude-budget: the plugin stands down, nothing counts twice"
        else:
            detail = (
                "the plugin and the settings both wire claude-budget: no hook for the settings here, the plugin counts"
            )
        out.append(Check("double count", "warn", detail, "keep one: claude-budget uninstall, or disable the plugin"))
    else:
        out.append(Check("double count", "ok", "one wiring: nothing is counted twice"))
    return out


PLUGIN_DATA: Final = ("plugins", "data", "claude-budget-claude-budget")  # as Claude Code names it (2.1.197, 2.1.332)


def _plugin_environment(home: Path) -> Check:
    data = home.joinpath(*PLUGIN_DATA)
    if (data / "venv" / "bin" / "python").exists():
        return Check("plugin", "ok", f"the plugin's Python environment is set up ({data / 'venv'})")
    log = data / "bootstrap.log"
    try:
        last = (log.read_text(encoding="utf-8", errors="replace").strip().splitlines() or [""])[-1]
    except OSError:
        last = ""
    detail = "the plugin's Python environment is not set up yet: nothing is counted until it is"
    if last:
        detail += f" (last line of {log}: {last})"
    return Check(
        "plugin",
        "problem",
        detail,
        "start a new Claude Code session (it is made at session start), or pipx install claude-budget",
    )


def _runner_check(runner: Any, w: Any, env: Mapping[str, str]) -> Check:
    stale = _stale_interpreters(w)
    if stale:
        return Check(
            "runnable",
            "problem",
            f"the hooks name an interpreter that is not here: {', '.join(stale)} (an older install)",
            "claude-budget install again (today's hook lines name no interpreter)",
        )
    if runner is None:
        if w.plugin:
            return Check("runnable", "ok", "no claude-budget-hook here: the plugin's hooks count instead")
        return Check("runnable", "problem", NOT_INSTALLED.split(": install it")[0], NOT_INSTALLED.split(": ", 1)[1])
    try:
        proc = subprocess.run(
            [*runner.argv, "--version"],
            capture_output=True,
            text=True,
            timeout=30,
            env=dict(env),
            stdin=subprocess.DEVNULL,
        )
    except (OSError, subprocess.TimeoutExpired) as e:
        return Check("runnable", "problem", f"{runner.how} does not run: {e}", "claude-budget install again")
    said = proc.stdout.strip()
    if proc.returncode != 0 or not said.startswith("claude-budget "):
        why = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        fix = f"point {PYTHON_ENV} at a Python with claude-budget, or reinstall claude-budget there"
        return Check("runnable", "problem", f"{runner.how} does not run the hook: {why}", fix)
    theirs = said.split()[1]
    if theirs != __version__:
        return Check(
            "runnable",
            "warn",
            f"the hooks run {said} ({runner.how}); this command is {__version__}",
            "upgrade one so that both are the same version",
        )
    return Check("runnable", "ok", f"the hooks run {said} from {runner.how}")


def _stale_interpreters(w: Any) -> list[str]:
    out: set[str] = set()
    for commands in w.commands.values():
        for command in commands:
            if command.startswith("if ["):
                continue  # today's line
            try:
                words = shlex.split(command)
            except ValueError:
                continue
            for word in words:
                if word.startswith("/") and os.path.basename(word).startswith("python"):
                    if not os.access(word, os.X_OK):
                        out.add(word)
                    break
    return sorted(out)


#: What only claude-budget 0.4's hook lines hold: the bash client of the resident helper (removed in 0.5).
_RESIDENT_HELPER = "/dev/tcp/"


MODS_FROM: Final = (2, 1, 286)  # Claude Code loads mods by default from this release


def _mod(home: Path, w: Any, version: Check) -> Check:
    """Which path counts in this project's sessions, the mod or the hooks, and why."""

    folder = home / "skills" / MOD_FOLDER
    m = re.match(r"(\d+)\.(\d+)\.(\d+)", version.detail)
    cc = tuple(int(g) for g in m.groups()) if m else None
    fix = "claude-budget install (it writes ~/.claude/skills/claude-budget/, which Claude Code 2.1.286+ loads)"
    installed = None
    try:
        installed = all((folder / rel).read_text(encoding="utf-8") == text for rel, text in mod_files().items())
    except OSError:
        installed = None
    if cc is not None and cc < MODS_FROM:
        return Check("mod", "ok", f"Claude Code {version.detail.split()[0]} has no mods: the hooks count and enforce")
    if installed is None and not w.plugin:
        return Check(
            "mod",
            "warn",
            f"the mod is not installed ({folder}): the hooks count (kill mode may let one more request out)",
            fix,
        )
    if installed is False:
        return Check("mod", "warn", f"the mod in {folder} is not this version's ({__version__})", fix)
    where = "the enabled plugin" if installed is None else str(folder)
    return Check(
        "mod",
        "ok",
        f"the mod ({where}) counts each request in sessions of Claude Code 2.1.286+ and the hooks stand down "
        "for counting there; the hooks count where it does not load (older Claude Code, CLAUDE_CODE_SAFE_MODE, "
        "org policy allowManagedModsOnly, a failed load)",
    )


def _claude_version(env: Mapping[str, str]) -> Check:
    found = shutil.which("claude", path=env.get("PATH", os.defpath))
    if found is None:
        return Check("claude code", "warn", "no `claude` on PATH to check the version of", None)
    try:
        out = subprocess.run([found, "--version"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.TimeoutExpired) as e:
        return Check("claude code", "warn", f"{found} --version failed: {e}")
    m = re.match(r"(\d+)\.(\d+)\.(\d+)", out.strip())
    if m is None:
        return Check("claude code", "warn", f"cannot read the version of {found}: {out.strip()!r}")
    version = tuple(int(g) for g in m.groups())
    shown = ".".join(m.groups())
    if version < OLDEST_SUPPORTED:
        oldest = ".".join(map(str, OLDEST_SUPPORTED))
        return Check("claude code", "problem", f"{shown} is older than {oldest}", "update Claude Code: claude update")
    return Check("claude code", "ok", f"{shown} (supported: 2.1.197 and later)")


def _trust(project: Path, home: Path, env: Mapping[str, str]) -> Check:
    state = home / ".claude.json" if env.get("CLAUDE_CONFIG_DIR") else home.parent / ".claude.json"
    data = read_json(state) or {}
    projects = data.get("projects")
    entry = projects.get(str(project)) if isinstance(projects, dict) else None
    if isinstance(entry, dict) and entry.get("hasTrustDialogAccepted") is True:
        return Check("trust", "ok", "the workspace trust dialog was accepted here")
    return Check(
        "trust",
        "warn",
        "the workspace trust dialog has not been accepted for this folder: interactive sessions hold every hook back "
        "until it is (claude -p does not)",
        "start claude in this folder and accept the dialog",
    )


def _config(project: Path, env: Mapping[str, str]) -> tuple[Check, Path | None]:
    try:
        ctx = Context.load(project, env={k: v for k, v in env.items() if k != "CLAUDE_PROJECT_DIR"})
    except BudgetError as e:
        text = str(e)
        return Check(
            "config", "problem", text.split(" — ")[0], text.split(" — ", 1)[1] if " — " in text else None
        ), None
    notes = list(ctx.config.warnings)
    if notes:
        return Check("config", "warn", "; ".join(notes)), ctx.ledger.path
    where = ctx.config.path or project / ".claude" / "budget.toml"
    return Check("config", "ok", f"mode {ctx.config.mode}, on_error {ctx.config.on_error} ({where})"), ctx.ledger.path


def _ledger_checks(project: Path, ledger: Path, env: Mapping[str, str]) -> list[Check]:
    out: list[Check] = []
    try:
        Ledger(ledger).read()
    except BudgetError as e:
        text = str(e)
        return [Check("ledger", "problem", text.split(" — ")[0], text.split(" — ", 1)[-1])]
    out.append(Check("ledger", "ok", f"{ledger} is readable" if ledger.exists() else f"{ledger} (none yet)"))
    lock = lock_path(ledger)
    if lock.exists():
        try:
            with LedgerLock(lock, timeout=0.2):
                pass
            out.append(Check("lock", "ok", "free"))
        except LockTimeout:
            out.append(
                Check(
                    "lock",
                    "warn",
                    f"{lock} is held right now",
                    "if no Claude Code session is running, a process is stuck",
                )
            )
        except BudgetError as e:
            out.append(Check("lock", "problem", str(e), f"check the permissions of {lock.parent}"))
    out.append(_gitignored(project, ledger))
    try:
        snap = snapshot(project, env={k: v for k, v in env.items() if k != "CLAUDE_PROJECT_DIR"})
    except BudgetError:
        return out
    if snap.unpriced:
        out.append(
            Check(
                "prices",
                "warn",
                f"no price known for {', '.join(snap.unpriced)}: their tokens count, their dollars do not",
                "add the model's rates under [prices] in .claude/budget.toml, or upgrade claude-budget",
            )
        )
    else:
        out.append(Check("prices", "ok", "every model seen has a price"))
    return out


def _gitignored(project: Path, ledger: Path) -> Check:
    try:
        ledger.relative_to(project)
    except ValueError:
        return Check("git", "ok", "the ledger is outside the project")
    git = shutil.which("git")
    if git is None or not (project / ".git").exists():
        return Check("git", "ok", "not a git repository")
    proc = subprocess.run([git, "check-ignore", "-q", str(ledger)], cwd=project, capture_output=True, timeout=30)
    if proc.returncode == 0:
        return Check("git", "ok", "the ledger is ignored by git")
    return Check(
        "git",
        "warn",
        "git does not ignore the ledger: it is per machine and should not be committed",
        "claude-budget install (adds .claude/.gitignore lines), or add budget-ledger.toml* to .gitignore",
    )


def _plan(env: Mapping[str, str]) -> Check:
    """The account's plan windows (a subscription's 5-hour and 7-day limits), as the statusline keeps them."""

    problem = plan_problem(env)
    if problem is not None:
        return Check(
            "plan",
            "problem",
            problem.removeprefix("claude-budget: "),
            f"remove {plan_path(env)} (the next status line writes it anew), or fix its owner and mode",
        )
    plan = read_plan(env)
    if plan is None:
        return Check("plan", "ok", f"{NO_PLAN} (an API-key login, or no subscription session seen yet)")
    now = utcnow()
    seen = ", ".join(f"{w.label} {w.used_percentage:g}% ({w.status(now)})" for w in plan.windows())
    return Check("plan", "ok", f"{seen} — kept in {plan_path(env)}")


def _statusline(project: Path, home: Path) -> Check:
    for path in settings_files(project, home):
        line = (read_json(path) or {}).get("statusLine")
        command = line.get("command") if isinstance(line, dict) else None
        if isinstance(command, str) and "claude-budget" in command:
            return Check("statusline", "ok", f"set in {path}")
    return Check(
        "statusline",
        "warn",
        "no claude-budget status line (a plugin cannot set one; Claude Code reads it from settings only)",
        "claude-budget install --statusline",
    )
