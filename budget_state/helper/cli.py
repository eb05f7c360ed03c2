"""``claude-budget helper [status|stop] [--json]``: the resident helpers of this user, and stopping them.

Stopping one is always safe: the next hook event runs the hook itself and starts a new helper.
"""

from __future__ import annotations

import argparse
import json
import os
from typing import Any

from . import SWITCH_ENV, alive, endpoints, helper_dir, stop

#: ``helper --json``'s shape; a new field keeps the number, a changed or removed one bumps it.
JSON_VERSION = 1


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "helper",
        help="show or stop the resident helpers that answer hook events",
        description=(
            "The hooks hand their events to a resident helper (one per user and interpreter) that answers in a few"
            " ms instead of starting Python for each event. It starts itself on the first event and leaves after"
            " 30 idle minutes; set CLAUDE_BUDGET_HELPER=off to run every hook on its own."
        ),
    )
    p.add_argument("action", nargs="?", choices=("status", "stop"), default="status", help="status (default) or stop")
    p.add_argument("--json", dest="json_", action="store_true", help="print the versioned JSON shape instead")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    env = os.environ
    found = list(endpoints(env))
    if args.action == "stop":
        stopped = [key for key, _ in found if stop(key, env)]
        if args.json_:
            print(json.dumps({"version": JSON_VERSION, "stopped": stopped}, indent=2))
        else:
            print(f"Stopped {len(stopped)} helper{'s' if len(stopped) != 1 else ''}." if stopped else "No helper ran.")
        return 0
    helpers = [
        {
            "key": key,
            "pid": end.pid if end else None,
            "port": end.port if end else None,
            "running": bool(end and alive(end.pid)),
        }
        for key, end in found
    ]
    off = env.get(SWITCH_ENV, "").lower() == "off"
    if args.json_:
        where = helper_dir(env)
        print(
            json.dumps(
                {
                    "version": JSON_VERSION,
                    "enabled": not off,
                    "folder": str(where) if where else None,
                    "helpers": helpers,
                },
                indent=2,
            )
        )
        return 0
    if off:
        print(f"{SWITCH_ENV}=off: hooks run on their own, no helper is used.")
    if not helpers:
        print("No helper is running (the next hook event starts one).")
    for h in helpers:
        state = f"running, pid {h['pid']}, 127.0.0.1:{h['port']}" if h["running"] else "not running (a stale endpoint)"
        print(f"{h['key']}: {state}")
    return 0
