"""``claude-budget statusline``: the line Claude Code shows under the prompt, from its statusLine JSON."""

from __future__ import annotations

import io
import json
import re
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from kit import Project

import budget_state
from budget_state import statusline
from budget_state._model import Forecast, LimitStatus, ScopeStatus, Usage, Window

DATA = Path(__file__).parent / "data" / "statusline"
ANSI = re.compile(r"\x1b\[[0-9;]*m")
NOW = datetime(2026, 12, 3, 12, 0, tzinfo=timezone.utc)


def run(payload: Any, env: dict[str, str], *, argv: list | None = None, raw: bytes | None = None) -> tuple[int, str]:
    """``statusline.main`` on ``payload`` (or ``raw`` bytes) as Claude Code runs it; (exit code, output)."""
    data = raw if raw is not None else json.dumps(payload).encode()
    out = io.StringIO()
    code = statusline.main(argv or [], stdin=io.BytesIO(data), stdout=out, env=env)
    return code, out.getvalue()


@pytest.fixture
def proj(tmp_path: Path) -> Project:
    return Project(tmp_path)


def session_input(p: Project, session: str = "sess-1", **fields: Any) -> dict[str, Any]:
    """The statusLine input's fields that matter, for ``p`` (its project folder, not CLAUDE_PROJECT_DIR)."""
    return {
        "session_id": session,
        "cwd": str(p.root),
        "workspace": {"current_dir": str(p.root), "project_dir": str(p.root)},
        **fields,
    }


def env_of(p: Project, **extra: str) -> dict[str, str]:
    return {"HOME": str(p.home), **extra}


def test_the_session_command_with_its_bar_percent_amounts_and_dollars(proj: Project) -> None:
    proj.config('overall_tokens = "100k"\n[commands."/review-pr"]\ntokens = "5k"\n')
    budget_state.record_usage({"input": 1000, "output": 2000}, command="/review-pr", session="s1", project=proj.root)
    budget_state.record_usage({"input": 9000}, command="/other", session="s2", project=proj.root)

    code, out = run(session_input(proj, "s1"), env_of(proj, NO_COLOR="1"))
    assert code == 0
    assert out == "/review-pr [######----] 60% 3.0K/5.0K\n"  # overall (12%) is not tighter: not shown

    code, out = run(session_input(proj, "s2"), env_of(proj, NO_COLOR="1"))
    assert out == "/other 9.0K tokens, no budget · overall tokens 12%\n"


def test_the_overall_limit_shows_when_it_is_tighter(proj: Project) -> None:
    proj.config('overall_tokens = "10k"\n[commands."/review-pr"]\ntokens = "50k"\n')
    budget_state.record_usage({"input": 1000}, command="/review-pr", session="s1", project=proj.root)
    budget_state.record_usage({"input": 8000}, project=proj.root)

    _, out = run(session_input(proj, "s1"), env_of(proj, NO_COLOR="1"))
    assert out == "/review-pr [----------] 2% 1.0K/50K · tightest: overall tokens 90%\n"


def test_a_windowed_limit_from_the_config_is_the_tightest(proj: Project) -> None:
    """The config's rolling window over the overall scope, evaluated as the hook does."""
    proj.config('[window.hour]\nspan = "1h"\ntokens = "10k"\n[commands."/review-pr"]\ntokens = "100k"\n')
    budget_state.record_usage({"input": 9000}, command="/review-pr", session="s1", project=proj.root)
    budget_state.record_usage({"input": 2000}, project=proj.root)
    _, out = run(session_input(proj, "s1"), env_of(proj, NO_COLOR="1"))
    head, _, minutes = out.rpartition(" · frees up in ")
    assert head == "/review-pr [----------] 9% 9.0K/100K · tightest: overall tokens/1h 110% EXCEEDED", out
    assert minutes in ("59m\n", "1h 0m\n"), out  # when the first minute's 11K leaves the window


def test_the_forecast_is_asked_with_the_scopes_limits_and_minute_series(
    proj: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The wiring to the forecast module (budget_state.forecast.forecast_scope), whatever its maths."""

    calls: list[tuple[Any, ...]] = []

    def forecast_scope(limits: Any, *, tokens: Any, usd: Any, now: Any) -> Forecast:
        calls.append((tuple(lim.key for lim in limits), sum(v for _, v in tokens), now))
        return Forecast(tokens_per_min=50.0, exhausts_at=now + timedelta(minutes=80), limit_key="tokens")

    import budget_state.forecast

    monkeypatch.setattr(budget_state.forecast, "forecast_scope", forecast_scope)
    proj.config('[commands."/review-pr"]\ntokens = "10k"\n')
    budget_state.record_usage({"input": 6000}, command="/review-pr", session="s1", project=proj.root)
    _, out = run(session_input(proj, "s1"), env_of(proj, NO_COLOR="1"))
    assert out == "/review-pr [######----] 60% 6.0K/10K · out in ~1h 20m\n"
    assert [c[:2] for c in calls] == [(("tokens",), 6000)]  # overall has no limit: nothing to forecast


def test_a_session_without_a_command_shows_the_overall_budget(proj: Project) -> None:
    proj.config('overall_tokens = "10k"\n')
    budget_state.record_usage({"input": 7500}, project=proj.root)
    _, out = run(session_input(proj, "never-ran-a-command"), env_of(proj, NO_COLOR="1"))
    assert out == "overall [#######---] 75% 7.5K/10K\n"


def test_the_running_command_as_the_hook_opened_it(proj: Project) -> None:
    """The hook's own run, with the limit it started with, found by the statusLine's prompt_id."""
    proj.command("review-pr", 4000)
    proj.run("UserPromptSubmit", prompt="/review-pr 7", prompt_id="p1")
    proj.spend("p1", 1000)
    proj.run("Stop", prompt_id="p1")
    _, out = run(session_input(proj, "sess-1", prompt_id="p1"), env_of(proj, NO_COLOR="1"))
    assert out == "/review-pr [##--------] 25% 1.0K/4.0K · $0.0030\n"  # 1,000 input tokens of claude-sonnet-4-5

    # A later prompt that is no command (/budget, a plain one): the session's last command still shows.
    proj.run("UserPromptSubmit", prompt="hello", prompt_id="p2")
    _, out = run(session_input(proj, "sess-1", prompt_id="p2"), env_of(proj, NO_COLOR="1"))
    assert out.startswith("/review-pr [##--------] 25%"), out


def test_colour_by_level_and_no_color(proj: Project) -> None:
    proj.config('[commands."/review-pr"]\ntokens = "1k"\n')
    budget_state.record_usage({"input": 950}, command="/review-pr", session="s1", project=proj.root)

    _, out = run(session_input(proj, "s1"), env_of(proj))
    assert "\x1b[31m#########\x1b[0m" in out and "\x1b[31m95%\x1b[0m" in out  # critical: red, as /budget's bars
    assert ANSI.sub("", out) == "/review-pr [#########-] 95% 950/1.0K\n"
    for env in (env_of(proj, NO_COLOR="1"), env_of(proj, TERM="dumb")):
        assert "\x1b" not in run(session_input(proj, "s1"), env)[1]
    assert "\x1b" not in run(session_input(proj, "s1"), env_of(proj), argv=["--color", "never"])[1]
    assert "\x1b" in run(session_input(proj, "s1"), env_of(proj, NO_COLOR="1"), argv=["--color=always"])[1]


def test_spent_and_exceeded_are_flagged(proj: Project) -> None:
    proj.config('[commands."/a"]\ntokens = 100\n[commands."/b"]\ntokens = 100\n')
    budget_state.record_usage({"input": 100}, command="/a", session="s1", project=proj.root)
    budget_state.record_usage({"input": 150}, command="/b", session="s2", project=proj.root)
    assert run(session_input(proj, "s1"), env_of(proj, NO_COLOR="1"))[1] == "/a [##########] 100% 100/100 · SPENT\n"
    assert run(session_input(proj, "s2"), env_of(proj, NO_COLOR="1"))[1] == "/b [##########] 150% 150/100 · EXCEEDED\n"


def test_columns_drop_the_trailing_parts_first(proj: Project) -> None:
    proj.config('overall_tokens = "10k"\n[commands."/review-pr"]\ntokens = "50k"\n')
    budget_state.record_usage({"input": 9000}, command="/review-pr", session="s1", project=proj.root)
    full = run(session_input(proj, "s1"), env_of(proj, NO_COLOR="1"))[1]
    assert full == "/review-pr [#---------] 18% 9.0K/50K · tightest: overall tokens 90%\n"
    narrow = run(session_input(proj, "s1"), env_of(proj, NO_COLOR="1", COLUMNS="40"))[1]
    assert narrow == "/review-pr [#---------] 18% 9.0K/50K\n"


# --- never fails loudly ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b"not json", "claude-budget: ? (no status input)\n"),
        (b"[1, 2]", "claude-budget: ? (no status input)\n"),
        (b'"text"', "claude-budget: ? (no status input)\n"),
        (b"[" * 100_000, "claude-budget: ? (no status input)\n"),
    ],
)
def test_bad_input_prints_the_fallback_and_exits_0(
    proj: Project, raw: bytes, expected: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(None, env_of(proj), raw=raw) == (0, expected)
    assert capsys.readouterr().err == ""


def test_empty_stdin_shows_the_projects_overall_status(
    proj: Project, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Run by hand (no session): the project found from the current folder, its overall budget."""
    proj.config('overall_tokens = "10k"\n')
    budget_state.record_usage({"input": 1000}, project=proj.root)
    monkeypatch.chdir(proj.root)
    assert run(None, env_of(proj, NO_COLOR="1"), raw=b"") == (0, "overall [#---------] 10% 1.0K/10K\n")
    assert run(None, env_of(proj, NO_COLOR="1"), raw=b"  \n") == (0, "overall [#---------] 10% 1.0K/10K\n")
    assert capsys.readouterr().err == ""


def test_no_ledger_yet(proj: Project, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(session_input(proj), env_of(proj, NO_COLOR="1")) == (0, "overall 0 tokens, no budget\n")
    assert not (proj.root / ".claude" / "budget-ledger.toml").exists()  # never written
    assert capsys.readouterr().err == ""


def test_corrupt_ledger_and_bad_config_print_the_fallback(proj: Project, capsys: pytest.CaptureFixture[str]) -> None:
    ledger = proj.root / ".claude" / "budget-ledger.toml"
    ledger.write_text("schema_version = 1\n[overall\n")
    assert run(session_input(proj), env_of(proj)) == (0, "claude-budget: ? (ledger unreadable: claude-budget status)\n")
    assert ledger.read_text() == "schema_version = 1\n[overall\n"  # left for the hook to move aside, not touched
    ledger.unlink()
    proj.config("mode = 'sometimes'\n")
    assert run(session_input(proj), env_of(proj)) == (0, "claude-budget: ? (config error: claude-budget status)\n")
    assert capsys.readouterr().err == ""


def test_a_bug_prints_the_fallback_not_a_traceback(
    proj: Project, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def broken(*args: Any, **kwargs: Any) -> str:
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(statusline, "render_line", broken)
    assert run(session_input(proj), env_of(proj)) == (0, "claude-budget: ? (internal error)\n")
    assert capsys.readouterr().err == ""


def test_debug_adds_a_traceback_on_stderr(proj: Project, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(None, env_of(proj, CLAUDE_BUDGET_DEBUG="1"), raw=b"nope")[1].startswith("claude-budget: ?")
    assert "Traceback" in capsys.readouterr().err


def test_a_closed_pipe_is_not_an_error(proj: Project) -> None:
    class Closed(io.StringIO):
        def write(self, s: str) -> int:
            raise BrokenPipeError

    assert statusline.main([], stdin=io.BytesIO(b"{}"), stdout=Closed(), env=env_of(proj)) == 0


# --- Claude Code's captured statusLine input ---------------------------------------------------


@pytest.mark.parametrize("version", ["2.1.197", "2.1.332"])
def test_renders_from_claude_codes_captured_input(proj: Project, version: str) -> None:
    """The JSON the pinned CLIs really sent (tests/data/statusline/), pointed at this project."""
    captured = json.loads((DATA / f"cc{version}.json").read_text())
    assert captured["version"] == version
    for key in ("session_id", "prompt_id", "cwd", "transcript_path"):  # what the status line reads
        assert isinstance(captured[key], str) and captured[key], key
    assert captured["workspace"]["project_dir"] == captured["cwd"]
    text = json.dumps(captured).replace("/home/user/proj", str(proj.root))

    proj.config('overall_tokens = "1M"\n[commands."/review-pr"]\ntokens = "100k"\n')
    budget_state.record_usage(
        {"input": 40_000}, command="/review-pr", session=captured["session_id"], project=proj.root
    )
    budget_state.record_usage({"input": 40_000}, command="/review-pr", session="another-session", project=proj.root)
    code, out = run(None, env_of(proj, NO_COLOR="1"), raw=text.encode())
    assert (code, out) == (0, "/review-pr [########--] 80% 80K/100K\n")


# --- the rendering, with the limits the core computes ------------------------------------------


def scope(name: str, *limits: LimitStatus, usd: int = 0, forecast: Forecast | None = None) -> ScopeStatus:
    tokens = next((lim for lim in limits if lim.metric == "tokens" and lim.window is None), None)
    return ScopeStatus(
        name,
        tokens.used if tokens else 0,
        tokens.limit if tokens else None,
        Usage(),
        usd_micros=usd,
        limits=limits,
        forecast=forecast,
    )


DAY = Window("calendar", unit="day")
HOUR = Window("rolling", minutes=60)


def test_the_tightest_windowed_limit_and_the_forecast() -> None:
    cmd = scope("/review-pr", LimitStatus("tokens", 20_000, 200_000), LimitStatus("usd", 1_200_000, 2_500_000, DAY))
    overall = scope(
        "overall",
        LimitStatus("tokens", 1_000_000, 5_000_000),
        LimitStatus("usd", 4_600_000, 5_000_000, HOUR),
        usd=12_340_000,
        forecast=Forecast(exhausts_at=NOW + timedelta(minutes=80), limit_key="usd/1h"),
    )
    cmd = cmd._replace(usd_micros=1_200_000)
    line = statusline.render_line(cmd, overall, now=NOW)
    # The command's bar is its own tightest limit (48 % of its daily dollars, not 10 % of its tokens).
    assert (
        line
        == "/review-pr usd/day [####------] 48% $1.20/$2.50 · tightest: overall usd/1h 92% · $1.20 · out in ~1h 20m"
    )


def test_a_spent_window_says_when_it_frees_up() -> None:
    overall = scope(
        "overall",
        LimitStatus("usd", 5_100_000, 5_000_000, HOUR, resets_at=NOW + timedelta(minutes=7)),
        usd=5_100_000,
        forecast=Forecast(exhausts_at=NOW - timedelta(minutes=1)),
    )
    assert statusline.render_line(None, overall, now=NOW) == (
        "overall usd/1h [##########] 102% $5.10/$5.00 · EXCEEDED · $5.10 · frees up in 7m"
    )
    cmd = scope(
        "/deploy",
        LimitStatus("tokens", 1000, 100_000),
        LimitStatus("tokens", 5000, 5000, DAY, resets_at=NOW + timedelta(hours=12)),
    )
    assert statusline.render_line(cmd, scope("overall"), now=NOW) == (
        "/deploy tokens/day [##########] 100% 5.0K/5.0K · SPENT · resets in 12h 0m"
    )
    cmd = scope("/deploy", LimitStatus("tokens", 1000, 100_000))
    assert statusline.render_line(cmd, overall, now=NOW, color=True) == (
        "/deploy [----------] \x1b[32m1%\x1b[0m 1.0K/100K · tightest: overall usd/1h \x1b[31m102%\x1b[0m "
        "\x1b[1;31mEXCEEDED\x1b[0m · frees up in 7m"
    )


def test_before_the_core_the_cumulative_token_limit_is_the_fallback() -> None:
    legacy = ScopeStatus("/x", 500, 1000, Usage(500))
    assert statusline.limits_of(legacy) == (LimitStatus("tokens", 500, 1000),)
    assert statusline.render_line(legacy, ScopeStatus("overall", 500, None), now=NOW) == "/x [#####-----] 50% 500/1.0K"


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (-5, "0m"),
        (0, "0m"),
        (1, "1m"),
        (60, "1m"),
        (61, "2m"),
        (3599, "1h 0m"),
        (3600, "1h 0m"),
        (3660, "1h 1m"),
        (48 * 3600, "2d 0h"),
        (49 * 3600 - 30, "2d 1h"),
    ],
)
def test_span(seconds: int, text: str) -> None:
    assert statusline.span(NOW + timedelta(seconds=seconds), NOW) == text


# --- as fast as the hook: what it imports ------------------------------------------------------


def test_imports_neither_rich_nor_the_price_table_nor_yaml(proj: Project) -> None:
    """What Claude Code runs after each response: a run the hook opened, its budget in the frontmatter."""
    proj.command("review-pr", 5000)
    proj.run("UserPromptSubmit", prompt="/review-pr 7", prompt_id="p1")
    proj.spend("p1", 1000)
    proj.run("Stop", prompt_id="p1")
    code = (
        "import io, json, sys\n"
        "from budget_state import statusline\n"
        f"data = json.dumps({json.dumps(session_input(proj, 'sess-1', prompt_id='p1'))}).encode()\n"
        "out = io.StringIO()\n"
        f"statusline.main([], stdin=io.BytesIO(data), stdout=out, env={env_of(proj)!r})\n"
        "print(out.getvalue().strip())\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('rich', 'yaml', 'filelock')"
        " or m.startswith('budget_state.pricing')))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    line, modules = proc.stdout.splitlines()
    assert "/review-pr" in line and "20%" in line, line
    assert modules == "[]"


def test_the_hook_never_imports_rich(proj: Project) -> None:
    """rich is for ``watch`` alone: no module imports it on import, and a hook answering /budget
    (the status table) and settling a Stop does not load it either."""
    proj.command("review-pr", 5000)
    code = (
        "import importlib, io, json, pkgutil, sys\n"
        "import budget_state, budget_state.hook as hook\n"
        f"env = {proj.env!r}\n"
        f"base = {{'session_id': 's', 'cwd': {str(proj.root)!r}, 'transcript_path': {str(proj.transcript)!r}}}\n"
        "for event, extra in (('UserPromptSubmit', {'prompt': '/budget', 'prompt_id': 'p'}), ('Stop', {})):\n"
        "    data = json.dumps({**base, 'hook_event_name': event, **extra}).encode()\n"
        "    out = io.StringIO()\n"
        "    hook.main([], stdin=io.BytesIO(data), stdout=out, env=env)\n"
        "    print(event, 'Token budgets' in out.getvalue())\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'rich'))\n"
        "for m in pkgutil.walk_packages(budget_state.__path__, 'budget_state.'):\n"
        "    if m.name not in ('budget_state.__main__',):\n"
        "        importlib.import_module(m.name)\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'rich'))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    lines = ["UserPromptSubmit True", "Stop False", "[]", "[]"]
    assert (proc.returncode, proc.stdout.splitlines()) == (0, lines), proc.stderr
