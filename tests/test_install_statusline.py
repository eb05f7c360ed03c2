"""``claude-budget install --statusline``: set the project's statusLine, never replace the user's."""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from budget_state.cli import _cli
from budget_state._install import install_statusline
from budget_state._wiring import statusline_command

PY = sys.executable


@pytest.fixture
def home(tmp_path: Path) -> Path:
    (tmp_path / "home" / ".claude").mkdir(parents=True)
    return tmp_path / "home" / ".claude"


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "proj" / ".claude").mkdir(parents=True)
    return tmp_path / "proj"


def settings(project: Path) -> dict:
    return json.loads((project / ".claude" / "settings.json").read_text())


def test_sets_it_when_there_is_none_and_keeps_every_other_key(project: Path, home: Path) -> None:
    (project / ".claude" / "settings.json").write_text(json.dumps({"model": "opus", "hooks": {}}))
    lines = install_statusline(project, home=home)
    assert lines == [".claude/settings.json: set statusLine to claude-budget's status line"]
    command = statusline_command()
    expected = {"type": "command", "command": command, "padding": 0, "refreshInterval": 10}
    assert settings(project) == {"model": "opus", "hooks": {}, "statusLine": expected}

    before = (project / ".claude" / "settings.json").read_bytes()
    assert install_statusline(project, home=home) == [".claude/settings.json: statusLine unchanged (claude-budget's)"]
    assert (project / ".claude" / "settings.json").read_bytes() == before

    # An earlier install's line (an interpreter path): ours is brought up to today's, nothing else changes.
    data = settings(project)
    data["statusLine"]["command"] = f"{shlex.quote(PY)} -m budget_state.statusline"
    (project / ".claude" / "settings.json").write_text(json.dumps(data))
    assert install_statusline(project, home=home) == [
        ".claude/settings.json: set the statusLine command (claude-budget's)"
    ]
    assert settings(project)["statusLine"] == expected


def test_the_line_runs_what_the_hook_lines_would_and_is_silent_without_it(tmp_path: Path) -> None:
    proj = tmp_path / "p"
    (proj / ".claude").mkdir(parents=True)
    payload = json.dumps({"session_id": "s", "workspace": {"project_dir": str(proj)}})
    base = {"HOME": str(tmp_path), "NO_COLOR": "1", "PATH": "/usr/bin:/bin", "CLAUDE_PROJECT_DIR": str(proj)}
    for env, expected in (({}, ""), ({"CLAUDE_BUDGET_PYTHON": PY}, "overall 0 tokens, no budget\n")):
        out = subprocess.run(
            ["sh", "-c", statusline_command()],
            input=payload,
            capture_output=True,
            text=True,
            timeout=60,
            env={**base, **env},
        )
        assert (out.returncode, out.stdout, out.stderr) == (0, expected, "")


@pytest.mark.parametrize("where", ["settings.json", "settings.local.json", "user"])
def test_never_replaces_an_existing_one_and_says_how_to_show_both(
    project: Path, home: Path, tmp_path: Path, where: str
) -> None:
    theirs = {"type": "command", "command": "echo THEIRS; cat >/dev/null"}
    path = home / "settings.json" if where == "user" else project / ".claude" / where
    path.write_text(json.dumps({"statusLine": theirs}))
    before = {p: p.read_bytes() for p in (project / ".claude").iterdir()}

    lines = install_statusline(project, home=home)
    assert "statusLine kept as is" in lines[0] and "never replaces it" in lines[0], lines
    assert {p: p.read_bytes() for p in (project / ".claude").iterdir()} == before  # nothing written
    advice = json.loads(lines[-1].strip().removeprefix('(in JSON: "statusLine": ').removesuffix(")"))
    assert lines[-2].strip() == advice["command"]

    # The advice works: both lines, each from the same input.
    proj = tmp_path / "other"
    (proj / ".claude").mkdir(parents=True)
    payload = json.dumps({"session_id": "s", "workspace": {"project_dir": str(proj)}})
    out = subprocess.run(
        ["sh", "-c", advice["command"]],
        input=payload,
        capture_output=True,
        text=True,
        timeout=60,
        env={"HOME": str(home.parent), "NO_COLOR": "1", "PATH": "/usr/bin:/bin", "CLAUDE_BUDGET_PYTHON": PY},
    )
    assert (out.returncode, out.stdout, out.stderr) == (0, "THEIRS\noverall 0 tokens, no budget\n", "")


def test_an_existing_one_of_ours_elsewhere_is_recognised(project: Path, home: Path) -> None:
    (home / "settings.json").write_text(
        json.dumps({"statusLine": {"type": "command", "command": statusline_command()}})
    )
    assert install_statusline(project, home=home) == [
        f"{home / 'settings.json'}: statusLine is already claude-budget's"
    ]
    assert not (project / ".claude" / "settings.json").exists()


def test_a_statusline_without_a_command(project: Path, home: Path) -> None:
    (project / ".claude" / "settings.json").write_text(json.dumps({"statusLine": {"type": "static"}}))
    lines = install_statusline(project, home=home)
    assert lines[-1] == f"To show claude-budget's line, make the statusLine command run: {statusline_command()}"


def test_broken_settings_are_an_error_and_nothing_is_written(project: Path, home: Path) -> None:
    (project / ".claude" / "settings.json").write_text("{nope")
    from budget_state._errors import ConfigError

    with pytest.raises(ConfigError, match="invalid JSON"):
        install_statusline(project, home=home)
    assert (project / ".claude" / "settings.json").read_text() == "{nope"


def test_install_flag(
    project: Path, home: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("HOME", str(home.parent))
    monkeypatch.delenv("CLAUDE_CONFIG_DIR", raising=False)
    assert _cli.main(["install", str(project)]) == 0
    assert "statusLine" not in settings(project)
    assert _cli.main(["install", "--statusline", str(project)]) == 0
    assert settings(project)["statusLine"]["command"] == statusline_command()
    assert "budget_state.hook" in json.dumps(settings(project)["hooks"])  # the hooks are wired as ever
    assert "set statusLine to claude-budget's status line" in capsys.readouterr().out
