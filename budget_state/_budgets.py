"""Budget decisions and messages. Pure: statuses in, decisions and messages out; no I/O.

What "spent" (used >= limit) and "over" (used > limit) mean, and the 70/90/100 % thresholds, are
defined once, on :class:`~budget_state._model.ScopeStatus`; this module only decides with them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from ._model import Mode, ScopeStatus


class Decision(NamedTuple):
    """Whether a command may start (or go on); ``reason`` says why not, naming the scope."""

    allowed: bool
    reason: str | None = None
    scope: str | None = None


ALLOW = Decision(True)


def _human(n: int) -> str:
    from ._units import humanize

    return humanize(n)


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


def refusal(s: ScopeStatus, /) -> str:
    """The message shown when a budget is spent."""
    return f"Token budget spent: {_label(s)} has used {usage_line(s)}. To go on, {_how_to_raise(s)}."


def stop_message(s: ScopeStatus, /) -> str:
    return (
        f"Token budget exceeded: {_label(s)} has used {usage_line(s)}; claude-budget (kill mode) stopped this turn. "
        f"To go on, {_how_to_raise(s)}."
    )


def _first_spent(command: ScopeStatus | None, overall: ScopeStatus) -> ScopeStatus | None:
    if command is not None and command.spent:
        return command
    if overall.spent:
        return overall
    return None


def check_start(mode: Mode, command: ScopeStatus | None, overall: ScopeStatus, /) -> Decision:
    """May a prompt start? ``command`` is None for a plain prompt. Warn mode never refuses."""
    if mode == "warn":
        return ALLOW
    spent = _first_spent(command, overall)
    if spent is None:
        return ALLOW
    return Decision(False, refusal(spent), spent.name)


def check_running(mode: Mode, command: ScopeStatus | None, overall: ScopeStatus, /) -> Decision:
    """May a running turn go on? Only kill mode stops a turn, once a budget is over (past the limit).

    At exactly the limit the turn goes on: it may have been allowed to start just below it, and
    the next start is refused anyway (see :func:`check_start`).
    """
    if mode != "kill":
        return ALLOW
    over = None
    if command is not None and command.over:
        over = command
    elif overall.over:
        over = overall
    if over is None:
        return ALLOW
    return Decision(False, stop_message(over), over.name)


def crossed(warned: int, reached: int, /) -> tuple[int, int | None]:
    """``(new_warned, threshold_to_announce)``: each of 70/90/100 % is announced once per climb.

    ``reached`` is :attr:`ScopeStatus.reached`; ``warned`` is the highest threshold already
    announced. If usage fell below it (a reset or a raised limit), it falls too, so the next climb
    is announced again.
    """
    if reached > warned:
        return reached, reached
    return reached, None


def threshold_message(s: ScopeStatus, threshold: int, /) -> str:
    if threshold >= 100:
        head = f"{_label(s)} has spent its token budget"
    else:
        head = f"{_label(s)} has passed {threshold}% of its token budget"
    return f"claude-budget: {head}: {usage_line(s)}."
