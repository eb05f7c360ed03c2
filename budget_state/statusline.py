"""``claude-budget statusline``: one line under Claude Code's prompt, from the JSON it passes on stdin.

Run as ``<python> -m budget_state.statusline`` (``claude-budget install --statusline`` wires it as
the project's ``statusLine``) or ``claude-budget statusline``. Claude Code starts it anew on every
refresh — after each response, on its timer — so it costs what the hook costs: no rich, no price
table, and the ledger is read without its lock (writers replace it atomically). It writes only
when Claude Code's ``rate_limits`` (a subscription's 5-hour and 7-day windows, 2.1.251+) moved:
the account's state file, and the movement charged to this project's runs (see ``_plan``).

It shows the session's running command, or the last one it ran (the session's overall budget when
it ran none): its bar and percent, the tightest limit that applies to it (its own or the overall
budget's, whichever is nearest to spent), what it cost, and when the budget runs out at the present
rate. It never fails loudly: Claude Code blanks the line on a non-zero exit, so any problem prints
``claude-budget: ? (…)`` and exits 0; ``CLAUDE_BUDGET_DEBUG=1`` adds a traceback on stderr.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._model import LimitStatus, ScopeStatus

FALLBACK = "claude-budget: ?"
BAR = 10  # columns of the bar: a status line is one row shared with whatever else the user shows
SEP = " · "
_RESET = "\x1b[0m"
_BOLD_RED = "\x1b[1;31m"


def main(
    argv: Sequence[str] | None = None,
    *,
    stdin: IO[bytes] | None = None,
    stdout: IO[str] | None = None,
    env: Mapping[str, str] | None = None,
    now: datetime | None = None,
) -> int:
    """Print the status line for the session on ``stdin``; always 0 (a failure prints a fallback line)."""
    env = os.environ if env is None else env
    args = list(sys.argv[1:] if argv is None else argv)
    out = sys.stdout if stdout is None else stdout
    try:
        color = _color_choice(args, env)
        payload = _payload(sys.stdin if stdin is None else stdin)
        line = status_line(payload, env=env, color=color, now=now)
    except Exception as e:  # noqa: BLE001 (a status line must never fail loudly: Claude Code would blank it)
        if env.get("CLAUDE_BUDGET_DEBUG"):
            import traceback

            traceback.print_exc()
        line = f"{FALLBACK} ({_why(e)})"
    try:
        out.write(line + "\n")
        out.flush()
    except (BrokenPipeError, OSError):  # Claude Code cancelled this run for a newer one
        pass
    return 0


class BadInput(ValueError):
    """stdin was not the JSON object Claude Code sends."""


def _why(error: BaseException) -> str:
    from ._errors import ConfigError, LedgerError

    if isinstance(error, BadInput):
        return "no status input"
    if isinstance(error, LedgerError):  # LedgerCorrupt too
        return "ledger unreadable: claude-budget status"
    if isinstance(error, ConfigError):
        return "config error: claude-budget status"
    return "internal error"  # CLAUDE_BUDGET_DEBUG=1 prints it


def _color_choice(args: list[str], env: Mapping[str, str]) -> bool:
    """``--color always|never|auto``; auto: on unless NO_COLOR (Claude Code shows ANSI colours, and
    its pipe is never a tty, so a tty test would always say no)."""
    choice = "auto"
    for i, arg in enumerate(args):
        if arg.startswith("--color="):
            choice = arg.partition("=")[2]
        elif arg == "--color" and i + 1 < len(args):
            choice = args[i + 1]
    if choice in ("always", "never"):
        return choice == "always"
    return not env.get("NO_COLOR") and env.get("TERM") != "dumb"


def _payload(stream: Any) -> dict[str, Any]:
    """The JSON object on stdin; ``{}`` when there is none (run by hand in a terminal, or empty)."""
    import json

    isatty = getattr(stream, "isatty", None)
    if isatty is not None and isatty():
        return {}  # someone ran it by hand: show the project's status instead of waiting for input
    raw = getattr(stream, "buffer", stream).read()
    if not raw.strip():
        return {}
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError):
        raise BadInput("the status line input is not JSON") from None
    if not isinstance(data, dict):
        raise BadInput(f"the status line input is a JSON {type(data).__name__}, not an object")
    return data


def _str(value: object) -> str | None:
    return value if isinstance(value, str) and value and "\x00" not in value else None


def status_line(
    payload: Mapping[str, Any], /, *, env: Mapping[str, str], color: bool, now: datetime | None = None
) -> str:
    """The line for one statusLine input: finds the project, reads the ledger, renders."""
    from ._api import Context
    from .ledger._ledger import utcnow

    workspace = payload.get("workspace")
    project_dir = _str(workspace.get("project_dir")) if isinstance(workspace, dict) else None
    ctx = Context.load(env=env, cwd=project_dir or _str(payload.get("cwd")))
    now = now or utcnow()
    plan, problem = _observe(ctx, payload, now)

    def statuses(state: Any) -> tuple[Any, Any, float | None]:  # what the line shows, as one commit left it
        command, overall = session_statuses(
            ctx, state, _str(payload.get("session_id")), _str(payload.get("prompt_id")), now=now
        )
        share = None
        if plan is not None and command is not None:
            from .budgets._plan import quota_use

            share = quota_use(state, command.name, plan, now).five_hour
        return command, overall, share

    command, overall, share = ctx.ledger.consistent(statuses)
    try:
        width = int(env.get("COLUMNS") or 0)
    except ValueError:
        width = 0
    # "no plan data" only where someone asked for the plan's limits: every API-key user would see it.
    wanted = plan is not None or ctx.config.quota_guard is not None
    from .budgets._plan import plan_part

    extra = problem or (plan_part(plan, now, share=share, zone=ctx.config.zone()) if wanted else None)
    return render_line(command, overall, now=now, color=color, width=width, plan=extra)


def _observe(ctx: Any, payload: Mapping[str, Any], now: datetime) -> tuple[Any, str | None]:
    """Record the plan's windows Claude Code passed (or that it passed none); the plan to show,
    and what to show instead when its state could not be kept (never fails the line)."""
    from ._errors import BudgetError
    from .budgets._plan import PlanStateError
    from .mod._mod import active
    from .mod._observe import observe_in

    session = _str(payload.get("session_id"))
    try:
        plan = observe_in(
            ctx,
            payload.get("rate_limits"),
            session_id=session,
            transcript_path=_str(payload.get("transcript_path")),
            now=now,
            source="statusline",  # the ledger read for its mark only when there are windows to charge
            # a session the mod counts: the mod charges the move, once the requests that made it are in
            attribute=not (session is not None and active(session, ctx.env)),
        )
    except PlanStateError:
        return None, "plan: ? (claude-budget doctor)"
    except BudgetError:  # the ledger busy or broken: the charge waits for the next refresh; the line stays
        from .budgets._plan import read_plan

        return read_plan(ctx.env), None
    return plan, None


def session_statuses(
    ctx: Any, state: Any, session: str | None, prompt: str | None, /, *, now: datetime | None = None
) -> tuple[ScopeStatus | None, ScopeStatus]:
    """The session's command (running, else its last) and overall, as the hook judges them."""
    from ._steps import _statuses  # the statuses the hook decides on: the same limits, the same way
    from .ledger import _runs
    from .ledger._ledger import utcnow

    running = _runs.OpenRun()
    if session is not None:
        running = _runs.run_for(state, session, prompt)  # this turn's run, by cause, ended or not
        if running.command is None:
            running = _runs.run_for(state, session, None)  # the session's open run
        if running.command is None:
            running = _last_run(ctx, state, session)
    now = now or utcnow()
    command, overall = _statuses(ctx, state, running, now)
    return (None if command is None else _forecast(ctx, state, command, now)), _forecast(ctx, state, overall, now)


def _forecast(ctx: Any, state: Any, scope: ScopeStatus, now: datetime, /) -> ScopeStatus:
    """``scope`` with its forecast (as status shows it), when it has a limit that may run out."""
    if scope.forecast is not None or not scope.limits:
        return scope
    from ._api import with_forecast

    return with_forecast(ctx, state, scope, now)


def _last_run(ctx: Any, state: Any, session: str) -> Any:
    """The session's last command run: its ``last`` prompt, else the latest run that names it
    (a run recorded through the API, or a session the ledger has forgotten)."""
    from .ledger import _runs

    found = _runs.last_run(state, session)
    if found.command is not None and found.budget is None and found.prompt is None:
        return _budget_now(ctx, found.command)  # a run the hook did not open (the API's): its file now
    return found


def _budget_now(ctx: Any, command: str) -> Any:
    """A command's frontmatter budgets as its file says now, read without writing the cache."""
    from ._paths import cache_path, claude_home, display
    from .budgets._commands import BudgetCache, find_command_file, read_budget
    from .ledger._runs import OpenRun

    path = find_command_file(command, project=ctx.project, home=claude_home(ctx.env))
    if path is None:
        return OpenRun(command)
    budget = read_budget(path, project=ctx.project, cache=BudgetCache.load(cache_path(ctx.ledger.path)))
    return OpenRun(command, budget, display(path, ctx.project))


# --- rendering (pure) --------------------------------------------------------------------------


def limits_of(scope: ScopeStatus, /) -> tuple[LimitStatus, ...]:
    """Every limit of ``scope``: the core's list when it has one, else its cumulative token limit."""
    if scope.limits:
        return scope.limits
    if scope.limit is None or scope.limit <= 0:
        return ()
    from ._model import LimitStatus

    return (LimitStatus("tokens", scope.used, scope.limit, source=scope.source),)


def tightest(*scopes: ScopeStatus | None) -> tuple[ScopeStatus, LimitStatus] | None:
    """The limit nearest to spent (highest used/limit, in integers) among ``scopes``; the first wins a tie."""
    best: tuple[ScopeStatus, LimitStatus] | None = None
    for scope in scopes:
        if scope is None:
            continue
        for lim in limits_of(scope):
            if lim.limit <= 0:
                continue
            if best is None or lim.used * best[1].limit > best[1].used * lim.limit:
                best = (scope, lim)
    return best


def render_line(
    command: ScopeStatus | None,
    overall: ScopeStatus,
    /,
    *,
    now: datetime,
    color: bool = False,
    width: int = 0,
    plan: str | None = None,
) -> str:
    """``/review-pr [####------] 41% 82K/200K · tightest: overall usd/day 93% · $0.42 · out in ~1h 20m``.

    The subject is ``command`` (else ``overall``): its bar shows its own tightest limit. The
    overall budget's tightest limit follows when it is nearer to spent; then the cost, and the
    time to exhaustion (or to the reset of a spent limit). With ``width`` > 0, the parts that do
    not fit are left out, last first.
    """
    from ._model import dollars
    from ._render import _COLORS, _safe
    from .budgets._units import humanize

    subject = command or overall
    own = tightest(subject)
    worst = tightest(command, overall)
    parts: list[tuple[str, str]] = []  # (plain, coloured): widths are measured on the plain text

    name = _safe(subject.name)
    if own is None:
        text = f"{name} {humanize(subject.used)} tokens, no budget"
        parts.append((text, text))
    else:
        lim = own[1]
        code = _COLORS.get(lim.level)
        fill = max(0, min(BAR, lim.used * BAR // lim.limit))
        pct = f"{lim.whole_percent}%"
        bar_plain = f"[{'#' * fill}{'-' * (BAR - fill)}]"
        bar_color = f"[{_paint('#' * fill, code, color)}{'-' * (BAR - fill)}]"
        label = "" if lim.metric == "tokens" and lim.window is None else f" {_key(lim)}"
        amount = f"{_amount(lim, lim.used)}/{_amount(lim, lim.limit)}"
        parts.append(
            (
                f"{name}{label} {bar_plain} {pct} {amount}",
                f"{name}{label} {bar_color} {_paint(pct, code, color)} {amount}",
            )
        )
        if lim.spent:
            parts.append(_flag(lim, color))
    if worst is not None and (own is None or (worst[0].name, worst[1].key) != (subject.name, own[1].key)):
        scope, lim = worst
        code = _COLORS.get(lim.level)
        pct = f"{lim.whole_percent}%"
        head = f"{'tightest: ' if own is not None else ''}{_safe(scope.name)} {_key(lim)}"
        plain, painted = f"{head} {pct}", f"{head} {_paint(pct, code, color)}"
        if lim.spent:  # block mode refuses the next start on it: say so as /budget does
            flag = _flag(lim, color)
            plain, painted = f"{plain} {flag[0]}", f"{painted} {flag[1]}"
        parts.append((plain, painted))
    if subject.usd_micros:
        parts.append((dollars(subject.usd_micros), dollars(subject.usd_micros)))
    when = _when(worst, (command, overall), now)
    if when:
        parts.append((when, when))
    if plan:
        parts.append((plan, plan))
    return _fit(parts, width)


def _flag(lim: LimitStatus, color: bool) -> tuple[str, str]:
    flag = "EXCEEDED" if lim.over else "SPENT"
    return flag, _paint(flag, _BOLD_RED, color)


def _paint(text: str, code: str | None, color: bool) -> str:
    return f"{code}{text}{_RESET}" if color and code and text else text


def _key(lim: LimitStatus) -> str:
    """``tokens``, ``usd``, ``tokens/1h``, ``usd/day``: as the config and ``status --json`` name it."""
    return lim.key


def _amount(lim: LimitStatus, n: int) -> str:
    from ._model import dollars
    from .budgets._units import humanize

    return dollars(n) if lim.metric == "usd" else humanize(n)


def _when(worst: tuple[ScopeStatus, LimitStatus] | None, scopes: tuple[ScopeStatus | None, ...], now: datetime) -> str:
    """``resets in 3h 12m`` (a calendar window) or ``frees up in 7m`` (rolling) for a spent limit;
    else ``out in ~1h 20m`` from a forecast."""
    if worst is not None and worst[1].spent:
        lim = worst[1]
        at = lim.resets_at
        if at is None or at <= now:
            return ""
        # A calendar window starts over at its boundary; a rolling one frees up as usage leaves it.
        rolling = lim.window is not None and lim.window.kind == "rolling"
        return f"{'frees up' if rolling else 'resets'} in {span(at, now)}"
    # The forecast of the scope whose limit is tightest first; then the soonest of the others.
    ordered = [worst[0]] if worst is not None else []
    ordered += [s for s in scopes if s is not None and s not in ordered]
    for scope in ordered:
        forecast = scope.forecast
        if forecast is not None and forecast.exhausts_at is not None and forecast.exhausts_at > now:
            return f"out in ~{span(forecast.exhausts_at, now)}"
    return ""


def span(at: datetime, now: datetime, /) -> str:
    """How long until ``at``, rounded up to the minute as /budget and the refusals say it:
    ``12m``, ``3h 12m``, ``2d 4h``."""
    minutes = max(0, int((at - now).total_seconds() + 59) // 60)
    days, rest = divmod(minutes, 1440)
    hours, mins = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h"
    return f"{hours}h {mins}m" if hours else f"{mins}m"


def _fit(parts: list[tuple[str, str]], width: int) -> str:
    """The parts joined; with ``width`` > 0, the trailing parts that do not fit are dropped (the
    first, the command and its bar, always stays)."""
    from ._render import _width

    kept = list(parts)
    if width > 0:
        while len(kept) > 1 and _width(SEP.join(p for p, _ in kept)) > width:
            kept.pop()
    return SEP.join(c for _, c in kept)


if __name__ == "__main__":
    raise SystemExit(main())
