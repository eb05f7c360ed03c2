"""``claude-budget suggest``: budgets proposed from history, as a ``budget.toml`` snippet or JSON.

Pure: :func:`suggest` takes what the ledger and the run log hold and ``now``; the CLI reads them.

What is proposed, each from what it would have limited:

- ``[window.hour]`` (``span = "1h"``) and ``[window.day]`` (``span = "day"``) over the overall
  scope: from the usage of each past clock hour / calendar day that had any (the ledger's
  quarter-hour buckets, 36 days);
- per command, ``tokens_per_day`` and ``usd_per_day``: from the command's own daily usage;
- per command, what one run costs (p50 / p90, from the run log and the runs still in the
  ledger) as a comment: what ``preflight = "p90"`` would expect of the next run.

A value is the p90 of its samples plus :data:`HEADROOM`, rounded up to two significant digits:
one busy day in ten comes near it, none of the usual ones does. Cumulative budgets (``tokens``,
``usd``, ``overall_*``) are a choice about how much to spend until a reset, not something history
says: none is proposed. With too little history — fewer than :data:`MIN_SAMPLES` active hours or
days, :data:`MIN_RUNS` runs — it says so instead of inventing a number.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, NamedTuple

from .._model import Usage, count_value
from ..forecast import quantile
from ..ledger import _records as records
from ..ledger._windows import QUARTERS, scope_buckets

if TYPE_CHECKING:
    from datetime import tzinfo

    from ..ledger._state import LedgerState

VERSION = 1
HEADROOM = 0.25  # above the p90 seen
MIN_SAMPLES = 5  # active hours (or days) before a window is proposed
MIN_DAYS = 3  # active days before a daily budget is proposed
MIN_RUNS = 5  # finished runs before a run's cost is quoted


class Proposal(NamedTuple):
    """One key of ``budget.toml``: its value, and why."""

    table: str  # "window.hour", "window.day", or 'commands."/x"'
    key: str  # "tokens", "usd", "tokens_per_day", "usd_per_day", "span"
    value: int | float | str  # tokens (int), dollars (float), or a span
    samples: int = 0
    p90: int = 0  # tokens or micro-dollars
    max: int = 0
    reason: str = ""


class Scope(NamedTuple):
    proposals: tuple[Proposal, ...] = ()
    notes: tuple[str, ...] = ()
    runs: int = 0
    per_run: tuple[int, int, int, int] | None = None  # p50/p90 tokens, p50/p90 micro-dollars


class Suggestion(NamedTuple):
    overall: Scope
    commands: Mapping[str, Scope]
    days: int  # days of history read
    skipped: int = 0  # run-log lines that could not be read

    def to_json(self) -> dict[str, Any]:
        """The documented, versioned shape (docs/json.md, "claude-budget suggest --json")."""

        def scope(s: Scope, with_runs: bool) -> dict[str, Any]:
            out: dict[str, Any] = {}
            if with_runs:
                out["runs"] = s.runs
                out["per_run"] = (
                    None
                    if s.per_run is None
                    else {
                        "p50_tokens": s.per_run[0],
                        "p90_tokens": s.per_run[1],
                        "p50_usd": s.per_run[2] / 1_000_000,
                        "p90_usd": s.per_run[3] / 1_000_000,
                    }
                )
            out["proposals"] = [
                {
                    "table": p.table,
                    "key": p.key,
                    "value": p.value,
                    "samples": p.samples,
                    "p90": _plain(p.key, p.p90),
                    "max": _plain(p.key, p.max),
                    "reason": p.reason,
                }
                for p in s.proposals
                if p.key != "span"
            ]
            out["notes"] = list(s.notes)
            return out

        return {
            "version": VERSION,
            "headroom": HEADROOM,
            "days": self.days,
            "overall": scope(self.overall, False),
            "commands": {name: scope(s, True) for name, s in sorted(self.commands.items())},
            "skipped_lines": self.skipped,
        }


def _plain(key: str, amount: int) -> int | float:
    return amount / 1_000_000 if key.startswith("usd") else amount


# --- numbers as people write them ---------------------------------------------------------------


def round_up(x: float, /) -> float:
    """``x`` rounded up to two significant digits (48,001 -> 49,000; 0.663 -> 0.67)."""
    if x <= 0:
        return 0.0
    scale = 10 ** (math.floor(math.log10(x)) - 1)
    return float(math.ceil(round(x / scale, 9)) * scale)


def tokens_text(n: int, /) -> str:
    """A token count as budget.toml takes it: ``"60k"``, ``"1.3M"``, ``"950"``."""
    for unit, scale in (("B", 10**9), ("M", 10**6), ("k", 10**3)):
        if n >= scale:
            value = n / scale
            text = f"{value:.1f}".rstrip("0").rstrip(".") if value < 100 else f"{value:.0f}"
            return f"{text}{unit}"
    return str(n)


def dollars_text(micros: int, /) -> str:
    return f"${micros / 1_000_000:,.2f}" if micros >= 10_000 else f"${micros / 1_000_000:.4f}"


def _propose(table: str, key: str, samples: Sequence[int], what: str) -> Proposal | None:
    """A value for ``key`` from its samples (tokens or micro-dollars), or None if all are zero."""
    if not samples or max(samples) <= 0:
        return None
    p90 = quantile(samples, 0.9)
    peak = max(samples)
    usd = key.startswith("usd")
    show = dollars_text if usd else tokens_text
    if usd:
        value: int | float = max(0.01, round(round_up(p90 * (1 + HEADROOM) / 1_000_000), 6))
    else:
        value = int(round_up(p90 * (1 + HEADROOM)))
    reason = f"p90 of {len(samples)} {what} is {show(p90)} (max {show(peak)}), + {HEADROOM * 100:.0f} % headroom"
    return Proposal(table, key, value, len(samples), p90, peak, reason)


# --- history into samples -----------------------------------------------------------------------


def _periods(series: Iterable[tuple[int, int]], key: Any, now_key: object) -> list[int]:
    """Sums of ``series`` per period (``key(minute)``), for periods with usage, the current one left out."""
    sums: dict[object, int] = {}
    for minute, value in series:
        k = key(minute)
        sums[k] = sums.get(k, 0) + value
    return [v for k, v in sums.items() if k != now_key and v > 0]


def _local_day(zone: tzinfo | None) -> Any:
    def day(minute: int) -> object:
        moment = datetime.fromtimestamp(minute * 60, timezone.utc)
        return (moment.astimezone(zone) if zone is not None else moment.astimezone()).date()

    return day


def _hour(minute: int) -> object:
    return minute // 60


def suggest(
    *,
    quarters: Mapping[str, tuple[Sequence[tuple[int, int]], Sequence[tuple[int, int]]]],
    runs: Mapping[str, Sequence[tuple[int, int]]],
    now: datetime,
    zone: tzinfo | None = None,
    skipped: int = 0,
) -> Suggestion:
    """Budgets from history.

    :param quarters: per scope (``overall``, ``/x``): its quarter-hour ``(minute, tokens)`` and
        ``(minute, micro-dollars)`` series (tokens: the counted categories).
    :param runs: per command: ``(tokens, micro-dollars)`` of its finished runs, oldest first.
    :param zone: the time zone of calendar days (None: the machine's).
    """
    now_minute = int(now.timestamp() // 60)
    day = _local_day(zone)
    first = min((m for tok, _ in quarters.values() for m, _ in tok), default=now_minute)
    days = max(0, (now_minute - first) // 1440) + (1 if quarters else 0)

    tok, usd = quarters.get("overall", ((), ()))
    proposals: list[Proposal] = []
    notes: list[str] = []
    for name, span, key, what, minimum in (
        ("hour", "1h", _hour, "active clock hours", MIN_SAMPLES),
        ("day", "day", day, "active days", MIN_DAYS),
    ):
        table = f"window.{name}"
        t_samples = _periods(tok, key, key(now_minute))
        if len(t_samples) < minimum:
            notes.append(f"no [{table}]: {len(t_samples)} {what} so far, {minimum} needed")
            continue
        got = [
            p
            for p in (
                _propose(table, "tokens", t_samples, what),
                _propose(table, "usd", _periods(usd, key, key(now_minute)), what),
            )
            if p is not None
        ]
        if got:
            proposals.append(Proposal(table, "span", span))
            proposals.extend(got)
    overall = Scope(tuple(proposals), tuple(notes))

    commands: dict[str, Scope] = {}
    for name in sorted(set(runs) | (set(quarters) - {"overall"})):
        if not name.startswith("/"):
            continue  # an orchestration's scope, not a command
        table = f"commands.{json.dumps(name, ensure_ascii=False)}"
        finished = list(runs.get(name, ()))
        notes = []
        per_run = None
        if len(finished) >= MIN_RUNS:
            tokens = [t for t, _ in finished]
            cost = [u for _, u in finished]
            per_run = (quantile(tokens, 0.5), quantile(tokens, 0.9), quantile(cost, 0.5), quantile(cost, 0.9))
        else:
            notes.append(f"{len(finished)} finished runs so far: too few to say what a run costs ({MIN_RUNS} needed)")
        tok, usd = quarters.get(name, ((), ()))
        daily = _periods(tok, day, day(now_minute))
        proposals = []
        if len(daily) >= MIN_DAYS:
            for p in (
                _propose(table, "tokens_per_day", daily, "active days"),
                _propose(table, "usd_per_day", _periods(usd, day, day(now_minute)), "active days"),
            ):
                if p is not None:
                    proposals.append(p)
        else:
            notes.append(f"used on {len(daily)} past days: too few for a daily budget ({MIN_DAYS} needed)")
        if per_run is not None and not any(p.key == "usd_per_day" for p in proposals) and per_run[3] == 0:
            notes.append("no dollar figures: its models have no price")
        commands[name] = Scope(tuple(proposals), tuple(notes), len(finished), per_run)
    return Suggestion(overall, commands, days, skipped)


def gather(
    state: LedgerState, logged: Iterable[Mapping[str, Any]], /, *, counted: tuple[str, ...]
) -> tuple[dict[str, tuple[list[tuple[int, int]], list[tuple[int, int]]]], dict[str, list[tuple[int, int]]]]:
    """What :func:`suggest` reads, from a ledger state and the run log's records.

    Runs: the log's, then the ledger's finished ones not yet in it (one per prompt, the ledger's
    copy winning: it is the newer).
    """

    quarters = {}
    for scope in records.bucket_scopes(state, QUARTERS):
        buckets = scope_buckets(state, scope, table=QUARTERS)
        quarters[scope] = (buckets.series(0, "tokens", counted), buckets.series(0, "usd"))
    by_run: dict[tuple[object, ...], Mapping[str, Any]] = {}
    hot = [r.as_log() for r in records.runs(state) if r.ended is not None]
    for run in [*logged, *hot]:
        if isinstance(run.get("command"), str):
            by_run[(run.get("prompt"), run.get("session"), run.get("command"))] = run
    runs: dict[str, list[tuple[int, int]]] = {}
    for run in sorted(by_run.values(), key=lambda r: _ended(r.get("ended"))):
        usage = Usage.from_mapping(run)
        runs.setdefault(str(run["command"]), []).append((usage.total(counted), _micros(run.get("usd_micros"))))
    return quarters, runs


def _ended(value: object) -> float:
    return value.timestamp() if isinstance(value, datetime) else 0.0


def _micros(value: object) -> int:
    return count_value(value)


# --- the snippet --------------------------------------------------------------------------------


def _value_text(p: Proposal) -> str:
    if isinstance(p.value, str):
        return json.dumps(p.value)
    if p.key.startswith("usd"):
        return f"{p.value:g}"
    return json.dumps(tokens_text(int(p.value)))


def to_toml(s: Suggestion, /) -> str:
    """The suggestion as a ``budget.toml`` snippet: every value with its reason on its line."""
    out = [
        f"# claude-budget suggest: budgets from {s.days} day{'s' if s.days != 1 else ''} of history, "
        f"{HEADROOM * 100:.0f} % above the p90 seen.",
        "# Nothing was changed: review, then copy what you want into .claude/budget.toml.",
    ]
    if s.skipped:
        out.append(f"# ({s.skipped} unreadable line{'s' if s.skipped != 1 else ''} of the run log left out)")
    tables: dict[str, list[str]] = {}
    for p in s.overall.proposals:
        line = f"{p.key} = {_value_text(p)}" + (f"  # {p.reason}" if p.reason else "")
        tables.setdefault(p.table, []).append(line)
    for note in s.overall.notes:
        out.append(f"# {note}")
    for table, lines in tables.items():
        out += ["", f"[{table}]", *lines]
    for name, c in s.commands.items():
        table = f"commands.{json.dumps(name, ensure_ascii=False)}"
        body = []
        if c.per_run is not None:
            p50t, p90t, p50u, p90u = c.per_run
            money = f", {dollars_text(p50u)} / {dollars_text(p90u)}" if p90u else ""
            body.append(
                f"# {c.runs} runs: p50 / p90 per run {tokens_text(p50t)} / {tokens_text(p90t)} tokens{money} "
                '(what preflight = "p90" expects of the next one)'
            )
        body += [f"# {note}" for note in c.notes]
        body += [f"{p.key} = {_value_text(p)}  # {p.reason}" for p in c.proposals]
        if c.proposals:
            out += ["", f"[{table}]", *body]
        else:
            out += ["", f"# {name}: nothing to propose yet", *body]
    if not s.overall.proposals and not any(c.proposals for c in s.commands.values()):
        out += ["", "# Not enough history for any budget yet: use Claude Code for a few days and ask again."]
    return "\n".join(out) + "\n"
