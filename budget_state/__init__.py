"""claude-budget: per-command token budgets for Claude Code.

The API an orchestrator uses (the same data as ``claude-budget status --json``)::

    import budget_state
    snap = budget_state.snapshot("/path/to/project")
    snap.commands["/review-pr"].used, snap.overall.limit
    budget_state.may_start("/review-pr", "/path/to/project").allowed
    budget_state.record_usage({"input": 10, "output": 200}, command="/review-pr")

Names are loaded on first use: the hook imports this package on every prompt and tool call.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from . import _extensions
from ._version import __version__ as __version__

__all__ = [
    "BudgetError",
    "ConfigError",
    "Decision",
    "LedgerCorrupt",
    "LedgerError",
    "LockTimeout",
    "ScopeStatus",
    "Snapshot",
    "Usage",
    "may_start",
    "observe_plan",
    "record_usage",
    "reset",
    "snapshot",
]

_WHERE = {
    "BudgetError": "_errors",
    "ConfigError": "_errors",
    "LedgerCorrupt": "_errors",
    "LedgerError": "_errors",
    "LockTimeout": "_errors",
    "Decision": "_budgets",
    "ScopeStatus": "_model",
    "Snapshot": "_model",
    "Usage": "_model",
    "may_start": "_api",
    "observe_plan": "_observe",
    "record_usage": "_api",
    "reset": "_api",
    "snapshot": "_api",
}

if TYPE_CHECKING:
    from ._api import may_start, record_usage, reset, snapshot
    from ._errors import BudgetError, ConfigError, LedgerCorrupt, LedgerError, LockTimeout
    from ._model import ScopeStatus, Snapshot, Usage
    from .budgets._budgets import Decision
    from .mod._observe import observe_plan


def _team_engine() -> _extensions.TeamEngine:
    from .team import hook

    return hook


# The features plug in here, the one module that knows every part (docs/architecture.md).
_extensions.plug_team(_team_engine)


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'budget_state' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(f"budget_state.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
