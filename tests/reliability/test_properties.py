"""Property tests: the transcript reader and the hook's settle against a reference computed here,
frontmatter parsing on arbitrary text, and the hook protocol on input of any shape.

The examples are derandomized so CI sees the same ones every run (no flakes); set
``RELIABILITY_EXPLORE=1`` to search with fresh random examples, twenty times as many.
"""

from __future__ import annotations

import io
import json
import os
import tempfile
from contextlib import redirect_stderr
from pathlib import Path
from typing import Any

import kit

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from budget_state import hook
from budget_state._accounting import read_new
from budget_state.budgets._commands import BudgetCache, command_from_prompt, is_command_name, parse_frontmatter, read_budget
from budget_state.ledger._ledger import Ledger, utcnow
from budget_state.ledger._runs import open_run, settle
from budget_state.ledger._state import Cursor, FieldError

EXPLORE = bool(os.environ.get("RELIABILITY_EXPLORE"))


def examples(n: int) -> Any:
    return settings(
        max_examples=n * 20 if EXPLORE else n,
        derandomize=not EXPLORE,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.function_scoped_fixture],
    )


CATEGORIES = ("input", "output", "cache_creation", "cache_read")
FIELDS = ("input_tokens", "output_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")
PROMPTS = ("p0", "p1", "prompt ü 2", 'p"3]')


# --- the transcript model --------------------------------------------------------------------------


def _valid(v: Any) -> int:
    """What one usage value is worth: a positive whole number, or nothing."""
    return v if type(v) is int and v > 0 else 0


class Model:
    """A transcript being built, and what it must count: per response the largest value per field."""

    def __init__(self) -> None:
        self.lines: list[bytes] = []
        self.prompt: str | None = None
        self.total = dict.fromkeys(CATEGORIES, 0)
        self.by_prompt: dict[str | None, dict[str, int]] = {}

    def charge(self, best: list[int]) -> None:
        for c, v in zip(CATEGORIES, best):
            self.total[c] += v
            per = self.by_prompt.setdefault(self.prompt, dict.fromkeys(CATEGORIES, 0))
            per[c] += v


counts = st.integers(0, 10**7)
odd_values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**6), -1),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=4),
    st.integers(10**15, 10**18),
)
usage_value = st.one_of(counts, counts, counts, odd_values)
dumps_style = st.sampled_from(
    [{}, {"separators": (",", ":")}, {"ensure_ascii": False}, {"indent": None, "sort_keys": True}]
)


def _garbage_text(s: str) -> bool:
    try:
        rec = json.loads(s)
    except ValueError:
        return True
    return not (isinstance(rec, dict) and rec.get("type") in ("user", "assistant"))


garbage_lines = st.one_of(
    st.text(max_size=40)
    .filter(lambda s: "\n" not in s and _garbage_text(s))
    .map(lambda s: s.encode("utf-8", "surrogatepass")),
    st.binary(max_size=40).filter(lambda b: b"\n" not in b).map(lambda b: b'{"usage": ' + b),
    st.binary(max_size=40).filter(lambda b: b"\n" not in b),
    st.just(b""),
    st.just(b'["usage", "promptId"]'),
    st.just(b'{"type": "user", "promptId": 5}'),
    st.just(b'{"type": "user", "promptId": ""}'),
    st.just(b'{"type": "assistant", "message": {"usage": [1, 2]}}'),
    st.just(b'{"type": "assistant", "message": "usage"}'),
)


@st.composite
def transcripts(draw: Any) -> tuple[Model, bytes]:
    """Lines as Claude Code writes them, plus noise; returns the model and an unfinished tail."""
    m = Model()
    style = draw(dumps_style)
    n = draw(st.integers(0, 14))
    for i in range(n):
        kind = draw(st.sampled_from(["response"] * 5 + ["user"] * 2 + ["garbage", "truncated", "not-spend", "no-id"]))
        if kind == "user":
            pid = draw(st.sampled_from(PROMPTS))
            m.prompt = pid
            m.lines.append(
                json.dumps({"type": "user", "promptId": pid, "message": {"content": "x"}}, **style).encode() + b"\n"
            )
        elif kind == "garbage":
            m.lines.append(draw(garbage_lines) + draw(st.sampled_from([b"\n", b"\r\n"])))
        elif kind in ("response", "truncated", "not-spend", "no-id"):
            mid = f"msg_{i:04d}_" + draw(st.text(max_size=4).filter(lambda s: "\n" not in s))
            rid: Any = draw(st.one_of(st.just(f"req_{i}"), st.none(), st.integers(), st.text(max_size=4)))
            repeats = 1 if kind == "no-id" else draw(st.integers(1, 4))
            usage = {f: draw(usage_value) for f in FIELDS if draw(st.integers(0, 9))}
            best = [_valid(usage.get(f)) for f in FIELDS]
            for k in range(repeats):
                if k:
                    step = draw(st.sampled_from(["same", "same", "grow", "any"]))
                    if step == "grow" and _valid(usage.get("output_tokens")):
                        usage = {**usage, "output_tokens": usage["output_tokens"] + draw(st.integers(0, 500))}
                    elif step == "any":
                        usage = {**usage, draw(st.sampled_from(FIELDS)): draw(usage_value)}
                    best = [max(b, _valid(usage.get(f))) for b, f in zip(best, FIELDS)]
                message: dict[str, Any] = {
                    "model": "claude-x",
                    "usage": usage,
                    "content": [{"type": "text", "text": "…"}],
                }
                if kind != "no-id":
                    message["id"] = mid
                rec: dict[str, Any] = {
                    "type": "assistant",
                    "timestamp": f"2026-11-25T10:00:{i:02d}.{k}Z",
                    "message": message,
                }
                if rid is not None:
                    rec["requestId"] = rid
                if kind == "not-spend":
                    if draw(st.booleans()):
                        message["model"] = "<synthetic>"
                    else:
                        rec["isApiErrorMessage"] = True
                line = json.dumps(rec, **style).encode("utf-8", "surrogatepass")
                if kind == "truncated":
                    line = line[: draw(st.integers(1, len(line) - 1))]
                m.lines.append(line + b"\n")
                if draw(st.integers(0, 4)) == 0:
                    m.lines.append(draw(garbage_lines) + b"\n")
            if kind in ("response", "no-id"):
                m.charge(best)
    tail = draw(
        st.sampled_from([b"", b'{"type": "assistant", "message": {"id": "late", "usage": {"input_tokens": 5}}}', b"{"])
    )
    return m, tail


def _cuts(data: Any, size: int) -> list[int]:
    return [*sorted(data.draw(st.lists(st.integers(0, size), max_size=6), label="cuts")), size]


def _sum(entries: list[Any]) -> tuple[dict[str, int], dict[str | None, dict[str, int]]]:
    total = dict.fromkeys(CATEGORIES, 0)
    by_prompt: dict[str | None, dict[str, int]] = {}
    for e in entries:
        per = by_prompt.setdefault(e.prompt, dict.fromkeys(CATEGORIES, 0))
        for c in CATEGORIES:
            total[c] += e.usage.get(c, 0)
            per[c] += e.usage.get(c, 0)
    return total, {p: u for p, u in by_prompt.items() if any(u.values())}


@examples(300)
@given(st.data())
def test_read_new_counts_each_response_once_wherever_the_reads_fall(data: Any) -> None:
    m, tail = data.draw(transcripts(), label="transcript")
    blob = b"".join(m.lines) + tail
    entries: list[Any] = []
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "s.jsonl"
        cursor = Cursor()
        pos = 0
        for cut in _cuts(data, len(blob)):
            with open(path, "ab") as f:
                f.write(blob[pos:cut])
            pos = cut
            entries += read_new(path, cursor).entries
            if data.draw(st.booleans(), label="cursor through the ledger"):  # its session's file, read back
                problems: list[FieldError] = []
                cursor = Cursor.load(json.loads(json.dumps(cursor.dump())), "c", problems)
                assert problems == []
        assert read_new(path, cursor).entries == []  # nothing new: nothing counted
    total, by_prompt = _sum(entries)
    assert total == m.total
    assert by_prompt == {p: u for p, u in m.by_prompt.items() if any(u.values())}
    assert cursor.offset == len(b"".join(m.lines))  # up to the last complete line, never into the tail


@examples(80)
@given(st.data())
def test_settle_through_the_ledger_equals_the_reference(data: Any) -> None:
    m, tail = data.draw(transcripts(), label="transcript")
    blob = b"".join(m.lines) + tail
    with tempfile.TemporaryDirectory() as d:
        ledger = Ledger(Path(d) / "budget-ledger.toml")
        path = Path(d) / "s.jsonl"
        with ledger.transaction() as state:  # the session's first hook: the transcript does not exist yet
            assert settle(state, session="s1", transcript=path, now=utcnow()) == []
        with ledger.transaction() as state:
            for n, pid in enumerate(PROMPTS):
                open_run(state, session="s1", prompt=pid, command=f"/c{n}", now=utcnow())
        pos = 0
        for cut in _cuts(data, len(blob)):
            with open(path, "ab") as f:
                f.write(blob[pos:cut])
            pos = cut
            with ledger.transaction() as state:
                assert settle(state, session="s1", transcript=path, prompt_id="p0", now=utcnow()) == []
        state = ledger.read()  # its parts are read when used: inside the folder's lifetime
        assert kit.tokens(state, "overall") == m.total
        for n, pid in enumerate(PROMPTS):
            want = m.by_prompt.get(pid, dict.fromkeys(CATEGORIES, 0))
            assert kit.tokens(state, f"/c{n}") == want, pid


# --- frontmatter -----------------------------------------------------------------------------------

YAML_PIECES = [
    *"-:{}[]&*!|>'\"%@`#?,\n\t 5e._k",
    "tokenBudget",
    "metadata",
    "token-budget",
    "---\n",
    "  ",
    ": ",
    "\n- ",
]
yamlish = st.lists(st.sampled_from(YAML_PIECES) | st.characters(), max_size=40).map("".join)
budget_values = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.floats(),
        st.text(max_size=12),
        st.sampled_from(["50k", "1.5M", "50_000", "1,000", "-5", "0", "1e999k", "inf", "nan", "9" * 400]),
    ),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=6,
)


def _check_result(result: Any) -> None:
    tokens, error, usd, _window, *_quota = result
    assert usd is None or (type(usd) is int and usd > 0), result
    assert tokens is None or (type(tokens) is int and tokens > 0), result
    assert error is None or (isinstance(error, str) and error), result
    assert tokens is None or error is None, result


@examples(300)
@given(st.binary(max_size=300) | yamlish.map(lambda s: ("---\n" + s + "\n---\n").encode("utf-8", "surrogatepass")))
def test_parse_frontmatter_never_raises(head: bytes) -> None:
    _check_result(parse_frontmatter(head, where="x.md"))


@examples(200)
@given(
    budget_values,
    st.sampled_from(
        ["tokenBudget: {}", "token-budget: {}", "metadata: {{tokenBudget: {}}}", "metadata:\n  tokenBudget: {}"]
    ),
)
def test_any_token_budget_value_gives_a_number_or_a_message(value: Any, template: str) -> None:
    import yaml

    text = template.format(yaml.safe_dump(value, default_flow_style=True).strip().replace("\n...", ""))
    _check_result(parse_frontmatter(f"---\n{text}\n---\nbody\n".encode(), where="x.md"))


@examples(100)
@given(
    st.binary(max_size=400)
    | yamlish.map(lambda s: ("---\ntokenBudget: " + s + "\n---\n").encode("utf-8", "surrogatepass"))
)
def test_read_budget_with_its_cache_never_raises_and_agrees(content: bytes) -> None:
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / ".claude" / "commands" / "x.md"
        path.parent.mkdir(parents=True)
        path.write_bytes(content)
        cache = BudgetCache.load(Path(d) / "budget-cache.json")
        first = read_budget(path, project=Path(d), cache=cache)
        _check_result(first)
        cache.save()
        again = read_budget(path, project=Path(d), cache=BudgetCache.load(Path(d) / "budget-cache.json"))
        assert again == first


@examples(300)
@given(st.text(max_size=60) | st.text(max_size=30).map(lambda s: "/" + s))
def test_command_from_prompt_is_a_safe_name_or_none(prompt: str) -> None:
    name = command_from_prompt(prompt)
    assert name is None or (name.startswith("/") and is_command_name(name) and ".." not in name and "/" not in name[1:])


# --- the hook protocol -----------------------------------------------------------------------------

EVENTS = [
    "UserPromptSubmit",
    "PreToolUse",
    "PostToolUse",
    "SubagentStop",
    "Stop",
    "StopFailure",
    "SessionEnd",
    "SessionStart",
    "Notification",
    "",
]
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=6,
)


def _payloads(paths: dict[str, str]) -> Any:
    good = {
        "session_id": st.sampled_from(["s1", "s2", "sess ü", "a/b", "x" * 300]) | st.text(min_size=1, max_size=8),
        "hook_event_name": st.sampled_from(EVENTS),
        "prompt": st.sampled_from(
            ["/alpha", "/alpha 1", "/budget", "/budget /alpha", "/budget ../x", "hi", "/../x", "/\x1b[1m", "/a\x00b"]
        )
        | st.text(max_size=12).map(lambda s: "/" + s),
        "prompt_id": st.sampled_from(["p1", "p2"]) | st.text(max_size=8),
        "transcript_path": st.sampled_from(list(paths.values())),
        "agent_transcript_path": st.sampled_from(list(paths.values())),
        "cwd": st.sampled_from([paths["project"], "/nonexistent"]),
        "tool_name": st.sampled_from(["Bash", "Task"]),
        "stop_hook_active": st.booleans(),
    }
    either = {k: v | json_values for k, v in good.items()}
    typical = st.fixed_dictionaries(
        {"session_id": good["session_id"], "hook_event_name": good["hook_event_name"]},
        optional={k: v for k, v in either.items() if k not in ("session_id", "hook_event_name")},
    )
    return st.one_of(
        typical,
        typical,
        typical,
        st.fixed_dictionaries({}, optional=either),
        st.dictionaries(st.text(max_size=6), json_values, max_size=4),
    )


def _run(proj: Any, raw: bytes) -> tuple[str, str]:
    """What the hook printed on stdout and stderr (``main`` always returns 0: the reply is the output)."""
    out, err = io.StringIO(), io.StringIO()
    with redirect_stderr(err):
        hook.main([], stdin=io.BytesIO(raw), stdout=out, env=dict(proj.env))
    return out.getvalue(), err.getvalue()


def _hook_paths(proj: Any) -> dict[str, str]:
    t = proj.writer("s1")
    t.user("p1")
    t.response({"input": 5, "output": 6})
    folder = proj.home / "adir.jsonl"
    folder.mkdir(exist_ok=True)
    return {
        "project": str(proj.root),
        "transcript": str(t.path),
        "folder": str(folder),
        "missing": str(proj.home / "none.jsonl"),
        "null": "/dev/null",
        "empty": "",
        "relative": "rel.jsonl",
    }


def test_hook_replies_to_input_of_any_shape(proj: Any, monkeypatch: Any) -> None:
    """Any stdin: nothing or one JSON object Claude Code understands, nothing on stderr.

    (That the process exits 0 is checked where it runs as one: test_hostile_inputs' hook_proc.)
    """
    proj.command("alpha", 100)
    monkeypatch.chdir(proj.home)  # relative transcript paths land here
    paths = _hook_paths(proj)

    @examples(400)
    @given(
        st.one_of(
            _payloads(paths).map(lambda p: json.dumps(p).encode()),
            json_values.map(lambda v: json.dumps(v).encode()),
            st.binary(max_size=64),
            st.text(max_size=30).map(lambda s: s.encode("utf-8", "surrogatepass")),
        )
    )
    def check(raw: bytes) -> None:
        out, err = _run(proj, raw)
        assert err == ""
        kit.check_reply(out)

    check()


def test_hook_input_with_wrong_types_is_never_an_internal_error(proj: Any, monkeypatch: Any) -> None:
    """Keys Claude Code sends, holding values of the wrong type: a clear line or nothing, never "internal error"."""
    proj.command("alpha", 100)
    monkeypatch.chdir(proj.home)
    paths = _hook_paths(proj)

    @examples(300)
    @given(_payloads(paths))
    def check(payload: dict[str, Any]) -> None:
        out, err = _run(proj, json.dumps(payload).encode())
        assert err == ""
        reply = kit.check_reply(out) or {}
        text = " ".join(str(v) for v in reply.values())
        assert "internal error" not in text, (payload, reply)

    check()
