"""The report while the fleet runs: printed every interval (``report``), redrawn in place (``live``), or not at all."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, TextIO

from .._terminal import terminal_width, use_color
from ..ledger._ledger import utcnow
from ._report import build, render

if TYPE_CHECKING:
    from ._run import Orchestration

LIVE_EVERY = 1.0  # seconds between two redraws in live mode


class Reporter:
    """Prints the report every interval (report), redraws it in place (live), or stays quiet (off)."""

    def __init__(self, orch: Orchestration, *, live: bool) -> None:
        self.orch = orch
        self.live = live
        o = orch.options
        self.mode = "report" if o.dashboard == "live" and not live else o.dashboard
        self.every = LIVE_EVERY if live else o.interval
        self.next = time.monotonic() + (0 if live else o.interval)
        self.lines = 0

    def text(self) -> str:
        orch = self.orch
        now = utcnow().astimezone()  # the ledger's clock (CLAUDE_BUDGET_TIME_OFFSET moves it), shown local
        elapsed = time.monotonic() - orch.started_at
        view = orch.ctx.ledger.consistent(
            lambda state: build(
                state,
                orch.id,
                orch.results,
                now=now,
                elapsed=elapsed,
                counted=orch.ctx.config.counted,
                mode=orch.options.mode_label or orch.mode,  # as the user gave it: stop-new, kill-running
                slots=orch.options.max_concurrent,
            )
        )
        width = max(60, min(terminal_width(stream=orch.out, env=orch.env), 160))
        color = use_color("auto", stream=orch.out, env=orch.env)
        return render(view, width=width, color=color, visuals=orch.options.visuals)

    def tick(self, now: float) -> None:
        if self.mode == "off" or now < self.next:
            return
        self.next = now + self.every
        self.show()

    def show(self) -> None:
        text = self.text()
        out = self.orch.out
        if self.live and self.lines:
            out.write(f"\x1b[{self.lines}F\x1b[J")  # back to the first line of the last report, clear below
        out.write(text if self.live else text + "\n")
        out.flush()
        self.lines = text.count("\n")

    def final(self) -> None:
        if self.mode != "off":
            self.show()


def isatty(stream: TextIO) -> bool:
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())
