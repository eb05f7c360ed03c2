"""What each instance did: its state, what it spent, the summary table, the ``--json-out`` file.

The tokens and dollars are the ledger's (what the hooks counted for the instance's session,
under the orchestration's scope); what Claude Code itself reported (``modelUsage``,
``total_cost_usd`` of its ``-p`` JSON) is kept beside them as ``reported``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

from .._model import CATEGORIES, Usage, dollars
from .._render import _ljust, _safe, _width
from ..budgets._units import humanize

JSON_VERSION = 1
STATES = ("queued", "waiting", "running", "done", "skipped", "stopped", "failed")
_REPORTED = {
    "input": "inputTokens",
    "output": "outputTokens",
    "cache_creation": "cacheCreationInputTokens",
    "cache_read": "cacheReadInputTokens",
}


class Result(NamedTuple):
    command: str
    args: str
    priority: int
    session: str
    state: str = "queued"
    exit_code: int | None = None
    usage: Usage = Usage()
    usd_micros: int = 0
    seconds: float | None = None
    reason: str | None = None
    reported: Mapping[str, Any] | None = None  # from Claude Code's own JSON result
    name: str | None = None
    log: str | None = None
    started: float | None = None  # seconds after the orchestration began
    requests: int = 0  # API responses its hooks counted
    started_at: str | None = None  # ISO 8601, UTC
    ended_at: str | None = None
    max_budget_usd: float | None = None  # the --max-budget-usd it was started with (Claude Code's own cap)

    @property
    def label(self) -> str:
        return self.name or f"{self.command} {self.args}".rstrip()

    def to_json(self, counted: tuple[str, ...]) -> dict[str, Any]:
        return {
            "command": self.command,
            "args": self.args,
            "name": self.name,
            "priority": self.priority,
            "state": self.state,
            "exit_code": self.exit_code,
            "tokens": {**self.usage.as_dict(), "total": self.usage.total(counted)},
            "usd": round(self.usd_micros / 1_000_000, 6),
            "started_seconds": None if self.started is None else round(self.started, 3),
            "duration_seconds": None if self.seconds is None else round(self.seconds, 3),
            "started_at": self.started_at,
            "ended_at": self.ended_at,
            "requests": self.requests,
            "max_budget_usd": self.max_budget_usd,
            "session_id": self.session,
            "reason": self.reason,
            "reported": dict(self.reported) if self.reported is not None else None,
            "log": self.log,
        }


def parse_output(text: str, /) -> dict[str, Any] | None:
    """The JSON result ``claude -p --output-format json`` printed (the last JSON line), or None."""
    for line in reversed(text.strip().splitlines()):
        line = line.strip()
        if line.startswith("{"):
            try:
                data = json.loads(line)
            except ValueError:
                continue
            if isinstance(data, dict):
                return data
    return None


def reported(result: Mapping[str, Any], /) -> dict[str, Any]:
    """Claude Code's own numbers, in the ledger's four categories, and its cost."""
    tokens = dict.fromkeys(CATEGORIES, 0)
    for per_model in (result.get("modelUsage") or {}).values():
        if isinstance(per_model, dict):
            for key, field in _REPORTED.items():
                value = per_model.get(field)
                tokens[key] += value if isinstance(value, int) else 0
    cost = result.get("total_cost_usd")
    return {
        "tokens": tokens,
        "usd": cost if isinstance(cost, (int, float)) else None,
        "subtype": result.get("subtype"),
        "terminal_reason": result.get("terminal_reason"),
        "num_turns": result.get("num_turns"),
    }


BLOCKED = "UserPromptSubmit operation blocked by hook:"
MAX_BUDGET = "error_max_budget_usd"  # Claude Code stopped the run at its --max-budget-usd
# How the mod's refusal of a request begins (plugin/hooks/claude-budget.mod.ts, kill mode, 2.1.286+)
MOD_STOPPED = "claude-budget stopped this run:"


def outcome(
    code: int, result: Mapping[str, Any] | None, *, signals: Sequence[str], why: str | None
) -> tuple[str, str | None]:
    """``(state, reason)`` of an instance that ended, from its exit code and JSON result.

    ``signals``/``why``: the orchestrator stopped it (kill mode or Ctrl-C) and why.
    """
    text = str(result.get("result", "")) if result else ""
    if result is not None and text.startswith(BLOCKED):
        # Its own prompt hook refused it: not one API request was made.
        return "skipped", text[len(BLOCKED) :].strip().split("\n\nOriginal prompt:")[0].strip()
    if result is not None and text.startswith(MOD_STOPPED):
        # The mod refused its next model request (kill mode): 0 requests after the crossing one.
        return "stopped", why or text[len(MOD_STOPPED) :].strip()
    if result is not None and result.get("terminal_reason") == "hook_stopped":
        return "stopped", why or "stopped by the hook at a tool call (kill mode): a budget it draws on is over"
    if result is not None and result.get("subtype") == MAX_BUDGET:
        return "stopped", why or "stopped by Claude Code at its --max-budget-usd: a dollar budget it draws on is spent"
    if signals:
        return "stopped", (why or "stopped") + f" ({', '.join(signals)})"
    if code == 0 and result is not None and not result.get("is_error"):
        return "done", None
    if result is not None and text:
        return "failed", f"exit code {code}: {' '.join(text.split())[:300]}"
    return "failed", f"exit code {code}, no JSON result (see its log)"


def exit_code(results: Sequence[Result], /) -> int:
    """0 every instance completed; 1 one failed; 3 some were skipped or stopped by a budget."""
    states = {r.state for r in results}
    if "failed" in states:
        return 1
    if states & {"skipped", "stopped"}:
        return 3
    return 0


def summary(results: Sequence[Result], counted: tuple[str, ...], /) -> str:
    """The table printed at the end: one line per instance, then the totals."""

    header = ("instance", "state", "exit", "tokens", "cost", "time", "reason")
    rows = [
        (
            _safe(r.label),
            r.state,
            "" if r.exit_code is None else str(r.exit_code),
            humanize(r.usage.total(counted)),
            dollars(r.usd_micros) if r.usd_micros else "$0",
            "" if r.seconds is None else f"{r.seconds:.1f}s",
            _safe(r.reason or ""),
        )
        for r in results
    ]
    widths = [max(_width(row[i]) for row in [header, *rows]) for i in range(len(header) - 1)]
    lines = []
    for row in [header, *rows]:
        cells = [_ljust(c, w) for c, w in zip(row, widths)] + [row[-1]]
        lines.append("  ".join(cells).rstrip())
    total = Usage()
    for r in results:
        total = total + r.usage
    usd = sum(r.usd_micros for r in results)
    counts = ", ".join(
        f"{sum(r.state == s for r in results)} {s}" for s in STATES if any(r.state == s for r in results)
    )
    lines.append("")
    lines.append(f"Total: {humanize(total.total(counted))} tokens, {dollars(usd)} — {counts}")
    return "\n".join(lines) + "\n"


def to_json(
    results: Sequence[Result],
    /,
    *,
    orchestration: str,
    counted: tuple[str, ...],
    code: int,
    ledger: str,
    mode: str | None = None,
) -> dict[str, Any]:
    """The ``--json-out`` document (docs/orchestrator.md: results, version 1)."""
    total = Usage()
    for r in results:
        total = total + r.usage
    return {
        "version": JSON_VERSION,
        "orchestration": orchestration,
        "mode": mode,
        "exit_code": code,
        "ledger": ledger,
        "count": list(counted),
        "totals": {
            "tokens": {**total.as_dict(), "total": total.total(counted)},
            "usd": round(sum(r.usd_micros for r in results) / 1_000_000, 6),
        },
        "instances": [r.to_json(counted) for r in results],
    }
