"""The orchestration: register its scope, start instances in order, watch the ledger, stop, report.

The hooks inside each instance do the counting and most of the enforcing (same ledger, same
numbers); the loop here holds back instances whose budgets are spent (stop-new), stops running
ones that make no tool call once a budget they draw on is over (kill-running), counts what an
ended instance's own hooks could not (a killed process runs no SessionEnd), and reports.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import time
import uuid
from collections.abc import Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from .._api import Context
from .._errors import BudgetError
from .._install import HOOK_EVENTS, HOOK_TIMEOUT
from .._model import Usage
from .._paths import claude_home
from .._wiring import PYTHON_ENV, hook_command, is_ours
from ..budgets._budgets import when
from ..budgets._config import pricer
from ..budgets._plan import read_plan
from ..ledger import _records as records
from ..ledger._ledger import utcnow
from ..ledger._runs import end_session, reset, settle
from . import _scope
from ._dashboard import Reporter, isatty
from ._options import Instance, Options
from ._process import Interrupt, Process
from ._results import MAX_BUDGET, Result, exit_code, outcome, parse_output, reported, summary, to_json
from ._schedule import Slot, may_start, must_stop, order, project_statuses

if TYPE_CHECKING:
    from ..budgets._budgets import Decision
    from ..ledger._state import LedgerState

TICK = 0.02  # seconds between two looks at the processes (a slot is given out again this soon)
PLAN_EVERY = 1.0  # seconds between two reads of the plan's windows while --quota-guard holds the queue
LEDGER_EVERY = 0.25  # seconds between two reads of the ledger for kill mode
HOOK_GRACE = 2.0  # kill mode: the instance's own hook stops it at its next tool call; after this, we do
INTERRUPTED = 130


def hooks_installed(project: Path, /, *, env: Mapping[str, str]) -> bool:
    """Whether settings Claude Code reads for the project (its own, or the user's) run the hook on prompts."""

    places = [project / ".claude" / "settings.json", project / ".claude" / "settings.local.json"]
    for path in [*places, claude_home(env) / "settings.json"]:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        groups = (data.get("hooks") or {}).get("UserPromptSubmit") if isinstance(data, dict) else None
        if any(is_ours(h) for g in groups or [] if isinstance(g, dict) for h in g.get("hooks") or []):
            return True
    return False


def temporary_settings(folder: Path, /) -> Path:
    """A settings layer with the hooks (``claude --settings FILE``), for a project without them installed."""

    hooks: dict[str, Any] = {}
    for event in HOOK_EVENTS:
        group: dict[str, Any] = {"matcher": "*"} if event == "PreToolUse" else {}
        group["hooks"] = [{"type": "command", "command": hook_command(event=event), "timeout": HOOK_TIMEOUT}]
        hooks[event] = [group]
    path = folder / "claude-budget-hooks.json"
    # the portable lines find this interpreter through the pointer, as a per-machine install's would
    layer = {"env": {PYTHON_ENV: sys.executable}, "hooks": hooks}
    path.write_text(json.dumps(layer, indent=2), encoding="utf-8")
    return path


class Orchestration:
    def __init__(self, options: Options, *, env: Mapping[str, str], out: TextIO, err: TextIO) -> None:
        self.options = options
        self.env = env
        self.out = out
        self.err = err
        self.ctx = Context.load(options.project, env=env)
        self.project = self.ctx.project
        self.mode = options.mode or self.ctx.config.mode
        self.id = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S-") + uuid.uuid4().hex[:6]
        self.slots = [Slot(i, inst, str(uuid.uuid4())) for i, inst in enumerate(options.instances)]
        self.results = [
            Result(s.instance.command, s.instance.args, s.instance.priority, s.session, name=s.instance.name)
            for s in self.slots
        ]
        self.running: dict[int, Process] = {}
        self.why: dict[int, str] = {}
        self.caps: dict[int, tuple[int, str]] = {}  # --max-budget-usd given (micro-dollars) and the budget it is
        self.started_at = time.monotonic()
        self.start_order: list[int] = []
        self._plan_read: tuple[float, Any] = (float("-inf"), None)  # (when, the plan's windows) for --quota-guard

    # --- setup -----------------------------------------------------------------------------------

    def check_claude(self) -> None:
        claude = self.options.claude
        if shutil.which(claude, path=self.env.get("PATH")) is None:
            raise BudgetError(f"Claude Code not found: {claude} — install it, or pass --claude PATH")

    def check_hooks(self) -> None:
        if self.options.temporary_hooks or hooks_installed(self.project, env=self.env):
            return
        raise BudgetError(
            f"claude-budget's hooks are not installed in {self.project / '.claude' / 'settings.json'}, so the "
            "instances would run unmetered — run: claude-budget install "
            f"{self.project}, or pass --temporary-hooks to run them with the hooks for this orchestration only"
        )

    def register(self) -> None:
        o = self.options
        now = utcnow()
        with self.ctx.ledger.transaction() as state:
            if o.persistent and o.reset:
                # The scopes the budgets apply to: overall (its totals and its windows) and the fleet's commands.
                reset(state, "overall", now=now)
                for command in sorted({i.command for i in o.instances}):
                    reset(state, command, now=now)
            _scope.register(
                state, self.id, mode=self.mode, persistent=o.persistent, period=o.period, limits=o.limits(), now=now
            )
            for slot in self.slots:
                inst = slot.instance
                _scope.add_instance(
                    state,
                    self.id,
                    slot.session,
                    command=inst.command,
                    limit=inst.tokens if inst.budget_enabled else None,
                    usd_limit=inst.usd_micros if inst.budget_enabled else None,
                    exempt=not inst.budget_enabled,
                )

    def instance_env(self) -> dict[str, str]:
        env = dict(self.env)
        env[_scope.ENV] = self.id
        if self.options.mode is not None:
            env["CLAUDE_BUDGET_MODE"] = self.options.mode  # the hooks decide in the orchestration's mode
        if self.options.project is not None:
            env["CLAUDE_PROJECT_DIR"] = str(self.project)
        return env

    # --- the loop --------------------------------------------------------------------------------

    def run(self) -> int:
        o = self.options
        self.check_claude()
        self.check_hooks()
        for w in o.warnings:
            print(f"warning: {w}", file=self.err)
        self.register()
        logs = o.logs
        tmp = None
        if logs is None:
            tmp = tempfile.TemporaryDirectory(prefix="claude-budget-orchestrate-")
            logs = Path(tmp.name)
        logs.mkdir(parents=True, exist_ok=True)
        settings = temporary_settings(logs) if o.temporary_hooks else None
        env = self.instance_env()
        queue = [self.slots[i] for i in order(o.instances)]
        reporter = Reporter(self, live=o.dashboard == "live" and isatty(self.out))
        interrupted = False
        last_read = 0.0
        try:
            with Interrupt() as interrupt:
                while queue or self.running:
                    now = time.monotonic()
                    if interrupt.count and not interrupted:
                        interrupted = True
                        for slot in queue:
                            self._set(slot.position, state="skipped", reason="not started: interrupted (Ctrl-C)")
                        queue = []
                        for i, proc in self.running.items():
                            self.why.setdefault(i, "stopped: interrupted (Ctrl-C)")
                            proc.stop(now=now)
                    if interrupt.count > 1:  # a second Ctrl-C: no more waiting
                        for proc in self.running.values():
                            proc.hurry(now)
                    ended: list[tuple[int, Process]] = []
                    for i, proc in list(self.running.items()):
                        proc.advance(now)
                        if proc.poll() is not None:
                            del self.running[i]
                            ended.append((i, proc))
                    # One that ended by itself ran its SessionEnd hook: the ledger has what it spent, so
                    # its slot is given out first and its last settle comes after. One we stopped may
                    # not have: it is settled before anything new is decided.
                    for i, proc in [e for e in ended if e[1].signals]:
                        self._finish(self.slots[i], proc)
                    if self.mode == "kill" and self.running and now - last_read >= LEDGER_EVERY:
                        last_read = now
                        self._watch(now, utcnow())
                    held = self._quota_held(queue, utcnow()) if queue and not interrupted else False
                    while queue and not held and len(self.running) < o.max_concurrent and not interrupted:
                        slot = queue.pop(0)
                        self._start(slot, env, logs, settings, utcnow())
                    for i, proc in [e for e in ended if not e[1].signals]:
                        self._finish(self.slots[i], proc)
                    reporter.tick(now)
                    if queue or self.running:
                        time.sleep(TICK)
        finally:
            for i, proc in list(self.running.items()):  # an error above: leave nothing running
                proc.stop(now=time.monotonic())
                while proc.poll() is None:
                    proc.advance(time.monotonic())
                    time.sleep(TICK)
                self._finish(self.slots[i], proc)
            try:
                if sys.exc_info()[0] is None:
                    reporter.final()  # before _close(), which drops the per-instance detail it shows
            finally:
                self._close()
                if tmp is not None:
                    tmp.cleanup()
        code = INTERRUPTED if interrupted else exit_code(self.results)
        self.out.write("\n" + summary(self.results, self.ctx.config.counted))
        if o.json_out is not None:
            data = to_json(
                self.results,
                orchestration=self.id,
                counted=self.ctx.config.counted,
                code=code,
                ledger=str(self.ctx.ledger.path),
                mode=o.mode_label or self.mode,
            )
            o.json_out.parent.mkdir(parents=True, exist_ok=True)
            o.json_out.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
        self.out.flush()
        return code

    def _set(self, index: int, **changes: Any) -> None:
        self.results[index] = self.results[index]._replace(**changes)

    def _start(self, slot: Slot, env: Mapping[str, str], logs: Path, settings: Path | None, now: datetime) -> None:
        def decide(state: LedgerState) -> tuple[Decision, tuple[int, str] | None]:
            inflight = self._inflight(state)
            verdict = may_start(self.ctx, state, self.id, slot, mode=self.mode, now=now, inflight=inflight)
            return verdict, dollar_cap(self.ctx, state, self.id, slot, now=now) if self.mode != "warn" else None

        verdict, cap = self.ctx.ledger.consistent(decide)
        if not verdict.allowed:
            self._set(slot.position, state="skipped", reason=verdict.reason)
            return
        o = self.options
        argv = [o.claude, "-p", slot.instance.prompt, "--output-format", "json", "--session-id", slot.session]
        if cap is not None:  # Claude Code's own cap: the backstop where our hooks do not run
            self.caps[slot.position] = cap
            argv += ["--max-budget-usd", usd_arg(cap[0])]
        if settings is not None:
            argv += ["--settings", str(settings)]
        argv += list(o.extra)
        stem = f"{slot.position + 1:02d}-{slot.instance.command.strip('/').replace(':', '_').replace('/', '_')}"
        try:
            proc = Process(
                argv, cwd=self.project, env=env, stdout=logs / f"{stem}.json", stderr=logs / f"{stem}.stderr"
            )
        except OSError as e:
            self._set(
                slot.position,
                state="failed",
                reason=f"could not start {o.claude}: {e.strerror or e} — pass --claude PATH",
            )
            return
        self.running[slot.position] = proc
        self.start_order.append(slot.position)
        log = str(logs / f"{stem}.json") if o.logs is not None else None
        self._set(
            slot.position,
            state="running",
            log=log,
            started=proc.started - self.started_at,
            started_at=iso(now),
            max_budget_usd=cap[0] / 1_000_000 if cap is not None else None,
        )

    def _quota_held(self, queue: list[Slot], now: datetime) -> bool:
        """``--quota-guard``: whether the plan's 5-hour window holds the queue back now.

        Held, with ``--wait-for-reset`` the queued instances wait (state ``waiting``) and start after
        the reset (a window past its reset counts as 0 %); without it they are skipped, with the reason.
        No plan data (an API-key login, no observation yet) holds nothing back.
        """
        guard = self.options.quota_guard
        if guard is None:
            return False

        tick = time.monotonic()
        if tick - self._plan_read[0] >= PLAN_EVERY:  # a small file, but the loop ticks 50 times a second
            self._plan_read = (tick, read_plan(self.env))
        plan = self._plan_read[1]
        five = plan.five_hour if plan is not None else None
        if five is None or five.used_now(now) < guard:
            for slot in queue:
                if self.results[slot.position].state == "waiting":
                    self._set(slot.position, state="queued", reason=None)
            return False
        why = (
            f"the plan's 5-hour window is at {five.used_percentage:g}% (--quota-guard {guard:g}%); "
            f"it resets at {when(five.resets_at, now, self.ctx.config.zone())}"
        )
        if self.options.wait_for_reset:
            for slot in queue:
                self._set(slot.position, state="waiting", reason=f"waiting: {why}")
        else:
            for slot in queue:
                self._set(slot.position, state="skipped", reason=f"not started: {why} — pass --wait-for-reset to wait")
            queue.clear()
        return True

    def _inflight(self, state: LedgerState) -> list[tuple[str, str]]:
        """(command, session) of the running instances: their typical spend is reserved before a start."""
        return [(self.slots[i].instance.command, self.slots[i].session) for i in self.running]

    def _watch(self, now: float, wall: datetime) -> None:
        """Kill mode: an instance whose budget is over and that has not stopped by its own hook is stopped."""
        watched = {i: proc for i, proc in self.running.items() if not proc.stopping}
        verdicts = self.ctx.ledger.consistent(
            lambda state: {i: must_stop(self.ctx, state, self.id, self.slots[i], now=wall) for i in watched}
        )
        for i, proc in watched.items():
            verdict = verdicts[i]
            if not verdict.allowed:
                self.why[i] = verdict.reason or "a budget it draws on is over"
                proc.stop(now=now, delay=HOOK_GRACE)

    def _finish(self, slot: Slot, proc: Process) -> None:
        """Count what the instance's hooks may have missed, then take its numbers from the ledger."""

        code = proc.returncode if proc.returncode is not None else -1
        result = parse_output(proc.output())
        ended = utcnow()
        usage, usd, known, requests = self._settle(slot.session, ended)
        why = self.why.get(slot.position)
        if why is None and result is not None and result.get("terminal_reason") == "hook_stopped":
            why = self._stopped_why(slot)
        if why is None and result is not None and result.get("subtype") == MAX_BUDGET:
            amount, label = self.caps.get(slot.position, (0, "a dollar budget it draws on"))
            why = (
                f"stopped by Claude Code at --max-budget-usd {usd_arg(amount)}: what was left of {label}. "
                "To go on, raise that budget."
            )
        state, reason = outcome(code, result, signals=proc.signals, why=why)
        if not known and state == "done" and result is not None and sum(reported(result)["tokens"].values()):
            state, reason = "failed", "its hooks never ran, so its spending is not in the ledger — check the install"
        if state == "failed" and not result:
            tail = proc.errors().strip().splitlines()[-1:] if proc.errors().strip() else []
            reason = (reason or "") + (f": {tail[0][:200]}" if tail else "")
        seconds = (proc.ended or time.monotonic()) - proc.started
        self._set(
            slot.position,
            state=state,
            exit_code=code,
            usage=usage,
            usd_micros=usd,
            seconds=seconds,
            reason=reason,
            reported=reported(result) if result is not None else None,
            requests=requests,
            ended_at=iso(ended),
        )

    def _stopped_why(self, slot: Slot) -> str | None:
        """Which budget its hook stopped it for, as the ledger shows it now."""

        now = utcnow()
        verdict = self.ctx.ledger.consistent(lambda state: must_stop(self.ctx, state, self.id, slot, now=now))
        return None if verdict.allowed else verdict.reason

    def _settle(self, session: str, now: datetime) -> tuple[Usage, int, bool, int]:
        """Settle the session as its SessionEnd hook would (a stopped instance may not have run it)."""

        with self.ctx.ledger.transaction() as state:
            s = records.session(state, session)
            known = s is not None
            if s is not None and not s.ended:
                files = [Path(k) for k in s.transcripts if "/subagents/" not in k.replace(os.sep, "/")]
                transcript = files[0] if files else None
                settle(
                    state,
                    session=session,
                    transcript=transcript,
                    price=pricer(self.ctx.config),
                    also=_scope.charger,  # its responses charge this orchestration too, as its hooks' do
                    now=now,
                )
                end_session(state, session=session, now=now)
            o = _scope.table(state, self.id)
            entry = o.instances.get(session) if o is not None else None
            if entry is not None:
                entry.finished = True
                return entry.usage(), entry.usd_micros, known, entry.requests
        return Usage(), 0, known, 0

    def _close(self) -> None:
        with self.ctx.ledger.transaction() as state:
            _scope.finish(state, self.id, now=utcnow())


def iso(when: datetime, /) -> str:
    """``2026-12-03T14:18:00.123Z``: the results' timestamps (UTC, milliseconds)."""
    return when.astimezone(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def usd_arg(micros: int, /) -> str:
    """Micro-dollars as ``--max-budget-usd`` takes them: ``0.25``, ``0.000125``."""
    return f"{micros / 1_000_000:.6f}".rstrip("0").rstrip(".") or "0"


def dollar_cap(ctx: Any, state: LedgerState, oid: str, slot: Slot, /, *, now: datetime) -> tuple[int, str] | None:
    """What is left of the tightest dollar budget the instance draws on — its command's (here, or the
    frontmatter's / budget.toml's), the orchestration's (overall, per period), the project's overall —
    and that budget's name; None when no dollar budget applies."""

    found: list[tuple[int, str]] = []
    limits = _scope.limits(
        state, oid, command=slot.instance.command, session=slot.session, counted=ctx.config.counted, now=now
    )
    found += [(lim.left, _scope.label(lim)) for lim in limits if lim.metric == "usd"]
    for status in project_statuses(ctx, state, slot, now=now):
        if status is None:
            continue
        scope = "the project's overall" if status.name == "overall" else f"{status.name}'s"
        for lim in status.limits:
            if lim.metric == "usd" and lim.limit > 0:
                span = f" per {lim.window.label}" if lim.window is not None else ""
                found.append((max(0, lim.limit - lim.used), f"{scope} dollar budget{span}"))
    return min(found, default=None, key=lambda f: f[0])


def run(
    options: Options, /, *, env: Mapping[str, str] | None = None, out: TextIO | None = None, err: TextIO | None = None
) -> int:
    return Orchestration(
        options, env=os.environ if env is None else env, out=out or sys.stdout, err=err or sys.stderr
    ).run()


__all__ = ["Instance", "Orchestration", "run"]
