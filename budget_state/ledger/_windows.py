"""Usage by time, for windowed limits: minute and quarter-hour buckets, and window arithmetic.

Pure: every function takes ``now``; nothing here reads the clock or a file.

Each scope (``overall``, ``/review-pr``, ``@<orchestration>``) keeps two bucket strings in the ledger:

- ``[minutes]``: one bucket per minute that saw usage, kept for the longest rolling window (at least
  :data:`MINUTES_KEPT`). A rolling window of N minutes is the sum of the last N minute buckets, the
  current one included: exact to the minute, no weighted sliding-window approximation.
- ``[quarters]``: one bucket per quarter hour, kept for :data:`QUARTERS_KEPT`. Every time zone's
  offset is a whole number of quarter hours, so a calendar day, week or month in any zone is an
  exact sum of them.

A bucket string is ``"<minute>:<input>,<output>,<cache_creation>,<cache_read>,<usd_micros> …"``
(``minute``: minutes since the Unix epoch, UTC; for quarters, the quarter's first minute), sorted
by time. The ledger writes it as a TOML literal string: parsing a literal string costs a tenth
of parsing the same numbers as TOML arrays, which keeps a busy day of buckets cheap for a hook.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

from .._model import CATEGORIES, MAX_COUNT, Usage, Window, count_value

if TYPE_CHECKING:
    from datetime import tzinfo

    from ._state import LedgerState

MINUTES_KEPT = 24 * 60  # minute buckets kept at least this long (longer if a rolling window needs it)
MAX_ROLLING = 31 * 24 * 60  # the longest rolling window allowed: a month of minute buckets
QUARTERS_KEPT = 36 * 24 * 4  # quarter hours kept: a calendar month in any zone, and some
_FIELDS = (*CATEGORIES, "usd_micros")
_CALENDAR = ("day", "week", "month")
_UNITS = {"m": 1, "min": 1, "h": 60, "d": 1440}
_SPAN = re.compile(r"\s*(\d+(?:\.\d+)?)\s*(m|min|h|d)\s*", re.IGNORECASE)


class WindowError(ValueError):
    """A window that is not one (the message says what is accepted)."""


def parse_window(value: object, /) -> Window:
    """``"1h"``, ``"90m"``, ``"5h"``, ``"2d"`` (rolling) or ``"day"``, ``"week"``, ``"month"`` (calendar).

    ``"hour"`` is a rolling hour (what the original plans called the hourly budget).
    :raises WindowError: for anything else.
    """
    text = value.strip().lower() if isinstance(value, str) else None
    if text in _CALENDAR:
        return Window("calendar", unit=text)
    if text == "hour":
        return Window("rolling", 60)
    match = _SPAN.fullmatch(text) if text else None
    if match is not None:
        minutes = float(match.group(1)) * _UNITS[match.group(2).lower()]
        if minutes == int(minutes) and 1 <= minutes <= MAX_ROLLING:
            return Window("rolling", int(minutes))
        if minutes != int(minutes):
            raise WindowError("is not a whole number of minutes")
        raise WindowError(f"is outside 1m to {MAX_ROLLING // 1440}d")
    raise WindowError('is not a window — use a span like "1h", "90m", "5h", "24h", or day, week, month')


def minute_of(when: datetime, /) -> int:
    """Minutes since the epoch (UTC) of an aware datetime."""
    return int(when.timestamp() // 60)


def at_minute(minute: int, /) -> datetime:
    return datetime.fromtimestamp(minute * 60, timezone.utc)


class Buckets:
    """One scope's buckets of one resolution: ``{minute: [input, output, cc, cr, usd_micros]}``."""

    __slots__ = ("rows",)

    def __init__(self, rows: dict[int, list[int]] | None = None) -> None:
        self.rows: dict[int, list[int]] = rows if rows is not None else {}

    @classmethod
    def parse(cls, text: object, /, since: int | None = None) -> Buckets:
        """From the ledger's string; what a hand edit broke is dropped, never raised.

        ``since``: only the buckets from that minute on (a reader that sums a window skips the rest
        of a day's buckets unparsed).
        """
        rows: dict[int, list[int]] = {}
        if not isinstance(text, str):
            return cls(rows)
        width = len(_FIELDS)
        for item in text.split():
            minute, _, values = item.partition(":")
            try:
                key = int(minute)
                if since is not None and key < since:
                    continue
                numbers = list(map(int, values.split(",")))
            except ValueError:
                continue
            if len(numbers) != width or min(numbers) < 0 or max(numbers) > MAX_COUNT:
                continue
            row = rows.get(key)
            if row is None:
                rows[key] = numbers  # the usual case: each minute once (adding to zeros is this row)
            else:
                for i, n in enumerate(numbers):
                    row[i] = min(row[i] + n, MAX_COUNT)
        return cls(rows)

    def format(self) -> str:
        return " ".join(f"{m}:{','.join(map(str, self.rows[m]))}" for m in sorted(self.rows))

    def add(self, minute: int, usage: Mapping[str, Any], /) -> None:
        """Add counts (``input``…, ``usd_micros``; a correction may be negative) to one bucket; none goes below 0."""
        row = self.rows.setdefault(minute, [0] * len(_FIELDS))
        for i, field in enumerate(_FIELDS):
            v = usage.get(field, 0)
            if isinstance(v, int) and not isinstance(v, bool) and -MAX_COUNT <= v <= MAX_COUNT:
                row[i] = max(0, min(row[i] + v, MAX_COUNT))
        if not any(row):
            del self.rows[minute]

    def _added(self, minute: int, usage: Mapping[str, Any]) -> str:
        """This one-bucket set's text after adding usage at ``minute`` ("" if it came to nothing)."""
        self.add(minute, usage)
        return self.format()

    def trim(self, oldest: int, /) -> None:
        """Drop buckets before minute ``oldest``."""
        for m in [m for m in self.rows if m < oldest]:
            del self.rows[m]

    def total(self, since: int, until: int | None = None, /) -> tuple[Usage, int]:
        """Usage and micro-dollars of the buckets from minute ``since`` (included) to ``until`` (excluded)."""
        sums = [0] * len(_FIELDS)
        for m, row in self.rows.items():
            if m >= since and (until is None or m < until):
                for i, v in enumerate(row):
                    sums[i] += v
        return Usage(*sums[:4]), sums[4]

    def series(self, since: int, metric: str, counted: tuple[str, ...] = CATEGORIES, /) -> list[tuple[int, int]]:
        """``[(minute, value)]`` from ``since`` on, sorted: tokens (the counted categories) or micro-dollars."""
        return [(m, _value(self.rows[m], metric, counted)) for m in sorted(self.rows) if m >= since]


def _value(row: list[int], metric: str, counted: tuple[str, ...]) -> int:
    if metric == "usd":
        return row[4]
    return sum(row[i] for i, c in enumerate(CATEGORIES) if c in counted)


def quarter_of(minute: int, /) -> int:
    return minute - minute % 15


# --- windows -----------------------------------------------------------------------------------


def local_zone(now: datetime, zone: tzinfo | None, /) -> datetime:
    """``now`` in the configured zone, or the machine's own when None."""
    return now.astimezone(zone) if zone is not None else now.astimezone()


def _local_midnight(day: datetime, zone: tzinfo | None) -> datetime:
    """The start of ``day``'s date in the zone, as an aware UTC time (DST-safe)."""
    naive = datetime(day.year, day.month, day.day)
    if zone is not None:
        return naive.replace(tzinfo=zone).astimezone(timezone.utc)
    import time  # the machine's zone: mktime knows its DST rules

    return datetime.fromtimestamp(time.mktime(naive.timetuple()), timezone.utc)


def period_start(window: Window, now: datetime, zone: tzinfo | None = None, /) -> datetime:
    """When the window that holds ``now`` began: ``now`` minus the span, or the calendar boundary."""
    if window.kind != "calendar":
        return now - timedelta(minutes=window.minutes - 1, seconds=now.second, microseconds=now.microsecond)
    local = local_zone(now, zone)
    if window.unit == "week":
        local = local - timedelta(days=local.weekday())
    elif window.unit == "month":
        local = local.replace(day=1)
    return _local_midnight(local, zone)


def next_boundary(window: Window, now: datetime, zone: tzinfo | None = None, /) -> datetime | None:
    """The next calendar boundary (a new day, week or month); None for a rolling window."""
    if window.kind != "calendar":
        return None
    local = local_zone(now, zone)
    if window.unit == "day":
        nxt = local + timedelta(days=1)
    elif window.unit == "week":
        nxt = local + timedelta(days=7 - local.weekday())
    else:
        nxt = (local.replace(day=28) + timedelta(days=4)).replace(day=1)
    return _local_midnight(nxt, zone)


def start_minute(window: Window, now: datetime, zone: tzinfo | None = None, /) -> int:
    """The first minute bucket inside the window at ``now``."""
    if window.kind != "calendar":
        return minute_of(now) - window.minutes + 1
    return minute_of(period_start(window, now, zone))


def frees_at(
    window: Window,
    buckets: Buckets,
    used_in_window: int,
    limit: int,
    metric: str,
    counted: tuple[str, ...],
    now: datetime,
    /,
) -> datetime | None:
    """A rolling window at or over ``limit``: the first minute at which enough usage has left it to be
    under the limit again. None when it is under already, or nothing in it ever leaves (never, here)."""
    if window.kind == "calendar" or used_in_window < limit:
        return None
    first = minute_of(now) - window.minutes + 1
    remaining = used_in_window
    for m, value in buckets.series(first, metric, counted):
        remaining -= value
        if remaining < limit:
            return at_minute(m + window.minutes)  # bucket m leaves the window then
    return None


# --- the ledger's bucket tables -------------------------------------------------------------------

MINUTES = "minutes"
QUARTERS = "quarters"


def scope_buckets(state: LedgerState, scope: str, /, *, table: str = MINUTES, since: int | None = None) -> Buckets:
    """A scope's buckets as the ledger holds them (parsed on each call: callers keep the result);
    with ``since``, only those from that minute on (for reading, never to write back)."""
    return Buckets.parse(state.buckets(table).get(scope), since)


def charge(state: LedgerState, scopes: list[str], now: datetime, usage: Mapping[str, Any], /) -> None:
    """Add usage (tokens by category, ``usd_micros``) to the current minute and quarter of each scope."""
    if not any(isinstance(v, int) and v for v in usage.values()):
        return
    minute = minute_of(now)
    for table, key in ((MINUTES, minute), (QUARTERS, quarter_of(minute))):
        tables = state.buckets(table)
        for scope in scopes:
            tables[scope] = _add_last(tables.get(scope), key, usage)
    for scope in scopes:  # a feature's scope ("@<orchestration>") keeps its own table
        found = state.scope(scope) if not scope.startswith("@") else None
        if found is not None and (found.spent_at is None or now > found.spent_at):
            found.spent_at = now


def _add_last(text: object, minute: int, usage: Mapping[str, Any]) -> str:
    """``text`` with usage added at ``minute``: usage lands in the newest bucket, so the string is
    only cut at its last entry (a whole parse only when the clock went back, or the text is odd)."""
    if isinstance(text, str) and text:
        head, _, last = text.rpartition(" ")
        key = last.partition(":")[0]
        if key.isdigit() and int(key) <= minute:
            if int(key) < minute:
                return f"{text} {Buckets({minute: [0] * len(_FIELDS)})._added(minute, usage)}"
            b = Buckets.parse(last)
            if b.rows:
                merged = b._added(minute, usage)
                return f"{head} {merged}".strip() if merged else head
    b = Buckets.parse(text)
    b.add(minute, usage)
    return b.format()


def trim_buckets(state: LedgerState, now: datetime, *, minutes_kept: int | Callable[[], int] = MINUTES_KEPT) -> None:
    """Drop what no window can need any more; a scope left without buckets loses its entry.
    Of a table kept a file per scope (``_store.Parts``), only the scopes read in this change.

    ``minutes_kept`` may be a call: it is made only when some minute bucket is older than a day.
    """
    minute = minute_of(now)
    for table in (MINUTES, QUARTERS):
        tables = state.buckets(table)
        keep = QUARTERS_KEPT * 15 if table == QUARTERS else MINUTES_KEPT
        # a table kept a file per scope says which scopes this change read: only those can have grown
        loaded = getattr(tables, "loaded", None)
        for scope in loaded() if callable(loaded) else list(tables):
            text = tables.get(scope)
            if text is None:
                continue
            first = text.split(":", 1)[0]
            if first.isdigit() and int(first) >= minute - keep:
                continue  # the oldest bucket is still needed: nothing to drop (the common case, unparsed)
            if table == MINUTES and callable(minutes_kept):
                minutes_kept = minutes_kept()
            if table == MINUTES:
                keep = max(MINUTES_KEPT, int(minutes_kept))  # type: ignore[arg-type]  # resolved just above
                if first.isdigit() and int(first) >= minute - keep:
                    continue
            b = Buckets.parse(text)
            b.trim(minute - keep)
            if b.rows:
                tables[scope] = b.format()
            else:
                del tables[scope]


def count_of(row: Mapping[str, Any], /) -> dict[str, int]:
    """The counts of a ledger table (a run, a scope) as a bucket takes them."""
    return {f: count_value(row.get(f)) for f in _FIELDS}
