"""``claude-budget``: the command line. ``main`` parses and dispatches; one function per subcommand.

Exit codes are decided in :func:`main` alone: 0 ok, 1 an expected error (one ``Error: …`` line on
stderr) or an internal one, 2 a usage error, 130 on Ctrl-C. The environment and the standard
streams are read here at the edge; ``_api``, ``_render`` and ``_install`` are imported lazily so
``--help`` stays quick and each subcommand loads only what it needs.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import traceback
from collections.abc import Mapping, Sequence
from enum import IntEnum
from pathlib import Path
from typing import Any, Final, Literal, NoReturn

from .._errors import BudgetError, ConfigError
from .._terminal import terminal_width, use_color

PROG: Final = "claude-budget"
DEBUG_ENV: Final = "CLAUDE_BUDGET_DEBUG"
WATCH_INTERVAL: Final = 1.0  # seconds between looks at the ledger: a response shows within about this


class Exit(IntEnum):
    OK = 0
    ERROR = 1
    USAGE = 2
    INTERRUPTED = 130  # 128 + SIGINT, as shells report it


def version() -> str:
    """The package's version (``budget_state.__version__``, the only place it is written)."""
    from .._version import __version__

    return __version__


def command_name(raw: str, /) -> str:
    """``review-pr`` or ``/review-pr`` -> ``/review-pr``, as the ledger and config name it."""
    from .._model import slash_name

    name = slash_name(raw.strip())
    if name == "/" or any(c.isspace() for c in name):
        raise argparse.ArgumentTypeError(f"not a command name: {raw!r} (expected e.g. /review-pr)")
    return name


# --- subcommands -------------------------------------------------------------------------------


def cmd_status(args: argparse.Namespace) -> int:
    from .. import _api

    snap = _api.snapshot(project=_project(args))
    only: str | None = args.command
    team = _team_view(args, json_=args.json_)
    if args.json_:
        if only is not None:
            snap = snap._replace(commands={k: v for k, v in snap.commands.items() if k == only})
        print(json.dumps({**snap.to_json(), **({"team": team} if team is not None else {})}, indent=2))
        return Exit.OK
    from .._render import render_status

    env = os.environ
    text = render_status(
        snap,
        width=terminal_width(stream=sys.stdout, env=env),
        color=use_color(args.color, stream=sys.stdout, env=env),
        only=only,
        now=_now(),
    )
    sys.stdout.write(text if text.endswith("\n") else text + "\n")
    if team is not None:
        sys.stdout.write("\n" + "\n".join(team) + "\n")
    return Exit.OK


def cmd_suggest(args: argparse.Namespace) -> int:
    from .._api import Context
    from ..ledger._ledger import utcnow
    from ..ledger._runlog import read_runs
    from . import _suggest

    ctx = Context.load(_project(args))
    logged = read_runs(ctx.ledger.path)
    quarters, runs = ctx.ledger.consistent(lambda state: _suggest.gather(state, logged, counted=ctx.config.counted))
    result = _suggest.suggest(
        quarters=quarters, runs=runs, now=utcnow(), zone=ctx.config.zone(), skipped=logged.skipped
    )
    if args.json_:
        print(json.dumps(result.to_json(), indent=2, ensure_ascii=False))
    else:
        sys.stdout.write(_suggest.to_toml(result))
    return Exit.OK


def _team_view(args: argparse.Namespace, *, json_: bool) -> Any:
    """The team part of status (what this machine holds, as last heard), or None without a team."""
    from .._paths import find_project
    from ..budgets._config import load_config

    project = _project(args)
    if not load_config(project or find_project(os.environ), os.environ).team_url:
        return None
    from .._api import Context
    from ..team.hook import status_json, status_lines

    ctx = Context.load(project)

    return ctx.ledger.consistent(lambda state: status_json(ctx, state) if json_ else status_lines(ctx, state))


def _now() -> Any:
    from ..ledger._ledger import utcnow

    return utcnow()


def cmd_reset(args: argparse.Namespace) -> int:
    from .. import _api

    command: str | None = None if args.all else args.command
    names = _api.reset(command, project=_project(args))
    if not names:
        print(f"Nothing to reset: no usage is recorded{' yet' if command is None else ' for ' + command}.")
    for name in names:
        print(f"Reset {name}.")
    return Exit.OK


def cmd_install(args: argparse.Namespace) -> int:
    from .._install import install

    python = sys.executable
    if not python:
        raise ConfigError(
            "cannot tell which Python is running (sys.executable is empty) — run install with a python on PATH"
        )
    target, where = _scope_target(args)
    lines = install(target, python=python, scope="user" if args.user else "project", dry_run=args.dry_run)
    for line in lines:
        print(line)
    if args.statusline:
        from .._install import install_statusline
        from .._paths import claude_home

        home = claude_home(os.environ)
        scope: Literal["project", "user"] = "user" if args.user else "project"
        for line in install_statusline(target, home=home, scope=scope, dry_run=args.dry_run):
            print(line)
    if args.dry_run:
        print("Dry run: nothing was written.")
        return Exit.OK
    _compile_package()
    print(f"Done: claude-budget's hooks are wired {where}. Try /budget; `claude-budget doctor` checks the setup.")
    return Exit.OK


def cmd_statusline(args: argparse.Namespace) -> int:
    from ..statusline import main as statusline

    return statusline(["--color", args.color])


def cmd_plan(args: argparse.Namespace) -> int:
    """``plan``: the account's windows; ``plan observe``: record what Claude Code passed (stdin JSON)."""
    from ..budgets._plan import NO_PLAN, PlanStateError, plan_path, plan_problem, read_plan
    from ..ledger._ledger import utcnow
    from ..mod._observe import observe_plan

    now = utcnow()
    try:
        if args.action == "observe":
            raw = sys.stdin.read()
            try:
                data = json.loads(raw) if raw.strip() else {}
            except ValueError:
                data = None
            if not isinstance(data, dict):
                print(
                    "Error: plan observe: stdin is not a JSON object — send the statusLine input shape", file=sys.stderr
                )
                return Exit.ERROR
            workspace = data.get("workspace")
            project = (workspace.get("project_dir") if isinstance(workspace, dict) else None) or data.get("cwd")
            plan = observe_plan(
                data.get("rate_limits"),
                project=project if isinstance(project, str) and project else None,
                session_id=data.get("session_id") if isinstance(data.get("session_id"), str) else None,
                transcript_path=data.get("transcript_path") if isinstance(data.get("transcript_path"), str) else None,
                now=now,
                source=args.source,
            )
        else:
            problem = plan_problem(os.environ)
            if problem is not None:
                raise PlanStateError(problem.removeprefix("claude-budget: plan state ignored: "))
            plan = read_plan(os.environ)
    except PlanStateError as e:
        print(f"Error: {e}", file=sys.stderr)
        return Exit.ERROR
    if args.json_:
        print(json.dumps({"version": 1, "plan": plan.as_json(now) if plan is not None else None}, indent=2))
    elif args.action != "observe":
        if plan is None:
            print(f"{NO_PLAN} (an API-key login, or no subscription session seen yet)")
        for w in plan.windows() if plan is not None else ():
            print(f"{w.label}: {w.used_percentage:g}% ({w.status(now)}), resets {w.resets_at.isoformat()}")
        print(f"Kept in: {plan_path(os.environ)}")
    return Exit.OK


def cmd_watch(args: argparse.Namespace) -> int:
    from .._api import Context
    from . import _watch

    ctx = Context.load(_project(args))
    env = os.environ
    try:
        if sys.stdout.isatty():
            color = use_color(args.color, stream=sys.stdout, env=env)
            _watch.watch_live(ctx, interval=args.interval, color=color)
        else:
            width = terminal_width(stream=sys.stdout, env=env)
            _watch.watch_plain(ctx, interval=args.interval, out=sys.stdout, width=width)
    except KeyboardInterrupt:  # how one stops watching: a normal end, not an interrupted task
        pass
    return Exit.OK


def _interval(raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        value = 0.0
    if not 0.1 <= value <= 3600:
        raise argparse.ArgumentTypeError(
            f"not an interval in seconds: {raw!r} (expected e.g. 1 or 0.5, from 0.1 to 3600)"
        )
    return value


def cmd_uninstall(args: argparse.Namespace) -> int:
    from ._uninstall import uninstall

    if args.user and args.purge:
        raise ConfigError("--purge removes a project's ledger: run it in the project, without --user")
    target, where = _scope_target(args)
    for line in uninstall(target, scope="user" if args.user else "project", dry_run=args.dry_run, purge=args.purge):
        print(line)
    if args.dry_run:
        print("Dry run: nothing was removed.")
    elif not args.purge and not args.user:
        print(f"Done: claude-budget is no longer wired {where}; the ledger is kept (--purge deletes it).")
    else:
        print(f"Done: claude-budget is no longer wired {where}.")
    return Exit.OK


def cmd_doctor(args: argparse.Namespace) -> int:
    from ._doctor import run_doctor

    return run_doctor(args)


def _scope_target(args: argparse.Namespace) -> tuple[Path, str]:
    """(the folder to change, how to say where) for install/uninstall's DIR and --user."""
    if args.user:
        from .._paths import claude_home

        if args.dir is not None:
            raise ConfigError("give either DIR or --user, not both (--user wires every project on this machine)")
        home = claude_home(os.environ)
        return home, f"for every project, in {home / 'settings.json'}"
    target = Path(args.dir or ".")
    return target, f"in {target.resolve()}"


def _compile_package() -> None:
    """Write the package's bytecode now, as pip does for a regular install.

    The hook is a new process on every prompt and tool call; from an editable install, under
    PYTHONDONTWRITEBYTECODE, each would compile the package from source again (~10 ms).
    Best effort: a read-only install is already compiled or cannot be helped.
    """
    import compileall

    try:
        compileall.compile_dir(str(Path(__file__).parents[1]), quiet=2)
    except OSError:
        pass


#: ``path --json``'s shape (docs/json.md): 1 added ``version``, ``parts`` and ``runs``
PATH_JSON_VERSION = 1


def cmd_path(args: argparse.Namespace) -> int:
    from .. import _paths

    env = os.environ
    project = _project(args) or _paths.find_project(env)
    config = _paths.config_path(project)
    # CLAUDE_BUDGET_STATE wins over the config file, so only read the file when it can matter.
    configured = None if env.get("CLAUDE_BUDGET_STATE") else _configured_ledger(config)
    ledger = _paths.ledger_path(project, env, configured)
    if args.json_:
        from ..ledger._ledger import parts_folder
        from ..ledger._runlog import runlog_path

        paths = {
            "project": project,
            "config": config,
            "ledger": ledger,
            "parts": parts_folder(ledger),
            "runs": runlog_path(ledger),
            "lock": _paths.lock_path(ledger),
        }
        print(json.dumps({"version": PATH_JSON_VERSION, **{k: str(v) for k, v in paths.items()}}, indent=2))
    else:
        print(ledger)
    return Exit.OK


def _project(args: argparse.Namespace) -> Path | None:
    if args.project is None:
        return None
    project = Path(os.path.abspath(args.project))
    if not project.is_dir():
        raise ConfigError(
            f"project directory {args.project} (from --project) does not exist — pass the project root",
            path=project,
        )
    return project


def _configured_ledger(config: Path) -> str | None:
    """The ``ledger`` key of ``.claude/budget.toml``, if the file sets one."""
    from .._toml import loads

    try:
        data: Mapping[str, Any] = loads(config.read_bytes().decode("utf-8", "replace"))
    except FileNotFoundError:
        return None
    except OSError as e:
        raise ConfigError(f"cannot read {config}: {e.strerror or e}", path=config) from None
    except ValueError as e:
        raise ConfigError(f"{config} is not valid TOML: {e} — fix it or delete the file", path=config) from None
    ledger = data.get("ledger")
    if ledger is not None and not (isinstance(ledger, str) and ledger):
        raise ConfigError(
            f'invalid ledger in {config}: expected a path string, e.g. ledger = ".claude/budget-ledger.toml"',
            path=config,
        )
    return ledger


# --- parsing and the one error handler ---------------------------------------------------------


class _VersionAction(argparse.Action):
    """``--version``, printed only when asked for."""

    def __init__(self, option_strings: Sequence[str], dest: str = argparse.SUPPRESS, **kwargs: Any) -> None:
        super().__init__(option_strings, dest=dest, default=argparse.SUPPRESS, nargs=0, **kwargs)

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: object,
        option_string: str | None = None,
    ) -> NoReturn:
        print(f"{PROG} {version()}")
        parser.exit()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description="Per-slash-command token budgets for Claude Code.")
    parser.add_argument("--version", action=_VersionAction, help="print the version and exit")
    sub = parser.add_subparsers(dest="subcommand", metavar="SUBCOMMAND", required=True)

    def project_option(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--project",
            metavar="DIR",
            type=Path,
            help="the project root (default: $CLAUDE_PROJECT_DIR, else the nearest folder with a .claude/)",
        )

    p = sub.add_parser(
        "status", help="show every budget, or one command's", description="Show token budgets and what has been spent."
    )
    p.add_argument(
        "command", nargs="?", metavar="COMMAND", type=command_name, help="only this command, e.g. /review-pr"
    )
    p.add_argument("--json", dest="json_", action="store_true", help="print the versioned JSON shape instead")
    color_option(p)
    project_option(p)
    p.set_defaults(func=cmd_status)

    p = sub.add_parser(
        "suggest",
        help="propose budgets from history, as a budget.toml snippet",
        description="Propose hourly, daily and per-command budgets from what the ledger and the run log hold. "
        "Prints a budget.toml snippet with the reasoning beside each value; changes nothing.",
    )
    p.add_argument("--json", dest="json_", action="store_true", help="print the versioned JSON shape instead")
    project_option(p)
    p.set_defaults(func=cmd_suggest)

    p = sub.add_parser(
        "reset", help="set one command's usage, or all usage, back to 0", description="Forget recorded usage."
    )
    p.add_argument(
        "command", nargs="?", metavar="COMMAND", type=command_name, help="the command to reset, e.g. /review-pr"
    )
    p.add_argument("--all", action="store_true", help="reset every command and the overall budget")
    project_option(p)
    p.set_defaults(func=cmd_reset, check=_check_reset, subparser=p)

    p = sub.add_parser(
        "install",
        help="wire the hook and /budget into a project",
        description="Add the claude-budget hook, the /budget command and a config template to DIR/.claude/.",
    )
    _scope_options(p)
    p.add_argument(
        "--statusline",
        action="store_true",
        help="also make claude-budget the Claude Code statusLine (never replaces one you have)",
    )
    p.set_defaults(func=cmd_install)

    p = sub.add_parser(
        "statusline",
        help="print one status line for Claude Code's statusLine (reads its JSON on stdin)",
        description="Print the session's command, its bar, the tightest limit, dollars and time left, in one "
        "line. Claude Code runs it with the session's JSON on stdin; it always exits 0.",
    )
    color_option(p, "colour the bar (default: auto, on unless NO_COLOR: Claude Code shows colours)")
    p.set_defaults(func=cmd_statusline)

    p = sub.add_parser(
        "watch",
        help="show the status, redrawn as it changes",
        description="Redraw the status in place as responses land in the ledger (Ctrl-C stops); "
        "when stdout is not a terminal, print one status block per interval.",
    )
    p.add_argument(
        "--interval",
        type=_interval,
        default=WATCH_INTERVAL,
        metavar="S",
        help="seconds between looks at the ledger (default: 1)",
    )
    color_option(p)
    project_option(p)
    p.set_defaults(func=cmd_watch)

    p = sub.add_parser(
        "uninstall",
        help="remove exactly what install added",
        description="Remove claude-budget's hooks, /budget, .gitignore lines and untouched config; keep the ledger.",
    )
    _scope_options(p)
    p.add_argument("--purge", action="store_true", help="also delete the ledger, its lock, cache and hook log")
    p.set_defaults(func=cmd_uninstall)

    p = sub.add_parser(
        "doctor",
        help="check that the hooks run and count here",
        description="Check this project's setup: each line is ok, a warning or a problem with its fix.",
    )
    p.add_argument("--json", dest="json_", action="store_true", help="print the versioned JSON shape instead")
    p.add_argument("--log", type=int, default=10, metavar="N", help="show the last N lines of the hook log (10)")
    project_option(p)
    p.set_defaults(func=cmd_doctor)

    p = sub.add_parser(
        "plan",
        help="the plan's 5-hour and 7-day windows (subscriptions)",
        description="Show the account's 5-hour and 7-day windows as Claude Code last reported them; "
        "'plan observe' records a statusLine-shaped JSON object from stdin (for a mod or another path).",
    )
    p.add_argument("action", nargs="?", choices=("show", "observe"), default="show")
    p.add_argument("--json", dest="json_", action="store_true", help="print {version: 1, plan: …}")
    p.add_argument("--source", default="mod", help="observe: who saw the windows (statusline, mod)")
    p.set_defaults(func=cmd_plan)

    p = sub.add_parser("path", help="print where the ledger is", description="Print the ledger path this project uses.")
    p.add_argument(
        "--json", dest="json_", action="store_true", help="print the project, config, ledger and lock paths as JSON"
    )
    project_option(p)
    p.set_defaults(func=cmd_path)

    from ..orchestrator._command import add_parser as add_orchestrate

    add_orchestrate(sub)

    from ..team.cli import add_parser as add_team  # no database client is imported until a team command runs

    add_team(sub, project_option)
    return parser


def color_option(
    p: argparse.ArgumentParser, help: str = "colour the bars (default: auto, which honours NO_COLOR and FORCE_COLOR)"
) -> None:
    p.add_argument("--color", choices=("auto", "always", "never"), default="auto", help=help)


def _scope_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("dir", nargs="?", metavar="DIR", help="the project root (default: the current directory)")
    p.add_argument("--user", action="store_true", help="every project on this machine, through ~/.claude/settings.json")
    p.add_argument("--dry-run", action="store_true", help="say what would change and write nothing")


def _check_reset(args: argparse.Namespace) -> None:
    if (args.command is None) == (not args.all):
        args.subparser.error("give exactly one of COMMAND or --all")


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``claude-budget``; return the exit code."""
    try:
        parser = build_parser()
        try:
            args = parser.parse_args(argv)
            check = getattr(args, "check", None)
            if check is not None:
                check(args)
        except SystemExit as e:  # argparse: 0 after --help/--version, 2 on a usage error
            return Exit.USAGE if isinstance(e.code, str) else int(e.code or 0)
        return int(args.func(args))
    except BudgetError as e:
        print(f"Error: {e}", file=sys.stderr)
        return Exit.ERROR
    except KeyboardInterrupt:
        return Exit.INTERRUPTED
    except BrokenPipeError:  # e.g. `claude-budget status | head -1`; say nothing more
        _silence_stdout()
        return Exit.ERROR
    except Exception as e:  # noqa: BLE001 (one place maps unexpected errors to an exit code, no traceback)
        if os.environ.get(DEBUG_ENV) == "1":
            traceback.print_exc()
        print(f"Error: internal error: {e!r}", file=sys.stderr)
        print(
            f"This is a bug in {PROG} {version()}; please report it with the output of "
            f"`{DEBUG_ENV}=1 {PROG} {shlex.join(sys.argv[1:] if argv is None else argv)}`.",
            file=sys.stderr,
        )
        return Exit.ERROR


def _silence_stdout() -> None:
    # Python flushes stdout again at exit and would print a second BrokenPipeError; point it at
    # /dev/null first (https://docs.python.org/3/library/signal.html#note-on-sigpipe).
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (AttributeError, OSError, ValueError):
        pass
