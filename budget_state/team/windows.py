"""Window labels of team budgets, as ``team set --per`` takes them and the database stores them.

The same words as local budgets (``budget_state._model.Window``): ``day``, ``week`` (from Monday),
``month`` in a time zone, or a rolling span such as ``5h``, ``90m``, ``7d``. Pure.
"""

from __future__ import annotations

import re

from budget_state._model import Window

CALENDAR = ("day", "week", "month")
_SPAN = re.compile(r"([0-9]{1,6})\s*(m|min|h|d)", re.ASCII)
_MINUTES = {"m": 1, "min": 1, "h": 60, "d": 1440}
MAX_ROLLING = 35 * 1440  # rolling spans are summed from minute rows: keep them bounded


def parse_window(text: str, /) -> Window | None:
    """``day``/``week``/``month``, a rolling span (``5h``), or ``total``/``none`` for cumulative (None).

    :raises ValueError: saying what is accepted.
    """
    word = text.strip().lower()
    if word in ("", "total", "none", "cumulative"):
        return None
    if word in CALENDAR:
        return Window("calendar", unit=word)
    if word == "hour":
        return Window("rolling", minutes=60)
    match = _SPAN.fullmatch(word)
    if match:
        minutes = int(match.group(1)) * _MINUTES[match.group(2)]
        if 0 < minutes <= MAX_ROLLING:
            return Window("rolling", minutes=minutes)
    raise ValueError(
        f'"{text}" is not a window — use day, week or month (in --tz), a rolling span such as 5h, 90m or 7d, '
        "or total for a budget that never resets"
    )


def label(window: Window | None, /) -> str:
    return "total" if window is None else window.label


def from_row(kind: str, minutes: int, unit: str) -> Window | None:
    """The window a database row describes (``kind`` is ``total``, ``rolling`` or ``calendar``)."""
    if kind == "calendar":
        return Window("calendar", unit=unit)
    if kind == "rolling":
        return Window("rolling", minutes=minutes)
    return None
