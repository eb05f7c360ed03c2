"""Budget decisions and messages. Pure: statuses in, decisions and messages out; no I/O.

One way to decide: every source of limits — this project's (:func:`local`, :func:`preflight`),
the plan's windows (``_plan.standings``), an orchestration's (``orchestrator._scope.standings``)
and a team's leases (``team.hook.standings``) — gives its limits as :class:`Standing` values, and
:func:`decide` alone says, by mode and event, whether a start or a running turn may go on
(:func:`warn_note` only says what warn mode tells the user of a start it lets through).

What "spent" (used >= limit) and "over" (used > limit) mean, and the 70/90/100 % thresholds, are
defined once, on :class:`~budget_state._model.ScopeStatus`; this module only decides with them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal, NamedTuple

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator
    from datetime import datetime, tzinfo

    from .._model import LimitStatus, Mode, ScopeStatus


class Decision(NamedTuple):
    """Whether a command may start (or go on); ``reason`` says why not, naming the scope."""

    allowed: bool
    reason: str | None = None
    scope: str | None = None


ALLOW = Decision(True)

Source = Literal["local", "plan", "orchestration", "team"]
#: what is asked: may a prompt start, or may a running turn go on (a tool call, the mod's request)?
Event = Literal["start", "running"]


class Standing(NamedTuple):
    """One limit, from any source, where it stands: all that :func:`decide` reads.

    ``spent``: a start is refused; ``over``: a running turn is stopped (kill mode). ``refusal`` and
    ``stop`` are what the user is told in each case; ``scope`` names it in the :class:`Decision`.
    ``metric``/``used``/``limit``: tokens or micro-dollars, as the source counts them (the plan's
    windows: ``percent``, in hundredths of a percent).
    ``note``: what warn mode says of a start it lets through past this limit (:func:`warn_note`);
    None where the once-only threshold notices say it instead (this project's limits).
    """

    source: Source
    scope: str
    metric: str
    used: int
    limit: int
    spent: bool
    over: bool
    refusal: str
    stop: str
    note: str | None = None


def decide(statuses: Iterable[Standing], mode: Mode, event: Event, /) -> Decision:
    """The one decision: warn mode never refuses; a start is refused by the first limit that is
    spent; a running turn is stopped, in kill mode only, by the first limit that is over.

    ``statuses`` may be a generator: it is read only up to the first limit that decides.
    """
    if mode == "warn" or (event == "running" and mode != "kill"):
        return ALLOW
    for s in statuses:
        if s.over if event == "running" else s.spent:
            return Decision(False, s.stop if event == "running" else s.refusal, s.scope)
    return ALLOW


def warn_note(statuses: Iterable[Standing], mode: Mode, /) -> str | None:
    """What warn mode tells the user of a start it lets through: the note of the limit that block
    mode would have refused it on (the first spent one); None in other modes, or with none spent.

    Not a second decision: :func:`decide` has already allowed the start; this only words it.
    """
    if mode != "warn":
        return None
    return next((s.note for s in statuses if s.spent), None)


def _human(n: int) -> str:
    from ._units import humanize

    return humanize(n)


def _amount(metric: str, n: int) -> str:
    from .._model import dollars

    return dollars(n) if metric == "usd" else _human(n)


def _how_to_raise(s: ScopeStatus) -> str:
    if s.name == "overall":
        raise_it = "raise CLAUDE_BUDGET_OVERALL" if s.source == "env" else "raise overall_tokens in .claude/budget.toml"
        return f"{raise_it}, or start over with: claude-budget reset --all"
    if s.source == "config":
        raise_it = f'raise [commands."{s.name}"] tokens in .claude/budget.toml'
    elif s.file:
        raise_it = f"raise tokenBudget in {s.file}"
    else:
        raise_it = f'raise [commands."{s.name}"] tokens in .claude/budget.toml'
    return f"{raise_it}, or start over with: claude-budget reset {s.name}"


def _label(s: ScopeStatus) -> str:
    return "the overall budget" if s.name == "overall" else s.name


def usage_line(s: ScopeStatus) -> str:
    pct = s.whole_percent
    pct_text = f" ({pct}%)" if pct is not None else ""  # rounded down, as /budget shows it
    limit = _human(s.limit) if s.limit is not None else "no"
    return f"{_human(s.used)} of {limit} tokens{pct_text}"


def limit_line(limit: LimitStatus, /) -> str:
    """``$2.61 of $2.50 today (104%)``, ``1.2M of 1M tokens in the last hour (120%)``."""
    unit = "" if limit.metric == "usd" else " tokens"
    window = f" {limit.window.phrase}" if limit.window is not None else ""
    pct = limit.whole_percent
    return f"{_amount(limit.metric, limit.used)} of {_amount(limit.metric, limit.limit)}{unit}{window} ({pct}%)"


def when(at: datetime, now: datetime, zone: tzinfo | None, /) -> str:
    """``00:00 (in 3h 12m)``; ``Mon 00:00 (in 2d 4h)`` beyond a day — local time in the configured zone."""
    days, rest = divmod(_minutes_until(at, now), 1440)
    hours, mins = divmod(rest, 60)
    span = f"{days}d {hours}h" if days else (f"{hours}h {mins}m" if hours else f"{mins}m")
    return f"{clock(at, now, zone)} (in {span})"


def clock(at: datetime, now: datetime, zone: tzinfo | None, /) -> str:
    """``00:00``, or ``Mon 00:00`` a day or more ahead — local time in the configured zone."""
    local = at.astimezone(zone) if zone is not None else at.astimezone()
    return local.strftime("%a %H:%M" if _minutes_until(at, now) >= 1440 else "%H:%M")


def _minutes_until(at: datetime, now: datetime) -> int:
    return max(0, int((at - now).total_seconds() + 59) // 60)


def _resets(limit: LimitStatus, now: datetime | None, zone: tzinfo | None) -> str:
    if limit.resets_at is None or now is None:
        return ""
    verb = "resets" if limit.window is not None and limit.window.kind == "calendar" else "frees up"
    return f"; {verb} at {when(limit.resets_at, now, zone)}"


def _raise_limit(s: ScopeStatus, limit: LimitStatus) -> str:
    where = limit.source
    what = "raise the limit"
    if where == "env":
        what = "raise CLAUDE_BUDGET_OVERALL_USD" if limit.metric == "usd" else "raise CLAUDE_BUDGET_OVERALL"
    elif where == "frontmatter" and s.file:
        what = f"raise {'costBudget' if limit.metric == 'usd' else 'tokenBudget'} in {s.file}"
    elif where == "orchestrator":
        what = "raise the orchestration's budget"
    else:
        key = limit.metric if limit.window is None else f"{limit.metric}_per_{limit.window.label}"
        if s.name == "overall":
            setting = f"overall_{key}" if limit.window is None else f"the {limit.window.label} window's {limit.metric}"
            what = f"raise {setting} in .claude/budget.toml"
        else:
            what = f'raise {key} in [commands."{s.name}"] in .claude/budget.toml'
    if limit.window is not None:
        return f"wait, or {what}"
    reset = "claude-budget reset --all" if s.name == "overall" else f"claude-budget reset {s.name}"
    return f"{what}, or start over with: {reset}"


def _is_plain_tokens(limit: LimitStatus) -> bool:
    return limit.metric == "tokens" and limit.window is None


def refusal(
    s: ScopeStatus, limit: LimitStatus | None = None, /, *, now: datetime | None = None, zone: tzinfo | None = None
) -> str:
    """The message shown when a budget is spent."""
    if limit is None or _is_plain_tokens(limit):
        return f"Token budget spent: {_label(s)} has used {usage_line(s)}. To go on, {_how_to_raise(s)}."
    return (
        f"Budget spent: {_label(s)} has used {limit_line(limit)}{_resets(limit, now, zone)}. "
        f"To go on, {_raise_limit(s, limit)}."
    )


def stop_message(
    s: ScopeStatus, limit: LimitStatus | None = None, /, *, now: datetime | None = None, zone: tzinfo | None = None
) -> str:
    if limit is None or _is_plain_tokens(limit):
        return (
            f"Token budget exceeded: {_label(s)} has used {usage_line(s)}; claude-budget (kill mode) stopped this "
            f"turn. To go on, {_how_to_raise(s)}."
        )
    return (
        f"Budget exceeded: {_label(s)} has used {limit_line(limit)}{_resets(limit, now, zone)}; claude-budget "
        f"(kill mode) stopped this turn. To go on, {_raise_limit(s, limit)}."
    )


def _limits(s: ScopeStatus) -> tuple[LimitStatus, ...]:
    if s.limits:
        return s.limits
    if s.limit is not None and s.limit > 0:  # a status built by hand, with its token limit only
        from .._model import LimitStatus

        return (LimitStatus("tokens", s.used, s.limit, None, None, s.source),)
    return ()


def local(
    command: ScopeStatus | None,
    overall: ScopeStatus,
    /,
    *,
    now: datetime | None = None,
    zone: tzinfo | None = None,
) -> Iterator[Standing]:
    """This project's limits as :func:`decide` reads them: the command's (None for a plain
    prompt), then overall's."""
    for s in (command, overall):
        if s is None:
            continue
        for limit in _limits(s):
            yield Standing(
                "local",
                s.name,
                limit.metric,
                limit.used,
                limit.limit,
                limit.spent,
                limit.over,
                refusal(s, limit, now=now, zone=zone),
                stop_message(s, limit, now=now, zone=zone),
            )


def check_start(
    mode: Mode,
    command: ScopeStatus | None,
    overall: ScopeStatus,
    /,
    *,
    now: datetime | None = None,
    zone: tzinfo | None = None,
) -> Decision:
    """May a prompt start, by this project's limits? ``command`` is None for a plain prompt."""
    return decide(local(command, overall, now=now, zone=zone), mode, "start")


def check_running(
    mode: Mode,
    command: ScopeStatus | None,
    overall: ScopeStatus,
    /,
    *,
    now: datetime | None = None,
    zone: tzinfo | None = None,
) -> Decision:
    """May a running turn go on, by this project's limits? Only kill mode stops one, once a limit
    is over (past it).

    At exactly the limit the turn goes on: it may have been allowed to start just below it, and
    the next start is refused anyway (see :func:`check_start`).
    """
    return decide(local(command, overall, now=now, zone=zone), mode, "running")


def could_go_over(
    command: ScopeStatus | None,
    overall: ScopeStatus,
    /,
    *,
    tokens: int,
    micros: int,
    more: Iterable[LimitStatus] = (),
) -> bool:
    """Whether ``tokens`` (or ``micros`` micro-dollars) more would put any limit of the run over:
    the scopes' limits and ``more`` (an orchestration's)."""
    scoped = [limit for s in (command, overall) if s is not None for limit in _limits(s)]
    return any(lim.used + (micros if lim.metric == "usd" else tokens) > lim.limit for lim in (*scoped, *more))


def preflight(mode: Mode, level: str, command: ScopeStatus, overall: ScopeStatus, /) -> Decision:
    """Block mode with ``preflight = "p90"`` (or p50): refuse a start whose estimated run does not fit.

    The estimate is that percentile of the command's recent finished runs (at least
    :data:`PREFLIGHT_RUNS` of them; with fewer there is no estimate and the start goes ahead).
    """
    per = command.per_run
    if mode != "block" or per is None or per.runs < PREFLIGHT_RUNS:
        return ALLOW
    estimate = {"tokens": per.p90_tokens, "usd": per.p90_usd_micros}
    if level == "p50":
        estimate = {"tokens": per.p50_tokens, "usd": per.p50_usd_micros}

    def fits() -> Iterator[Standing]:
        for s in (command, overall):
            for limit in _limits(s):
                need = estimate[limit.metric]
                why = (
                    f"Pre-flight: a run of {command.name} is estimated at {_amount(limit.metric, need)}"
                    f"{'' if limit.metric == 'usd' else ' tokens'} ({level} of its last {per.runs} runs), but "
                    f"{_label(s)} has only {_amount(limit.metric, limit.left)} left of "
                    f"{_amount(limit.metric, limit.limit)}{' ' + limit.window.phrase if limit.window else ''}. "
                    f"To go on, {_raise_limit(s, limit)}, "
                    'or set preflight = "off" in .claude/budget.toml.'
                )
                yield Standing(
                    "local", s.name, limit.metric, limit.used, limit.limit, need > limit.left, False, why, why
                )

    return decide(fits(), mode, "start")


PREFLIGHT_RUNS = 3


def crossed(warned: int, reached: int, /) -> tuple[int, int | None]:
    """``(new_warned, threshold_to_announce)``: each of 70/90/100 % is announced once per climb.

    ``reached`` is :attr:`LimitStatus.reached`; ``warned`` is the highest threshold already
    announced. If usage fell below it (a reset, a raised limit, a window moving on), it falls too,
    so the next climb is announced again.
    """
    if reached > warned:
        return reached, reached
    return reached, None


def threshold_message(
    s: ScopeStatus,
    limit: LimitStatus | int,
    threshold: int | None = None,
    /,
    *,
    now: datetime | None = None,
    zone: tzinfo | None = None,
) -> str:
    if isinstance(limit, int):  # threshold_message(status, threshold): the cumulative token limit
        threshold = limit
        limit = _limits(s)[0]
    assert threshold is not None
    if _is_plain_tokens(limit):
        line, what = usage_line(s), "token budget"
    else:
        line = limit_line(limit) + _resets(limit, now, zone)
        what = "dollar budget" if limit.metric == "usd" else "token budget"
        if limit.window is not None:
            what += f" for {'the ' + limit.window.label if limit.window.kind == 'rolling' else limit.window.phrase}"
    if threshold >= 100:
        head = f"{_label(s)} has spent its {what}"
    else:
        head = f"{_label(s)} has passed {threshold}% of its {what}"
    return f"claude-budget: {head}: {line}."
