"""Work a command starts belongs to the command: background subagents, the follow-up turns Claude
Code starts when they end, fork subagents, and sessions resumed or forked from it.

On 2.1.197 subagents run in the foreground and there are no follow-up turns or forks; the same
tests run there and must hold as well. The reference is always what the fake API sent: on
2.1.332 ``modelUsage`` of a resumed or forked session is cumulative, so it is none.
"""

from __future__ import annotations

from e2e_harness import BACKGROUND_SUBAGENTS, add, total

BIG = 10_000_000
FORK_SUBAGENTS = (2, 1, 232)


def command_tokens(p, name: str) -> dict[str, int]:
    return p.status()["commands"][name]["tokens"]


def test_a_background_subagent_and_its_followup_turn_are_the_commands(project, fake_api, claude):
    p = project()
    p.write_command("beta", "Beta $ARGUMENTS. SCRIPT: agent, text", token_budget=BIG)
    plain = p.run_claude("hello SCRIPT: bash, text")
    before = fake_api.totals()

    run = p.run_claude("/beta 1")

    assert run.result["subtype"] == "success", run.describe()
    followup = 1 if claude.at_least(*BACKGROUND_SUBAGENTS) else 0
    # 2 main, 2 subagent, the follow-up turn (none if the subagent finished before its turn did)
    assert 4 <= run.requests <= 4 + followup, run.describe()
    spent = {k: v - before[k] for k, v in fake_api.totals().items()}
    assert command_tokens(p, "/beta") == spent
    status = p.status()
    assert status["commands"]["/beta"]["runs"] == 1  # the follow-up turn is not a new run
    assert status["overall"]["tokens"] == add(plain.usage, spent) == fake_api.totals()


def test_parallel_sessions_with_background_subagents_charge_each_command_exactly(project, fake_api):
    p = project()
    p.write_command("beta", "Beta $ARGUMENTS. SCRIPT: agent, bash, text", token_budget=BIG)
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=6) as pool:
        runs = list(pool.map(lambda i: p.run_claude(f"/beta {i}"), range(6)))

    for run in runs:
        assert run.result["subtype"] == "success", run.describe()
    status = p.status()
    assert status["commands"]["/beta"]["runs"] == 6
    assert status["commands"]["/beta"]["tokens"] == fake_api.totals()
    assert status["overall"]["tokens"] == fake_api.totals()


def test_block_mode_refuses_the_followup_turn_of_a_spent_command(project, fake_api, claude):
    p = project()
    p.write_config('mode = "block"\n')
    p.write_command("beta", "Beta $ARGUMENTS. SCRIPT: agent, text", token_budget=1000)

    run = p.run_claude("/beta 1")  # its first response already spends more than 1,000 tokens

    # 2 main + 2 subagent; on 2.1.332 the follow-up turn is refused before it calls the model
    assert run.requests == 4, run.describe()
    if claude.at_least(*BACKGROUND_SUBAGENTS):
        assert "/beta" in run.text and "Token budget spent" in run.text, run.describe()
    status = p.status()
    assert status["commands"]["/beta"]["tokens"] == fake_api.totals()
    assert status["commands"]["/beta"]["runs"] == 1


def test_kill_mode_stops_a_subagents_tool_loop(project, fake_api, claude):
    fake_api.stable_usage = True  # the first response costs the same in both projects
    probe = project("probe")
    probe.write_command("loop", "Loop $ARGUMENTS. SCRIPT: longagent, text")
    probe.run_claude("/loop 0")
    first = sum(fake_api.sent[0].usage.values())  # what the main thread's first response costs
    fake_api.reset()
    before = fake_api.requests

    p = project()
    p.write_config('mode = "kill"\n')
    # The main thread's first response fits; the subagent's first response crosses the budget.
    p.write_command("loop", "Loop $ARGUMENTS. SCRIPT: longagent, text", token_budget=first)

    run = p.run_claude("/loop 1")

    sent = list(fake_api.sent)
    assert fake_api.requests - before == len(sent)
    used, crossing = 0, None
    for i, s in enumerate(sent):
        used += sum(s.usage.values())
        if used > first and crossing is None:
            crossing = i
    assert crossing is not None, sent
    subagent_requests = sum(s.subagent for s in sent)
    assert subagent_requests <= 2, (run.describe(), sent)  # the subagent wanted 7: stopped at its first tool
    assert len(sent) - (crossing + 1) <= 1, sent  # at most one request after the crossing one
    cmd = p.status()["commands"]["/loop"]
    assert cmd["tokens"] == fake_api.totals()
    assert cmd["used"] == total(fake_api.totals()) > first


def test_a_forked_or_resumed_session_counts_only_its_own_requests(project, fake_api):
    p = project()
    p.write_command("review-pr", "Review PR $ARGUMENTS. SCRIPT: bash, agent, text", token_budget=BIG)
    first = p.run_claude("/review-pr 1")
    session = first.result["session_id"]

    fork = p.run_claude("/review-pr 2", args=["--resume", session, "--fork-session"])
    resumed = p.run_claude("/review-pr 3", args=["--resume", session])

    for run in (first, fork, resumed):
        assert run.result["subtype"] == "success", run.describe()
    assert fork.result["session_id"] != session
    status = p.status()
    assert status["commands"]["/review-pr"]["runs"] == 3
    assert status["commands"]["/review-pr"]["tokens"] == fake_api.totals()
    assert status["overall"]["tokens"] == fake_api.totals()


def test_a_fork_subagents_copy_of_its_parent_is_not_counted_again(project, fake_api, claude):
    p = project()
    p.write_command("split", "Split $ARGUMENTS. SCRIPT: bash, fork, text", token_budget=BIG)

    run = p.run_claude("/split 1")

    assert run.result["subtype"] == "success", run.describe()
    if claude.at_least(*FORK_SUBAGENTS):
        assert sum(s.subagent for s in fake_api.sent) == 2, fake_api.sent
        forks = list((p.home / ".claude" / "projects").glob("*/*/subagents/agent-*.meta.json"))
        assert forks and all('"isFork":true' in f.read_text().replace(" ", "") for f in forks), forks
    status = p.status()
    assert status["commands"]["/split"]["tokens"] == fake_api.totals()
    assert status["overall"]["tokens"] == fake_api.totals()
