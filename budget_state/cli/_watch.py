"""``claude-budget watch``: the status, redrawn as the ledger changes.

On a terminal the status (the same table ``claude-budget status`` prints) is redrawn in place with
rich's ``Live``; rich is imported here only, never on the hook's path. Elsewhere (a pipe, a log
file) it prints one status block per interval, each under a ``--- <time> ---`` line.

Cheap to leave running: each tick is one ``stat`` of the ledger; the status is rebuilt only when
the ledger's modification time or size changed, or every :data:`REFRESH` seconds (windows and
forecasts move with the clock even when nothing is spent).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from typing import TYPE_CHECKING, TextIO

from .._api import build_snapshot
from .._errors import BudgetError
from .._render import render_status

if TYPE_CHECKING:
    from .._api import Context

REFRESH = 15.0  # seconds: rebuilt at least this often anyway (the clock moves windows and forecasts)


def ledger_stamp(path: os.PathLike[str] | str, /) -> tuple[int, int] | None:
    """What changes when a writer replaces the ledger: (mtime in ns, size); None when there is none."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_mtime_ns, st.st_size


def render(ctx: Context, /, *, width: int, color: bool) -> str:
    """The status table now, or the problem that keeps it from being read (the watch goes on)."""

    try:
        snap = ctx.ledger.consistent(lambda state: build_snapshot(ctx, state))
    except BudgetError as e:  # a ledger a writer is repairing, a config being edited: say so, keep watching
        return f"claude-budget: {e}\n"
    return render_status(snap, width=width, color=color)


def changes(
    ctx: Context, /, *, interval: float, clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None]
) -> Iterator[bool]:
    """Yields every ``interval`` seconds: True when the status should be rebuilt (the ledger changed,
    or :data:`REFRESH` seconds passed), else False. The first tick is always True."""
    stamp: object = object()
    built = -REFRESH
    while True:
        now_stamp = ledger_stamp(ctx.ledger.path)
        now = clock()
        rebuild = now_stamp != stamp or now - built >= REFRESH
        if rebuild:
            stamp, built = now_stamp, now
        yield rebuild
        sleep(interval)


def _clock_line() -> str:
    return datetime.now(timezone.utc).astimezone().strftime("%H:%M:%S")


def watch_plain(ctx: Context, /, *, interval: float, out: TextIO, width: int, ticks: int | None = None) -> None:
    """One block per interval, each under a ``--- HH:MM:SS ---`` line (no colour, no cursor moves)."""
    text = ""
    for n, rebuild in enumerate(changes(ctx, interval=interval, sleep=time.sleep)):
        if ticks is not None and n >= ticks:
            return
        if rebuild:
            text = render(ctx, width=width, color=False)
        out.write(f"--- {_clock_line()} ---\n{text}\n")
        out.flush()


def watch_live(ctx: Context, /, *, interval: float, color: bool) -> None:
    """Redraw in place on a terminal until Ctrl-C (the caller turns that into exit 0)."""
    from rich.console import Console
    from rich.live import Live
    from rich.text import Text

    console = Console(no_color=not color, highlight=False)
    footer = f"watching {ctx.ledger.path} every {interval:g} s — Ctrl-C to stop"

    def view(text: str) -> Text:
        body = Text.from_ansi(text.rstrip("\n"))
        body.append(f"\n\nUpdated {_clock_line()}  ·  {footer}", style="dim")
        return body

    width = 0
    with Live(console=console, auto_refresh=False, transient=False, redirect_stdout=False) as live:
        for rebuild in changes(ctx, interval=interval, sleep=time.sleep):
            if rebuild or console.width != width:  # a resized terminal gets bars of its new width
                width = console.width
                live.update(view(render(ctx, width=width, color=color)), refresh=True)
