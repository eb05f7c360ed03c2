"""One instance of a fleet: the command to run, its priority and the budgets the orchestrator sets."""

from __future__ import annotations

from typing import NamedTuple


class Instance(NamedTuple):
    """One ``claude -p "/command args"`` to run."""

    command: str  # "/gitcommitgardener"
    args: str = ""
    priority: int = 1  # 1 starts first
    order: int = 0  # position in the file, then on the command line: ties of priority start in it
    tokens: int | None = None  # the per-command token limit the orchestrator sets (None: the frontmatter's)
    usd_micros: int | None = None
    budget_enabled: bool = True  # False: no per-command limit at all (token_budget_enabled: false)
    name: str | None = None
    tokens_from: str | None = None  # where ``tokens`` was set: "--command-budget", "config file …"
    usd_from: str | None = None

    @property
    def prompt(self) -> str:
        return f"{self.command} {self.args}".rstrip()
