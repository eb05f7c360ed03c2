from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from budget_state.budgets._commands import (
    Budget,
    BudgetCache,
    CommandInfo,
    command_from_prompt,
    discover_commands,
    find_command_file,
    is_command_name,
    parse_frontmatter,
    read_budget,
)

# Claude Code's rules (docs/configuration.md, "Command names"): no whitespace, / \\ : < >, control or format characters.
VALID_NAME = re.compile(r"/[^\s/\\:<>\x00-\x1f\x7f]+(:[^\s/\\:<>\x00-\x1f\x7f]+)*")
FIX = "write e.g. tokenBudget: 50000"
WHERE = ".claude/commands/x.md"


def write(path: Path, content: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, str):
        content = content.encode()
    path.write_bytes(content)
    return path


PROMPTS = [
    ("/review-pr 42", "/review-pr", "with-args"),
    ("/review-pr", "/review-pr", "bare"),
    ("  /frontend:component x", "/frontend:component", "namespaced-indented"),
    ("/a:b:c", "/a:b:c", "two-namespaces"),
    ("/review-pr\n\nplease", "/review-pr", "newline"),
    ("\t/v1.2_x-y\targ", "/v1.2_x-y", "tab-dots-dashes"),
    ("/_private", "/_private", "underscore-first"),
    ("review the pr", None, "plain-text"),
    ("", None, "empty"),
    ("   ", None, "blank"),
    ("/", None, "slash-only"),
    ("/ review", None, "slash-space"),
    ("//review", None, "double-slash"),
    ("/../../etc/passwd", None, "traversal"),
    ("/..", None, "dotdot"),
    ("/a..b", None, "inner-dotdot"),
    ("/a/b", None, "path"),
    ("/.hidden", "/.hidden", "dot-first"),
    ("/-x", "/-x", "dash-first"),
    ("/.", None, "dot"),
    ("/a.:.", None, "dot-segment"),
    ("/a:", None, "trailing-colon"),
    ("/:a", None, "leading-colon"),
    ("/a::b", None, "empty-segment"),
    ("/a:..", None, "dotdot-segment"),
    ("/rev\x00iew", None, "nul"),
    ("/review\x1b[31m", None, "ansi"),
    ("\x1b[31m/review", None, "ansi-before"),
    ("/review\x1c x", None, "unicode-only-separator"),
    ("/review\u00a0x", "/review", "nbsp-separates"),  # as Claude Code splits: at any JavaScript \\s
    ("/review\u3000x", "/review", "ideographic-space-separates"),
    ("/review\u2028x", "/review", "line-separator-separates"),
    ("/ré", "/ré", "non-ascii"),
    ("/rév-iew 42", "/rév-iew", "accented"),
    ("/日本語", "/日本語", "cjk"),
    ("/🚀launch now", "/🚀launch", "emoji"),
    ("/👩\u200d💻dev", "/👩\u200d💻dev", "emoji-zwj-sequence"),
    ("/Ωmega:été", "/Ωmega:été", "non-ascii-namespace"),
    (
        "/a.b+c@d!e#f$g%h&i'j(k)l*m,n;o=p?q[r]s^t`u{v}w|x~y",
        "/a.b+c@d!e#f$g%h&i'j(k)l*m,n;o=p?q[r]s^t`u{v}w|x~y",
        "punct",
    ),
    ("/re\u0301v", "/re\u0301v", "nfd"),
    ("/\u0301x", None, "leading-combining-mark"),
    ("/a\u200bb", None, "zero-width-space"),
    ("/a\u200cb", None, "zwnj"),
    ("/a\u00adb", None, "soft-hyphen"),
    ("/a\u202eb", None, "bidi-override"),
    ("/a\ufeffb", "/a", "bom-separates"),
    ("/a\x7fb", None, "del"),
    ("/a\x85b", None, "nel"),
    ("/a\x01b", None, "control"),
    ("/a<b>", None, "angle-brackets"),
    ("/a\\b", None, "backslash"),
    ("/a\ud800", None, "lone-surrogate"),
    ("/a\ue000", None, "private-use"),
    ("hi /review", None, "not-first"),
    ("/" + "a" * 257, None, "too-long"),
]


@pytest.mark.parametrize(("prompt", "expected"), [p[:2] for p in PROMPTS], ids=[p[2] for p in PROMPTS])
def test_command_from_prompt(prompt: str, expected: str | None) -> None:
    assert command_from_prompt(prompt) == expected


@given(st.text())
def test_command_from_prompt_never_raises_and_returns_valid_names(prompt: str) -> None:
    name = command_from_prompt(prompt)
    assert name is None or (VALID_NAME.fullmatch(name) and ".." not in name and prompt.lstrip().startswith(name))


@given(st.from_regex(r"\A[ \t]*/[A-Za-z0-9_:.\-]{1,30}( .*)?\Z"))
def test_command_from_prompt_agrees_with_is_command_name(prompt: str) -> None:
    token = prompt.split()[0]
    assert command_from_prompt(prompt) == (token if is_command_name(token) else None)


# -- find_command_file ------------------------------------------------------------------------

LOCATIONS = {
    "project-skill": "project/.claude/skills/x/SKILL.md",
    "project-command": "project/.claude/commands/x.md",
    "user-skill": "home/skills/x/SKILL.md",
    "user-command": "home/commands/x.md",
}


@pytest.mark.parametrize(
    ("present", "expected"),
    [
        (["project-skill", "project-command", "user-skill", "user-command"], "project-skill"),
        (["project-command", "user-skill", "user-command"], "project-command"),
        (["user-skill", "user-command"], "user-skill"),
        (["user-command"], "user-command"),
        (["project-command", "user-skill"], "project-command"),
    ],
    ids=["all", "no-project-skill", "user-only", "user-command-only", "project-beats-user"],
)
def test_find_command_file_order(tmp_path: Path, present: list[str], expected: str) -> None:
    for key in present:
        write(tmp_path / LOCATIONS[key], "x")
    found = find_command_file("/x", project=tmp_path / "project", home=tmp_path / "home")
    assert found == tmp_path / LOCATIONS[expected]


def test_find_command_file_namespaced_skips_skills(tmp_path: Path) -> None:
    write(tmp_path / "home/commands/frontend/component.md", "x")
    found = find_command_file("/frontend:component", project=tmp_path / "p", home=tmp_path / "home")
    assert found == tmp_path / "home/commands/frontend/component.md"


def test_find_command_file_accepts_a_name_without_slash(tmp_path: Path) -> None:
    write(tmp_path / "p/.claude/commands/x.md", "x")
    assert find_command_file("x", project=tmp_path / "p", home=tmp_path / "h") == tmp_path / "p/.claude/commands/x.md"


def test_find_command_file_skips_directories(tmp_path: Path) -> None:
    (tmp_path / "p/.claude/skills/x/SKILL.md").mkdir(parents=True)
    (tmp_path / "p/.claude/commands/x.md").mkdir(parents=True)
    write(tmp_path / "h/commands/x.md", "x")
    assert find_command_file("/x", project=tmp_path / "p", home=tmp_path / "h") == tmp_path / "h/commands/x.md"


@pytest.mark.parametrize("name", ["/../secret", "/..:secret", "/a/../../secret", "/", "", "/x\x00"], ids=repr)
def test_find_command_file_refuses_invalid_names(tmp_path: Path, name: str) -> None:
    write(tmp_path / "secret.md", "x")
    write(tmp_path / "p/.claude/secret.md", "x")
    assert find_command_file(name, project=tmp_path / "p", home=tmp_path / "p/.claude/commands") is None


def test_a_non_ascii_name_is_found_as_written(tmp_path: Path) -> None:
    path = write(tmp_path / "p/.claude/commands/ńs/rév-iew.md", "x")
    assert find_command_file("/ńs:rév-iew", project=tmp_path / "p", home=tmp_path / "h") == path
    skill = write(tmp_path / "h/skills/日本語/SKILL.md", "x")
    assert find_command_file("/日本語", project=tmp_path / "p", home=tmp_path / "h") == skill


@pytest.mark.parametrize(
    ("on_disk", "typed", "found"),
    [("NFD", "NFD", True), ("NFD", "NFC", False), ("NFC", "NFD", False), ("NFC", "NFC", True)],
    ids=["nfd-nfd", "nfd-file-nfc-typed", "nfc-file-nfd-typed", "nfc-nfc"],
)
def test_names_are_not_unicode_normalised(tmp_path: Path, on_disk: str, typed: str, found: bool) -> None:
    """Claude Code (2.1.197, 2.1.332) runs a command only when typed with the file name's code points."""
    import unicodedata

    path = write(tmp_path / "p/.claude/commands" / (unicodedata.normalize(on_disk, "rév") + ".md"), "x")
    name = "/" + unicodedata.normalize(typed, "rév")
    assert command_from_prompt(name + " go") == name
    assert find_command_file(name, project=tmp_path / "p", home=tmp_path / "h") == (path if found else None)


def test_a_folding_filesystem_does_not_make_another_name_a_command(tmp_path: Path, monkeypatch) -> None:
    """On a case-insensitive or normalising filesystem (macOS) stat finds Deploy.md for /deploy: Claude Code does not."""
    import budget_state.budgets._commands as commands

    path = write(tmp_path / "p/.claude/commands/ns/Deploy.md", "x")

    def folding(p: Path):
        folded = Path(str(p).replace("deploy", "Deploy").replace("/NS/", "/ns/"))
        return os.stat(folded) if folded.is_file() else None

    monkeypatch.setattr(commands, "_regular", folding)
    find = lambda name: find_command_file(name, project=tmp_path / "p", home=tmp_path / "h")  # noqa: E731
    assert find("/ns:Deploy") == path
    assert find("/ns:deploy") is None
    assert find("/NS:Deploy") is None


def test_find_command_file_missing(tmp_path: Path) -> None:
    assert find_command_file("/clear", project=tmp_path, home=tmp_path / "h") is None


# -- frontmatter --------------------------------------------------------------------------------

FRONTMATTER = [
    ("---\ntokenBudget: 50000\n---\nReview the PR.\n", (50000, None), "int"),
    ("---\ntokenBudget: 50k\n---\n", (50000, None), "k"),
    ('---\ntokenBudget: "1.5M"\n---\n', (1500000, None), "quoted-M"),
    ("---\ntokenBudget: 50_000\n---\n", (50000, None), "underscores"),
    ("---\ndescription: x\ntokenBudget: 7\n---", (7, None), "no-final-newline"),
    ("\ufeff---\r\ntokenBudget: 10\r\n---\r\nbody", (10, None), "bom-crlf"),
    ("--- \ntokenBudget: 10\n---  \n", (10, None), "trailing-spaces-on-fences"),
    ("---\nmetadata:\n  tokenBudget: 2000\n---\n", (2000, None), "metadata"),
    ("---\nmetadata: {token-budget: 3k}\n---\n", (3000, None), "metadata-dashed"),
    ("---\ntoken-budget: 4k\n---\n", (4000, None), "dashed"),
    ("---\ntokenBudget: 1\nmetadata: {tokenBudget: 2}\n---\n", (1, None), "top-level-wins"),
    ("---\ndescription: Review a PR\n---\n", (None, None), "no-budget"),
    ("tokenBudget: 5\n", (None, None), "no-frontmatter"),
    ("body\n---\ntokenBudget: 5\n---\n", (None, None), "fence-not-first"),
    ("---\ntokenBudget: 5\n", (None, None), "unclosed"),
    ("---\n# tokenBudget: 5\n---\n", (None, None), "comment-only"),
    ("---\nmetadata: 5\ndescription: no tokenBudget here\n---\n", (None, None), "mentioned-in-text"),
    ("", (None, None), "empty-file"),
    ("---\ntokenBudget: fifty\n---\n", (None, f'tokenBudget "fifty" in {WHERE} is not a number — {FIX}'), "word"),
    (
        "---\ntokenBudget: 0\n---\n",
        (None, f"tokenBudget 0 in {WHERE} is not a positive number of tokens — {FIX}"),
        "zero",
    ),
    (
        "---\ntokenBudget: -5\n---\n",
        (None, f"tokenBudget -5 in {WHERE} is not a positive number of tokens — {FIX}"),
        "negative",
    ),
    (
        "---\ntokenBudget: 1.5\n---\n",
        (None, f"tokenBudget 1.5 in {WHERE} is not a whole number of tokens — {FIX}"),
        "fraction",
    ),
    ("---\ntokenBudget:\n---\n", (None, f"tokenBudget in {WHERE} is empty — {FIX}"), "empty"),
    ("---\ntokenBudget: yes\n---\n", (None, f"tokenBudget true in {WHERE} is not a number — {FIX}"), "bool"),
    ("---\ntokenBudget: {a: 1}\n---\n", (None, f"tokenBudget {{'a': 1}} in {WHERE} is not a number — {FIX}"), "dict"),
    ("---\ntokenBudget: [1, 2]\n---\n", (None, f"tokenBudget [1, 2] in {WHERE} is not a number — {FIX}"), "list"),
    (
        "---\ntokenBudget: &a [*a]\n---\n",
        (None, f"tokenBudget [[...]] in {WHERE} is not a number — {FIX}"),
        "recursive",
    ),
    (
        "---\nmetadata:\n  tokenBudget: lots\n---\n",
        (None, f'metadata.tokenBudget "lots" in {WHERE} is not a number — {FIX}'),
        "metadata-word",
    ),
    (
        "---\ndescription: x\ntokenBudget: 5: 6\n---\n",
        (None, f"frontmatter of {WHERE} is not valid YAML (line 3) — fix it or remove tokenBudget"),
        "broken-yaml",
    ),
    (
        "---\ntokenBudget: [1\n---\n",
        (None, f"frontmatter of {WHERE} is not valid YAML (line 3) — fix it or remove tokenBudget"),
        "unclosed-flow",
    ),
    (
        "---\ntokenBudget: !!python/object/apply:os.system [echo]\n---\n",
        (None, f"frontmatter of {WHERE} is not valid YAML (line 2) — fix it or remove tokenBudget"),
        "unsafe-tag",
    ),
    (
        "---\ntokenBudget: 5\ndate: 2024-13-45\n---\n",
        (None, f"frontmatter of {WHERE} is not valid YAML — fix it or remove tokenBudget"),
        "bad-timestamp",
    ),
    (
        "---\ntokenBudget: " + "[" * 5000 + "\n---\n",
        (None, f"frontmatter of {WHERE} is not valid YAML — fix it or remove tokenBudget"),
        "deep-nesting",
    ),
    (
        "---\ntokenBudget: 999999999999B\n---\n",
        (None, f'tokenBudget "999999999999B" in {WHERE} is too large — the largest is 9223372036854775807'),
        "too-large",
    ),
    (
        "---\ntokenBudget: 99999999999999999999\n---\n",
        (None, f"tokenBudget 99999999999999999999 in {WHERE} is too large — the largest is 9223372036854775807"),
        "too-large-int",
    ),
    (
        "---\n- tokenBudget: 5\n---\n",
        (None, f"frontmatter of {WHERE} is not a set of key: value lines — {FIX}"),
        "list-frontmatter",
    ),
    (
        "---\ntokenBudget 5000\n---\n",
        (None, f"frontmatter of {WHERE} is not a set of key: value lines — {FIX}"),
        "string-frontmatter",
    ),
]


@pytest.mark.parametrize(("text", "expected"), [f[:2] for f in FRONTMATTER], ids=[f[2] for f in FRONTMATTER])
def test_read_budget(tmp_path: Path, text: str, expected: tuple[int | None, str | None]) -> None:
    path = write(tmp_path / WHERE, text)
    assert read_budget(path, project=tmp_path)[:2] == expected


BINARY = [
    (
        b"---\ntokenBudget: 5\ndescription: \xff\n---\n",
        f"{WHERE} is not UTF-8 text — save it as UTF-8 or remove tokenBudget",
        "latin-1",
    ),
    (
        b"---\nname: a\ntokenBudget: 5\x00\n---\n",
        f"frontmatter of {WHERE} is not valid YAML (line 3) — fix it or remove tokenBudget",
        "nul",
    ),
    (b"\x00\x01\x02---\ntokenBudget: 5\n---\n", None, "binary-prefix"),
    (b"---\ndescription: \xff\n---\n", None, "latin-1-without-budget"),
]


@pytest.mark.parametrize(("content", "error"), [b[:2] for b in BINARY], ids=[b[2] for b in BINARY])
def test_read_budget_binary(tmp_path: Path, content: bytes, error: str | None) -> None:
    path = write(tmp_path / WHERE, content)
    assert read_budget(path, project=tmp_path)[:2] == (None, error)


def test_read_budget_huge_body_reads_only_the_start(tmp_path: Path) -> None:
    path = write(tmp_path / WHERE, b"---\ntokenBudget: 9k\n---\n" + b"x" * 10_000_000)
    assert read_budget(path, project=tmp_path)[:2] == (9000, None)


def test_read_budget_frontmatter_past_64k_is_ignored(tmp_path: Path) -> None:
    path = write(tmp_path / WHERE, "---\ntokenBudget: 9k\n" + "# padding\n" * 7000 + "---\n")
    assert read_budget(path, project=tmp_path)[:2] == (None, None)


def test_read_budget_unreadable(tmp_path: Path) -> None:
    (tmp_path / WHERE).mkdir(parents=True)
    message = f"cannot read {WHERE} (Is a directory) — check that it is a readable file"
    assert read_budget(tmp_path / WHERE, project=tmp_path)[:2] == (None, message)


def test_read_budget_outside_the_project_shows_the_absolute_path(tmp_path: Path) -> None:
    path = write(tmp_path / "home/commands/x.md", "---\ntokenBudget: none\n---\n")
    assert read_budget(path, project=tmp_path / "project")[:2] == (
        None,
        f'tokenBudget "none" in {path} is not a number — {FIX}',
    )


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture], max_examples=200)
@given(
    st.one_of(
        st.binary(max_size=300),
        st.text(max_size=300).map(str.encode),
        st.binary(max_size=200).map(lambda b: b"---\ntokenBudget: " + b + b"\n---\n"),
        st.text(max_size=200).map(lambda t: ("---\n" + t + "\ntokenBudget: 1\n---\n").encode()),
        st.text(max_size=200).map(lambda t: ("---\nmetadata:\n  token-budget: " + t + "\n---\n").encode()),
    )
)
def test_read_budget_never_raises(tmp_path: Path, content: bytes) -> None:
    path = write(tmp_path / WHERE, content)
    tokens, error = read_budget(path, project=tmp_path)[:2]
    assert tokens is None or (type(tokens) is int and tokens > 0 and error is None)
    assert error is None or (isinstance(error, str) and tokens is None and WHERE in error)


def test_parse_frontmatter_on_a_cut_off_head_ignores_the_last_line() -> None:
    start = b"---\ntokenBudget: 5\n"
    head = start + b" " * (64 * 1024 - len(start) - 4) + b"\n---"
    assert len(head) == 64 * 1024
    assert parse_frontmatter(head, where="x")[:2] == (None, None)
    assert parse_frontmatter(head[:-10] + b"\n---", where="x")[:2] == (5, None)


# -- cache --------------------------------------------------------------------------------------


def test_cache_round_trip(tmp_path: Path) -> None:
    command = write(tmp_path / "x.md", "---\ntokenBudget: 5\n---\n")
    cache = BudgetCache.load(tmp_path / "cache.json")
    assert cache.lookup(command) is None
    assert read_budget(command, project=tmp_path, cache=cache)[:2] == (5, None)
    cache.save()
    again = BudgetCache.load(tmp_path / "cache.json")
    assert again.lookup(command) == Budget(5)
    st_ = os.stat(command)
    assert json.loads((tmp_path / "cache.json").read_text()) == {
        "version": 3,
        "entries": {str(command): [st_.st_mtime_ns, st_.st_size, 5, None, None, None, None, None]},
    }
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cache.json", "x.md"]


@pytest.mark.parametrize("plant", ["world-writable", "symlink"])
def test_a_cache_that_is_not_the_users_own_private_file_is_not_believed(tmp_path: Path, plant: str) -> None:
    """Budgets another user planted (a huge tokenBudget for a real command) must not be read."""
    command = write(tmp_path / "x.md", "---\ntokenBudget: 5\n---\n")
    cache = BudgetCache.load(tmp_path / "cache.json")
    cache.store(command, os.stat(command), Budget(10**12))
    cache.save()
    if plant == "world-writable":
        (tmp_path / "cache.json").chmod(0o666)
    else:
        (tmp_path / "cache.json").rename(tmp_path / "elsewhere.json")
        (tmp_path / "cache.json").symlink_to(tmp_path / "elsewhere.json")
    again = BudgetCache.load(tmp_path / "cache.json")
    assert again.lookup(command) is None
    assert read_budget(command, project=tmp_path, cache=again)[:2] == (5, None)


def test_read_budget_uses_the_cache(tmp_path: Path) -> None:
    command = write(tmp_path / "x.md", "---\ntokenBudget: 5\n---\n")
    cache = BudgetCache.load(tmp_path / "cache.json")
    cache.store(command, os.stat(command), Budget(123))
    assert read_budget(command, project=tmp_path, cache=cache)[:2] == (123, None)


def test_cache_misses_when_the_file_changes(tmp_path: Path) -> None:
    command = write(tmp_path / "x.md", "---\ntokenBudget: 5\n---\n")
    cache = BudgetCache.load(tmp_path / "cache.json")
    cache.store(command, os.stat(command), Budget(5))
    write(command, "---\ntokenBudget: 50\n---\n")
    assert cache.lookup(command) is None
    assert read_budget(command, project=tmp_path, cache=cache)[:2] == (50, None)
    assert cache.lookup(command)[:2] == (50, None)


def test_cache_does_not_keep_read_errors(tmp_path: Path) -> None:
    (tmp_path / "x.md").mkdir()
    cache = BudgetCache.load(tmp_path / "cache.json")
    read_budget(tmp_path / "x.md", project=tmp_path, cache=cache)
    cache.save()
    assert not (tmp_path / "cache.json").exists()


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"not json",
        b"[]",
        b'{"version": 4, "entries": {}}',
        b'{"version": 1, "entries": []}',
        b"\xff",
        b"[" * 100000,
    ],
    ids=["empty", "garbage", "list", "future-version", "entries-list", "binary", "deep"],
)
def test_cache_corrupt_file_is_empty(tmp_path: Path, content: bytes) -> None:
    command = write(tmp_path / "x.md", "x")
    write(tmp_path / "cache.json", content)
    assert BudgetCache.load(tmp_path / "cache.json").lookup(command) is None


def test_cache_skips_bad_entries(tmp_path: Path) -> None:
    good, bad = write(tmp_path / "good.md", "x"), write(tmp_path / "bad.md", "x")
    entries = {
        str(good): [os.stat(good).st_mtime_ns, 1, 5, None, 2500000, "day", 10.0, None],
        str(bad): [os.stat(bad).st_mtime_ns, 1, "5", None, None, None, None, None],
    }
    write(tmp_path / "cache.json", json.dumps({"version": 3, "entries": entries}))
    cache = BudgetCache.load(tmp_path / "cache.json")
    assert (cache.lookup(good), cache.lookup(bad)) == (Budget(5, None, 2_500_000, "day", 10.0), None)


def test_cache_save_failure_is_ignored(tmp_path: Path) -> None:
    command = write(tmp_path / "x.md", "x")
    cache = BudgetCache.load(tmp_path / "missing-dir" / "cache.json")
    cache.store(command, os.stat(command), Budget())
    cache.save()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.md"]


def test_cache_keeps_the_newest_entries(tmp_path: Path) -> None:
    cache = BudgetCache.load(tmp_path / "cache.json")
    cache.MAX_ENTRIES = 3
    files = [write(tmp_path / f"{i}.md", "x") for i in range(5)]
    for i, f in enumerate(files):
        cache.store(f, os.stat(f), Budget(i + 1))
    cache.store(files[2], os.stat(files[2]), Budget(30))  # touching an entry makes it the newest
    cache.save()
    entries = json.loads((tmp_path / "cache.json").read_text())["entries"]
    assert [(Path(k).name, v[2]) for k, v in entries.items()] == [("3.md", 4), ("4.md", 5), ("2.md", 30)]


# -- discover_commands --------------------------------------------------------------------------


def test_discover_commands(tmp_path: Path) -> None:
    project, home = tmp_path / "project", tmp_path / "home"
    budget = "---\ntokenBudget: {}\n---\n"
    write(project / ".claude/commands/review-pr.md", budget.format("50k"))
    write(project / ".claude/commands/frontend/component.md", budget.format("fifty"))
    write(project / ".claude/commands/a/b/c.md", "no frontmatter")
    write(project / ".claude/skills/lint/SKILL.md", budget.format(100))
    write(project / ".claude/skills/lint/notes.md", "not a command")
    write(project / ".claude/skills/empty/README.md", "no SKILL.md")
    write(home / "commands/review-pr.md", budget.format(1))  # shadowed by the project's
    write(home / "commands/lint.md", budget.format(2))  # shadowed by the project's skill
    write(home / "commands/other.md", budget.format(3))
    write(home / "skills/helper/SKILL.md", "")
    write(project / ".claude/commands/rév-iew.md", budget.format(10000))
    write(project / ".claude/commands/.hidden.md", "")
    for skipped in ["bad name.md", "notes.txt", "bad..dir/x.md", "x:y.md", "a\x1b[31m.md", "a\u200bb.md"]:
        write(project / ".claude/commands" / skipped, budget.format(9))
    (project / ".claude/commands/dir.md").mkdir()

    found = discover_commands(project=project, home=home)

    fix = f'tokenBudget "fifty" in .claude/commands/frontend/component.md is not a number — {FIX}'
    assert found == {
        "/a:b:c": CommandInfo("/a:b:c", project / ".claude/commands/a/b/c.md", Budget(None)),
        "/frontend:component": CommandInfo(
            "/frontend:component", project / ".claude/commands/frontend/component.md", Budget(None, fix)
        ),
        "/helper": CommandInfo("/helper", home / "skills/helper/SKILL.md", Budget(None)),
        "/lint": CommandInfo("/lint", project / ".claude/skills/lint/SKILL.md", Budget(100)),
        "/other": CommandInfo("/other", home / "commands/other.md", Budget(3)),
        "/review-pr": CommandInfo("/review-pr", project / ".claude/commands/review-pr.md", Budget(50000)),
        "/rév-iew": CommandInfo("/rév-iew", project / ".claude/commands/rév-iew.md", Budget(10000)),
        "/.hidden": CommandInfo("/.hidden", project / ".claude/commands/.hidden.md", Budget(None)),
    }
    assert list(found) == sorted(found)
    for info in found.values():
        assert find_command_file(info.name, project=project, home=home) == info.path


def test_discover_commands_nothing_there(tmp_path: Path) -> None:
    assert discover_commands(project=tmp_path / "p", home=tmp_path / "h") == {}


def test_discover_commands_fills_the_cache(tmp_path: Path) -> None:
    command = write(tmp_path / ".claude/commands/x.md", "---\ntokenBudget: 5\n---\n")
    cache = BudgetCache.load(tmp_path / "cache.json")
    discover_commands(project=tmp_path, home=tmp_path / "h", cache=cache)
    assert cache.lookup(command)[:2] == (5, None)


# -- import cost --------------------------------------------------------------------------------


def test_hot_path_imports_nothing_heavy(tmp_path: Path) -> None:
    write(tmp_path / ".claude/commands/x.md", "---\ndescription: no budget\n---\n")
    code = (
        "import sys\n"
        "from pathlib import Path\n"
        "from budget_state.budgets._commands import command_from_prompt, find_command_file, read_budget\n"
        f"p = Path({str(tmp_path)!r})\n"
        "f = find_command_file(command_from_prompt('/x go'), project=p, home=p / 'h')\n"
        "assert read_budget(f, project=p)[:2] == (None, None)\n"
        "print(sorted(m for m in ('yaml', 'json', 'tomllib', 'tomli', 'logging') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout == "[]\n"
