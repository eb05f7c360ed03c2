from __future__ import annotations

import json
import os
import stat
import sys
from pathlib import Path
from typing import Any, Dict, List

import pytest

from budget_state._errors import ConfigError
from budget_state._install import CONFIG_TEMPLATE, install
from budget_state._wiring import hook_command

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover (Python < 3.11)
    import tomli as tomllib

PY = "/opt/venv/bin/python"  # not on this machine: install points the hooks at it in settings.local.json
EVENTS = ["UserPromptSubmit", "PreToolUse", "SubagentStop", "Stop", "StopFailure", "SessionEnd"]
# What install runs per event: the portable line of budget_state._wiring (its behaviour is tested by
# running it in test_wiring.py); no interpreter path in the committed file.
CMD = {e: hook_command(event=e) for e in EVENTS}
HOOK = CMD["UserPromptSubmit"]


@pytest.fixture(autouse=True)
def _no_mod(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """The tests here are about the project's files; install's mod folder (in the user's
    ~/.claude/skills, shared by every test of the session) has its own tests below."""
    if "mod" not in request.node.name:
        import budget_state._install as _install

        monkeypatch.setattr(_install, "_plan_mod", lambda folder, plan: None)


def fresh_settings() -> str:
    return (
        json.dumps(
            {
                "hooks": {
                    e: [
                        {
                            **({"matcher": "*"} if e == "PreToolUse" else {}),
                            "hooks": [{"type": "command", "command": CMD[e], "timeout": 30}],
                        }
                    ]
                    for e in EVENTS
                }
            },
            indent=2,
        )
        + "\n"
    )


FRESH_SETTINGS = fresh_settings()
FRESH_LOCAL = """\
{
  "env": {
    "CLAUDE_BUDGET_PYTHON": "/opt/venv/bin/python"
  }
}
"""
LOCAL_SET = (
    ".claude/settings.local.json: set env CLAUDE_BUDGET_PYTHON=/opt/venv/bin/python "
    "(this machine's interpreter with claude-budget)"
)

FRESH_COMMAND = """\
---
description: Show token budgets (answered by the claude-budget hook; no model call)
argument-hint: "[/command]"
---
<!-- claude-budget: written by `claude-budget install`, which updates this file; \
delete this line to keep your own version -->

Reply with exactly this line and nothing else: "claude-budget did not answer /budget: its hooks are \
not running in this session, so budgets are not counted or enforced. Run `claude-budget doctor` in \
this project to see why (or install it: pipx install claude-budget)."
"""

FRESH_GITIGNORE = """\
# claude-budget: the ledger and its lock/cache are per machine
budget-ledger.toml
budget-ledger.toml.lock
budget-cache.json
budget-ledger.corrupt-*
.budget-ledger.toml.tmp
budget-hook.log
budget-hook.log.1
budget-ledger.d/
budget-ledger.runs.jsonl
settings.local.json
"""

ALL_ADDED = (
    ".claude/settings.json: added the hook for UserPromptSubmit, PreToolUse, "
    "SubagentStop, Stop, StopFailure, SessionEnd"
)
GITIGNORE_ADDED = (
    ".claude/.gitignore: added budget-ledger.toml, budget-ledger.toml.lock, budget-cache.json, budget-ledger.corrupt-*, "
    ".budget-ledger.toml.tmp, budget-hook.log, budget-hook.log.1, budget-ledger.d/, budget-ledger.runs.jsonl, settings.local.json"
)
UNCHANGED = [
    ".claude/settings.json: unchanged (the hook is already installed)",
    ".claude/settings.local.json: unchanged",
    ".claude/commands/budget.md: unchanged",
    ".claude/.gitignore: unchanged",
    ".claude/budget.toml: kept as is (already there)",
]


def ours(command: str = HOOK, matcher: bool = False, *, event: str | None = None) -> Dict[str, Any]:
    """Our entry as a warn-mode install writes it: for ``event``, or with ``command``."""
    group: Dict[str, Any] = {"matcher": "*"} if matcher or event == "PreToolUse" else {}
    group["hooks"] = [{"type": "command", "command": CMD[event] if event else command, "timeout": 30}]
    return group


def read_tree(root: Path) -> Dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def settings_of(project: Path) -> Dict[str, Any]:
    data: Dict[str, Any] = json.loads((project / ".claude" / "settings.json").read_text())
    return data


def our_commands(settings: Dict[str, Any]) -> List[str]:
    return [
        h["command"]
        for groups in settings["hooks"].values()
        for g in groups
        for h in g["hooks"]
        if "budget_state.hook" in h["command"] or "budget_hook.py" in h["command"]
    ]


def test_fresh_project(tmp_path: Path) -> None:
    lines = install(tmp_path, python=PY)

    assert lines == [
        ALL_ADDED,
        LOCAL_SET,
        ".claude/commands/budget.md: written (the /budget command)",
        GITIGNORE_ADDED,
        ".claude/budget.toml: written (a commented template; every setting is off until you uncomment it)",
    ]
    claude = tmp_path / ".claude"
    assert (claude / "settings.json").read_text() == FRESH_SETTINGS
    assert (claude / "commands" / "budget.md").read_text() == FRESH_COMMAND
    assert (claude / ".gitignore").read_text() == FRESH_GITIGNORE
    assert (claude / "budget.toml").read_text() == CONFIG_TEMPLATE
    assert (claude / "settings.local.json").read_text() == FRESH_LOCAL
    assert sorted(read_tree(tmp_path)) == [
        ".claude/.gitignore",
        ".claude/budget.toml",
        ".claude/commands/budget.md",
        ".claude/settings.json",
        ".claude/settings.local.json",
    ]
    assert PY not in (claude / "settings.json").read_text()  # the committed file names no interpreter


def test_new_files_get_umask_permissions(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        install(tmp_path, python=PY)
    finally:
        os.umask(old)

    assert stat.S_IMODE((tmp_path / ".claude" / "settings.json").stat().st_mode) == 0o644


def test_config_template_is_all_commented_out(tmp_path: Path) -> None:
    install(tmp_path, python=PY)

    assert tomllib.loads((tmp_path / ".claude" / "budget.toml").read_text()) == {}


def test_config_template_documents_every_key() -> None:
    uncommented = "\n".join(
        line[2:]
        for line in CONFIG_TEMPLATE.splitlines()
        if line.startswith("# ") and (" = " in line or line.startswith("# [")) and not line.startswith("#   ")
    )

    assert tomllib.loads(uncommented) == {
        "mode": "warn",
        "overall_tokens": "5M",
        "count": ["input", "output", "cache_creation", "cache_read"],
        "on_error": "open",
        "lock_timeout": 5,
        "ledger": ".claude/budget-ledger.toml",
        "commands": {"/review-pr": {"tokens": "200k"}},
    }


def test_merges_into_existing_settings_without_losing_anything(tmp_path: Path) -> None:
    existing = {
        "model": "sonnet",
        "permissions": {"allow": ["Bash(git status:*)"], "deny": []},
        "hooks": {
            "PreToolUse": [{"matcher": "Bash", "hooks": [{"type": "command", "command": "./guard.sh"}]}],
            "Notification": [{"hooks": [{"type": "command", "command": "notify-send hi"}]}],
            "Stop": [{"hooks": [{"type": "command", "command": "echo done", "timeout": 5}]}],
        },
        "statusLine": {"type": "command", "command": "~/.claude/status.sh"},
        "env": {"FOO": "bär"},
    }
    (tmp_path / ".claude").mkdir()
    (tmp_path / ".claude" / "settings.json").write_text(json.dumps(existing, indent=4))

    lines = install(tmp_path, python=PY)

    assert lines[0] == ALL_ADDED
    after = settings_of(tmp_path)
    assert list(after) == ["model", "permissions", "hooks", "statusLine", "env"]
    assert list(after["hooks"]) == [
        "PreToolUse",
        "Notification",
        "Stop",
        *[e for e in EVENTS if e not in ("PreToolUse", "Stop")],
    ]
    assert after == {
        "model": "sonnet",
        "permissions": {"allow": ["Bash(git status:*)"], "deny": []},
        "hooks": {
            "PreToolUse": [
                {"matcher": "Bash", "hooks": [{"type": "command", "command": "./guard.sh"}]},
                ours(event="PreToolUse"),
            ],
            "Notification": [{"hooks": [{"type": "command", "command": "notify-send hi"}]}],
            "Stop": [{"hooks": [{"type": "command", "command": "echo done", "timeout": 5}]}, ours(event="Stop")],
            "UserPromptSubmit": [ours(event="UserPromptSubmit")],
            "SubagentStop": [ours(event="SubagentStop")],
            "StopFailure": [ours(event="StopFailure")],
            "SessionEnd": [ours(event="SessionEnd")],
        },
        "statusLine": {"type": "command", "command": "~/.claude/status.sh"},
        "env": {"FOO": "bär"},
    }
    assert '"FOO": "bär"' in (tmp_path / ".claude" / "settings.json").read_text(encoding="utf-8")


def test_second_install_changes_no_byte(tmp_path: Path) -> None:
    (tmp_path / ".claude").mkdir()
    (tmp_path / ".claude" / "settings.json").write_text(
        '{"hooks": {"Stop": [{"hooks": [{"type": "command", "command": "x"}]}]}}'
    )
    install(tmp_path, python=PY)
    before = read_tree(tmp_path)

    lines = install(tmp_path, python=PY)

    assert lines == UNCHANGED
    assert read_tree(tmp_path) == before


def test_settings_already_wired_are_not_reformatted(tmp_path: Path) -> None:
    settings = {"hooks": {e: [ours(event=e)] for e in EVENTS}, "model": "opus"}
    text = json.dumps(settings, indent=4)  # no trailing newline, 4 spaces: not our style
    (tmp_path / ".claude").mkdir()
    (tmp_path / ".claude" / "settings.json").write_text(text)

    lines = install(tmp_path, python=PY)

    assert lines[0] == ".claude/settings.json: unchanged (the hook is already installed)"
    assert (tmp_path / ".claude" / "settings.json").read_text() == text


def test_an_older_install_with_an_interpreter_path_is_made_portable_in_place(tmp_path: Path) -> None:
    old = "/home/me/venv/bin/python -m budget_state.hook"
    settings = {"hooks": {e: [{"hooks": [{"type": "command", "command": old, "timeout": 45}]}] for e in EVENTS}}
    settings["hooks"]["Stop"][0]["hooks"].append({"type": "command", "command": "echo after"})
    (tmp_path / ".claude").mkdir()
    (tmp_path / ".claude" / "settings.json").write_text(json.dumps(settings))

    lines = install(tmp_path, python=PY)

    assert lines[0] == f".claude/settings.json: set the hook command for {', '.join(EVENTS)}"
    after = settings_of(tmp_path)
    assert after["hooks"]["Stop"] == [
        {
            "hooks": [
                {"type": "command", "command": CMD["Stop"], "timeout": 45},
                {"type": "command", "command": "echo after"},
            ]
        }
    ]
    assert our_commands(after) == [CMD[e] for e in EVENTS]
    assert "/home/me/venv" not in json.dumps(after)


def test_another_interpreter_moves_only_the_local_pointer(tmp_path: Path) -> None:
    install(tmp_path, python=PY)
    shared = (tmp_path / ".claude" / "settings.json").read_bytes()

    lines = install(tmp_path, python="/home/me/my venv/bin/python3")

    assert lines[:2] == [
        ".claude/settings.json: unchanged (the hook is already installed)",
        ".claude/settings.local.json: set env CLAUDE_BUDGET_PYTHON=/home/me/my venv/bin/python3 "
        "(this machine's interpreter with claude-budget)",
    ]
    assert (tmp_path / ".claude" / "settings.json").read_bytes() == shared
    local = json.loads((tmp_path / ".claude" / "settings.local.json").read_text())
    assert local == {"env": {"CLAUDE_BUDGET_PYTHON": "/home/me/my venv/bin/python3"}}


def test_no_pointer_where_the_project_venv_has_the_hook(tmp_path: Path) -> None:
    """A project .venv (or a claude-budget-hook on PATH) is found by the line itself: nothing local."""
    venv_bin = tmp_path / ".venv" / "bin"
    venv_bin.mkdir(parents=True)
    (tmp_path / ".venv" / "pyvenv.cfg").write_text("home = /usr/bin\n")
    python = venv_bin / "python"
    python.symlink_to(sys.executable)
    hook = venv_bin / "claude-budget-hook"
    hook.write_text(f"#!{venv_bin / 'python3'}\nfrom budget_state.hook import main\n")
    hook.chmod(0o755)
    (tmp_path / ".claude").mkdir()
    (tmp_path / ".claude" / "settings.local.json").write_text('{"env": {"CLAUDE_BUDGET_PYTHON": "/old/python"}}')

    lines = install(tmp_path, python=str(python), env={"PATH": "/usr/bin:/bin"})

    assert lines[1] == (
        ".claude/settings.local.json: removed env CLAUDE_BUDGET_PYTHON (claude-budget-hook is found without it)"
    )
    assert json.loads((tmp_path / ".claude" / "settings.local.json").read_text()) == {}
    assert "settings.local.json" not in (tmp_path / ".claude" / ".gitignore").read_text()


def test_takes_over_the_old_hook_script_entry(tmp_path: Path) -> None:
    old = 'python3 "$CLAUDE_PROJECT_DIR"/hooks/budget_hook.py'
    settings = {"hooks": {"PreToolUse": [{"matcher": "Task", "hooks": [{"type": "command", "command": old}]}]}}
    (tmp_path / ".claude").mkdir()
    (tmp_path / ".claude" / "settings.json").write_text(json.dumps(settings))

    lines = install(tmp_path, python=PY)

    assert lines[0] == (
        ".claude/settings.json: added the hook for UserPromptSubmit, SubagentStop, Stop, StopFailure, "
        "SessionEnd; set the hook command for PreToolUse"
    )
    assert settings_of(tmp_path)["hooks"]["PreToolUse"] == [
        {"matcher": "Task", "hooks": [{"type": "command", "command": CMD["PreToolUse"]}]}
    ]


def test_removes_duplicate_entries_of_ours(tmp_path: Path) -> None:
    user = {"type": "command", "command": "echo mine"}
    settings = {"hooks": {e: [ours(event=e)] for e in EVENTS}}
    settings["hooks"]["Stop"] = [
        ours(event="Stop"),
        {"hooks": [user, {"type": "command", "command": "python3 hooks/budget_hook.py"}]},
        ours("/usr/bin/python3 -m budget_state.hook"),
    ]
    (tmp_path / ".claude").mkdir()
    (tmp_path / ".claude" / "settings.json").write_text(json.dumps(settings))

    lines = install(tmp_path, python=PY)

    assert lines[0] == ".claude/settings.json: removed duplicate claude-budget hooks from Stop"
    assert settings_of(tmp_path)["hooks"]["Stop"] == [ours(event="Stop"), {"hooks": [user]}]


BROKEN = [
    ('{"hooks": {', "invalid JSON in {path}: Expecting property name enclosed in double quotes (at line 1, column 12)"),
    ("[]", "invalid settings in {path}: the top level should be an object, found an array"),
    ('{"hooks": []}', 'invalid settings in {path}: "hooks" should be an object, found an array'),
    ('{"hooks": {"Stop": {}}}', 'invalid settings in {path}: "hooks"."Stop" should be an array, found an object'),
    ('{"hooks": {"Stop": ["x"]}}', 'invalid settings in {path}: "hooks"."Stop"[0] should be an object, found a string'),
    (
        '{"hooks": {"Stop": [{"hooks": 3}]}}',
        'invalid settings in {path}: "hooks"."Stop"[0]."hooks" should be an array, found a number',
    ),
    ('{"model": "a", "model": "b"}', 'invalid settings in {path}: the key "model" appears twice in one object'),
]


@pytest.mark.parametrize(
    ("text", "message"),
    BROKEN,
    ids=["syntax", "top-array", "hooks-array", "event-object", "group-string", "handlers-number", "duplicate-key"],
)
def test_broken_settings_are_reported_and_nothing_is_written(tmp_path: Path, text: str, message: str) -> None:
    (tmp_path / ".claude").mkdir()
    path = tmp_path / ".claude" / "settings.json"
    path.write_text(text)

    with pytest.raises(ConfigError) as info:
        install(tmp_path, python=PY)

    tail = " — fix it and run install again (nothing was changed)"
    if "appears twice" in message:
        tail = " — keep one and run install again (nothing was changed)"
    assert str(info.value) == message.format(path=path) + tail
    assert info.value.path == path
    assert read_tree(tmp_path) == {".claude/settings.json": text.encode()}


@pytest.mark.parametrize("text", ["", "  \n"], ids=["empty", "whitespace"])
def test_empty_settings_file_counts_as_empty_object(tmp_path: Path, text: str) -> None:
    (tmp_path / ".claude").mkdir()
    (tmp_path / ".claude" / "settings.json").write_text(text)

    install(tmp_path, python=PY)

    assert (tmp_path / ".claude" / "settings.json").read_text() == FRESH_SETTINGS


def test_settings_with_bom_are_read(tmp_path: Path) -> None:
    (tmp_path / ".claude").mkdir()
    (tmp_path / ".claude" / "settings.json").write_bytes(b'\xef\xbb\xbf{"model": "opus"}')

    install(tmp_path, python=PY)

    assert list(settings_of(tmp_path)) == ["model", "hooks"]


def test_rewrite_keeps_permissions(tmp_path: Path) -> None:
    (tmp_path / ".claude").mkdir()
    path = tmp_path / ".claude" / "settings.json"
    path.write_text("{}")
    path.chmod(0o600)

    install(tmp_path, python=PY)

    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in (tmp_path / ".claude").iterdir() if p.name.endswith(".tmp")] == []


def test_rewrite_keeps_a_symlinked_settings_file(tmp_path: Path) -> None:
    real = tmp_path / "dotfiles" / "settings.json"
    real.parent.mkdir()
    real.write_text("{}")
    (tmp_path / "proj" / ".claude").mkdir(parents=True)
    link = tmp_path / "proj" / ".claude" / "settings.json"
    link.symlink_to(real)

    install(tmp_path / "proj", python=PY)

    assert link.is_symlink()
    assert real.read_text() == FRESH_SETTINGS


def test_user_written_budget_command_is_kept(tmp_path: Path) -> None:
    mine = "---\ndescription: my own budget view\n---\nShow me the budget.\n"
    (tmp_path / ".claude" / "commands").mkdir(parents=True)
    (tmp_path / ".claude" / "commands" / "budget.md").write_text(mine)

    lines = install(tmp_path, python=PY)

    assert lines[2] == (
        ".claude/commands/budget.md: kept as is (written by you: it lacks the <!-- claude-budget --> marker); "
        "the hook still answers /budget, or delete the file and run install again to get ours"
    )
    assert (tmp_path / ".claude" / "commands" / "budget.md").read_text() == mine


def test_our_budget_command_is_refreshed(tmp_path: Path) -> None:
    (tmp_path / ".claude" / "commands").mkdir(parents=True)
    (tmp_path / ".claude" / "commands" / "budget.md").write_text("<!-- claude-budget -->\nold version\n")

    lines = install(tmp_path, python=PY)

    assert lines[2] == ".claude/commands/budget.md: updated"
    assert (tmp_path / ".claude" / "commands" / "budget.md").read_text() == FRESH_COMMAND


@pytest.mark.parametrize(
    ("existing", "expected", "line"),
    [
        (
            "node_modules/\nbudget-cache.json",
            "node_modules/\nbudget-cache.json\n# claude-budget: the ledger and its lock/cache are per machine\n"
            "budget-ledger.toml\nbudget-ledger.toml.lock\nbudget-ledger.corrupt-*\n.budget-ledger.toml.tmp\n"
            "budget-hook.log\nbudget-hook.log.1\nbudget-ledger.d/\nbudget-ledger.runs.jsonl\nsettings.local.json\n",
            ".claude/.gitignore: added budget-ledger.toml, budget-ledger.toml.lock, budget-ledger.corrupt-*, "
            ".budget-ledger.toml.tmp, budget-hook.log, budget-hook.log.1, budget-ledger.d/, budget-ledger.runs.jsonl, settings.local.json",
        ),
        (
            "# claude-budget: the ledger and its lock/cache are per machine\n"
            "budget-ledger.toml\n  budget-cache.json  \n",
            "# claude-budget: the ledger and its lock/cache are per machine\n"
            "budget-ledger.toml\n  budget-cache.json  \nbudget-ledger.toml.lock\nbudget-ledger.corrupt-*\n"
            ".budget-ledger.toml.tmp\nbudget-hook.log\nbudget-hook.log.1\nbudget-ledger.d/\nbudget-ledger.runs.jsonl\nsettings.local.json\n",
            ".claude/.gitignore: added budget-ledger.toml.lock, budget-ledger.corrupt-*, .budget-ledger.toml.tmp, "
            "budget-hook.log, budget-hook.log.1, budget-ledger.d/, budget-ledger.runs.jsonl, settings.local.json",
        ),
        (
            "budget-ledger.corrupt-*\nbudget-ledger.toml.lock\nbudget-cache.json\nbudget-ledger.toml\n"
            ".budget-ledger.toml.tmp\nbudget-hook.log\nbudget-hook.log.1\nbudget-ledger.d/\nbudget-ledger.runs.jsonl\nsettings.local.json\n",
            "budget-ledger.corrupt-*\nbudget-ledger.toml.lock\nbudget-cache.json\nbudget-ledger.toml\n"
            ".budget-ledger.toml.tmp\nbudget-hook.log\nbudget-hook.log.1\nbudget-ledger.d/\nbudget-ledger.runs.jsonl\nsettings.local.json\n",
            ".claude/.gitignore: unchanged",
        ),
    ],
    ids=["some-missing-no-final-newline", "ours-partly", "all-present"],
)
def test_gitignore_gets_only_missing_lines(tmp_path: Path, existing: str, expected: str, line: str) -> None:
    (tmp_path / ".claude").mkdir()
    (tmp_path / ".claude" / ".gitignore").write_text(existing)

    lines = install(tmp_path, python=PY)
    install(tmp_path, python=PY)

    assert lines[3] == line
    assert (tmp_path / ".claude" / ".gitignore").read_text() == expected


def test_existing_config_is_never_touched(tmp_path: Path) -> None:
    (tmp_path / ".claude").mkdir()
    (tmp_path / ".claude" / "budget.toml").write_text('mode = "block"\n')

    lines = install(tmp_path, python=PY)

    assert lines[4] == ".claude/budget.toml: kept as is (already there)"
    assert (tmp_path / ".claude" / "budget.toml").read_text() == 'mode = "block"\n'


def test_missing_target_is_an_error(tmp_path: Path) -> None:
    target = tmp_path / "nope"

    with pytest.raises(ConfigError) as info:
        install(target, python=PY)

    assert str(info.value) == f"install target {target} is not a directory — create it or pass an existing project"
    assert not target.exists()


def test_claude_path_that_is_a_file_is_an_error(tmp_path: Path) -> None:
    (tmp_path / ".claude").write_text("")

    with pytest.raises(ConfigError) as info:
        install(tmp_path, python=PY)

    assert (
        str(info.value) == f"{tmp_path / '.claude'} exists but is not a directory — move it aside and run install again"
    )


def test_write_failure_is_an_error_and_leaves_no_temp_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(src: object, dst: object) -> None:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(os, "replace", refuse)

    with pytest.raises(ConfigError) as info:
        install(tmp_path, python=PY)

    assert str(info.value) == f"cannot write {tmp_path / '.claude' / 'settings.json'}: Permission denied"
    assert read_tree(tmp_path) == {}


def test_config_template_uncommented_is_accepted_by_the_config_loader(tmp_path: Path) -> None:
    from budget_state.budgets import _config

    uncommented = "\n".join(
        line[2:]
        if line.startswith("# ") and (" = " in line or line.startswith("# [")) and not line.startswith("#   ")
        else line
        for line in CONFIG_TEMPLATE.splitlines()
    )
    (tmp_path / ".claude").mkdir()
    (tmp_path / ".claude" / "budget.toml").write_text(uncommented)

    config = _config.load_config(tmp_path, {})

    assert (config.mode, config.overall_tokens, config.on_error, config.lock_timeout, config.ledger) == (
        "warn",
        5_000_000,
        "open",
        5.0,
        ".claude/budget-ledger.toml",
    )
    assert dict(config.commands) == {"/review-pr": 200_000}
    assert config.warnings == ()


def test_removes_our_entry_from_events_no_longer_used(tmp_path: Path) -> None:
    user = {"type": "command", "command": "./lint.sh"}
    settings = {"hooks": {e: [ours(event=e)] for e in EVENTS}}
    settings["hooks"]["PostToolUse"] = [ours(matcher=True), {"matcher": "Edit", "hooks": [user]}]
    (tmp_path / ".claude").mkdir()
    (tmp_path / ".claude" / "settings.json").write_text(json.dumps(settings))

    lines = install(tmp_path, python=PY)

    assert lines[0] == ".claude/settings.json: removed the hook from PostToolUse (no longer needed)"
    assert settings_of(tmp_path)["hooks"]["PostToolUse"] == [{"matcher": "Edit", "hooks": [user]}]
    settings["hooks"]["PostToolUse"] = [ours(matcher=True)]
    (tmp_path / ".claude" / "settings.json").write_text(json.dumps(settings))
    install(tmp_path, python=PY)
    assert "PostToolUse" not in settings_of(tmp_path)["hooks"]


def test_install_writes_the_mod_where_claude_code_loads_it(tmp_path: Path) -> None:
    from budget_state._install import mod_files

    home = tmp_path / "home"
    project = tmp_path / "proj"
    project.mkdir()
    env = {"HOME": str(home)}
    lines = install(project, python=PY, env=env)

    folder = home / ".claude" / "skills" / "claude-budget"
    assert lines[-1].startswith("~/.claude/skills/claude-budget/: written (the mod"), lines
    files = mod_files()
    assert sorted(files) == [".claude-plugin/plugin.json", "hooks/claude-budget.mod.ts", "hooks/hooks.json"]
    for rel, text in files.items():
        assert (folder / rel).read_text(encoding="utf-8") == text
    assert json.loads(files["hooks/hooks.json"])["modules"] == ["./claude-budget.mod.ts"]
    assert json.loads(files[".claude-plugin/plugin.json"])["name"] == "claude-budget-mod"
    # the plugin's copy is the same mod
    repo = Path(__file__).resolve().parents[1]
    assert files["hooks/claude-budget.mod.ts"] == (repo / "plugin" / "hooks" / "claude-budget.mod.ts").read_text()

    again = install(project, python=PY, env=env)
    assert again[-1].startswith("~/.claude/skills/claude-budget/: unchanged"), again
    user = install(home / ".claude", python=PY, scope="user", env=env)
    assert user[-1].startswith("~/.claude/skills/claude-budget/: unchanged"), user


def test_uninstall_user_takes_the_mod_out_and_a_project_uninstall_keeps_it(tmp_path: Path) -> None:
    from budget_state.cli._uninstall import uninstall

    home = tmp_path / "home"
    project = tmp_path / "proj"
    project.mkdir()
    env = {"HOME": str(home)}
    install(project, python=PY, env=env)
    folder = home / ".claude" / "skills" / "claude-budget"
    (folder / ".claude-plugin" / "types").mkdir()  # what Claude Code writes beside a mod it loads
    uninstall(project)
    assert (folder / "hooks" / "claude-budget.mod.ts").exists()
    install(home / ".claude", python=PY, scope="user", env=env)
    lines = uninstall(home / ".claude", scope="user")
    assert "~/.claude/skills/claude-budget/: deleted (the mod)" in lines
    assert not folder.exists()
