"""Team budgets with the real CLI: two projects on one team, each running Claude Code against the
fake API, share one budget in PostgreSQL; block mode refuses in both once it is spent."""

from __future__ import annotations

import json
import sys
import uuid
from pathlib import Path

if str(Path(__file__).parents[1]) not in sys.path:  # team_kit lives in tests/
    sys.path.insert(0, str(Path(__file__).parents[1]))

from e2e_harness import MODS  # noqa: E402
from team_kit import counters, server_url  # noqa: E402

LIMIT = 10_000


def test_two_projects_on_one_team_are_both_refused_once_the_team_budget_is_spent(project, fake_api, pg_server):
    url, team = server_url(pg_server), f"e2e-{uuid.uuid4().hex[:8]}"
    a, b = project("a"), project("b")
    for p in (a, b):
        p.write_config(f'mode = "block"\nteam_url = "{url}"\nteam = "{team}"\n')
    for args in (("team", "init"), ("team", "set", "overall", "--tokens", str(LIMIT))):
        proc = a.budget_cli(*args)
        assert proc.returncode == 0, proc.stderr

    refused = {"a": 0, "b": 0}
    largest = 0
    for i in range(12):
        name, p = ("a", a) if i % 2 == 0 else ("b", b)
        run = p.run_claude(f"hello {i}")
        if run.blocked:
            assert "Team budget spent: the overall team budget (tokens/total)" in run.text, run.describe()
            assert run.usage == dict.fromkeys(run.usage, 0), run.describe()
            refused[name] += 1
            if min(refused.values()) >= 1:
                break
        else:
            assert refused[name] == 0, f"{name} ran again after a refusal: {run.describe()}"
            largest = max(largest, sum(run.usage.values()))
    assert min(refused.values()) >= 1, refused

    # The team's total is what the two ledgers counted: nothing lost, nothing twice.
    used = {n: p.status()["overall"]["used"] for n, p in (("a", a), ("b", b))}
    [row] = counters(url, team)
    assert row["spent"] == used["a"] + used["b"] == sum(fake_api.totals().values())
    assert LIMIT <= row["spent"] <= LIMIT + 2 * largest  # one turn per machine past its lease
    assert (row["leased"], row["held"]) == (0, 0)  # every session ended: every lease given back

    status = a.run_claude("/budget")
    answered = status.by_mod if a.cli.at_least(*MODS) else status.blocked  # the mod's /budget, 2.1.286+
    assert answered and f'Team "{team}"' in status.text and "team used" in status.text, status.describe()
    team_status = json.loads(a.budget_cli("team", "status", "--json").stdout)
    assert team_status["budgets"][0]["used"] == row["spent"]
