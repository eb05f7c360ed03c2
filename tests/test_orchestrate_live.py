"""``--budget-dashboard-mode live`` redraws the report in place; not on a terminal it prints reports."""

from __future__ import annotations

import io
from pathlib import Path

from budget_state.orchestrator._options import Instance, Options
from budget_state.orchestrator._dashboard import Reporter
from budget_state.orchestrator._run import Orchestration


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def orchestration(tmp_path: Path, out: io.StringIO, dashboard: str) -> Orchestration:
    (tmp_path / ".claude").mkdir(exist_ok=True)
    options = Options((Instance("/a", order=0),), overall_tokens=5000, dashboard=dashboard, project=tmp_path)
    orch = Orchestration(options, env={"NO_COLOR": "1", "COLUMNS": "80"}, out=out, err=io.StringIO())
    orch.register()
    return orch


def test_live_redraws_in_place_on_a_terminal(tmp_path: Path) -> None:
    out = Terminal()
    reporter = Reporter(orchestration(tmp_path, out, "live"), live=True)
    reporter.show()
    first = out.getvalue()
    reporter.show()
    second = out.getvalue()[len(first) :]
    assert first.startswith("+== TOKEN BUDGET STATUS [") and first.endswith("=\n")
    assert second.startswith(f"\x1b[{first.count(chr(10))}F\x1b[J+== TOKEN BUDGET STATUS [")


def test_live_is_a_report_when_not_on_a_terminal(tmp_path: Path) -> None:
    out = io.StringIO()
    orch = orchestration(tmp_path, out, "live")
    reporter = Reporter(orch, live=False)
    assert (reporter.mode, reporter.every) == ("report", orch.options.interval)
    reporter.show()
    reporter.show()
    assert "\x1b[" not in out.getvalue() and out.getvalue().count("TOKEN BUDGET STATUS") == 2
