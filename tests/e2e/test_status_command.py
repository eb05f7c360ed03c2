"""``/budget`` is answered by the hook itself: the status as the user sees it, no API request."""

from __future__ import annotations

from e2e_harness import number_in

BIG = 1_000_000


def test_budget_command_is_answered_without_an_api_request(project, fake_api):
    p = project()
    p.write_command("review-pr", "Review PR $ARGUMENTS. SCRIPT: bash, text", token_budget=BIG)
    p.write_command("deploy", "Deploy. SCRIPT: text", token_budget=20_000)
    work = p.run_claude("/review-pr 3")
    assert work.requests == 2, work.describe()
    used = p.status()["commands"]["/review-pr"]["used"]
    spent = fake_api.totals()

    everything = p.run_claude("/budget")
    one = p.run_claude("/budget /review-pr")

    for run in (everything, one):
        assert run.blocked, run.describe()
        assert run.returncode == 0, run.describe()
        assert run.requests == 0, run.describe()
        row = next((line for line in run.text.splitlines() if "/review-pr" in line), None)
        assert row is not None, run.text
        assert number_in(row, used) and number_in(row, BIG), row
    assert "/deploy" in everything.text, everything.text
    assert "/deploy" not in one.text, one.text
    assert fake_api.totals() == spent
    assert p.status()["commands"]["/review-pr"]["used"] == used
