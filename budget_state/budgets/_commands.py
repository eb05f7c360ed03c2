"""Which custom command a prompt runs, where its file is, and the ``tokenBudget`` in its frontmatter.

Runs in the hook on every prompt, so PyYAML and json are imported only when a file must be parsed.
"""

from __future__ import annotations

import os
import re
import stat as _stat
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from budget_state._model import Budget
from budget_state._paths import display
from budget_state.budgets._units import TokenValueError, parse_tokens

if TYPE_CHECKING:
    from collections.abc import Iterator


Result = Budget

# Command names follow Claude Code's own rules, as checked on 2.1.197 and 2.1.332 (see
# docs/configuration.md): the name is the file's name as written — any case, any script, no Unicode
# normalisation — and ends at the first character JavaScript's \s matches. Names are refused
# that either version does not run, and whatever could leave the folder or reach a terminal
# raw: "/" "\\" ":" (the namespace separator) "<" ">", "." and ".." anywhere, controls,
# format characters (bidi overrides, zero-width spaces; the emoji joiner U+200D excepted),
# a leading combining mark.
_SPACE = "\t\n\v\f\r \u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff"  # JavaScript's \s
_PROMPT = re.compile(rf"[{_SPACE}]*/([^{_SPACE}]{{1,256}})(?:[{_SPACE}]|$)")
_ASCII_SEGMENT = re.compile(r"[!-~]+")  # printable ASCII, no space; the refused ones are checked apart
_REFUSED = frozenset("/\\:<>")
_ZWJ = "\u200d"  # joins emoji sequences (👩‍💻): both versions run names with it
_MAX_BYTES = 64 * 1024
_KEYS = (
    ("tokenBudget",),
    ("token-budget",),
    ("metadata", "tokenBudget"),
    ("metadata", "token-budget"),
)
_COST_KEYS = (("costBudget",), ("cost-budget",), ("metadata", "costBudget"), ("metadata", "cost-budget"))
_WINDOW_KEYS = (("budgetWindow",), ("budget-window",), ("metadata", "budgetWindow"), ("metadata", "budget-window"))
_QUOTA_KEYS = (("quotaBudget",), ("quota-budget",), ("metadata", "quotaBudget"), ("metadata", "quota-budget"))
_QUOTA7_KEYS = (
    ("quotaBudget7d",),
    ("quota-budget-7d",),
    ("metadata", "quotaBudget7d"),
    ("metadata", "quota-budget-7d"),
)
_NEEDLES = (b"tokenBudget", b"token-budget", b"costBudget", b"cost-budget", b"quotaBudget", b"quota-budget")
_FIX = "write e.g. tokenBudget: 50000"


def is_command_name(name: str, /) -> bool:
    """Whether ``name`` ("/review-pr", "frontend:component", "/rév-iew") is one Claude Code runs and
    is safe to map onto a file path."""
    return _valid_bare(name.removeprefix("/"))


def _valid_bare(bare: str) -> bool:
    return all(_valid_segment(part) for part in bare.split(":"))


def _valid_segment(part: str) -> bool:
    """One file or folder name of a command: see the rules above."""
    if not part or part == "." or ".." in part or any(c in _REFUSED for c in part):
        return False
    if part.isascii():
        return _ASCII_SEGMENT.fullmatch(part) is not None
    import unicodedata  # Lazy: only non-ASCII names need it.

    if unicodedata.category(part[0]).startswith("M"):
        return False
    return all((c.isprintable() and not c.isspace()) or c == _ZWJ for c in part)


def command_from_prompt(prompt: str, /) -> str | None:
    """The slash command a raw prompt runs ("/review-pr 42" -> "/review-pr"), or None; never raises.

    Whitespace as Claude Code sees it (JavaScript's \\s, e.g. a no-break space) separates the
    command from its arguments; a control character or an escape sequence glued to the name makes
    the whole prompt "not a command".
    """
    match = _PROMPT.match(prompt) if isinstance(prompt, str) else None
    if match is None or not _valid_bare(match.group(1)):
        return None
    return "/" + match.group(1)


def _candidates(root: Path, parts: list[str]) -> Iterator[tuple[Path, Path, list[str]]]:
    """``(file, folder, the names under folder that must be spelled exactly so)`` for each place."""
    if len(parts) == 1:
        yield root / "skills" / parts[0] / "SKILL.md", root / "skills", [parts[0]]
    yield root.joinpath("commands", *parts[:-1], parts[-1] + ".md"), root / "commands", [*parts[:-1], parts[-1] + ".md"]


def _spelled_exactly(folder: Path, names: list[str]) -> bool:
    """Whether each of ``names`` (a path under ``folder``) is a folder entry with exactly that spelling.

    A case-insensitive or normalising filesystem (macOS) opens Deploy.md for "deploy.md" and an
    NFD "é" for an NFC one; Claude Code does not run a command typed so, and neither do we count it.
    """
    for name in names:
        try:
            if name not in os.listdir(folder):
                return False
        except OSError:
            return False
        folder = folder / name
    return True


def _regular(path: Path) -> os.stat_result | None:
    try:
        st = os.stat(path)
    except (OSError, ValueError):
        return None
    return st if _stat.S_ISREG(st.st_mode) else None


def find_command_file(name: str, /, *, project: Path, home: Path) -> Path | None:
    """The file that defines ``name`` ("/ns:cmd" or "ns:cmd"), or None for built-ins and typos.

    Search order, first regular file wins: ``<project>/.claude/skills/<name>/SKILL.md``,
    ``<project>/.claude/commands/<ns>/<cmd>.md``, ``<home>/skills/<name>/SKILL.md``,
    ``<home>/commands/<ns>/<cmd>.md``. Skills are looked up only for names without ":".
    """
    if not is_command_name(name):
        return None
    parts = name.removeprefix("/").split(":")
    for root in (project / ".claude", home):
        for path, folder, names in _candidates(root, parts):
            if _regular(path) is not None and _spelled_exactly(folder, names):
                return path
    return None


def _frontmatter(head: bytes) -> bytes | None:
    """The bytes between a first ``---`` line and the next ``---`` line, or None.

    A ``head`` of exactly ``_MAX_BYTES`` may be cut off, so its last line does not count.
    """
    first, newline, rest = head.removeprefix(b"\xef\xbb\xbf").partition(b"\n")
    if not newline or first.rstrip() != b"---":
        return None
    start = 0
    while start <= len(rest):
        end = rest.find(b"\n", start)
        if end < 0:
            if len(head) >= _MAX_BYTES:
                return None
            end = len(rest)
        if rest[start:end].rstrip() == b"---":
            return rest[:start]
        start = end + 1
    return None


def _lookup(data: object, options: tuple[tuple[str, ...], ...] = _KEYS) -> tuple[str, object] | None:
    for keys in options:
        value = data
        for key in keys:
            if not isinstance(value, dict) or key not in value:
                break
            value = value[key]
        else:
            return ".".join(keys), value
    return None


def parse_frontmatter(head: bytes, /, *, where: str) -> Budget:
    """The budgets in the start of a command file; ``where`` names the file in messages."""
    raw = _frontmatter(head)
    if raw is None or not any(n in raw for n in _NEEDLES):
        return Budget()  # the common case: no need to import PyYAML at all
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return Budget(error=f"{where} is not UTF-8 text — save it as UTF-8 or remove tokenBudget")
    import yaml  # Lazy: PyYAML costs ~20 ms, and most prompts never get here.

    try:
        data = yaml.safe_load(text)
    except Exception as exc:  # noqa: BLE001 (hostile YAML also raises RecursionError, ValueError...)
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        position = getattr(exc, "position", None)  # yaml.reader.ReaderError (e.g. a NUL) has no mark
        index = mark.line if mark is not None else text.count("\n", 0, position) if position is not None else None
        line = f" (line {index + 2})" if index is not None else ""  # +1 for the "---" line, +1 as 1-based
        return Budget(error=f"frontmatter of {where} is not valid YAML{line} — fix it or remove tokenBudget")
    if data is None:
        return Budget()  # "tokenBudget" only appeared in a comment
    if not isinstance(data, dict):
        return Budget(error=f"frontmatter of {where} is not a set of key: value lines — {_FIX}")
    from budget_state.budgets._units import parse_percent, parse_usd

    amounts: list[Any] = []
    parsers = (
        (_KEYS, parse_tokens),
        (_COST_KEYS, parse_usd),
        (_QUOTA_KEYS, parse_percent),
        (_QUOTA7_KEYS, parse_percent),
    )
    for keys, parse in parsers:
        found = _lookup(data, keys)
        if found is None:
            amounts.append(None)
            continue
        key, value = found
        try:
            amounts.append(parse(value, what=key))
        except TokenValueError as exc:
            shown = f" {exc.shown}" if exc.shown else ""
            return Budget(error=f"{key}{shown} in {where} {exc.reason} — {exc.fix or _FIX}")
    tokens, usd, quota_5h, quota_7d = amounts
    window = None
    found = _lookup(data, _WINDOW_KEYS)
    if found is not None and (tokens is not None or usd is not None):
        from budget_state.budgets._units import describe_value
        from budget_state.ledger._windows import WindowError, parse_window

        key, value = found
        try:
            window = parse_window(value).label
        except WindowError as exc:
            return Budget(error=f"{key} {describe_value(value)} in {where} {exc}")
    return Budget(tokens, None, usd, window, quota_5h, quota_7d)


class BudgetCache:
    """Parsed budgets keyed by absolute path, mtime and size, so a prompt re-reads no unchanged file.

    It is only a cache: a missing or corrupt file is an empty cache and failing to save is ignored.
    """

    MAX_ENTRIES = 2000

    def __init__(self, path: Path, entries: dict[str, list[object]] | None = None) -> None:
        self.path = path
        self._entries: dict[str, list[object]] = dict(entries or {})
        self._dirty = False

    @classmethod
    def load(cls, path: Path) -> BudgetCache:
        import json

        from .._errors import LedgerError
        from .._private import read_private

        try:
            # only the user's own private file: budgets another user planted would let a command
            # run past its real limit
            data = json.loads(read_private(path, what=f"the budget cache {path}") or b"{}")
            entries = data["entries"] if data["version"] == CACHE_VERSION else {}
            good = {k: v for k, v in entries.items() if isinstance(k, str) and _valid_entry(v)}
        except (OSError, LedgerError, ValueError, LookupError, TypeError, AttributeError, RecursionError):
            good = {}  # missing, not the user's own, corrupt, or from another version: start empty
        return cls(path, good)

    def lookup(self, file: Path) -> Result | None:
        st = _regular(file)
        entry = self._entries.get(os.path.abspath(file)) if st is not None else None
        if st is None or entry is None or entry[:2] != [st.st_mtime_ns, st.st_size]:
            return None
        return Budget(*entry[2:])  # type: ignore[arg-type]  # _valid_entry checked the types

    def store(self, file: Path, stat: os.stat_result, result: Result) -> None:
        key = os.path.abspath(file)
        self._entries.pop(key, None)  # re-inserting makes it the newest
        self._entries[key] = [stat.st_mtime_ns, stat.st_size, *result]
        while len(self._entries) > self.MAX_ENTRIES:
            del self._entries[next(iter(self._entries))]
        self._dirty = True

    def save(self) -> None:
        """Write the cache in one step (:func:`write_atomic`, not durable: it is rebuilt) if it changed."""
        if not self._dirty:
            return
        import json

        from .._atomic import write_atomic

        data = json.dumps({"version": CACHE_VERSION, "entries": self._entries}, separators=(",", ":")).encode("utf-8")
        try:
            write_atomic(Path(self.path), data, durable=False)
        except OSError:
            return
        self._dirty = False


CACHE_VERSION = 3  # 3: an entry also holds quotaBudget and quotaBudget7d


def _valid_entry(entry: object) -> bool:
    if not isinstance(entry, list) or len(entry) != 8:
        return False
    mtime, size, tokens, error, usd, window, q5, q7 = entry
    return (
        all(v is None or (type(v) in (int, float) and 0 < v <= 100) for v in (q5, q7))
        and all(type(v) is int for v in (mtime, size))
        and all(v is None or (type(v) is int and v > 0) for v in (tokens, usd))
        and all(v is None or isinstance(v, str) for v in (error, window))
    )


def read_budget(path: Path, /, *, project: Path, cache: BudgetCache | None = None) -> Result:
    """The budgets of one command file: ``Budget(50000)``, ``Budget()`` or ``Budget(error=message)``."""
    if cache is not None:
        hit = cache.lookup(path)
        if hit is not None:
            return hit
    where = display(path, project)
    try:
        st = os.stat(path)
        with open(path, "rb") as f:
            head = f.read(_MAX_BYTES)
    except OSError as exc:  # not cached: fixing permissions does not change the mtime
        reason = exc.strerror or type(exc).__name__
        return Budget(error=f"cannot read {where} ({reason}) — check that it is a readable file")
    result = parse_frontmatter(head, where=where)
    if cache is not None:
        cache.store(path, st, result)
    return result


class CommandInfo(NamedTuple):
    """One custom command or skill and its budget, as ``/budget`` lists it."""

    name: str
    path: Path
    budget: Budget

    @property
    def tokens(self) -> int | None:
        return self.budget.tokens

    @property
    def error(self) -> str | None:
        return self.budget.error


def _command_files(root: Path) -> Iterator[tuple[str, Path]]:
    skills = root / "skills"
    try:
        entries = sorted(os.listdir(skills))
    except OSError:
        entries = []
    for entry in entries:
        path = skills / entry / "SKILL.md"
        if _valid_segment(entry) and _regular(path) is not None:
            yield "/" + entry, path
    commands = root / "commands"
    for dirpath, dirnames, filenames in os.walk(commands):
        dirnames[:] = sorted(d for d in dirnames if _valid_segment(d))  # also skips .git and the like
        namespace = Path(dirpath).relative_to(commands).parts
        for filename in sorted(filenames):
            path = Path(dirpath) / filename
            if filename.endswith(".md") and _valid_segment(filename[:-3]) and _regular(path) is not None:
                yield "/" + ":".join((*namespace, filename[:-3])), path


def discover_commands(*, project: Path, home: Path, cache: BudgetCache | None = None) -> dict[str, CommandInfo]:
    """Every custom command and skill, sorted by name, with the precedence of :func:`find_command_file`."""
    found: dict[str, CommandInfo] = {}
    for root in (project / ".claude", home):
        for name, path in _command_files(root):
            if name not in found:
                found[name] = CommandInfo(name, path, read_budget(path, project=project, cache=cache))
    return dict(sorted(found.items()))
