"""The Python side of claude-budget's Claude Code mod (``plugin/hooks/claude-budget.mod.ts``).

Claude Code 2.1.286 and later load the mod in-process. It sees every model request (``turn.step``,
main loop and subagents) and sends each one here, so the counting, the prices, the windows and the
scopes stay those of the hooks (:func:`._runs.record_request` charges a request exactly as a
transcript's response is charged). The mod starts one Python child per session (:func:`serve`:
requests through a FIFO in the user's 0700 state folder, answers on the child's stdout), else one
``<python> -m budget_state.hook --mod`` per request (request on stdin, answer on stdout). No port,
no socket.

The handshake. While the mod counts a session, the hooks of that session must not count the same
requests again (and must count everything when there is no mod). The mod's hello writes
``<state>/claude-budget/mod/<session_id>.json`` — ``<state>`` the user's own ``$XDG_STATE_HOME``
(else ``~/.local/state``), the folder created 0700 — naming the ``claude`` process and the serving
child (pid and start time of each). A hook of that session counts nothing while that file is there,
is the user's, in a folder only the user can write, and names a ``claude`` process and a child still
running, or says the session ended (:func:`active`); another user or a cloned repository cannot make
such a file. When the mod stops counting midway — a handler that failed (``handover``), its worker
unloaded (Claude Code then stops the child) — :func:`hand_over` moves the hooks past what the mod
counted and removes the handshake; when only the child dies, the mod rewrites the handshake without
it and counts on, one process a request.

Requests (``op``):

- ``step``: one model request's usage (``usage`` in the API's shape, ``model``, ``agent``, and
  the ``prompt`` id the turn belongs to). Answer: ``stop`` — kill mode's one-line reason when the
  request just counted put a scope over (the mod refuses the next request of that run), else null;
  ``run`` — the prompt id it was charged to; ``band`` — the live band's figures.
- ``status``: ``/budget [name]`` rendered as text (display only).
- ``measure``: ``session.measure``'s figures (``cost``, ``rate_limits`` in the statusline's shape);
  hands the rate limits to :func:`note_rate_limits`.
- ``handover``: the mod stops counting midway (a failure, on_error open): the records it could not
  make, the hooks' cursors moved past what it counted, the handshake removed (:func:`hand_over`).
- ``end``: the mod counted the session to its end (the handshake says so: :func:`mark_ended`).
"""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import IO, TYPE_CHECKING

if TYPE_CHECKING:
    from datetime import datetime

    from .._api import Context
    from .._model import ScopeStatus, Snapshot
    from ..ledger._ledger import State

PROTOCOL = 1
_SESSION = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,127}")


def state_dir(env: Mapping[str, str]) -> Path | None:
    """``<state>/claude-budget/mod``: the user's own folder for the handshakes (None without a HOME)."""
    base = env.get("XDG_STATE_HOME") or (os.path.join(env["HOME"], ".local", "state") if env.get("HOME") else None)
    return Path(base) / "claude-budget" / "mod" if base else None


def _handshake(session: str, env: Mapping[str, str]) -> Path | None:
    folder = state_dir(env)
    if folder is None or not _SESSION.fullmatch(session):
        return None
    return folder / f"{session}.json"


def _process_start(pid: int) -> str | None:
    """The start time of process ``pid`` (Linux ``/proc``), so a reused pid is not taken for it."""
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return fields[19]
    except (OSError, IndexError):
        return None


def _running(pid: object, started: object) -> bool:
    if not isinstance(pid, int) or isinstance(pid, bool) or pid <= 1:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return False  # another user's process: not this user's session
    now = _process_start(pid)
    return now is None or started is None or now == started


def active(session: str, env: Mapping[str, str]) -> bool:
    """Whether the mod counts ``session`` (the hook's cheap check: two opens, one read, one kill(0)).

    Descriptor-relative, never following a link: the folder must be the user's and writable by no
    one else, the handshake the user's (a handshake another user could plant would make the hooks
    stand down). Anything else: the hooks count.
    """
    path = _handshake(session, env)
    if path is None:
        return False
    nofollow = getattr(os, "O_NOFOLLOW", 0)
    try:
        dfd = os.open(path.parent, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | nofollow)
    except OSError:
        return False
    try:
        uid = os.getuid()
        folder = os.fstat(dfd)
        if folder.st_uid != uid or folder.st_mode & 0o022:
            return False
        fd = os.open(path.name, os.O_RDONLY | nofollow, dir_fd=dfd)
        with os.fdopen(fd, encoding="utf-8") as f:
            info = os.fstat(f.fileno())
            if info.st_uid != uid or info.st_mode & 0o022:
                return False
            data = json.load(f)
    except (OSError, ValueError):
        return False
    finally:
        os.close(dfd)
    if not isinstance(data, dict) or data.get("session") != session:
        return False
    if not _running(data.get("pid"), data.get("started")):
        return False
    # Served by a Python child: the mod counts while that child runs (Claude Code stops it when the
    # mod's worker is unloaded), or once the mod said the session ended (the child is stopped
    # before SessionEnd's hooks, which must still stand down). A child gone without that: the
    # mod disappeared midway, and the hooks count from here on.
    child = data.get("child")
    return child is None or data.get("ended") is True or _running(child, data.get("child_started"))


def claim(session: str, env: Mapping[str, str], pid: object, mod: str, child: int | None = None) -> bool:
    """Write the handshake for ``session`` (the mod counts it from now on); False if it cannot, or
    if another copy of the mod (the plugin's and the one in ~/.claude/skills both load) has it.

    Written whole to a temporary file, then linked into place (``link`` fails where the name
    exists): of two copies starting together exactly one wins, and no reader sees half a file.
    ``child``: the pid of the Python child serving the mod (:func:`serve`), named too so the hooks
    take over should it end before the session does (:func:`active`); its start time with it.
    """
    path = _handshake(session, env)
    if path is None or not isinstance(pid, int) or isinstance(pid, bool):
        return False
    body = json.dumps(_handshake_body(session, pid, mod, child))
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(path.parent, 0o700)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(body)
        for _ in range(2):
            try:
                os.link(tmp, path)
                return True
            except FileExistsError:
                try:
                    with open(path, encoding="utf-8") as f:
                        held = json.load(f)
                except (OSError, ValueError):
                    return False  # not ours to judge
                if isinstance(held, dict) and active(session, env):
                    # ours already (a second hello, or the mod re-pointing it: its child ended), or
                    # another copy of the mod counts this session
                    if held.get("mod") != mod or held.get("pid") != pid:
                        return False
                    if held.get("child") == child:
                        return True
                    os.replace(tmp, path)  # ours: now naming this child (or none)
                    return True
                path.unlink()  # a stale one: its claude process ended (a resumed session starts anew)
        return False
    except OSError:
        return False
    finally:
        try:
            tmp.unlink()
        except OSError:
            pass


def _handshake_body(session: str, pid: int, mod: str, child: int | None) -> dict[str, object]:
    body: dict[str, object] = {"session": session, "pid": pid, "started": _process_start(pid), "mod": mod}
    if child is not None:
        body.update(child=child, child_started=_process_start(child))
    return body


def mark_ended(session: str, env: Mapping[str, str]) -> None:
    """The mod counted the session to its end: its hooks still stand down once the child is stopped."""
    path = _handshake(session, env)
    if path is None or not active(session, env):
        return
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
        data["ended"] = True
        tmp = path.with_name(f".{path.name}.{os.getpid()}.end")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(json.dumps(data))
        os.replace(tmp, path)
    except (OSError, ValueError, TypeError):
        pass


def _wired(ctx: Context, env: Mapping[str, str], mod: str) -> bool:
    """Whether claude-budget counts this project: its hooks are wired (project, --user, the enabled
    plugin), or the mod is the plugin's own (loaded for this session with --plugin-dir or the like).
    The mod that install puts in ~/.claude/skills loads in every project: elsewhere it stays out."""
    from .._paths import claude_home
    from .._wiring import wiring

    if (Path(mod) / "hooks" / "claude-budget.sh").is_file():
        return True
    w = wiring(ctx.project, claude_home(env))
    return bool(w.project_settings or w.user_settings or w.plugin)


def release(session: str, env: Mapping[str, str]) -> None:
    path = _handshake(session, env)
    if path is not None:
        try:
            path.unlink()
        except OSError:
            pass


def note_rate_limits(ctx: Context, session: str, rate_limits: Mapping[str, object] | None) -> None:
    """The subscription's 5-hour / 7-day windows as the mod saw them (``$.session.usage().rateLimits``,
    on every ``session.measure``), recorded and charged as the status line's are (``_observe``).

    ``rate_limits`` has the statusline's shape: ``{"five_hour": {"used_percentage": 42,
    "resets_at": 1796613813}, "seven_day": {…}}``; None with an API key ("no plan data"). The
    session's requests are in the ledger already (the mod counted each), so no transcript is read.
    A state file that cannot be trusted or written costs the observation, never the answer.
    """
    from .._errors import BudgetError
    from ..budgets._plan import PlanStateError
    from ..ledger._ledger import utcnow
    from ._observe import observe_in

    try:
        observe_in(ctx, rate_limits, session_id=session, transcript_path=None, now=utcnow(), source="mod")
    except (BudgetError, PlanStateError, OSError):
        pass


#: ``CLAUDE_BUDGET_MOD=off``: the mod stays out of every session (the hooks count), e.g. where a
#: short ``claude -p`` run should not pay for the mod's worker and Python child.
SWITCH_ENV = "CLAUDE_BUDGET_MOD"
SERVE_ENV = "CLAUDE_BUDGET_MOD_SESSION"  # set by the mod: serve this session's requests (see serve)


def serve(session: str, stdout: IO[str], env: Mapping[str, str]) -> int:
    """One Python process for the session's requests, started by the mod (``$.process.spawn``).

    ``$.process.spawn`` gives its child's stdin one string and closes it, so requests come through a
    FIFO the child makes in the user's 0700 state folder (only the user can open it), one JSON line
    each, ``$.fs.write`` opening and closing it per request; answers go to the child's stdout, the
    private pipe the mod reads, one line each, with the request's ``id``. The first line says where
    the FIFO is. Claude Code stops the child (SIGTERM) as the session ends or the mod unloads.
    """
    import signal

    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(0))
    folder = state_dir(env)
    if folder is None or not _SESSION.fullmatch(session):
        stdout.write(json.dumps({"protocol": PROTOCOL, "error": "claude-budget mod: no session or HOME"}) + "\n")
        return 2
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(folder, 0o700)
    info = os.stat(folder)
    if info.st_uid != os.getuid() or info.st_mode & 0o077:
        stdout.write(
            json.dumps({"protocol": PROTOCOL, "error": f"claude-budget mod: {folder} is not yours alone"}) + "\n"
        )
        return 2
    _prune(folder)
    fifo = folder / f"{session}.{os.getpid()}.fifo"
    os.mkfifo(fifo, 0o600)
    served = _Served()
    try:
        stdout.write(json.dumps({"protocol": PROTOCOL, "ready": True, "fifo": str(fifo)}) + "\n")
        stdout.flush()
        while True:
            with open(fifo, "rb") as requests:  # waits for the mod's next write
                for line in requests:
                    answer = _answer(line, env, server=os.getpid())
                    served.saw(line, answer)
                    stdout.write(json.dumps(answer) + "\n")
                    stdout.flush()
    except (BrokenPipeError, KeyboardInterrupt):
        return 0
    finally:
        try:
            fifo.unlink()
        except OSError:
            pass
        if served.claimed and not served.ended:
            # Stopped before its mod said the session ended: the mod's worker is gone (Claude Code
            # unloads a wedged one and stops its child). The hooks count from here on.
            hand_over(session, env, served.cwd, served.transcript, [])


class _Served:
    """What the child saw of its session: whether its mod counts it, to its end, and where."""

    def __init__(self) -> None:
        self.claimed = False
        self.ended = False
        self.cwd: str | None = None
        self.transcript: str | None = None

    def saw(self, line: bytes, answer: Mapping[str, object]) -> None:
        try:
            request = json.loads(line)
        except ValueError:
            return
        op = request.get("op") if isinstance(request, dict) else None
        if op == "hello" and answer.get("claimed") is True:
            self.claimed = True
            self.cwd, self.transcript = _str(request, "cwd"), _str(request, "transcript")
        elif op in ("end", "handover"):
            self.ended = True


def hand_over(
    session: str, env: Mapping[str, str], cwd: str | None, transcript: str | None, records: list[dict[str, object]]
) -> None:
    """The mod stops counting ``session`` midway; the hooks count from here on. In one transaction:
    the requests the mod saw but could not record (``records``, ``step`` requests; one already
    charged is not charged again), then the hooks' transcript cursors moved past what is written
    now — all of which the mod counted — so they do not count it again; then the handshake goes.

    A request the mod had not even queued is then counted by neither; overall still gets it from
    Claude Code's own totals at the session's end (the cost-state reconciliation). Should the
    ledger not take it (its lock held too long), the handshake goes all the same: the hooks then
    count from their own cursors.
    """
    from .._api import Context
    from .._steps import settle
    from ..ledger._ledger import utcnow

    try:
        ctx = Context.load(env=env, cwd=cwd, own_process=True)
        now = utcnow()
        with ctx.ledger.transaction() as state:
            for record in records:
                if isinstance(record, dict):
                    _record(ctx, state, record, session, now)
            path = Path(transcript) if transcript else None
            settle(ctx, state, session=session, transcript=path, now=now, mod_counts=True)
    except Exception:  # noqa: BLE001 (handing over: the hooks count from their own cursors then)
        pass
    release(session, env)


def _prune(folder: Path) -> None:
    """Remove what ended sessions left: FIFOs and handshakes of processes that are gone."""
    try:
        names = os.listdir(folder)
    except OSError:
        return
    for name in names:
        path = folder / name
        pid: object = None
        if name.endswith(".fifo"):
            pid = int(name.split(".")[-2]) if name.split(".")[-2].isdigit() else None
            started = None
        elif name.endswith(".json"):
            try:
                with open(path, encoding="utf-8") as f:
                    data = json.load(f)
                pid, started = data.get("pid"), data.get("started")
            except (OSError, ValueError, AttributeError):
                continue
        else:
            continue
        if not _running(pid, started):
            try:
                path.unlink()
            except OSError:
                pass


def _answer(raw: bytes, env: Mapping[str, str], *, server: int | None = None) -> dict[str, object]:
    """The answer to one request (JSON bytes), never an exception: errors are the answer's ``error``."""
    try:
        request = json.loads(raw)
        if not isinstance(request, dict):
            raise ValueError("not a JSON object")
    except (ValueError, RecursionError) as e:
        return {"protocol": PROTOCOL, "error": f"claude-budget mod: bad request ({e})"}
    try:
        answer = handle(request, env, server=server)
    except Exception as e:  # noqa: BLE001 (the mod fails open or closed by on_error, with this line)
        if env.get("CLAUDE_BUDGET_DEBUG"):
            import traceback

            traceback.print_exc()
        from .._errors import BudgetError

        text = str(e) if isinstance(e, BudgetError) else f"internal error {type(e).__name__}: {e}"
        answer = {"error": f"claude-budget: {text}", "on_error": _on_error(env, request)}
    return {"protocol": PROTOCOL, "id": request.get("id"), **answer}


def main(stdin: IO[bytes], stdout: IO[str], env: Mapping[str, str]) -> int:
    """One request from the mod on ``stdin``, one JSON answer on ``stdout`` (``$.process.run``); or,
    with ``CLAUDE_BUDGET_MOD_SESSION`` set, serve that session's requests (:func:`serve`)."""
    session = env.get(SERVE_ENV)
    if session:
        return serve(session, stdout, env)
    answer = _answer(stdin.read(), env)
    stdout.write(json.dumps(answer) + "\n")
    stdout.flush()
    return 2 if str(answer.get("error", "")).startswith("claude-budget mod: bad request") else 0


def _on_error(env: Mapping[str, str], request: Mapping[str, object]) -> str:
    from .._steps import _config_on_error

    return _config_on_error({**env, **_project_env(request)})


def _project_env(request: Mapping[str, object]) -> dict[str, str]:
    cwd = request.get("cwd")
    return (
        {"CLAUDE_PROJECT_DIR": cwd} if isinstance(cwd, str) and cwd and "CLAUDE_PROJECT_DIR" not in os.environ else {}
    )


def _str(request: Mapping[str, object], key: str) -> str | None:
    v = request.get(key)
    return v if isinstance(v, str) and v and "\x00" not in v else None


def handle(request: Mapping[str, object], env: Mapping[str, str], *, server: int | None = None) -> dict[str, object]:
    """``server``: the pid of the serving process (:func:`serve`), None for one request a process."""
    from .._api import Context
    from ..ledger._ledger import utcnow

    op = request.get("op")
    session = _str(request, "session")
    if session is None or not _SESSION.fullmatch(session):
        raise ValueError("the request names no session")
    if op == "handover":
        records = request.get("records")
        hand_over(
            session,
            env,
            _str(request, "cwd"),
            _str(request, "transcript"),
            records if isinstance(records, list) else [],
        )
        return {"released": True}
    if op == "end":
        mark_ended(session, env)
        return {"ended": True}
    ctx = Context.load(env=env, cwd=_str(request, "cwd"), own_process=True)
    now = utcnow()
    if op == "hello":
        mod = str(request.get("mod") or "?")
        if env.get(SWITCH_ENV, "").strip().lower() == "off" or not _wired(ctx, env, mod):
            return {"absent": True}  # switched off, or not wired here: the hooks count everything
        if server is None:
            _prune(state_dir(env) or Path(os.devnull))
        # The handshake names the claude process, not this child: Claude Code stops the child as
        # the session ends, before its SessionEnd hooks, which must still stand down.
        pid = request.get("pid")
        claimed = claim(session, env, pid, mod, child=server)
        answer: dict[str, object] = {
            "claimed": claimed,
            "on_error": ctx.config.on_error,
            "band": _band(ctx, session, None, now),
        }
        if claimed and server is not None and isinstance(pid, int):
            # What the mod writes in its place should this child end first (it counts on, one
            # process a request): the same handshake, naming no child.
            answer["solo"] = {
                "path": str(_handshake(session, env)),
                "text": json.dumps(_handshake_body(session, pid, mod, None)),
            }
        return answer
    if op == "step":
        return _step(ctx, request, session, now)
    if op == "status":
        return {"text": _status_text(ctx, str(request.get("args") or ""), now)}
    if op == "measure":
        limits = request.get("rate_limits")
        note_rate_limits(ctx, session, limits if isinstance(limits, dict) else None)
        return {"band": _band(ctx, session, _str(request, "prompt"), now)}
    raise ValueError(f"unknown request {op!r}")


def _step(ctx: Context, request: Mapping[str, object], session: str, now: datetime) -> dict[str, object]:
    from .._steps import _orchestrated, _orchestration_limit, _statuses
    from ..budgets._budgets import check_running
    from ..ledger import _runs

    with ctx.ledger.transaction() as state:
        run = _record(ctx, state, request, session, now)
        cmd_status, overall = _statuses(ctx, state, _runs.run_for(state, session, run), now)
        cmd_status = _orchestration_limit(ctx, state, session, cmd_status)
        zone = ctx.config.zone()
        # The 70/90/100 % crossings are the hooks' to announce (Stop, PreToolUse): they read the
        # same ledger, and their messages are where the user looks for them.
        notes: list[str] = []
        decision = check_running(ctx.config.mode, cmd_status, overall, now=now, zone=zone)
        decision = _orchestrated(ctx, state, session, decision, cmd_status, now, running=True)
        if ctx.config.team_url:  # charge the team's leases; kill mode: may the run go on?
            from ..team.hook import after_settle

            more, team_stop = after_settle(
                ctx, state, "PreToolUse", cmd_status and cmd_status.name, now, background=False
            )
            notes += more
            decision = team_stop if team_stop is not None and decision.allowed else decision
    stop = None if decision.allowed else decision.reason
    return {
        "run": run,
        "stop": stop,
        "scope": None if decision.allowed else ("overall" if decision.scope == "overall" else "command"),
        "notes": notes,
        "band": _band_of(ctx, cmd_status, overall, now),
    }


def _record(ctx: Context, state: State, request: Mapping[str, object], session: str, now: datetime) -> str | None:
    """Charge one request the mod saw (unless its record was charged already); the run it went to."""
    from .._steps import _orchestration_charger, _pricer
    from ..ledger import _runs

    usage = request.get("usage")
    prompt = _str(request, "prompt")
    seq = _seq(request)
    if not isinstance(usage, dict) or not _first_time(state, session, seq):
        return prompt
    run = _runs.record_request(
        state,
        session=session,
        prompt=prompt,
        agent=_str(request, "agent"),
        usage=usage,
        model=_str(request, "model"),
        price=_pricer(ctx),
        also=_orchestration_charger,
        now=now,
    )
    _applied(state, session, seq)
    return run


def _seq(request: Mapping[str, object]) -> tuple[str, int] | None:
    """A record's place in its mod's order: ``[instance, n]``, n counting up from 1 in one mod."""
    seq = request.get("seq")
    if isinstance(seq, list) and len(seq) == 2 and isinstance(seq[0], str) and isinstance(seq[1], int):
        return seq[0], seq[1]
    return None


def _first_time(state: State, session: str, seq: tuple[str, int] | None) -> bool:
    """The mod sends a record again when the child that had it ended before answering (it may or
    may not have charged it): the session remembers the last record of its mod that was charged."""
    from ..ledger import _runs

    if seq is None:
        return True
    last = _runs.mod_seq(state, session)
    return not (last is not None and last[0] == seq[0] and seq[1] <= last[1])


def _applied(state: State, session: str, seq: tuple[str, int] | None) -> None:
    from ..ledger import _runs

    if seq is not None:
        _runs.set_mod_seq(state, session, seq)


def _band(ctx: Context, session: str, prompt: str | None, now: datetime) -> dict[str, object]:
    from .._steps import _statuses
    from ..ledger import _runs

    cmd_status, overall = ctx.ledger.consistent(
        lambda state: _statuses(ctx, state, _runs.run_for(state, session, prompt), now)
    )
    return _band_of(ctx, cmd_status, overall, now)


def _band_of(ctx: Context, command: ScopeStatus | None, overall: ScopeStatus, now: datetime) -> dict[str, object]:
    """The live band's line: the running command and used/limit, the tightest limit and its reset, dollars."""
    from ..budgets._budgets import clock, limit_line, usage_line

    parts = [f"{command.name} {usage_line(command)}" if command is not None else f"overall {usage_line(overall)}"]
    tight = None
    for scope in (command, overall):
        if scope is None:
            continue
        for limit in scope.limits:
            if limit.limit > 0 and (tight is None or limit.used * tight[1].limit > tight[1].used * limit.limit):
                tight = (scope, limit)
    if tight is not None:
        s, limit = tight
        reset = f", resets {clock(limit.resets_at, now, ctx.config.zone())}" if limit.resets_at is not None else ""
        parts.append(f"tightest: {s.name} {limit_line(limit)}{reset}")
    parts.append(f"${overall.usd_micros / 1e6:.2f}")
    parts += _plan_band(ctx, command, now)
    return {"text": "claude-budget · " + " · ".join(parts), "mode": ctx.config.mode}


def _plan_band(ctx: Context, command: ScopeStatus | None, now: datetime) -> list[str]:
    """The plan's windows and the command's share of the 5-hour one, as the status line shows them;
    nothing for an API-key login or before any window was seen (the band stays short)."""
    from ..budgets._plan import PlanStateError, api_key_login, plan_part, quota_use, read_plan

    try:
        plan = None if api_key_login(ctx.env) else read_plan(ctx.env)
    except PlanStateError:
        return []
    if plan is None:
        return []
    share = quota_use(ctx.ledger.read(), command.name, plan, now).five_hour if command is not None else None
    return [plan_part(plan, now, share=share, zone=ctx.config.zone())]


def _status_text(ctx: Context, args: str, now: datetime) -> str:
    from .._api import _normalize, build_snapshot
    from .._render import render_status
    from .._steps import _wiring_notes

    def read(state: State) -> tuple[Snapshot, list[str] | None]:  # the budgets and the team's, one read
        snap = build_snapshot(ctx, state, warnings=tuple(_wiring_notes(ctx)))
        if not ctx.config.team_url:
            return snap, None
        from ..team.hook import status_lines

        return snap, status_lines(ctx, state)

    snap, team = ctx.ledger.consistent(read)
    words = args.split()[:1]
    only = _normalize(words[0]) if words else None
    text = render_status(snap, width=80, color=False, only=only, now=now)
    if team is not None:
        text = text.rstrip("\n") + "\n\n" + "\n".join(team)
    return text
