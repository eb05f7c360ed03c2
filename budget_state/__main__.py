"""``python -m budget_state``: the ``claude-budget`` command line."""

from __future__ import annotations

from budget_state.cli._cli import main

raise SystemExit(main())
