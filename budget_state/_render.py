"""The ASCII status ``/budget`` and ``claude-budget status`` print. Pure: width and colour come in."""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping
from datetime import datetime

from budget_state._model import CATEGORIES, LimitStatus, ScopeStatus, Snapshot, dollars, slash_name
from budget_state.budgets._units import humanize

BAR_MIN, BAR_MAX = 10, 40
_RESET = "\x1b[0m"
_COLORS = {
    "ok": "\x1b[32m",  # green
    "warning": "\x1b[33m",  # yellow
    "critical": "\x1b[31m",  # red
    "exceeded": "\x1b[31m",
}
_EXCEEDED_COLOR = "\x1b[1;31m"  # bold red
_SPENT_FLAGS = ("EXCEEDED", "SPENT")  # past the limit, exactly at it: both are refused in block mode
_NOTE_COLOR = "\x1b[33m"
_INDENT = "  "
_GAP = "  "
_ZWJ = "\u200d"  # joins an emoji sequence (a command may be named 👩‍💻dev): harmless, and no column of its own


def _width(text: str) -> int:
    """Columns ``text`` takes in a terminal: wide East Asian characters count 2, combining marks 0."""
    if text.isascii():
        return len(text)
    return sum(
        0 if unicodedata.combining(c) or c == _ZWJ else 2 if unicodedata.east_asian_width(c) in "WF" else 1
        for c in text
    )


def _ljust(text: str, width: int) -> str:
    return text + " " * (width - _width(text))


def _rjust(text: str, width: int) -> str:
    return " " * (width - _width(text)) + text


def _safe(text: str) -> str:
    """Names and messages come from files anyone can edit: never let them reach the terminal raw."""
    return text if text.isprintable() else "".join(c if c.isprintable() or c == _ZWJ else "?" for c in text)


def _paint(text: str, code: str | None, color: bool) -> str:
    return f"{code}{text}{_RESET}" if color and code and text else text


class _Row:
    """The cells of one scope, plain text, so columns can be measured before colour is added."""

    def __init__(self, name: str, scope: ScopeStatus) -> None:
        self.name = _safe(name)
        self.scope = scope
        self.level = scope.level
        self.used, self.limit = scope.used, scope.limit
        self.error = scope.error
        pct = scope.whole_percent
        if scope.limit is None or pct is None:
            self.amount = f"{humanize(scope.used)} used"
            self.percent = ""
        else:
            self.amount = f"{humanize(scope.used)}/{humanize(scope.limit)}"
            self.percent = f"{pct}%"
        flags = ["EXCEEDED"] if scope.over else ["SPENT"] if scope.spent else []
        if scope.usd_micros:
            flags.append(dollars(scope.usd_micros))
        if scope.runs:
            flags.append(f"({scope.runs} run{'' if scope.runs == 1 else 's'})")
        self.flags = flags
        # a scope whose limits are all dollars or windows: its token row is a total, not "no budget"
        self.empty = "" if scope.limit is None and any(not _plain(x) for x in scope.limits) else "no budget"

    def render(self, widths: tuple[int, int, int], bar: int, color: bool) -> list[str]:
        name_w, amount_w, percent_w = widths
        code = _COLORS.get(self.level)
        if self.percent and self.limit:
            fill = max(0, min(bar, self.used * bar // self.limit))
            meter = "[" + _paint("#" * fill, code, color) + "-" * (bar - fill) + "]"
        else:
            meter = _ljust(self.empty, bar + 2)
        cells = [_ljust(self.name, name_w), meter, _rjust(self.amount, amount_w)]
        if percent_w:
            cells.append(" " * (percent_w - len(self.percent)) + _paint(self.percent, code, color))
        cells.extend(_paint(f, _EXCEEDED_COLOR, color) if f in _SPENT_FLAGS else f for f in self.flags)
        lines = [(_INDENT + _GAP.join(cells)).rstrip()]
        if self.error:
            lines.append(_INDENT * 3 + _paint(_safe(self.error), _NOTE_COLOR, color))
        return lines


def _plain(limit: LimitStatus) -> bool:
    return limit.metric == "tokens" and limit.window is None


class _LimitRow(_Row):
    """A scope's other limit — dollars, or a window — under its row: ``  $ today  [###--]  $1.20/$2.50  48%``."""

    def __init__(self, limit: LimitStatus, *, resets: str | None) -> None:
        self.name = f"  {_limit_name(limit)}"
        self.level = limit.level
        self.used, self.limit = limit.used, limit.limit
        self.error = None
        self.empty = ""
        show = dollars if limit.metric == "usd" else humanize
        self.amount = f"{show(limit.used)}/{show(limit.limit)}"
        self.percent = f"{limit.whole_percent}%"
        flags = ["EXCEEDED"] if limit.over else ["SPENT"] if limit.spent else []
        if resets:
            flags.append(resets)
        self.flags = flags


def _limit_name(limit: LimitStatus) -> str:
    unit = "$" if limit.metric == "usd" else "tokens"
    return f"{unit} {limit.window.phrase if limit.window is not None else 'in all'}"


def _outlook(scope: ScopeStatus, now: datetime | None) -> list[str]:
    """The lines under a scope's rows: its burn rate and when its tightest limit runs out; per run costs.

    Only with ``now`` (they move with the clock, so the golden output, made without it, stays put).
    """
    if now is None:
        return []
    from budget_state.budgets._budgets import clock, when

    lines = []
    f = scope.forecast
    if f is not None and (f.tokens_per_min > 0 or f.usd_per_hour > 0):
        rate = f"{humanize(round(f.tokens_per_min))} tokens/min"
        if f.usd_per_hour > 0:
            rate += f", {dollars(round(f.usd_per_hour * 1_000_000))}/h"
        limit = next((x for x in scope.limits if x.key == f.limit_key), None)
        line = f"burning {rate}"
        if limit is not None and f.exhausts_at is not None and not limit.spent:
            line += f" — {_limit_name(limit)} runs out at {when(f.exhausts_at, now, None)}"
            if f.exhausts_p10 is not None and f.exhausts_p90 is not None and f.exhausts_p10 != f.exhausts_p90:
                line += f", likely {clock(f.exhausts_p10, now, None)}–{clock(f.exhausts_p90, now, None)}"
        elif scope.limits and not any(x.spent for x in scope.limits):
            line += " — no limit runs out before it frees up"
        lines.append(line)
    p = scope.per_run
    if p is not None and p.runs:
        runs = f"{p.runs} run{'' if p.runs == 1 else 's'}"
        lines.append(
            f"per run: {humanize(p.p50_tokens)} tokens, {dollars(p.p50_usd_micros)} typical (p50);"
            f" {humanize(p.p90_tokens)}, {dollars(p.p90_usd_micros)} at p90 — last {runs}"
        )
    return lines


def _rows(name: str, scope: ScopeStatus, now: datetime | None) -> list[_Row]:
    rows: list[_Row] = [_Row(name, scope)]
    for limit in scope.limits:
        if _plain(limit):
            continue
        resets = None
        if limit.resets_at is not None and now is not None:
            from budget_state.budgets._budgets import when

            verb = "resets" if limit.window is not None and limit.window.kind == "calendar" else "frees"
            resets = f"{verb} {when(limit.resets_at, now, None)}"
        rows.append(_LimitRow(limit, resets=resets))
    return rows


def _bar_width(width: int, rows: list[_Row], widths: tuple[int, int, int]) -> int:
    """What is left of ``width`` for the bar once the other columns are laid out, within 10..40."""
    name_w, amount_w, percent_w = widths
    flags_w = max((_width(_GAP.join(r.flags)) for r in rows), default=0)
    rest = len(_INDENT) + name_w + len(_GAP) + 2 + len(_GAP) + amount_w
    rest += (len(_GAP) + percent_w if percent_w else 0) + (len(_GAP) + flags_w if flags_w else 0)
    return max(BAR_MIN, min(BAR_MAX, width - rest))


def _plan_lines(snap: Snapshot, commands: Mapping[str, ScopeStatus], now: datetime | None) -> list[str]:
    """The plan's windows (Claude Code's own percentages) and each command's estimated share."""
    from .budgets._plan import NO_PLAN

    plan = snap.plan
    if plan is None:
        if snap.quota_guard is None:
            return []
        return ["", f"Plan windows: {NO_PLAN} (an API-key login, or Claude Code before 2.1.251) — nothing is held back"]
    from .budgets._budgets import when

    at = now or snap.taken_at
    lines = ["", "Plan windows (Claude Code's own figures):"]
    for w in plan.windows():
        text = f"{w.label} {w.used_percentage:g}%"
        if at is not None and w.stale(at):
            text += " — stale: it has reset since (counts as 0%)"
        elif at is not None:
            text += f", resets at {when(w.resets_at, at, None)}"
            out = w.runs_out_at(at)
            if out is not None:
                text += f", runs out at ~{when(out, at, None)}"
        if w.name == "five_hour" and snap.quota_guard is not None:
            text += f" (quota_guard {snap.quota_guard:g}%)"
        lines.append(_INDENT + _safe(text))
    shares = []
    for name in commands:
        use = snap.quota.get(name)
        if use is None or (not use.five_hour and not use.seven_day and use.p50 is None):
            continue
        per = f", per run p50 {use.p50:g}% / p90 {use.p90:g}%" if use.p50 is not None else ""
        shares.append(f"{name} {use.five_hour:.1f}% of 5-hour, {use.seven_day:.1f}% of 7-day{per}")
    if shares:
        lines.append(_INDENT + "Estimated share this window:")
        lines.extend(_INDENT * 2 + _safe(x) for x in shares)
    return lines


def render_status(
    snap: Snapshot, /, *, width: int = 80, color: bool = False, only: str | None = None, now: datetime | None = None
) -> str:
    """The status table: a header, the overall row, one row per command by name, then a footer.

    :param width: the terminal width; the bars stretch between 10 and 40 columns to fit it.
    :param color: add ANSI colours by level (green, yellow, red); never set this for a non-tty.
    :param only: a command name: show the overall row and that command alone.
    :param now: for "resets at … (in …)"; without it resets are not shown (golden output stays put).
    """
    header = f"Token budgets — mode: {snap.mode}"
    if tuple(snap.counted) != CATEGORIES:
        header += f" — counting {', '.join(snap.counted)}"
    commands = dict(sorted(snap.commands.items()))
    notes: list[str] = []
    if only is not None:
        wanted = slash_name(only)
        commands = {k: v for k, v in commands.items() if k == wanted}
        if not commands:
            notes.append(f"{_safe(wanted)} has no budget and no recorded usage")
    elif not any(s.limit is not None or s.limits for s in commands.values()):
        notes.append(
            "No command has a budget yet — add tokenBudget: 50000 to the frontmatter of a command"
            " (.claude/commands/<name>.md)"
        )
    groups = [_rows("overall", snap.overall, now), *(_rows(n, sc, now) for n, sc in commands.items())]
    rows = [r for g in groups for r in g]
    widths = (
        max(_width(r.name) for r in rows),
        max(_width(r.amount) for r in rows),
        max(_width(r.percent) for r in rows),
    )
    bar = _bar_width(width, rows, widths)
    lines = [header, ""]
    for group in groups:
        for row in group:
            lines.extend(row.render(widths, bar, color))
        lines.extend(_INDENT * 3 + _safe(x) for x in _outlook(group[0].scope, now))
    lines.extend(_plan_lines(snap, commands, now))
    if notes:
        lines.extend(["", *notes])
    if snap.unpriced:
        models = ", ".join(_safe(m) for m in snap.unpriced)
        notes = [f'No price for {models}: its tokens count, its dollars do not (add [prices."<model>"] to budget.toml)']
        lines.extend(["", *(_paint(n, _NOTE_COLOR, color) for n in notes)])
    if snap.warnings:
        lines.append("")
        lines.extend(_paint(f"warning: {_safe(w)}", _NOTE_COLOR, color) for w in snap.warnings)
    lines.extend(["", f"Ledger: {_safe(snap.ledger)}", "Reset a command with: claude-budget reset /name"])
    return "\n".join(lines) + "\n"
