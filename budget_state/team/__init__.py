"""Team budgets: one budget shared by several machines, kept in PostgreSQL and spent through leases.

Each machine leases a chunk of every team budget it draws on (one conditional ``UPDATE …
RETURNING``), enforces locally against what it holds in its file-locked ledger (the ``[team]``
table), settles what it spent idempotently, tops the lease up before it runs dry and gives back
the rest when its sessions end. See docs/team.md.

Parts: :mod:`.config` (settings), :mod:`.windows` (window labels), :mod:`.local` (the lease as the
ledger holds it: pure), :mod:`.view` (the team lines of ``/budget`` and ``status``), :mod:`.schema`
(tables and migrations), :mod:`.db` (the database side, the only module that imports psycopg),
:mod:`.hook` (what the hooks and the API call), :mod:`.cli` (``claude-budget team …``).
"""

from __future__ import annotations
