"""``claude-budget orchestrate``: run a fleet of ``claude -p`` instances under one set of budgets.

Kept empty on purpose: the hook imports :mod:`._scope` (an orchestration's scope in the ledger)
on every prompt of an orchestrated instance, and must not pay for the scheduler or the report.

Parts: ``_scope`` (the ledger side, shared with the hooks), ``_values``, ``_configfile`` and
``_options`` (single values, the configuration file, everything merged), ``_schedule`` (which
instance starts next, and whether it may), ``_process`` (process groups, the kill escalation,
Ctrl-C), ``_report`` (the status report, pure) and ``_dashboard`` (when it is shown),
``_results`` (summary table and JSON), ``_plan`` (``--dry-run``, ``--list-commands``), ``_run``
(the loop that ties them) and ``_command`` (the subcommand's arguments).
"""
