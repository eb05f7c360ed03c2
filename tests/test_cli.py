from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import types
from pathlib import Path
from typing import Any, Dict, List, Optional

import pytest

import budget_state
from budget_state.cli._cli import main, terminal_width, use_color
from budget_state._errors import ConfigError, LockTimeout
from budget_state._model import ScopeStatus, Snapshot, Usage
from budget_state._wiring import hook_command

SNAP = Snapshot(
    mode="warn",
    overall=ScopeStatus("overall", 1200, 10_000, Usage(1000, 200)),
    commands={
        "/review-pr": ScopeStatus("/review-pr", 900, 1000, Usage(800, 100), runs=2, source="config"),
        "/deploy": ScopeStatus("/deploy", 300, None, Usage(200, 100), runs=1),
    },
    ledger="/p/.claude/budget-ledger.toml",
)
ISOLATED_ENV = (
    "NO_COLOR",
    "FORCE_COLOR",
    "COLUMNS",
    "TERM",
    "CLAUDE_PROJECT_DIR",
    "CLAUDE_BUDGET_STATE",
    "CLAUDE_BUDGET_DEBUG",
)


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Nothing here may read or write the real ~/.claude or the repository's .claude/."""
    for name in ISOLATED_ENV:
        monkeypatch.delenv(name, raising=False)
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("CLAUDE_CONFIG_DIR", str(home / ".claude"))
    monkeypatch.chdir(tmp_path)
    return tmp_path


class FakeApi:
    def __init__(self) -> None:
        self.calls: List[Any] = []
        self.raises: Optional[BaseException] = None
        self.reset_result: List[str] = []

    def snapshot(self, project: Any = None, *, env: Any = None) -> Snapshot:
        self.calls.append(("snapshot", project))
        if self.raises is not None:
            raise self.raises
        return SNAP

    def reset(self, command: Optional[str] = None, /, *, project: Any = None, env: Any = None) -> List[str]:
        self.calls.append(("reset", command, project))
        return self.reset_result


@pytest.fixture
def api(monkeypatch: pytest.MonkeyPatch) -> FakeApi:
    fake = FakeApi()
    module = types.ModuleType("budget_state._api")
    module.snapshot = fake.snapshot  # type: ignore[attr-defined]  # a stand-in module
    module.reset = fake.reset  # type: ignore[attr-defined]  # a stand-in module
    monkeypatch.setitem(sys.modules, "budget_state._api", module)
    monkeypatch.setattr(budget_state, "_api", module, raising=False)
    return fake


@pytest.fixture
def render(monkeypatch: pytest.MonkeyPatch) -> List[Dict[str, Any]]:
    """A stand-in render_status that reports how it was called, in colour when asked."""
    calls: List[Dict[str, Any]] = []

    def render_status(
        snap: Snapshot, /, *, width: int = 80, color: bool = False, only: Optional[str] = None, now: object = None
    ) -> str:
        calls.append({"width": width, "color": color, "only": only})
        text = f"{len(snap.commands)} commands, only={only}"
        return f"\x1b[32m{text}\x1b[0m" if color else text

    module = types.ModuleType("budget_state._render")
    module.render_status = render_status  # type: ignore[attr-defined]  # a stand-in module
    monkeypatch.setitem(sys.modules, "budget_state._render", module)
    monkeypatch.setattr(budget_state, "_render", module, raising=False)
    return calls


# --- status ------------------------------------------------------------------------------------


def test_status_json_is_the_versioned_shape(api: FakeApi, capsys: pytest.CaptureFixture[str]) -> None:
    """The keys of tests/data/status_json_v2.json (the real CLI's output), and values worked out by hand."""
    from json_shape import shape

    golden = json.loads((Path(__file__).parent / "data" / "status_json_v2.json").read_text())
    assert main(["status", "--json"]) == 0

    out, err = capsys.readouterr()
    data = json.loads(out)
    # The golden has windows, a forecast and per-run figures; this snapshot has none of them: the
    # same keys, with empty values (checked below).
    empty = {"windows": {"array of": []}, "forecast": "*", "per_run": "*"}
    overall = {**shape(golden["overall"], types=False), **empty}
    overall.pop("per_run")
    assert shape(data, types=False) == {
        **shape(golden, types=False),
        "overall": overall,
        "commands": {
            name: {**shape(golden["commands"]["/review-pr"], types=False), **empty} for name in ("/deploy", "/review-pr")
        },
    }
    assert out == json.dumps(data, indent=2) + "\n"  # indented, one document, a final newline
    assert (data["version"], data["mode"], data["ledger"], data["warnings"]) == (2, "warn", SNAP.ledger, [])
    assert data["overall"] == {
        "used": 1200,
        "limit": 10_000,
        "percent": 12.0,
        "level": "ok",
        "tokens": {"input": 1000, "output": 200, "cache_creation": 0, "cache_read": 0},
        "usd": {"used": 0.0, "limit": None},
        "windows": [],
        "forecast": None,
        "quota": None,  # no plan data (an API-key login): null, never zeros
    }
    assert data["plan"] is None
    assert data["commands"]["/review-pr"] == {
        "used": 900,
        "limit": 1000,
        "runs": 2,
        "percent": 90.0,
        "level": "critical",
        "tokens": {"input": 800, "output": 100, "cache_creation": 0, "cache_read": 0},
        "usd": {"used": 0.0, "limit": None},
        "windows": [],
        "forecast": None,
        "per_run": None,
        "quota": None,
        "source": "config",
        "file": None,
        "error": None,
        "last_run": None,
    }
    assert (data["commands"]["/deploy"]["limit"], data["commands"]["/deploy"]["level"]) == (None, "none")
    assert err == ""
    assert api.calls == [("snapshot", None)]


@pytest.mark.parametrize("command", ["/review-pr", "review-pr"], ids=["with-slash", "without-slash"])
def test_status_json_for_one_command(api: FakeApi, capsys: pytest.CaptureFixture[str], command: str) -> None:
    assert main(["status", command, "--json"]) == 0

    data = json.loads(capsys.readouterr().out)
    assert list(data["commands"]) == ["/review-pr"]
    assert data["commands"]["/review-pr"] == SNAP.to_json()["commands"]["/review-pr"]  # type: ignore[index]
    assert data["overall"] == SNAP.to_json()["overall"]


def test_status_json_for_an_unknown_command_has_no_commands(api: FakeApi, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["status", "/nope", "--json"]) == 0

    assert json.loads(capsys.readouterr().out)["commands"] == {}


def test_status_text_uses_the_renderer(
    api: FakeApi, render: List[Dict[str, Any]], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "100")

    assert main(["status", "deploy"]) == 0

    assert capsys.readouterr() == ("2 commands, only=/deploy\n", "")
    assert render == [{"width": 100, "color": False, "only": "/deploy"}]


@pytest.mark.parametrize(
    ("argv", "env", "color"),
    [
        (["status"], {}, False),
        (["status"], {"FORCE_COLOR": "1"}, True),
        (["status"], {"FORCE_COLOR": "1", "NO_COLOR": "1"}, False),
        (["status", "--color", "always"], {"NO_COLOR": "1"}, True),
        (["status", "--color", "never"], {"FORCE_COLOR": "1"}, False),
    ],
    ids=["auto-not-a-tty", "force-color", "no-color-beats-force", "always-beats-no-color", "never-beats-force"],
)
def test_status_colour_choice(
    api: FakeApi,
    render: List[Dict[str, Any]],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    argv: List[str],
    env: Dict[str, str],
    color: bool,
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)

    assert main(argv) == 0

    assert ("\x1b[" in capsys.readouterr().out) is color
    assert render[0]["color"] is color


class Stream(io.StringIO):
    def __init__(self, tty: bool) -> None:
        super().__init__()
        self.tty = tty

    def isatty(self) -> bool:
        return self.tty


@pytest.mark.parametrize(
    ("choice", "tty", "env", "expected"),
    [
        ("auto", True, {}, True),
        ("auto", True, {"TERM": "dumb"}, False),
        ("auto", True, {"NO_COLOR": "1"}, False),
        ("auto", True, {"NO_COLOR": ""}, True),
        ("auto", False, {}, False),
        ("auto", False, {"FORCE_COLOR": "1"}, True),
        ("auto", False, {"FORCE_COLOR": "0"}, False),
        ("always", False, {"NO_COLOR": "1"}, True),
        ("never", True, {"FORCE_COLOR": "1"}, False),
    ],
    ids=["tty", "dumb", "no-color", "empty-no-color", "pipe", "force", "force-zero", "always", "never"],
)
def test_use_color(choice: str, tty: bool, env: Dict[str, str], expected: bool) -> None:
    assert use_color(choice, stream=Stream(tty), env=env) is expected


@pytest.mark.parametrize(
    ("env", "expected"),
    [({"COLUMNS": "120"}, 120), ({"COLUMNS": "wide"}, 80), ({"COLUMNS": "0"}, 80), ({}, 80)],
    ids=["columns", "junk", "zero", "no-tty"],
)
def test_terminal_width(env: Dict[str, str], expected: int) -> None:
    assert terminal_width(stream=Stream(False), env=env) == expected


def test_status_passes_the_project(api: FakeApi, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["status", "--json", "--project", "."]) == 0

    assert api.calls == [("snapshot", tmp_path)]


def test_status_with_a_missing_project_is_an_error(api: FakeApi, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["status", "--project", "nope"]) == 1

    assert capsys.readouterr() == (
        "",
        "Error: project directory nope (from --project) does not exist — pass the project root\n",
    )
    assert api.calls == []


def test_status_with_the_real_renderer_and_no_colour(
    api: FakeApi, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.setenv("FORCE_COLOR", "1")

    assert main(["status"]) == 0
    out_env = capsys.readouterr().out
    assert main(["status", "--color", "never"]) == 0
    out_flag = capsys.readouterr().out

    assert "/review-pr" in out_env
    assert "\x1b" not in out_env
    assert out_flag == out_env


def test_status_json_with_the_real_api(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / ".claude").mkdir()
    (tmp_path / ".claude" / "budget.toml").write_text('mode = "block"\n[commands."/review-pr"]\ntokens = "50k"\n')

    assert main(["status", "--json", "--project", str(tmp_path)]) == 0

    data = json.loads(capsys.readouterr().out)
    assert (data["version"], data["mode"], data["ledger"]) == (
        2,
        "block",
        str(tmp_path / ".claude" / "budget-ledger.toml"),
    )
    assert data["commands"]["/review-pr"]["limit"] == 50_000


# --- reset -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "called_with", "result", "out"),
    [
        (["reset", "review-pr"], "/review-pr", ["/review-pr"], "Reset /review-pr.\n"),
        (
            ["reset", "--all"],
            None,
            ["overall", "/deploy", "/review-pr"],
            "Reset overall.\nReset /deploy.\nReset /review-pr.\n",
        ),
        (["reset", "/nope"], "/nope", [], "Nothing to reset: no usage is recorded for /nope.\n"),
        (["reset", "--all"], None, [], "Nothing to reset: no usage is recorded yet.\n"),
    ],
    ids=["one", "all", "one-nothing", "all-nothing"],
)
def test_reset(
    api: FakeApi,
    capsys: pytest.CaptureFixture[str],
    argv: List[str],
    called_with: Optional[str],
    result: List[str],
    out: str,
) -> None:
    api.reset_result = result

    assert main(argv) == 0

    assert capsys.readouterr() == (out, "")
    assert api.calls == [("reset", called_with, None)]


@pytest.mark.parametrize("argv", [["reset"], ["reset", "/x", "--all"]], ids=["neither", "both"])
def test_reset_needs_exactly_one_target(api: FakeApi, capsys: pytest.CaptureFixture[str], argv: List[str]) -> None:
    assert main(argv) == 2

    out, err = capsys.readouterr()
    assert out == ""
    assert err.splitlines()[-1] == "claude-budget reset: error: give exactly one of COMMAND or --all"
    assert api.calls == []


# --- usage, version, errors --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "last_line"),
    [
        ([], "claude-budget: error: the following arguments are required: SUBCOMMAND"),
        (["bogus"], "claude-budget: error: argument SUBCOMMAND: invalid choice: 'bogus' (choose from"),
        (
            ["status", "--color", "sometimes"],
            "claude-budget status: error: argument --color: invalid choice: 'sometimes' (choose from",
        ),
        (
            ["status", "/a b"],
            "claude-budget status: error: argument COMMAND: not a command name: '/a b' (expected e.g. /review-pr)",
        ),
        (
            ["status", "/"],
            "claude-budget status: error: argument COMMAND: not a command name: '/' (expected e.g. /review-pr)",
        ),
        (["path", "--bogus"], "claude-budget: error: unrecognized arguments: --bogus"),
    ],
    ids=["no-subcommand", "unknown-subcommand", "bad-color", "space-in-command", "bare-slash", "unknown-option"],
)
def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str], argv: List[str], last_line: str) -> None:
    assert main(argv) == 2

    out, err = capsys.readouterr()
    assert out == ""
    # Python 3.12.8+ prints the choices without quotes, so those two lines are matched up to them.
    assert err.splitlines()[-1][: len(last_line)] == last_line


def test_help_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0

    out = capsys.readouterr().out
    for subcommand in ("status", "reset", "install", "path"):
        assert f"    {subcommand} " in out


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--version"]) == 0

    assert capsys.readouterr() == ("claude-budget 0.6.0\n", "")


@pytest.mark.parametrize(
    ("error", "line"),
    [
        (
            ConfigError('mode "fast" in .claude/budget.toml is not a mode — use warn, block or kill'),
            'Error: mode "fast" in .claude/budget.toml is not a mode — use warn, block or kill\n',
        ),
        (
            LockTimeout("the ledger lock /p/l.lock was held for more than 5 s"),
            "Error: the ledger lock /p/l.lock was held for more than 5 s\n",
        ),
    ],
    ids=["config", "lock"],
)
def test_expected_errors_are_one_line_exit_1(
    api: FakeApi, capsys: pytest.CaptureFixture[str], error: Exception, line: str
) -> None:
    api.raises = error

    assert main(["status", "--json"]) == 1

    assert capsys.readouterr() == ("", line)


def test_internal_error_is_reported_without_a_traceback(api: FakeApi, capsys: pytest.CaptureFixture[str]) -> None:
    api.raises = RuntimeError("boom")

    assert main(["status", "--json", "/x"]) == 1

    assert capsys.readouterr() == (
        "",
        "Error: internal error: RuntimeError('boom')\n"
        "This is a bug in claude-budget 0.6.0; please report it with the output of "
        "`CLAUDE_BUDGET_DEBUG=1 claude-budget status --json /x`.\n",
    )


def test_internal_error_traceback_with_debug(
    api: FakeApi, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CLAUDE_BUDGET_DEBUG", "1")
    api.raises = RuntimeError("boom")

    assert main(["status"]) == 1

    err = capsys.readouterr().err
    assert err.startswith("Traceback (most recent call last):\n")
    assert "RuntimeError: boom\nError: internal error: RuntimeError('boom')\n" in err


def test_ctrl_c_exits_130(api: FakeApi, capsys: pytest.CaptureFixture[str]) -> None:
    api.raises = KeyboardInterrupt()

    assert main(["status"]) == 130

    assert capsys.readouterr() == ("", "")


# --- path --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("config", "env", "expected"),
    [
        (None, {}, "{p}/.claude/budget-ledger.toml"),
        ('ledger = "state/ledger.toml"\n', {}, "{p}/state/ledger.toml"),
        ('ledger = "state/ledger.toml"\n', {"CLAUDE_BUDGET_STATE": "/elsewhere/l.toml"}, "/elsewhere/l.toml"),
        ("not toml at all", {"CLAUDE_BUDGET_STATE": "/elsewhere/l.toml"}, "/elsewhere/l.toml"),
        ('mode = "block"\n', {}, "{p}/.claude/budget-ledger.toml"),
    ],
    ids=["default", "config", "env-beats-config", "env-skips-config", "config-without-ledger"],
)
def test_path(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    config: Optional[str],
    env: Dict[str, str],
    expected: str,
) -> None:
    (tmp_path / ".claude").mkdir()
    if config is not None:
        (tmp_path / ".claude" / "budget.toml").write_text(config)
    for name, value in env.items():
        monkeypatch.setenv(name, value)

    assert main(["path", "--project", str(tmp_path)]) == 0

    assert capsys.readouterr() == (expected.format(p=tmp_path) + "\n", "")


def test_path_finds_the_project_from_the_environment(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CLAUDE_PROJECT_DIR", str(tmp_path / "proj"))

    assert main(["path", "--json"]) == 0

    p = tmp_path / "proj"
    assert json.loads(capsys.readouterr().out) == {
        "version": 1,
        "project": str(p),
        "config": str(p / ".claude" / "budget.toml"),
        "ledger": str(p / ".claude" / "budget-ledger.toml"),
        "parts": str(p / ".claude" / "budget-ledger.d"),
        "runs": str(p / ".claude" / "budget-ledger.runs.jsonl"),
        "lock": str(p / ".claude" / "budget-ledger.toml.lock"),
    }


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ("ledger = ", "{c} is not valid TOML: Invalid value (at end of document) — fix it or delete the file"),
        ("ledger = 3\n", 'invalid ledger in {c}: expected a path string, e.g. ledger = ".claude/budget-ledger.toml"'),
    ],
    ids=["not-toml", "not-a-string"],
)
def test_path_with_a_bad_config(tmp_path: Path, capsys: pytest.CaptureFixture[str], config: str, message: str) -> None:
    (tmp_path / ".claude").mkdir()
    (tmp_path / ".claude" / "budget.toml").write_text(config)

    assert main(["path", "--project", str(tmp_path)]) == 1

    assert capsys.readouterr() == ("", "Error: " + message.format(c=tmp_path / ".claude" / "budget.toml") + "\n")


# --- install -----------------------------------------------------------------------------------


def test_install_in_process(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "proj").mkdir()

    assert main(["install", "proj"]) == 0

    out, err = capsys.readouterr()
    assert err == ""
    assert out.splitlines()[0].startswith(".claude/settings.json: added the hook for UserPromptSubmit, ")
    assert out.splitlines()[-1] == (
        f"Done: claude-budget's hooks are wired in {tmp_path / 'proj'}. "
        "Try /budget; `claude-budget doctor` checks the setup."
    )
    assert len(out.splitlines()) in (6, 7)  # 7 with the settings.local.json pointer
    assert any(line.startswith("~/.claude/skills/claude-budget/: ") for line in out.splitlines())  # the mod


def test_install_into_a_missing_directory(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["install", "nope"]) == 1

    assert capsys.readouterr() == (
        "",
        "Error: install target nope is not a directory — create it or pass an existing project\n",
    )


def test_install_end_to_end(tmp_path: Path) -> None:
    """The one subprocess test: `python -m budget_state install DIR` as a user would run it."""
    project = tmp_path / "proj"
    project.mkdir()
    # no claude-budget-hook on PATH: install points this machine's hooks at this interpreter
    env = {k: v for k, v in os.environ.items() if k not in ISOLATED_ENV} | {"PATH": "/usr/bin:/bin"}

    done = subprocess.run(
        [sys.executable, "-m", "budget_state", "install", str(project)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout.splitlines()[-1] == (
        f"Done: claude-budget's hooks are wired in {project}. Try /budget; `claude-budget doctor` checks the setup."
    )
    claude = project / ".claude"
    assert sorted(str(p.relative_to(claude)) for p in claude.rglob("*")) == [
        ".gitignore",
        "budget.toml",
        "commands",
        "commands/budget.md",
        "settings.json",
        "settings.local.json",
    ]
    settings = json.loads((claude / "settings.json").read_text())
    hook = hook_command(event="UserPromptSubmit")
    assert settings["hooks"]["UserPromptSubmit"] == [{"hooks": [{"type": "command", "command": hook, "timeout": 30}]}]
    background = hook_command(event="SubagentStop")
    assert settings["hooks"]["SubagentStop"] == [{"hooks": [{"type": "command", "command": background, "timeout": 30}]}]
    local = json.loads((claude / "settings.local.json").read_text())
    assert local == {"env": {"CLAUDE_BUDGET_PYTHON": sys.executable}}
    assert sorted(settings["hooks"]) == sorted(
        ["UserPromptSubmit", "PreToolUse", "SubagentStop", "Stop", "StopFailure", "SessionEnd"]
    )
