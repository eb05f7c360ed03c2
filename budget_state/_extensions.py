"""Where a feature plugs into what the Python API calls, so that neither the core nor the API imports it.

The package itself (``budget_state/__init__.py``) plugs the features in when it is imported: it
is the one module that knows every part (docs/architecture.md). A feature's code is loaded only
when it is first used, so its imports stay off the hook's path until a project needs them.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from ._api import Context
    from .budgets._budgets import Decision
    from .ledger._ledger import State


class TeamEngine(Protocol):
    """Team budgets (budget_state.team.hook): leases from a shared database, under the local ledger."""

    def api_may_start(self, ctx: Context, command: str | None, /) -> Decision: ...

    def after_settle(
        self, ctx: Context, state: State, event: str, command: str | None, now: datetime, /, *, background: bool
    ) -> tuple[list[str], Decision | None]: ...


_team: Callable[[], TeamEngine] | None = None


def plug_team(loader: Callable[[], TeamEngine], /) -> None:
    global _team
    _team = loader


def team() -> TeamEngine:
    """The team engine; only for a project whose config names a team (``team_url``)."""
    if _team is None:  # pragma: no cover (budget_state/__init__.py plugs it in on import)
        raise RuntimeError("budget_state.team was not plugged in (import budget_state first)")
    return _team()
