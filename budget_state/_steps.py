"""The steps every hook shares with the mod, the status line and ``_observe``: settle as the hook
does (prices, the resolver of command prompts whose own hook failed, an orchestration's scope), the
statuses a decision is made on, an orchestration's limits, and ``on_error`` read on its own.

Below the hook and the mod in the layers (docs/architecture.md), above the features it plugs in.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from datetime import datetime

    from ._api import Context
    from ._model import Budget, ScopeStatus
    from .budgets._budgets import Decision
    from .ledger._ledger import State
    from .ledger._runs import OpenRun
    from .orchestrator._scope import Charge

from .ledger import _records as records


def _config_on_error(env: Mapping[str, str]) -> str:
    """``on_error`` from the environment or the file alone: the rest of the settings may be what failed."""
    try:
        from ._paths import find_project
        from .budgets._config import on_error_alone

        return on_error_alone(find_project(env), env)
    except Exception:  # noqa: BLE001 (nothing here may break the session; the default is open)
        return "open"


ORCHESTRATION_ENV = "CLAUDE_BUDGET_ORCHESTRATION"  # = orchestrator._scope.ENV, without importing it here


def _orchestration_limit(ctx: Context, state: State, session: str, status: ScopeStatus | None) -> ScopeStatus | None:
    """An instance of ``claude-budget orchestrate`` (it names the orchestration in the environment):
    tag its session, so settle charges the orchestration too; the per-command limit the
    orchestrator set for it (or its exemption) replaces the frontmatter's and budget.toml's."""
    if not ctx.env.get(ORCHESTRATION_ENV):
        return status
    from .orchestrator import _scope

    if _scope.tag(state, session, ctx.env) and status is not None and _scope.overrides(state, session):
        return status._replace(limit=None, source=None, limits=())
    return status


def _orchestrated(
    ctx: Context,
    state: State,
    session: str,
    decision: Decision,
    status: ScopeStatus | None,
    now: datetime,
    *,
    running: bool = False,
) -> Decision:
    """``decision``, unless the session's orchestration has a budget spent (a start) or over (kill)."""
    if not decision.allowed or not ctx.env.get(ORCHESTRATION_ENV):
        return decision
    from .orchestrator import _scope

    command = status.name if status is not None else None
    mode, counted = ctx.config.mode, ctx.config.counted
    return _scope.check(state, session, mode=mode, command=command, counted=counted, now=now, running=running)


def _wiring_notes(ctx: Context) -> list[str]:
    """What would make counts wrong in how the hooks are wired (read only for /budget)."""
    try:
        from ._paths import claude_home
        from ._wiring import problems

        return problems(ctx.project, claude_home(ctx.env))
    except Exception:  # noqa: BLE001 (a diagnosis must not cost the answer)
        return []


def _command_budget(ctx: Context, command: str | None) -> tuple[str | None, Path | None, Budget | None]:
    """``(command, its file, its frontmatter Budget)``; command is None unless it is a custom or budgeted one."""
    from ._paths import cache_path, claude_home
    from .budgets._commands import BudgetCache, find_command_file, read_budget

    if command is None:
        return None, None, None
    path = find_command_file(command, project=ctx.project, home=claude_home(ctx.env))
    if path is None:
        # a built-in or unknown command is a plain prompt for the budgets, unless the config budgets it
        return (command if ctx.config.budgeted(command) else None), None, None
    cache = BudgetCache.load(cache_path(ctx.ledger.path))
    budget = read_budget(path, project=ctx.project, cache=cache)
    cache.save()
    return command, path, budget


def settle(
    ctx: Context,
    state: State,
    /,
    *,
    session: str,
    transcript: Path | None,
    now: datetime,
    extra: Iterable[Path] = (),
    prompt_id: str | None = None,
    started: str | None = None,
    mod_counts: bool = False,
) -> list[str]:
    """``_runs.settle`` as every hook does it: the project's prices, its resolver of command prompts
    whose own hook failed, and an orchestration's scope charged too (also for ``_observe``)."""
    from .ledger import _runs

    return _runs.settle(
        state,
        session=session,
        transcript=transcript,
        extra=extra,
        prompt_id=prompt_id,
        resolve=_resolver(ctx),
        started=started,
        price=_pricer(ctx),
        also=_orchestration_charger,
        now=now,
        mod_counts=mod_counts,
    )


def session_peak(state: State, session: str, /) -> tuple[int, int] | None:
    """The session's largest response so far (tokens, micro-dollars), None before the first."""
    s = records.session(state, session)
    return s.peak if s is not None and s.peak[0] > 0 else None


def config_news(state: State, stamp: str, /) -> bool:
    """Whether budget.toml (``stamp``: its mtime) changed since its warnings were last said; notes it as said."""
    from .ledger._runs import notice_is_new

    return notice_is_new(state, "config_warned", stamp)


def _orchestration_charger(state: State, session: str, now: datetime) -> Charge | None:
    """For settle: an orchestrated session's responses charge its orchestration too (orchestrator._scope)."""
    s = records.session(state, session)
    if s is None or s.orchestration is None:
        return None
    from .orchestrator._scope import charger

    return charger(state, session, now)


def _pricer(ctx: Context) -> Callable[[str, Mapping[str, object]], int | None]:
    from .budgets._config import pricer

    return pricer(ctx.config)


def _resolver(ctx: Context) -> Callable[[str], dict[str, object] | None]:
    """For settle: what run to open for a command prompt whose own hook failed (fail open)."""

    def resolve(name: str) -> dict[str, object] | None:
        from ._paths import display
        from .budgets._commands import command_from_prompt

        command, path, budget = _command_budget(ctx, command_from_prompt(name))
        if command is None:
            return None
        file = display(path, ctx.project) if path is not None else None
        return {"command": command, "budget": budget, "file": file}

    return resolve


def _statuses(ctx: Context, state: State, running: OpenRun, now: datetime) -> tuple[ScopeStatus | None, ScopeStatus]:
    from ._api import overall_status, scope_status

    overall = overall_status(ctx, state, now=now)
    if running.command is None:
        return None, overall
    status = scope_status(ctx, state, running.command, budget=running.budget, file=running.file, now=now)
    return status, overall
