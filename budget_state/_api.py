"""The Python API an orchestrator uses: read a snapshot, ask whether a command may start, record usage.

Every function takes ``project`` (the folder with ``.claude/``; default: found from the
environment and the current directory) and ``env`` (default ``os.environ``), so the same
precedence applies as in the hooks: environment > ``.claude/budget.toml`` > frontmatter > defaults.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Union

from ._model import CATEGORIES, MAX_COUNT, ScopeStatus, Snapshot, Usage, slash_name
from ._paths import cache_path, claude_home, display, find_project, ledger_path
from .budgets._config import Config, load_config
from .budgets._limits import LimitSpec, finished_runs, merge
from .ledger import _records as records
from .ledger._ledger import Ledger, State, utcnow
from .ledger._runs import record, unpriced_models
from .ledger._runs import reset as _reset

if TYPE_CHECKING:
    from datetime import datetime

    from ._model import Budget
    from .budgets._budgets import Decision

PathLike = Union[str, "os.PathLike[str]"]
STATUS_COMMAND = "/budget"


class Context:
    """Where one project's budgets live and how they are configured."""

    __slots__ = ("config", "env", "ledger", "project")

    def __init__(self, project: Path, env: Mapping[str, str], config: Config, ledger: Ledger) -> None:
        self.project = project
        self.env = env
        self.config = config
        self.ledger = ledger

    @classmethod
    def load(
        cls,
        project: PathLike | None = None,
        *,
        env: Mapping[str, str] | None = None,
        cwd: str | None = None,
        own_process: bool = False,
    ) -> Context:
        """``own_process``: the caller owns the process (the hook), so the lock may use SIGALRM."""
        env = os.environ if env is None else env
        root = Path(project) if project is not None else find_project(env, cwd)
        config = load_config(root, env)
        path = ledger_path(root, env, config.ledger)
        ledger = Ledger(path, timeout=config.lock_timeout, own_process=own_process)
        ledger.minutes_kept = config.longest_rolling  # called only when buckets older than a day are there
        return cls(root, env, config, ledger)


def overall_specs(ctx: Context, /) -> tuple[LimitSpec, ...]:
    """The overall scope's limits: ``overall_tokens`` (or CLAUDE_BUDGET_OVERALL), then the config's others."""
    config = ctx.config
    specs: list[LimitSpec] = []
    if config.overall_tokens is not None:
        source = config.sources.get("overall_tokens")
        where = "CLAUDE_BUDGET_OVERALL" if source == "env" else "overall_tokens in .claude/budget.toml"
        specs.append(LimitSpec("tokens", config.overall_tokens, None, source, where))
    return merge(specs, config.overall_limits)


def command_specs(ctx: Context, name: str, budget: Budget | None, file: str | None, /) -> tuple[LimitSpec, ...]:
    """A command's limits: its frontmatter's, each replaced by the config's for the same metric and window."""
    from .ledger._windows import parse_window

    front: list[LimitSpec] = []
    if budget is not None and budget.any:
        window = parse_window(budget.window) if budget.window else None
        if budget.tokens is not None:
            front.append(LimitSpec("tokens", budget.tokens, window, "frontmatter", f"tokenBudget in {file}"))
        if budget.usd_micros is not None:
            front.append(LimitSpec("usd", budget.usd_micros, window, "frontmatter", f"costBudget in {file}"))
    config: list[LimitSpec] = []
    if name in ctx.config.commands:
        where = f'tokens in [commands."{name}"] in .claude/budget.toml'
        config.append(LimitSpec("tokens", ctx.config.commands[name], None, "config", where))
    config += ctx.config.command_limits.get(name, ())
    return merge(front, config)


def overall_status(ctx: Context, state: State, /, *, now: datetime | None = None) -> ScopeStatus:
    return _status(ctx, state, "overall", overall_specs(ctx), now=now)


def command_status(
    ctx: Context,
    state: State,
    name: str,
    /,
    *,
    path: Path | None,
    budget: Budget | None,
    now: datetime | None = None,
    finished: Mapping[str, list[list[int]]] | None = None,
) -> ScopeStatus:
    """A command's status, its limits worked out from the config and its frontmatter.

    ``finished``: ``_limits.finished_runs(state)``, from a caller that asks for every command."""
    file = display(path, ctx.project) if path is not None else None
    error = budget.error if budget is not None else None
    return scope_status(ctx, state, name, budget=budget, file=file, error=error, now=now, finished=finished)


def scope_status(
    ctx: Context,
    state: State,
    name: str,
    /,
    *,
    budget: Budget | None,
    file: str | None,
    error: str | None = None,
    now: datetime | None = None,
    finished: Mapping[str, list[list[int]]] | None = None,
) -> ScopeStatus:
    """A command's status from the frontmatter budgets it started with (the hooks keep them with the run)."""
    specs = command_specs(ctx, name, budget, file)
    return _status(ctx, state, name, specs, file=file, error=error, now=now, finished=finished)


def _status(
    ctx: Context,
    state: State,
    name: str,
    specs: tuple[LimitSpec, ...],
    /,
    *,
    file: str | None = None,
    error: str | None = None,
    now: datetime | None = None,
    finished: Mapping[str, list[list[int]]] | None = None,
) -> ScopeStatus:
    from .budgets._limits import evaluate, per_run

    now = now or utcnow()
    totals = records.scope(state, name)
    usage, last = totals.usage, totals.last_run
    limits = evaluate(specs, state, name, now, counted=ctx.config.counted, zone=ctx.config.zone(), totals=totals)
    tokens = next((s for s in specs if s.key == "tokens"), None)
    return ScopeStatus(
        name,
        usage.total(ctx.config.counted),
        tokens.amount if tokens else None,
        usage,
        runs=totals.runs,
        source=(tokens.source if tokens else None) if name == "overall" else _source(specs),
        file=file,
        error=error,
        last_run=last.isoformat() if last is not None else None,
        usd_micros=totals.usd_micros,
        limits=limits,
        per_run=per_run(state, name, counted=ctx.config.counted, finished=finished) if name != "overall" else None,
    )


def with_forecast(ctx: Context, state: State, status: ScopeStatus, now: datetime, /) -> ScopeStatus:
    """``status`` with its burn rates and when its tightest limit runs out (status views only: hooks skip it).

    Only for a scope that spent something in the last :data:`FORECAST_ACTIVE` minutes: an idle
    one's rate is about nothing, and a status of 200 commands would pay ~1 ms each to say so.
    """
    from .ledger._windows import minute_of, scope_buckets

    minute = minute_of(now)
    totals = records.scope(state, status.name)
    spent_at = totals.spent_at
    if spent_at is None and not (totals.runs or totals.usd_micros or any(totals.usage)):
        # never spent since its last reset (which forgets its buckets too): it has no buckets to read
        return status if status.forecast is None else status._replace(forecast=None)
    if spent_at is not None and minute_of(spent_at) <= minute - FORECAST_ACTIVE:
        # idle, as its counters say: its buckets need not be read
        return status if status.forecast is None else status._replace(forecast=None)
    from .forecast import forecast_scope

    spans = [lim.window.minutes for lim in status.limits if lim.window is not None and lim.window.kind == "rolling"]
    # a day of history at least, and all of the longest rolling window (its spend leaves it as it ages)
    buckets = scope_buckets(state, status.name, since=minute - max([1440, *spans]))
    if not any(minute - FORECAST_ACTIVE < m <= minute for m in buckets.rows):
        return status._replace(forecast=None)
    forecast = forecast_scope(
        status.limits,
        tokens=buckets.series(0, "tokens", ctx.config.counted),
        usd=buckets.series(0, "usd"),
        now=now,
    )
    idle = forecast.tokens_per_min == 0 and forecast.usd_per_hour == 0
    return status._replace(forecast=None if idle else forecast)


#: Minutes without spending after which a scope gets no forecast.
FORECAST_ACTIVE = 60


def _source(specs: tuple[LimitSpec, ...]) -> str | None:
    """Where a command's limits come from, the token limit's first: frontmatter, config."""
    tokens = next((s for s in specs if s.key == "tokens"), None)
    if tokens is not None:
        return tokens.source
    return specs[0].source if specs else None


def build_snapshot(ctx: Context, state: State, /, *, warnings: tuple[str, ...] = ()) -> Snapshot:
    from .budgets._commands import BudgetCache, discover_commands

    cache = BudgetCache.load(cache_path(ctx.ledger.path))
    found = discover_commands(project=ctx.project, home=claude_home(ctx.env), cache=cache)
    cache.save()
    names = set(found) | set(ctx.config.commands) | set(records.command_names(state))
    names |= set(ctx.config.command_limits)
    names.discard(STATUS_COMMAND)  # /budget is answered by the hook and never spends anything
    now = utcnow()
    finished = finished_runs(state)  # the ledger file's runs, by command, once for all of them
    commands: dict[str, ScopeStatus] = {}
    for name in names:
        info = found.get(name)
        path, budget = (info.path, info.budget) if info else (None, None)
        commands[name] = command_status(ctx, state, name, path=path, budget=budget, now=now, finished=finished)
    overall = overall_status(ctx, state, now=now)
    from .budgets._plan import plan_problem, quota_use, read_plan

    plan = read_plan(ctx.env)
    quota = {n: quota_use(state, n, plan, now) for n in ["overall", *commands]} if plan is not None else {}
    problem = plan_problem(ctx.env)
    if problem is not None:
        warnings = (*warnings, problem)
    return Snapshot(
        mode=ctx.config.mode,
        overall=with_forecast(ctx, state, overall, now),
        commands={name: with_forecast(ctx, state, s, now) for name, s in commands.items()},
        ledger=str(ctx.ledger.path),
        counted=ctx.config.counted,
        warnings=tuple(ctx.config.warnings) + tuple(warnings),
        unpriced=unpriced_models(state),
        plan=plan,
        quota=quota,
        taken_at=now,
        quota_guard=ctx.config.quota_guard,
    )


def snapshot(project: PathLike | None = None, *, env: Mapping[str, str] | None = None) -> Snapshot:
    """Every budget now: limits, usage by category, runs. Reads the ledger without locking, as one
    commit left it (``Ledger.consistent``: a commit that lands while it reads makes it read again).

    :raises BudgetError: the config is invalid, or the ledger cannot be read.
    """
    ctx = Context.load(project, env=env)
    return ctx.ledger.consistent(lambda state: build_snapshot(ctx, state))


def may_start(
    command: str | None, /, project: PathLike | None = None, *, env: Mapping[str, str] | None = None
) -> Decision:
    """Would claude-budget let ``command`` ("/name", or None for a plain prompt) start now?

    Answers as the UserPromptSubmit hook would in the configured mode: in warn mode, always yes.
    """
    from .budgets._budgets import check_start
    from .budgets._commands import BudgetCache, find_command_file, read_budget

    ctx = Context.load(project, env=env)
    status = None
    budget = None
    path = None
    name = _normalize(command) if command is not None else None
    if name is not None:
        path = find_command_file(name, project=ctx.project, home=claude_home(ctx.env))
        if path is not None:
            budget = read_budget(path, project=ctx.project, cache=BudgetCache.load(cache_path(ctx.ledger.path)))

    def decide(state: State) -> tuple[Decision, ScopeStatus | None]:
        status = command_status(ctx, state, name, path=path, budget=budget) if name is not None else None
        decision = check_start(ctx.config.mode, status, overall_status(ctx, state))
        if decision.allowed and status is not None:  # the plan's windows: quota_guard, quotaBudget
            from .budgets._plan import plan_decision
            from .ledger._ledger import utcnow

            decision = plan_decision(ctx, state, status.name, budget, utcnow())[0]
        return decision, status

    decision, status = ctx.ledger.consistent(decide)
    if decision.allowed and ctx.config.team_url:  # and under the team's leases (may take a lease: locks)
        from ._extensions import team

        return team().api_may_start(ctx, status.name if status is not None else None)
    return decision


def record_usage(
    usage: Usage | Mapping[str, int],
    /,
    *,
    command: str | None = None,
    model: str | None = None,
    session: str | None = None,
    project: PathLike | None = None,
    env: Mapping[str, str] | None = None,
) -> None:
    """Add usage the hooks did not see (e.g. counted by an orchestrator) to the ledger, under its lock.

    Usage from Claude Code sessions of a project with the hooks installed is already counted:
    recording it again counts it twice.

    :param usage: a :class:`Usage` or a mapping with keys from ``input``, ``output``,
        ``cache_creation``, ``cache_read`` (non-negative ints).
    :param command: "/name" to charge a command run; None charges the overall budget only.
    :param model: the model that answered: its price (budget.toml's ``[prices]`` first) gives the dollars.
    :raises ValueError: a usage value is not a non-negative int of at most 2**63-1.
    """
    if not isinstance(usage, Usage):
        unknown = set(usage) - set(CATEGORIES)
        if unknown:
            raise ValueError(f"unknown usage keys {sorted(unknown)} — use {', '.join(CATEGORIES)}")
        for k, v in usage.items():
            if not isinstance(v, int) or isinstance(v, bool) or v < 0:
                raise ValueError(f"usage {k}={v!r} is not a non-negative whole number of tokens")
            if v > MAX_COUNT:  # the ledger would count it as 0: TOML integers are 64-bit
                raise ValueError(f"usage {k}={v!r} is too large — the largest is {MAX_COUNT}")
        usage = Usage(**usage)
    import uuid

    ctx = Context.load(project, env=env)
    usd = None
    if model:
        from .budgets._config import pricer

        api_usage = {
            "input_tokens": usage.input,
            "output_tokens": usage.output,
            "cache_creation_input_tokens": usage.cache_creation,
            "cache_read_input_tokens": usage.cache_read,
        }
        usd = pricer(ctx.config)(model, api_usage)  # None for a model without a price: tokens only
    with ctx.ledger.transaction() as state:
        record(
            state,
            usage,
            usd_micros=usd,
            command=_normalize(command) if command is not None else None,
            model=model,
            session=session,
            prompt=f"api-{uuid.uuid4()}",
            now=utcnow(),
        )
        if ctx.config.team_url:  # charge the team lease too (and settle when due)
            from ._extensions import team

            team().after_settle(ctx, state, "Record", None, utcnow(), background=True)


def reset(
    command: str | None = None, /, *, project: PathLike | None = None, env: Mapping[str, str] | None = None
) -> list[str]:
    """Zero the counters of ``command`` ("/name"), or of everything when None. Returns what was reset."""
    ctx = Context.load(project, env=env)
    with ctx.ledger.transaction() as state:
        return _reset(state, _normalize(command) if command is not None else None, now=utcnow())


_normalize = slash_name  # the name the hook imports
