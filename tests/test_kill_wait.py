"""Kill mode's PreToolUse waits for the response that called the tool only where it could matter.

Claude Code writes that response to the transcript some 60-80 ms after PreToolUse starts (measured
on 2.1.197 and 2.1.332). Far from every limit the hook answers at once; near one, or before the
session's first response, it waits (up to 0.25 s) and judges with it. ``wait_for`` is replaced
here by one that records how long it was asked to wait and, like Claude Code, writes the late
response when waited for.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, List, Optional

import pytest
from kit import Project

from budget_state import _accounting


class LateWriter:
    """``wait_for`` as the hook sees it: the response lands in the transcript while the hook waits."""

    def __init__(self, proj: Project) -> None:
        self.proj = proj
        self.timeouts: List[float] = []
        self.late: Optional[int] = None  # tokens of the response Claude Code has not written yet

    def __call__(self, text: str, paths: List[Path], /, *, timeout: float) -> bool:
        self.timeouts.append(timeout)
        if timeout > 0 and self.late is not None:
            self.proj.spend("p1", self.late)
            self.late = None
            return True
        return False


@pytest.fixture
def kill(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    proj = Project(tmp_path)
    proj.config('mode = "kill"\n')
    proj.command("deploy", 10_000)
    writer = LateWriter(proj)
    monkeypatch.setattr(_accounting, "wait_for", writer)
    return proj, writer


def start(proj: Project, first: int) -> None:
    assert proj.run("UserPromptSubmit", prompt="/deploy", prompt_id="p1") is None
    proj.spend("p1", first)


def pre_tool(proj: Project) -> Optional[Dict[str, Any]]:
    return proj.run("PreToolUse", prompt_id="p1", tool_name="Bash", tool_use_id="toolu_late")


def test_far_from_the_limit_it_answers_at_once(kill: Any) -> None:
    proj, writer = kill
    start(proj, 1_000)  # 10 % used; the largest response so far is 1K: 2K more cannot cross 10K
    writer.late = 1_500

    assert pre_tool(proj) is None
    assert writer.timeouts == [0]  # one look, no wait
    assert proj.totals("/deploy")["input"] == 1_000  # the late one is counted later


def test_near_the_limit_it_waits_and_stops_at_the_crossing(kill: Any) -> None:
    proj, writer = kill
    start(proj, 4_500)  # 45 %: twice the largest response (9K) could cross
    writer.late = 6_000

    reply = pre_tool(proj)

    assert writer.timeouts == [0, 0.25]
    assert reply is not None and reply["continue"] is False and "/deploy" in reply["stopReason"]
    assert proj.totals("/deploy")["input"] == 10_500  # judged with the late response


def test_before_the_first_response_it_waits(kill: Any) -> None:
    """No response of the session seen yet: nothing bounds the one on its way, so the hook waits."""
    proj, writer = kill
    assert proj.run("UserPromptSubmit", prompt="/deploy", prompt_id="p1") is None
    writer.late = 12_000

    reply = pre_tool(proj)

    assert writer.timeouts == [0, 0.25]
    assert reply is not None and reply["continue"] is False


def test_a_limit_already_over_stops_without_waiting(kill: Any) -> None:
    proj, writer = kill
    start(proj, 11_000)
    writer.late = 1

    reply = pre_tool(proj)

    assert writer.timeouts == [0]
    assert reply is not None and reply["continue"] is False


def test_a_dollar_limit_is_bounded_in_dollars(kill: Any) -> None:
    proj, writer = kill
    proj.command("deploy", None)
    (proj.root / ".claude" / "commands" / "deploy.md").write_text("---\ncostBudget: 1.00\n---\nDo it.\n")
    start(proj, 100_000)  # $0.30 at claude-sonnet-4-5's $3/MTok input: twice that fits in $1
    writer.late = 100_000
    assert pre_tool(proj) is None
    assert writer.timeouts == [0]

    proj.spend("p1", 100_000)  # $0.60: twice the largest response ($0.60) could cross $1
    writer.late = 200_000
    reply = proj.run("PreToolUse", prompt_id="p1", tool_name="Bash", tool_use_id="toolu_late2")
    assert writer.timeouts[1:] == [0, 0.25]
    assert reply is not None and reply["continue"] is False
