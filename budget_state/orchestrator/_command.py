"""``claude-budget orchestrate``: its arguments (spelled as the original plans spelled them) and entry point."""

from __future__ import annotations

import argparse
import sys
from typing import Any

HELP = "run a fleet of claude -p instances under one set of budgets"
DESCRIPTION = """\
Run `claude -p "/command args"` instances in the project, at most --max-concurrent at a time, in
priority order, under overall, hourly, per-command and dollar budgets. The hooks in each instance
count and enforce with the same ledger as interactive sessions. Exit: 0 all completed, 3 some were
skipped or stopped by a budget, 1 an instance failed, 2 bad usage, 130 interrupted."""


def add_parser(sub: Any) -> None:
    """Register the subcommand on ``claude-budget``'s subparsers."""
    p: argparse.ArgumentParser = sub.add_parser(
        "orchestrate",
        help=HELP,
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    # One "Error: …" line and exit 2 for every malformed flag, unknown ones included (argparse would
    # leave those to the top-level parser, which prints its usage first).
    p.error = _error  # type: ignore[method-assign]
    known = p.parse_known_args

    def strict(args: Any = None, namespace: Any = None) -> Any:
        parsed, extras = known(args, namespace)
        if extras:
            _error(f"unrecognized arguments: {' '.join(extras)}")
        return parsed, extras

    p.parse_known_args = strict  # type: ignore[method-assign]
    a = p.add_argument
    a("--config", metavar="FILE", help="JSON (or .yaml/.toml) with budget_config and instances")
    a("--instance", action="append", metavar='"/cmd args"', help="an instance to run (repeatable)")
    a("--overall-token-budget", metavar="N", help="tokens for the whole orchestration, e.g. 200k")
    a("--overall-cost-budget", metavar="USD", help="dollars for the whole orchestration, e.g. 5.00")
    a("--hourly-token-budget", metavar="N", help="tokens per --budget-period-minutes (rolling)")
    a("--hourly-cost-budget", metavar="USD", help="dollars per --budget-period-minutes (rolling)")
    a("--budget-period-minutes", metavar="M", help="the period of the hourly budgets (default 60)")
    a("--command-budget", action="append", metavar='"/cmd=N"', help="tokens for one command (repeatable)")
    a("--command-cost-budget", action="append", metavar='"/cmd=USD"', help="dollars for one command (repeatable)")
    a(
        "--budget-enforcement-mode",
        metavar="MODE",
        help="warn, block (stop-new) or kill (kill-running); default: the project's mode",
    )
    a("--budget-dashboard-mode", metavar="MODE", help="live, report (default) or off")
    a("--budget-report-interval", metavar="SECONDS", help="seconds between reports (default 30)")
    a(
        "--enable-budget-visuals",
        dest="visuals",
        action="store_const",
        const=True,
        default=None,
        help="the report as a box with bars (the default)",
    )
    a(
        "--disable-budget-visuals",
        "--no-budget-visuals",
        dest="visuals",
        action="store_const",
        const=False,
        help="the report as plain lines, no box or bars",
    )
    a(
        "--budget-parameter-type",
        metavar="TYPE",
        help="which of the budgets given apply: tokens, cost, or mixed (both; the default)",
    )
    a("--persistent-budgets", action="store_true", help="apply the budgets to the ledger's totals, not this run's")
    a("--budget-reset-on-restart", action="store_true", help="with --persistent-budgets: reset those totals first")
    a("--max-concurrent", metavar="N", help="instances running at once (default 4)")
    a(
        "--quota-guard",
        metavar="PERCENT",
        help="start no instance while the plan's 5-hour window is at or above PERCENT (subscriptions)",
    )
    a(
        "--wait-for-reset",
        action="store_true",
        help="with --quota-guard: wait for the window's reset instead of skipping",
    )
    a("--project", metavar="DIR", help="the project to run in (default: found from the current folder)")
    a("--claude", metavar="PATH", help="the Claude Code executable (default: claude on PATH)")
    a("--logs", metavar="DIR", help="keep each instance's output (JSON result, stderr) in DIR")
    a("--json-out", metavar="FILE", help="write the results as JSON to FILE")
    a(
        "--dry-run",
        action="store_true",
        help="print the plan (start order, each instance's budgets and where they come from, the per-run "
        "estimate, what would be skipped and why) and start nothing",
    )
    a(
        "--list-commands",
        action="store_true",
        help="list every command of the project and the user: budgets, windows, runs, p50/p90 per run",
    )
    a("--json", action="store_true", help="with --dry-run or --list-commands: print JSON")
    a("--temporary-hooks", action="store_true", help="run instances with the hooks via claude --settings, uninstalled")
    a("extra", nargs=argparse.REMAINDER, metavar="-- CLAUDE_ARGS", help="extra arguments for every claude -p")
    p.set_defaults(func=cmd_orchestrate)


def _error(message: str) -> Any:
    print(f"Error: orchestrate: {message} (see claude-budget orchestrate --help)", file=sys.stderr)
    raise SystemExit(2)


def cmd_orchestrate(args: argparse.Namespace) -> int:
    from .._errors import BudgetError
    from ._options import UsageError, build
    from ._run import run

    usage = None
    if args.json and not (args.dry_run or args.list_commands):
        usage = "--json goes with --dry-run or --list-commands (the results of a run: --json-out FILE)"
    if args.dry_run and args.list_commands:
        usage = "--dry-run and --list-commands are two views — give one of them"
    if usage is not None:
        print(f"Error: orchestrate: {usage}", file=sys.stderr)
        return 2
    try:
        options = build(args, planning=args.dry_run or args.list_commands)
    except UsageError as e:
        print(f"Error: {e}", file=sys.stderr)
        return 2
    if args.list_commands or args.dry_run:
        from ._plan import list_commands, plan

        try:
            text = list_commands(options, json_=args.json) if args.list_commands else plan(options, json_=args.json)
        except BudgetError as e:
            print(f"Error: {e}", file=sys.stderr)
            return 1
        sys.stdout.write(text)
        return 0
    return run(options)
