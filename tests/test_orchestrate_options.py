"""``claude-budget orchestrate``'s flags and configuration file: checked before anything starts."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

from budget_state.cli._cli import build_parser, main
from budget_state.orchestrator._options import Instance, UsageError, build


def options(*argv: str) -> Any:
    return build(build_parser().parse_args(["orchestrate", *argv]))


@pytest.mark.parametrize(
    ("argv", "line"),
    [
        (
            ["--instance", "/a", "--command-budget", "review=5"],
            'Error: --command-budget "review=5" is not /command=amount — write e.g. --command-budget "/gitcommitgardener=50k"',
        ),
        (
            ["--instance", "/a", "--overall-token-budget", "-5"],
            'Error: --overall-token-budget "-5" is not a positive number of tokens — write e.g. 10000, 50k or 1.5M',
        ),
        (
            ["--instance", "/a", "--budget-enforcement-mode", "sometimes"],
            'Error: --budget-enforcement-mode "sometimes" is not a mode — use warn, block or kill (stop-new, kill-running)',
        ),
        (
            ["--instance", "/a", "--budget-dashboard-mode", "tv"],
            'Error: --budget-dashboard-mode "tv" is not a dashboard mode — use live, report or off',
        ),
        (
            ["--instance", "/a", "--overall-cost-budget", "lots"],
            'Error: --overall-cost-budget "lots" is not an amount of dollars above 0 — write e.g. 5.00',
        ),
        (
            ["--instance", "/a", "--max-concurrent", "0"],
            'Error: --max-concurrent "0" is not a whole number above 0 — write e.g. 4',
        ),
        (
            ["--instance", "/a", "--budget-report-interval", "0"],
            'Error: --budget-report-interval "0" is not a number of seconds above 0 — write e.g. 10',
        ),
        (
            ["--instance", "review"],
            'Error: --instance "review" is not a slash command — write e.g. "/gitcommitgardener"',
        ),
        ([], 'Error: nothing to run — give --instance "/command args" (repeatable) or --config FILE with instances'),
        (
            ["--instance", "/a", "--", "-p", "x"],
            "Error: -p after -- is set by the orchestrator for each instance — leave it out",
        ),
        (
            ["--instance", "/a", "--frobnicate"],
            "Error: orchestrate: unrecognized arguments: --frobnicate (see claude-budget orchestrate --help)",
        ),
    ],
    ids=[
        "command-budget-without-slash",
        "negative",
        "unknown-mode",
        "unknown-dashboard",
        "bad-dollars",
        "zero-concurrency",
        "zero-interval",
        "not-a-command",
        "nothing",
        "reserved-claude-flag",
        "unknown-flag",
    ],
)
def test_a_malformed_flag_is_one_line_and_exit_2(capsys: pytest.CaptureFixture[str], argv: list[str], line: str) -> None:
    assert main(["orchestrate", *argv]) == 2
    out, err = capsys.readouterr()
    assert (out, err) == ("", line + "\n")


def test_flags_are_read_as_the_plans_spell_them() -> None:
    o = options(
        "--instance", "/gitcommitgardener --fast", "--instance", "/refreshgardener",
        "--overall-token-budget", "1.5M", "--overall-cost-budget", "$5", "--hourly-token-budget", "50k",
        "--hourly-cost-budget", "1.25", "--budget-period-minutes", "30", "--command-budget", "/refreshgardener=2k",
        "--command-cost-budget", "/refreshgardener=0.25", "--budget-enforcement-mode", "kill-running",
        "--budget-dashboard-mode", "live", "--budget-report-interval", "2.5", "--disable-budget-visuals",
        "--persistent-budgets", "--budget-reset-on-restart", "--max-concurrent", "8", "--claude", "/opt/claude",
        "--", "--model", "sonnet",
    )  # fmt: skip
    assert o.instances == (
        Instance("/gitcommitgardener", "--fast", order=0),
        Instance(
            "/refreshgardener", "", order=1, tokens=2000, usd_micros=250_000,
            tokens_from="--command-budget", usd_from="--command-cost-budget",
        ),
    )  # fmt: skip
    assert (o.overall_tokens, o.overall_usd_micros, o.hourly_tokens, o.hourly_usd_micros) == (
        1_500_000,
        5_000_000,
        50_000,
        1_250_000,
    )
    assert (o.period, o.mode, o.dashboard, o.interval, o.visuals) == (30, "kill", "live", 2.5, False)
    assert o.shown_mode == "kill-running"  # the report names the mode as it was given
    assert (o.persistent, o.reset, o.max_concurrent, o.claude, o.extra) == (True, True, 8, "/opt/claude", ("--model", "sonnet"))
    assert o.warnings == ()


def write(tmp_path: Path, data: Any, name: str = "fleet.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(data, indent=2) if not isinstance(data, str) else data, encoding="utf-8")
    return path


SEED = {
    "budget_config": {
        "overall_token_budget": 10000,
        "hourly_token_budget": 1000,
        "budget_period_minutes": 60,
        "enforcement_mode": "warn",
        "enable_visuals": True,
        "cost_budgets": {"overall_usd": 5.00, "hourly_usd": 1.00},
    },
    "instances": [
        {
            "command": "/gitcommitgardener",
            "args": "",
            "max_tokens_per_command": 500,
            "cost_budget_usd": 0.25,
            "priority": 1,
            "token_budget_enabled": True,
        },
        {"command": "/refreshgardener all", "priority": 2, "token_budget_enabled": False},
    ],
}


def test_the_seeds_config_file(tmp_path: Path) -> None:
    o = options("--config", str(write(tmp_path, SEED)))
    assert o.warnings == ()  # every key of the seeds' file is known
    assert o.instances == (
        Instance("/gitcommitgardener", "", 1, 0, 500, 250_000, tokens_from=f"config file {tmp_path / 'fleet.json'}",
                 usd_from=f"config file {tmp_path / 'fleet.json'}"),
        Instance("/refreshgardener", "all", 2, 1, None, None, budget_enabled=False),
    )
    assert (o.overall_tokens, o.hourly_tokens, o.period, o.mode, o.visuals) == (10000, 1000, 60, "warn", True)
    assert (o.overall_usd_micros, o.hourly_usd_micros) == (5_000_000, 1_000_000)


@pytest.mark.parametrize("suffix", ["yaml", "toml"])
def test_yaml_and_toml_with_the_same_keys(tmp_path: Path, suffix: str) -> None:
    if suffix == "yaml":
        import yaml

        text = yaml.safe_dump(SEED)
    else:
        import tomli_w

        text = tomli_w.dumps(SEED)
    def bare(o: Any) -> Any:  # the same but for where each value was set (the file's name)
        return o._replace(sources={}, instances=tuple(i._replace(tokens_from=None, usd_from=None) for i in o.instances))

    o = options("--config", str(write(tmp_path, text, f"fleet.{suffix}")))
    assert bare(o) == bare(options("--config", str(write(tmp_path, SEED))))


def test_command_line_beats_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, SEED)
    o = options(
        "--config", str(path), "--overall-token-budget", "20k", "--budget-enforcement-mode", "block",
        "--command-budget", "/gitcommitgardener=800", "--instance", "/extra",
    )  # fmt: skip
    assert (o.overall_tokens, o.hourly_tokens, o.mode) == (20_000, 1000, "block")
    assert o.instances[0].tokens == 800 and o.instances[0].usd_micros == 250_000
    assert o.instances[2] == Instance("/extra", "", order=2)
    assert o.instances[0].tokens_from == "--command-budget" and o.sources["overall_tokens"] == "--overall-token-budget"
    assert o.sources["hourly_tokens"] == f"config file {path}"


def test_an_invalid_file_names_the_key_and_the_line(tmp_path: Path) -> None:
    data = json.loads(json.dumps(SEED))
    data["instances"][1]["max_tokens_per_command"] = "lots"
    path = write(tmp_path, data)
    with pytest.raises(UsageError) as e:
        options("--config", str(path))
    line = next(n for n, text in enumerate(path.read_text().splitlines(), 1) if '"lots"' in text)
    assert str(e.value) == (
        f'instances[1].max_tokens_per_command in {path} (line {line}) "lots" is not a number — write e.g. 10000, 50k or 1.5M'
    )


def test_unknown_keys_are_warned_about(tmp_path: Path) -> None:
    data = json.loads(json.dumps(SEED))
    data["budget_config"]["overal_token_budget"] = 5
    data["instances"][0]["prio"] = 3
    path = write(tmp_path, data)
    o = options("--config", str(path))
    lines = path.read_text().splitlines()
    first = next(n for n, t in enumerate(lines, 1) if "overal_token_budget" in t)
    second = next(n for n, t in enumerate(lines, 1) if '"prio"' in t)
    assert o.warnings == (
        f"unknown budget_config.overal_token_budget in {path} (line {first}) — known keys: "
        "overall_token_budget, hourly_token_budget, budget_period_minutes, enforcement_mode, enable_visuals, "
        "cost_budgets, command_budgets, command_cost_budgets, dashboard_mode, report_interval, persistent_budgets, "
        "budget_reset_on_restart, budget_parameter_type, quota_guard, wait_for_reset",
        f"unknown instances[0].prio in {path} (line {second}) — known keys: command, args, name, "
        "max_tokens_per_command, cost_budget_usd, priority, token_budget_enabled",
    )


def test_invalid_json_says_where(tmp_path: Path) -> None:
    path = write(tmp_path, '{"instances": [\n  {"command": "/a",}\n]}')
    with pytest.raises(UsageError, match=rf"^{path} is not valid JSON: .* \(line 2, column 20\)$"):
        options("--config", str(path))


def test_reset_without_persistence_is_warned_about() -> None:
    assert options("--instance", "/a", "--budget-reset-on-restart").warnings == (
        "--budget-reset-on-restart has no effect without --persistent-budgets (each orchestration starts at 0)",
    )


def test_hooks_not_installed_is_an_error_that_offers_install(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / ".claude").mkdir()
    assert main(["orchestrate", "--project", str(tmp_path), "--instance", "/a", "--claude", sys.executable]) == 1
    out, err = capsys.readouterr()
    assert err == (
        f"Error: claude-budget's hooks are not installed in {tmp_path}/.claude/settings.json, so the instances would "
        f"run unmetered — run: claude-budget install {tmp_path}, or pass --temporary-hooks to run them with the hooks "
        "for this orchestration only\n"
    )
    assert not (tmp_path / ".claude" / "budget-ledger.toml").exists()


def test_a_missing_claude_is_an_error_before_anything_starts(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / ".claude").mkdir()
    missing = str(tmp_path / "no-claude")
    assert main(["orchestrate", "--project", str(tmp_path), "--instance", "/a", "--claude", missing]) == 1
    assert capsys.readouterr().err == f"Error: Claude Code not found: {missing} — install it, or pass --claude PATH\n"


def test_the_seeds_visuals_flags() -> None:
    assert options("--instance", "/a").visuals is True
    assert options("--instance", "/a", "--enable-budget-visuals").visuals is True
    assert options("--instance", "/a", "--disable-budget-visuals").visuals is False
    assert options("--instance", "/a", "--no-budget-visuals").visuals is False  # seeds/000's spelling
    assert options("--instance", "/a", "--disable-budget-visuals", "--enable-budget-visuals").visuals is True


def test_budget_parameter_type_keeps_the_budgets_of_that_kind() -> None:
    given = ("--instance", "/a", "--overall-token-budget", "10k", "--overall-cost-budget", "5",
             "--hourly-cost-budget", "1", "--command-budget", "/a=2k", "--command-cost-budget", "/a=0.5")  # fmt: skip
    mixed = options(*given)
    assert (mixed.overall_tokens, mixed.overall_usd_micros, mixed.instances[0].tokens) == (10_000, 5_000_000, 2000)
    assert mixed.warnings == ()
    tokens = options(*given, "--budget-parameter-type", "tokens")
    assert (tokens.overall_tokens, tokens.overall_usd_micros, tokens.hourly_usd_micros) == (10_000, None, None)
    assert (tokens.instances[0].tokens, tokens.instances[0].usd_micros) == (2000, None)
    assert tokens.warnings == (
        "--budget-parameter-type tokens: the dollar budgets given do not apply here "
        "(--overall-cost-budget, --hourly-cost-budget, /a's dollar budget)",
    )
    cost = options(*given, "--budget-parameter-type", "COST")
    assert (cost.overall_tokens, cost.overall_usd_micros, cost.instances[0].tokens) == (None, 5_000_000, None)
    assert [b[1] for b in cost.command_budgets] == ["usd"]


def test_budget_parameter_type_in_the_file(tmp_path: Path) -> None:
    data = json.loads(json.dumps(SEED))
    data["budget_config"]["budget_parameter_type"] = "cost"
    o = options("--config", str(write(tmp_path, data)))
    assert (o.parameter_type, o.overall_tokens, o.overall_usd_micros) == ("cost", None, 5_000_000)


@pytest.mark.parametrize(
    ("argv", "line"),
    [
        (
            ["--instance", "/a", "--budget-parameter-type", "both"],
            'Error: --budget-parameter-type "both" is not a budget type — use tokens, cost or mixed (both)',
        ),
        (
            ["--instance", "/a", "--json"],
            "Error: orchestrate: --json goes with --dry-run or --list-commands (the results of a run: --json-out FILE)",
        ),
        (
            ["--instance", "/a", "--", "--max-budget-usd", "3"],
            "Error: --max-budget-usd after -- is set by the orchestrator for each instance (what is left of its "
            "tightest dollar budget) — give a dollar budget instead: --command-cost-budget or --overall-cost-budget",
        ),
    ],
    ids=["bad-parameter-type", "json-without-a-view", "max-budget-usd-is-ours"],
)
def test_new_flags_malformed(capsys: pytest.CaptureFixture[str], argv: list[str], line: str) -> None:
    assert main(["orchestrate", *argv]) == 2
    assert capsys.readouterr().err.strip() == line


def test_help_names_every_seed_flag(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["orchestrate", "--help"]) == 0
    text = capsys.readouterr().out
    for flag in ("--dry-run", "--list-commands", "--enable-budget-visuals", "--disable-budget-visuals",
                 "--budget-parameter-type", "--json"):  # fmt: skip
        assert flag in text, flag


def test_the_mode_is_shown_as_given(tmp_path: Path) -> None:
    assert options("--instance", "/a", "--budget-enforcement-mode", "Stop-New").shown_mode == "stop-new"
    assert options("--instance", "/a", "--budget-enforcement-mode", "block").shown_mode == "block"
    data = json.loads(json.dumps(SEED))
    data["budget_config"]["enforcement_mode"] = "kill-running"
    o = options("--config", str(write(tmp_path, data)))
    assert (o.mode, o.shown_mode) == ("kill", "kill-running")


SEED_EXAMPLES = [  # every orchestrate invocation in /work/shared/seeds, verbatim (with --dry-run: nothing runs)
    ["--dry-run", "--overall-token-budget", "5000"],
    ["--dry-run", "--overall-token-budget", "5000", "--command-budget", "/test=1000"],
    ["--list-commands", "--overall-token-budget", "10000"],
    ["--overall-token-budget", "10000", "--hourly-token-budget", "1000", "--budget-period-minutes", "60",
     "--enable-budget-visuals", "--budget-enforcement-mode", "warn"],
    ["--command-budget", "/gitcommitgardener=500", "--command-budget", "/refreshgardener=1000",
     "--command-budget", "/gcploggardener=750"],
    ["--overall-cost-budget", "5.00", "--hourly-cost-budget", "1.00"],
    ["--budget-dashboard-mode", "live", "--budget-report-interval", "10"],
    ["--disable-budget-visuals"],
    ["--no-budget-visuals"],
    ["--budget-enforcement-mode", "stop-new"],
    ["--budget-enforcement-mode", "kill-running"],
    ["--budget-parameter-type", "mixed"],
]  # fmt: skip


@pytest.mark.parametrize("argv", SEED_EXAMPLES, ids=lambda a: " ".join(a)[:60])
def test_every_seed_invocation_is_accepted(
    argv: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    (tmp_path / "proj" / ".claude").mkdir(parents=True)
    view = [] if {"--dry-run", "--list-commands"} & set(argv) else ["--dry-run"]
    assert main(["orchestrate", *argv, *view, "--project", str(tmp_path / "proj")]) == 0
    out, err = capsys.readouterr()
    assert "Error" not in err and out, err


def test_quota_guard_from_the_flag_and_the_file(tmp_path: Path) -> None:
    o = options("--instance", "/a", "--quota-guard", "90%", "--wait-for-reset")
    assert (o.quota_guard, o.wait_for_reset) == (90.0, True)
    assert options("--instance", "/a", "--wait-for-reset").warnings == (
        "--wait-for-reset has no effect without --quota-guard",
    )
    with pytest.raises(UsageError, match="--quota-guard"):
        options("--instance", "/a", "--quota-guard", "150")
    data = json.loads(json.dumps(SEED))
    data["budget_config"].update({"quota_guard": 85, "wait_for_reset": True})
    o = options("--config", str(write(tmp_path, data)))
    assert (o.quota_guard, o.wait_for_reset) == (85.0, True)
    assert options("--config", str(write(tmp_path, data)), "--quota-guard", "95").quota_guard == 95.0
