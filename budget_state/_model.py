"""Plain data shared by accounting, budgets, rendering and the public API."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timezone
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:
    from typing import Literal

CATEGORIES: tuple[str, ...] = ("input", "output", "cache_creation", "cache_read")
# Percent of a limit at which a budget is at "warning", "critical" and spent ("exceeded"): the
# levels of /budget and status --json, the once-only notices, and block mode's refusal all use these.
THRESHOLDS: tuple[int, ...] = (70, 90, 100)
MAX_COUNT = 2**63 - 1  # TOML's integer range; anything outside it is not a real token count
#: Finished runs whose totals each command keeps (the ledger's ``recent``), for its per-run p50/p90.
RECENT_RUNS = 20
#: ``status --json``'s version (README "JSON output"); 2 added ``plan`` and each scope's ``quota``.
JSON_VERSION = 2


def dollars(micros: int, /) -> str:
    """Micro-dollars as people read them: ``$12.35``, and below a cent ``$0.0042``."""
    if micros < 10_000:
        return f"${micros / 1_000_000:.4f}"
    return f"${micros / 1_000_000:,.2f}"


def slash_name(command: str, /) -> str:
    """``review-pr`` or ``/review-pr`` -> ``/review-pr``: a command as the ledger, config and status name it."""
    return command if command.startswith("/") else "/" + command


def count_value(v: object, /) -> int:
    """``v`` if it is a plausible count (an int from 0 to MAX_COUNT), else 0."""
    return v if isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= MAX_COUNT else 0


def time_value(v: object, /) -> datetime | None:
    """``v`` if it is a time (as TOML reads one), else None: :func:`count_value` for a feature's times."""
    return v if isinstance(v, datetime) else None


def epoch_value(v: object, /) -> int | None:
    """``v`` as whole epoch seconds if it is a number that can be one (milliseconds or nonsense are
    refused), else None: a plan window's reset, as Claude Code reports it and the ledger keeps it."""
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 < v < 1e11:
        return None
    return int(v)


def percent_value(v: object, /) -> float | None:
    """``v`` as a percent of a plan window if it is a number from 0 to 1000 (over 100 is possible,
    an overage, and kept as said), else None (NaN too)."""
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 <= v <= 1000:
        return None
    return float(v)


def mark_value(v: object, /) -> tuple[int, float] | None:
    """``[resets_at, percent]`` — a plan window's reset (epoch seconds) and a percent of that window —
    as a pair, else None: how the ledger keeps the plan's marks (budgets._plan)."""
    if type(v) is not list or len(v) != 2:
        return None
    at, pct = epoch_value(v[0]), percent_value(v[1])
    return (at, pct) if at is not None and pct is not None else None


if TYPE_CHECKING:
    Mode = Literal["warn", "block", "kill"]
    Level = Literal["none", "ok", "warning", "critical", "exceeded"]


# Records are NamedTuples, not dataclasses: the hook imports this module on every prompt and tool
# call, and dataclasses cost ~5 ms there (they import inspect and exec code per class).


class Usage(NamedTuple):
    """Token counts by category, as Claude Code's transcript reports them."""

    input: int = 0
    output: int = 0
    cache_creation: int = 0
    cache_read: int = 0

    def __add__(self, other: Usage) -> Usage:  # type: ignore[override]  # sums fields, not a tuple concatenation
        return Usage(
            self.input + other.input,
            self.output + other.output,
            self.cache_creation + other.cache_creation,
            self.cache_read + other.cache_read,
        )

    def total(self, count: tuple[str, ...] = CATEGORIES) -> int:
        """The tokens a budget counts: the sum of the categories in ``count``."""
        return sum(int(getattr(self, c)) for c in count)

    def as_dict(self) -> dict[str, int]:
        return {c: int(getattr(self, c)) for c in CATEGORIES}

    @classmethod
    def from_mapping(cls, data: Mapping[str, object], /) -> Usage:
        """Build from a ledger table; anything that is not a non-negative int counts as 0."""
        return cls(*(count_value(data.get(c, 0)) for c in CATEGORIES))


class Budget(NamedTuple):
    """A command file's budgets: ``tokenBudget``, ``costBudget`` (micro-dollars) and ``budgetWindow``
    (which makes both per window), or the error that kept them from being read."""

    tokens: int | None = None
    error: str | None = None
    usd_micros: int | None = None
    window: str | None = None  # a window label, already checked ("1h", "day")
    #: ``quotaBudget`` / ``quotaBudget7d``: at most this % of the plan's 5-hour / 7-day window per window
    quota_5h: float | None = None
    quota_7d: float | None = None

    @property
    def any(self) -> bool:
        return self.tokens is not None or self.usd_micros is not None


class Window(NamedTuple):
    """The time window of a limit: ``rolling`` over the last ``minutes``, or ``calendar`` (``day``,
    ``week`` from Monday, ``month``) in the configured time zone. A limit without one is cumulative."""

    kind: str  # "rolling" | "calendar"
    minutes: int = 0  # rolling: the span
    unit: str = ""  # calendar: "day" | "week" | "month"

    @property
    def label(self) -> str:
        """As written in the config: ``1h``, ``90m``, ``5h``, ``day``, ``week``, ``month``."""
        if self.kind == "calendar":
            return self.unit
        if self.minutes % 1440 == 0 and self.minutes >= 2880:
            return f"{self.minutes // 1440}d"
        if self.minutes % 60 == 0:
            return f"{self.minutes // 60}h"
        return f"{self.minutes}m"

    @property
    def phrase(self) -> str:
        """As people say it: ``per hour``, ``in the last 5h``, ``today``, ``this week``."""
        if self.kind == "calendar":
            return {"day": "today", "week": "this week", "month": "this month"}.get(self.unit, self.unit)
        return "in the last hour" if self.minutes == 60 else f"in the last {self.label}"


class LimitStatus(NamedTuple):
    """One limit of a scope and where it stands: tokens or dollars, cumulative or per window.

    ``used`` and ``limit`` are tokens (the counted categories) or micro-dollars, by ``metric``.
    The 70/90/100 % thresholds work as on :class:`ScopeStatus`, in integers.
    This project's limits are held by their :class:`ScopeStatus`; an orchestration's stand alone
    (``orchestrator._scope.limits``) and say whose they are (``scope``) and what sets them (``flag``).
    """

    metric: str  # "tokens" | "usd"
    used: int
    limit: int
    window: Window | None = None  # None: cumulative (until a reset)
    #: calendar: the next boundary; rolling: the first minute at which enough of what is in the
    #: window has left it to be under the limit again (None when not spent or nothing to free)
    resets_at: datetime | None = None
    source: str | None = None  # env, config, frontmatter, orchestrator
    #: windowed limits: (tokens, micro-dollars) spent in the window, whichever the metric
    spent_in_window: tuple[int, int] | None = None
    #: an orchestration's: "overall", "hourly" (its rolling ``window``) or the command drawing on it
    scope: str | None = None
    #: an orchestration's: the option that sets it, named in its messages ("--overall-token-budget")
    flag: str | None = None

    @property
    def key(self) -> str:
        """Stable id for the ledger's once-only notices: ``tokens``, ``usd``, ``tokens/1h``, ``usd/day``."""
        return self.metric if self.window is None else f"{self.metric}/{self.window.label}"

    @property
    def percent(self) -> float | None:
        return None if self.limit <= 0 else 100.0 * self.used / self.limit

    @property
    def whole_percent(self) -> int | None:
        return None if self.limit <= 0 else max(0, self.used * 100 // self.limit)

    @property
    def reached(self) -> int:
        if self.limit <= 0:
            return 0
        return max((t for t in THRESHOLDS if self.used * 100 >= t * self.limit), default=0)

    @property
    def level(self) -> Level:
        return "none" if self.limit <= 0 else _LEVELS[self.reached]

    @property
    def spent(self) -> bool:
        return self.reached >= 100

    @property
    def over(self) -> bool:
        return self.limit > 0 and self.used > self.limit

    @property
    def left(self) -> int:
        return max(0, self.limit - self.used)


class Forecast(NamedTuple):
    """Where a scope is heading, from its recent burn rate (recent-weighted).

    ``exhausts_*``: when its tightest limit would be spent at this rate — a point estimate and a
    P10–P90 band; None when no limit, no spending, or not before the window frees up.
    """

    tokens_per_min: float = 0.0
    usd_per_hour: float = 0.0
    exhausts_at: datetime | None = None
    exhausts_p10: datetime | None = None
    exhausts_p90: datetime | None = None
    limit_key: str | None = None  # which limit (LimitStatus.key) the estimate is for


class PerRun(NamedTuple):
    """What one run of a command costs, from its recent finished runs."""

    runs: int = 0
    p50_tokens: int = 0
    p90_tokens: int = 0
    p50_usd_micros: int = 0
    p90_usd_micros: int = 0


class ScopeStatus(NamedTuple):
    """One budget scope (overall, or one command) as of a snapshot."""

    name: str
    used: int
    limit: int | None
    usage: Usage = Usage()
    runs: int = 0
    source: str | None = None  # where the limit came from: env, config, frontmatter
    file: str | None = None  # the command's file, relative to the project where possible
    error: str | None = None  # a frontmatter problem, shown instead of failing
    last_run: str | None = None  # ISO 8601, UTC
    usd_micros: int = 0  # what it cost, priced as Claude Code prices it (models without a price: 0)
    #: every limit of the scope, the cumulative token one (``used``/``limit`` above) included
    limits: tuple[LimitStatus, ...] = ()
    forecast: Forecast | None = None
    per_run: PerRun | None = None  # commands only

    @property
    def percent(self) -> float | None:
        """For display only: every decision uses :attr:`reached`, :attr:`spent` and :attr:`over`."""
        if self.limit is None or self.limit <= 0:
            return None
        return 100.0 * self.used / self.limit

    @property
    def whole_percent(self) -> int | None:
        """The percent as shown: a whole number rounded down (99 % until the limit is really reached)."""
        if self.limit is None or self.limit <= 0:
            return None
        return max(0, self.used * 100 // self.limit)

    @property
    def reached(self) -> int:
        """The highest of :data:`THRESHOLDS` that ``used`` has reached, 0 for none or no limit.

        In integers, so exact at the boundary whatever the size: a float percent is not.
        """
        if self.limit is None or self.limit <= 0:
            return 0
        return max((t for t in THRESHOLDS if self.used * 100 >= t * self.limit), default=0)

    @property
    def level(self) -> Level:
        """``none`` (no limit), ``ok``, ``warning`` (from 70 %), ``critical`` (from 90 %), ``exceeded`` (spent)."""
        if self.limit is None or self.limit <= 0:
            return "none"
        return _LEVELS[self.reached]

    @property
    def spent(self) -> bool:
        """At or past the limit: block mode refuses the next start. The level is ``exceeded``."""
        return self.reached >= 100

    @property
    def over(self) -> bool:
        """Past the limit: kill mode stops a running turn (at exactly the limit it may finish)."""
        return self.limit is not None and self.limit > 0 and self.used > self.limit


_LEVELS: dict[int, Level] = {0: "ok", 70: "warning", 90: "critical", 100: "exceeded"}


def _iso(when: datetime | None) -> str | None:
    return None if when is None else when.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


def _windows_json(limits: tuple[LimitStatus, ...]) -> list[dict[str, object]]:
    """``status --json`` windows: one entry per window, with both metrics' use (a null limit where none)."""
    out: dict[str, dict[str, Any]] = {}
    for limit in limits:
        if limit.window is None:
            continue
        tokens, usd = limit.spent_in_window or ((limit.used, 0) if limit.metric == "tokens" else (0, limit.used))
        entry = out.setdefault(
            limit.window.label,
            {
                "span": limit.window.label,
                "kind": limit.window.kind,
                "tokens": {"used": tokens, "limit": None},
                "usd": {"used": usd / 1_000_000, "limit": None},
                "percent": None,
                "level": "none",
                "resets_at": _iso(limit.resets_at),
            },
        )
        if limit.metric == "usd":
            entry["usd"]["limit"] = limit.limit / 1_000_000
        else:
            entry["tokens"]["limit"] = limit.limit
        pct = limit.percent
        if pct is not None and (entry["percent"] is None or pct > entry["percent"]):
            entry["percent"], entry["level"] = round(pct, 1), limit.level
            entry["resets_at"] = _iso(limit.resets_at) or entry["resets_at"]
    return list(out.values())


class Snapshot(NamedTuple):
    """Every budget at one moment: what ``claude-budget status --json`` prints."""

    mode: Mode
    overall: ScopeStatus
    commands: Mapping[str, ScopeStatus]
    ledger: str
    counted: tuple[str, ...] = CATEGORIES
    warnings: tuple[str, ...] = ()
    unpriced: tuple[str, ...] = ()  # models seen that the price table does not know
    #: the plan's windows (5-hour and 7-day limits; budget_state.budgets._plan.Plan), None: no plan data
    plan: Any = None
    #: per scope ("overall" and each command), its estimated share of the windows (_plan.QuotaUse)
    quota: Mapping[str, Any] = MappingProxyType({})
    taken_at: datetime | None = None  # when it was taken (a plan window's status depends on it)
    quota_guard: float | None = None  # the config's quota_guard: "no plan data" is said where it is set

    def to_json(self) -> dict[str, object]:
        """The documented, versioned shape (see README "JSON output")."""

        def scope(s: ScopeStatus, with_runs: bool) -> dict[str, object]:
            out: dict[str, object] = {"used": s.used, "limit": s.limit}
            if with_runs:
                out["runs"] = s.runs
            pct = s.percent
            out["percent"] = None if pct is None else round(pct, 1)
            out["level"] = s.level
            out["tokens"] = s.usage.as_dict()
            usd_limit = next((x.limit for x in s.limits if x.metric == "usd" and x.window is None), None)
            out["usd"] = {"used": s.usd_micros / 1_000_000, "limit": None if usd_limit is None else usd_limit / 1e6}
            out["windows"] = _windows_json(s.limits)
            f = s.forecast
            out["forecast"] = (
                None
                if f is None
                else {
                    "tokens_per_min": round(f.tokens_per_min, 1),
                    "usd_per_hour": round(f.usd_per_hour, 6),
                    "exhausts_at": _iso(f.exhausts_at),
                    "exhausts_p10": _iso(f.exhausts_p10),
                    "exhausts_p90": _iso(f.exhausts_p90),
                    "limit": f.limit_key,
                }
            )
            if with_runs:
                p = s.per_run
                out["per_run"] = (
                    None
                    if p is None
                    else {
                        "runs": p.runs,
                        "p50_tokens": p.p50_tokens,
                        "p90_tokens": p.p90_tokens,
                        "p50_usd": p.p50_usd_micros / 1e6,
                        "p90_usd": p.p90_usd_micros / 1e6,
                    }
                )
            use = self.quota.get(s.name) if self.plan is not None else None
            out["quota"] = None if use is None else use.as_json()
            if with_runs:
                out["source"] = s.source
                out["file"] = s.file
                out["error"] = s.error
                out["last_run"] = s.last_run
            return out

        return {
            "version": JSON_VERSION,
            "mode": self.mode,
            "ledger": self.ledger,
            "count": list(self.counted),
            "overall": scope(self.overall, False),
            "commands": {name: scope(s, True) for name, s in sorted(self.commands.items())},
            "warnings": list(self.warnings),
            "unpriced_models": list(self.unpriced),
            "plan": None if self.plan is None or self.taken_at is None else self.plan.as_json(self.taken_at),
        }


# --- what a finished run cost, and its quantiles ---------------------------------------------------

_RUN_FIELDS = ("input", "output", "cache_creation", "cache_read", "usd_micros")


def run_totals(run: dict[str, Any], /) -> list[int]:
    """A run's ``[input, output, cache_creation, cache_read, usd_micros]``."""
    return [count_value(run.get(k)) for k in _RUN_FIELDS]


def quantile(values: Sequence[int], q: float, /) -> int:
    """Nearest-rank quantile of ``values`` (always one of them: no invented numbers), 0 when empty."""
    return _ranked(sorted(values), q)


def _ranked(ordered: Sequence[int], q: float, /) -> int:
    """:func:`quantile` of values already sorted."""
    if not ordered:
        return 0
    rank = max(1, -(-len(ordered) * round(q * 1000) // 1000))  # ceil(n * q), in integers
    return ordered[min(rank, len(ordered)) - 1]


def per_run(values: Iterable[tuple[int, int]], /, *, recent: int = RECENT_RUNS) -> PerRun:
    """p50 and p90 of ``(tokens, micro-dollars)`` of finished runs, oldest first; the last ``recent`` count."""
    runs = list(values)[-recent:] if recent > 0 else list(values)
    return per_run_of([t for t, _ in runs], [u for _, u in runs])


def per_run_of(tokens: list[int], usd: list[int], /) -> PerRun:
    """:func:`per_run` of the runs that count, given as their tokens and their micro-dollars (sorted
    here, in place: each once for both of its quantiles)."""
    tokens.sort()
    usd.sort()
    return PerRun(len(tokens), _ranked(tokens, 0.5), _ranked(tokens, 0.9), _ranked(usd, 0.5), _ranked(usd, 0.9))
