"""Window labels of team budgets, as ``team set --per`` takes them and the database stores them.

The same words as local budgets (``budget_state._model.Window``): ``day``, ``week`` (from Monday),
``month`` in a time zone, or a rolling span such as ``5h``, ``90m``, ``7d``. Pure.
"""

from __future__ import annotations

from budget_state._model import Window


def parse_window(text: str, /) -> Window | None:
    """What local budgets accept (``budget_state.ledger._windows.parse_window``), or ``total``/``none`` for a
    cumulative budget (None).

    :raises ValueError: saying what is accepted.
    """
    from budget_state.ledger._windows import WindowError
    from budget_state.ledger._windows import parse_window as local_window

    word = text.strip().lower()
    if word in ("", "total", "none", "cumulative"):
        return None
    try:
        return local_window(word)
    except WindowError as e:
        raise ValueError(f'"{text}" {e}, or total for a budget that never resets') from None


def label(window: Window | None, /) -> str:
    return "total" if window is None else window.label


def from_row(kind: str, minutes: int, unit: str) -> Window | None:
    """The window a database row describes (``kind`` is ``total``, ``rolling`` or ``calendar``)."""
    if kind == "calendar":
        return Window("calendar", unit=unit)
    if kind == "rolling":
        return Window("rolling", minutes=minutes)
    return None
