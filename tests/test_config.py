from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from budget_state.budgets._config import Config, load_config, normalize_mode
from budget_state._errors import ConfigError

FILE = ".claude/budget.toml"
KNOWN = (
    "mode, overall_tokens, overall_usd, window, timezone, preflight, count, on_error, lock_timeout, ledger, commands, "
    "prices, quota_guard, team_url, team, on_team_unreachable"
)


def write_config(project: Path, text: str | bytes) -> Path:
    path = project / FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.encode() if isinstance(text, str) else text)
    return path


def test_defaults_without_a_file(tmp_path: Path) -> None:
    config = load_config(tmp_path, {})
    assert config == Config()
    assert config == Config(
        mode="warn",
        overall_tokens=None,
        commands={},
        counted=("input", "output", "cache_creation", "cache_read"),
        on_error="open",
        lock_timeout=5.0,
        ledger=None,
        warnings=(),
        path=None,
        sources={"mode": "default", "overall_tokens": "default"},
    )


def test_every_key_from_the_file(tmp_path: Path) -> None:
    path = write_config(
        tmp_path,
        """\
mode = "block"
overall_tokens = "2M"
count = ["output", "input"]
on_error = "closed"
lock_timeout = 2.5
ledger = "~/budget.toml"

[commands."/review-pr"]
tokens = "200k"

[commands.deploy]
tokens = 5000

[commands."frontend:component"]
tokens = 1_000
""",
    )
    assert load_config(tmp_path, {}) == Config(
        mode="block",
        overall_tokens=2_000_000,
        commands={"/review-pr": 200_000, "/deploy": 5000, "/frontend:component": 1000},
        counted=("input", "output"),
        on_error="closed",
        lock_timeout=2.5,
        ledger="~/budget.toml",
        warnings=(),
        path=path,
        sources={"mode": "config", "overall_tokens": "config"},
    )


def test_an_empty_file_is_defaults_with_its_path(tmp_path: Path) -> None:
    path = write_config(tmp_path, "")
    assert load_config(tmp_path, {}) == Config(path=path)


def test_environment_beats_the_file(tmp_path: Path) -> None:
    write_config(tmp_path, 'mode = "warn"\noverall_tokens = 100\non_error = "open"\nlock_timeout = 1\n')
    env = {
        "CLAUDE_BUDGET_MODE": "Kill-Running",
        "CLAUDE_BUDGET_OVERALL": "1.5M",
        "CLAUDE_BUDGET_ON_ERROR": "CLOSED",
        "CLAUDE_BUDGET_LOCK_TIMEOUT": "0.25",
    }
    config = load_config(tmp_path, env)
    assert (config.mode, config.overall_tokens, config.on_error, config.lock_timeout, config.sources) == (
        "kill",
        1_500_000,
        "closed",
        0.25,
        {"mode": "env", "overall_tokens": "env"},
    )


@pytest.mark.parametrize("value", ["none", "OFF", " None "], ids=["none", "off-upper", "spaced"])
def test_environment_can_lift_the_overall_budget(tmp_path: Path, value: str) -> None:
    write_config(tmp_path, "overall_tokens = 100\n")
    config = load_config(tmp_path, {"CLAUDE_BUDGET_OVERALL": value})
    assert (config.overall_tokens, config.sources["overall_tokens"]) == (None, "env")


def test_empty_environment_variables_count_as_unset(tmp_path: Path) -> None:
    write_config(tmp_path, 'mode = "block"\non_error = "closed"\nlock_timeout = 3\noverall_tokens = 100\n')
    env = {
        "CLAUDE_BUDGET_MODE": "",
        "CLAUDE_BUDGET_ON_ERROR": "",
        "CLAUDE_BUDGET_LOCK_TIMEOUT": "",
        "CLAUDE_BUDGET_OVERALL": "",
    }
    config = load_config(tmp_path, env)
    assert (config.mode, config.on_error, config.lock_timeout, config.overall_tokens, dict(config.sources)) == (
        "block",
        "closed",
        3.0,
        100,
        {"mode": "config", "overall_tokens": "config"},
    )


def test_unknown_keys_are_warnings(tmp_path: Path) -> None:
    write_config(tmp_path, 'moed = "block"\n[commands."/x"]\ntokens = 5\ntokns = 6\n[extra]\n')
    assert load_config(tmp_path, {}).warnings == (
        f'unknown key "moed" in {FILE} — known keys: {KNOWN}',
        f'unknown key "extra" in {FILE} — known keys: {KNOWN}',
        f'unknown key "tokns" in [commands."/x"] in {FILE} — known keys: tokens, usd, tokens_per_<window>, usd_per_<window>',
    )


@pytest.mark.parametrize(
    ("value", "mode"),
    [
        ("warn", "warn"),
        ("block", "block"),
        ("kill", "kill"),
        ("stop-new", "block"),
        ("KILL-RUNNING", "kill"),
        (" Block ", "block"),
    ],
    ids=["warn", "block", "kill", "stop-new", "kill-running-upper", "spaced"],
)
def test_normalize_mode(value: str, mode: str) -> None:
    assert normalize_mode(value, where=FILE) == mode


def test_normalize_mode_error() -> None:
    with pytest.raises(ConfigError) as info:
        normalize_mode("blok", where=FILE)
    assert (str(info.value), info.value.path) == (
        f'mode "blok" in {FILE} is not a mode — use warn, block or kill',
        None,
    )


FILE_ERRORS = [
    ('mode = "blok"', f'mode "blok" in {FILE} is not a mode — use warn, block or kill', "mode"),
    ("mode = 1", f"mode 1 in {FILE} is not a mode — use warn, block or kill", "mode-int"),
    (
        'overall_tokens = "2X"',
        f'overall_tokens "2X" in {FILE} is not a number — write e.g. overall_tokens = "2M"',
        "overall-word",
    ),
    (
        "overall_tokens = 0",
        f'overall_tokens 0 in {FILE} is not a positive number of tokens — write e.g. overall_tokens = "2M"',
        "overall-zero",
    ),
    (
        'count = ["input", "outptu"]',
        f'count "outptu" in {FILE} is not a token category'
        ' — use a list of input, output, cache_creation, cache_read, e.g. count = ["input", "output"]',
        "count-unknown",
    ),
    (
        "count = []",
        f"count [] in {FILE} is not a list of categories"
        ' — use a list of input, output, cache_creation, cache_read, e.g. count = ["input", "output"]',
        "count-empty",
    ),
    (
        'count = "input"',
        f'count "input" in {FILE} is not a list of categories'
        ' — use a list of input, output, cache_creation, cache_read, e.g. count = ["input", "output"]',
        "count-string",
    ),
    ('on_error = "maybe"', f'on_error "maybe" in {FILE} is not a choice — use open or closed', "on-error"),
    ("lock_timeout = 0", f"lock_timeout 0 in {FILE} is not a number of seconds above 0 — use e.g. 5", "timeout-zero"),
    (
        "lock_timeout = nan",
        f"lock_timeout nan in {FILE} is not a number of seconds above 0 — use e.g. 5",
        "timeout-nan",
    ),
    (
        "lock_timeout = true",
        f"lock_timeout true in {FILE} is not a number of seconds above 0 — use e.g. 5",
        "timeout-bool",
    ),
    (
        "ledger = 5",
        f'ledger 5 in {FILE} is not a path — write e.g. ledger = "~/.claude/budget-ledger.toml"',
        "ledger-int",
    ),
    (
        'ledger = " "',
        f'ledger " " in {FILE} is not a path — write e.g. ledger = "~/.claude/budget-ledger.toml"',
        "ledger-blank",
    ),
    (
        "commands = 5",
        f'commands in {FILE} is not a table — write [commands."/review-pr"] with tokens = 50000',
        "commands-int",
    ),
    (
        "[commands]\nx = 5",
        f'[commands."/x"] in {FILE} is not a table — write [commands."/x"] with tokens = 50000',
        "command-not-table",
    ),
    (
        '[commands."/x"]\ntokens = "fifty"',
        f'[commands."/x"] tokens "fifty" in {FILE} is not a number — write e.g. tokens = 50000',
        "command-tokens-word",
    ),
    (
        '[commands."/x"]\nlimit = 5',
        f'[commands."/x"] in {FILE} has no tokens — add tokens = 50000',
        "command-no-tokens",
    ),
    (
        "[commands.frontend.component]\ntokens = 5",
        f'[commands."/frontend"] in {FILE} has no tokens — add tokens = 50000'
        ' (for a namespaced command quote its name: [commands."/frontend:component"])',
        "command-dotted",
    ),
    (
        '[commands."/../x"]\ntokens = 1',
        f'command "/../x" in {FILE} is not a command name — use the name you type, e.g. [commands."/review-pr"]',
        "command-traversal",
    ),
    (
        '[commands."x"]\ntokens = 1\n[commands."/x"]\ntokens = 2',
        f'[commands."/x"] appears twice in {FILE} (with and without /) — keep one',
        "command-twice",
    ),
    (b'mode = "\xff"', f"{FILE} is not UTF-8 text — save it as UTF-8", "not-utf8"),
]


@pytest.mark.parametrize(("text", "message"), [e[:2] for e in FILE_ERRORS], ids=[e[2] for e in FILE_ERRORS])
def test_file_errors(tmp_path: Path, text: str | bytes, message: str) -> None:
    path = write_config(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path, {})
    assert (str(info.value), info.value.path) == (message, path)


@pytest.mark.parametrize(
    ("text", "where"),
    [("mode = [", "(at end of document)"), ('mode = "warn"\nmode = "block"\n', "(at line 2, ")],
    ids=["syntax", "duplicate-key"],
)
def test_invalid_toml_keeps_the_parsers_line_and_column(tmp_path: Path, text: str, where: str) -> None:
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # tomli is a dependency below 3.11
        import tomli as tomllib
    with pytest.raises(tomllib.TOMLDecodeError) as parser:
        tomllib.loads(text)
    assert where in str(parser.value)  # the parser's wording differs a little between versions
    path = write_config(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path, {})
    assert (str(info.value), info.value.path) == (
        f"{FILE} is not valid TOML: {parser.value} — fix it or delete the file",
        path,
    )


def test_unreadable_file(tmp_path: Path) -> None:
    (tmp_path / FILE).mkdir(parents=True)
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path, {})
    assert (str(info.value), info.value.path) == (
        f"cannot read {FILE} (Is a directory) — make it a readable file",
        tmp_path / FILE,
    )


ENV_ERRORS = [
    ("CLAUDE_BUDGET_MODE", "blok", 'mode "blok" in CLAUDE_BUDGET_MODE is not a mode — use warn, block or kill'),
    (
        "CLAUDE_BUDGET_OVERALL",
        "lots",
        'overall_tokens "lots" in CLAUDE_BUDGET_OVERALL is not a number'
        " — write e.g. CLAUDE_BUDGET_OVERALL=2M, or none for no overall budget",
    ),
    (
        "CLAUDE_BUDGET_OVERALL",
        "-1",
        'overall_tokens "-1" in CLAUDE_BUDGET_OVERALL is not a positive number of tokens'
        " — write e.g. CLAUDE_BUDGET_OVERALL=2M, or none for no overall budget",
    ),
    ("CLAUDE_BUDGET_ON_ERROR", "yes", 'on_error "yes" in CLAUDE_BUDGET_ON_ERROR is not a choice — use open or closed'),
    (
        "CLAUDE_BUDGET_LOCK_TIMEOUT",
        "soon",
        'lock_timeout "soon" in CLAUDE_BUDGET_LOCK_TIMEOUT is not a number of seconds above 0 — use e.g. 5',
    ),
    (
        "CLAUDE_BUDGET_LOCK_TIMEOUT",
        "inf",
        'lock_timeout "inf" in CLAUDE_BUDGET_LOCK_TIMEOUT is not a number of seconds above 0 — use e.g. 5',
    ),
]


@pytest.mark.parametrize(
    ("name", "value", "message"),
    ENV_ERRORS,
    ids=["mode", "overall-word", "overall-negative", "on-error", "timeout-word", "timeout-inf"],
)
def test_env_errors(tmp_path: Path, name: str, value: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path, {name: value})
    assert (str(info.value), info.value.path) == (message, None)


def test_no_toml_parser_without_a_file(tmp_path: Path) -> None:
    code = (
        "import sys\n"
        "from budget_state.budgets._config import load_config\n"
        f"load_config(__import__('pathlib').Path({str(tmp_path)!r}), {{}})\n"
        "print(sorted(m for m in ('tomllib', 'tomli', 'yaml', 'json') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout == "[]\n"


@pytest.mark.parametrize(
    ("text", "env", "expected"),
    [
        (None, {}, "open"),
        ('on_error = "closed"\nmode = "blok"\n', {}, "closed"),
        ('on_error = " Closed "\nlock_timeout = "soon"\n', {}, "closed"),
        ('on_error = "closed"\nmode = [broken\n', {}, "closed"),
        ("  on_error='closed' # when unsure\n= broken\n", {}, "closed"),
        ('[commands."/x"]\non_error = "closed"\n= broken\n', {}, "open"),
        ('on_error = "open"\n', {}, "open"),
        ('on_error = 1\nmode = "blok"\n', {}, "open"),
        (b'on_error = "closed"\nmode = "\xff"\n', {}, "closed"),
        ('on_error = "closed"\n', {"CLAUDE_BUDGET_ON_ERROR": "open"}, "open"),
        ('on_error = "open"\n', {"CLAUDE_BUDGET_ON_ERROR": " CLOSED "}, "closed"),
        ('on_error = "closed"\n', {"CLAUDE_BUDGET_ON_ERROR": "yes"}, "closed"),  # not a value: the file decides
        ('on_error = "closed"\n', {"CLAUDE_BUDGET_ON_ERROR": ""}, "closed"),
    ],
    ids=[
        "no-file",
        "bad-mode",
        "case-and-spaces",
        "not-toml",
        "not-toml-single-quotes-comment",
        "not-toml-in-a-table",
        "open",
        "not-a-string",
        "not-utf8",
        "env-open-wins",
        "env-closed-wins",
        "env-invalid",
        "env-empty",
    ],
)
def test_on_error_alone_reads_only_that_key(
    tmp_path: Path, text: str | bytes | None, env: dict[str, str], expected: str
) -> None:
    from budget_state.budgets._config import on_error_alone

    if text is not None:
        write_config(tmp_path, text)
    assert on_error_alone(tmp_path, env) == expected


def test_a_too_large_overall_budget_names_the_largest(tmp_path: Path) -> None:
    write_config(tmp_path, 'overall_tokens = "999999999999B"\n')
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path, {})
    assert str(info.value) == (
        f'overall_tokens "999999999999B" in {FILE} is too large — the largest is 9223372036854775807'
    )


def test_reading_budget_toml_small_or_big_writes_no_cache_anywhere(tmp_path: Path) -> None:
    """No parsed copy is kept for the next process: nothing another user could plant is ever loaded."""
    (tmp_path / ".claude").mkdir()
    home = tmp_path / "home"
    for body in (
        'mode = "block"\n',
        'mode = "block"\n' + "".join(f'[commands."/c{i}"]\ntokens = "{i + 1}k"\n' for i in range(400)),
    ):
        (tmp_path / ".claude" / "budget.toml").write_text(body)
        before = sorted(tmp_path.rglob("*"))
        assert load_config(tmp_path, {"HOME": str(home), "XDG_CACHE_HOME": str(home / ".cache")}).mode == "block"
        assert load_config(tmp_path, {}).mode == "block"
        assert sorted(tmp_path.rglob("*")) == before and not home.exists()
