"""The ledger's TOML a part at a time: byte for byte tomli_w's text, and parsed back as tomllib parses it."""

from __future__ import annotations

import copy
import pickle
import sys
from datetime import datetime, timedelta, timezone
from typing import Any

import tomli_w
from hypothesis import given, settings
from hypothesis import strategies as st

from budget_state import _tomlparts

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

keys = st.text(min_size=1, max_size=8)
scalars = st.one_of(
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.booleans(),
    st.text(max_size=20),
    st.floats(allow_nan=False),
    st.datetimes(
        min_value=datetime(1970, 1, 2), max_value=datetime(2100, 1, 1), timezones=st.sampled_from([timezone.utc])
    ),
)
# Tables of scalars, arrays and tables; a list of tables is an array of tables (or, when each one
# fits on a line, an inline array): every shape the writer cuts differently.
values = st.recursive(
    scalars | st.lists(scalars, max_size=3),
    lambda inner: st.dictionaries(keys, inner, max_size=4) | st.lists(st.dictionaries(keys, inner, max_size=4), max_size=3),
    max_leaves=12,
)
documents = st.dictionaries(keys, values, max_size=6)


def same(got: Any, want: Any) -> bool:
    """Equal, and in the same order (repr shows dict order)."""
    return bool(got == want and repr(got) == repr(want))


def check(doc: dict[str, Any], known: dict[str, str], parsed: dict[str, dict[str, Any]]) -> None:
    parts = _tomlparts.dump(doc, known)
    text = _tomlparts.join(parts)
    assert text == tomli_w.dumps(doc)
    data, _ = _tomlparts.load(parts, pickle.loads(pickle.dumps(parsed)))
    assert same(data, tomllib.loads(text))


@settings(max_examples=300, deadline=None)
@given(documents, documents)
def test_parts_are_tomli_w_text_and_parse_as_tomllib_does(before: dict[str, Any], doc: dict[str, Any]) -> None:
    """With nothing known, and with what an unrelated document left behind (a memo is a pure function)."""
    check(doc, {}, {})
    old = _tomlparts.dump(before, {})
    _, parsed = _tomlparts.load(old, {})
    check(doc, _tomlparts.memo(old), parsed)


def ledger() -> dict[str, Any]:
    """A ledger's shape: totals, per-command tables, runs (an array of tables) and sessions."""
    now = datetime(2026, 12, 3, 9, 0, tzinfo=timezone.utc)
    usage = {"input": 5, "output": 7, "cache_creation": 11, "cache_read": 13, "usd_micros": 17}
    return {
        "schema_version": 2,
        "created": now,
        "overall": {"since": now, **usage, "models": {"claude-opus-5-5": dict(usage)}},
        "commands": {f"/c{i}": {"runs": i, "last_run": now, **usage} for i in range(3)},
        "runs": [
            {"prompt": f"p{i}", "command": "/c1", "session": f"s{i}", "started": now, **usage, "budget": {"tokens": 9}}
            for i in range(4)
        ],
        "sessions": {
            f"s{i}": {"seen": now + timedelta(minutes=i), "peak": [3, 4], "files": {f"/t/{i}.jsonl": {"offset": i}}}
            for i in range(4)
        },
    }


def test_an_event_serialises_and_parses_only_what_it_changed(monkeypatch: Any) -> None:
    state = ledger()
    first = _tomlparts.dump(state, {})
    _, parsed = _tomlparts.load(first, {})

    state = copy.deepcopy(state)  # the next event: one session seen again, one run counted
    state["sessions"]["s2"]["seen"] += timedelta(seconds=5)
    state["runs"][3]["input"] += 100
    state["overall"]["input"] += 100

    dumped: list[Any] = []
    real_dumps = tomli_w.dumps
    monkeypatch.setattr(tomli_w, "dumps", lambda doc, **kw: dumped.append(doc) or real_dumps(doc, **kw))
    parts = _tomlparts.dump(state, _tomlparts.memo(first))
    assert [next(iter(d)) for d in dumped] == ["overall", "runs", "sessions"]  # three parts of 1 + 3 + 4 + 4 + 3
    assert _tomlparts.join(parts) == real_dumps(state)

    parsing: list[str] = []
    real_loads = _tomlparts.loads
    monkeypatch.setattr(_tomlparts, "loads", lambda text: parsing.append(text) or real_loads(text))
    data, _ = _tomlparts.load(parts, pickle.loads(pickle.dumps(parsed)))
    assert len(parsing) == 3 and same(data, tomllib.loads(_tomlparts.join(parts)))


def test_two_parts_of_the_same_text_do_not_share_a_table() -> None:
    """A hand edit can repeat a run: parsed, the two must be two tables, as tomllib makes them."""
    run = {"prompt": "p", "command": "/c", "started": datetime(2026, 1, 1, tzinfo=timezone.utc), "input": 1}
    parts = _tomlparts.dump({"runs": [run, dict(run)]}, {})
    _, parsed = _tomlparts.load(parts, {})
    data, _ = _tomlparts.load(parts, parsed)
    assert data["runs"][0] == data["runs"][1] and data["runs"][0] is not data["runs"][1]


def test_keys_that_run_together_are_still_two_places() -> None:
    """A memo names its place unambiguously: ("a\\0b", "c") is not ("a", "b\\0c")."""
    one = {"a\0b": {"c": {"x": 1}}}
    two = {"a": {"b\0c": {"x": 1}}}
    check(two, _tomlparts.memo(_tomlparts.dump(one, {})), {})
