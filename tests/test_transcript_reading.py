from __future__ import annotations

import json
import os
from pathlib import Path

from budget_state._accounting import baseline, read_new, subagent_files
from budget_state.ledger._state import Cursor


def user(prompt_id: str, text: str = "hi") -> dict:
    return {"type": "user", "promptId": prompt_id, "message": {"role": "user", "content": text}}


def assistant(
    mid: str,
    rid: str,
    i: int,
    o: int,
    cc: int = 0,
    cr: int = 0,
    *,
    model: str = "claude-x",
    ts: str = "2026-11-25T10:00:00.000Z",
) -> dict:
    return {
        "type": "assistant",
        "requestId": rid,
        "timestamp": ts,
        "message": {
            "id": mid,
            "model": model,
            "usage": {
                "input_tokens": i,
                "output_tokens": o,
                "cache_creation_input_tokens": cc,
                "cache_read_input_tokens": cr,
            },
        },
    }


def write(path: Path, *records: dict, mode: str = "a") -> None:
    with open(path, mode) as f:
        for r in records:
            f.write(json.dumps(r) + "\n")


def totals(entries) -> dict:
    out = {"input": 0, "output": 0, "cache_creation": 0, "cache_read": 0}
    for e in entries:
        for k, v in e.usage.items():
            out[k] += v
    return out


def test_repeated_lines_of_one_response_count_once(tmp_path: Path) -> None:
    t = tmp_path / "s.jsonl"
    write(
        t,
        user("p1"),
        assistant("m1", "r1", 10, 100, 1000, 5000),
        assistant("m1", "r1", 10, 100, 1000, 5000),
        assistant("m1", "r1", 10, 100, 1000, 5000),
    )
    cursor = Cursor()
    result = read_new(t, cursor)
    assert totals(result.entries) == {"input": 10, "output": 100, "cache_creation": 1000, "cache_read": 5000}
    assert [e.prompt for e in result.entries] == ["p1"]
    assert cursor.offset == t.stat().st_size


def test_growing_repeats_count_the_largest_value(tmp_path: Path) -> None:
    t = tmp_path / "s.jsonl"
    write(t, user("p1"), assistant("m1", "r1", 10, 1, 0, 0), assistant("m1", "r1", 10, 700, 0, 0))
    assert totals(read_new(t, Cursor()).entries) == {"input": 10, "output": 700, "cache_creation": 0, "cache_read": 0}


def test_repeat_split_across_two_reads_is_not_counted_twice(tmp_path: Path) -> None:
    t = tmp_path / "s.jsonl"
    write(t, user("p1"), assistant("m1", "r1", 10, 5, 0, 0))
    cursor = Cursor()
    first = read_new(t, cursor)
    write(t, assistant("m1", "r1", 10, 90, 0, 0), assistant("m2", "r2", 3, 4, 0, 0))
    second = read_new(t, cursor)
    assert totals(first.entries + second.entries) == {"input": 13, "output": 94, "cache_creation": 0, "cache_read": 0}


def test_partial_last_line_waits_for_its_end(tmp_path: Path) -> None:
    t = tmp_path / "s.jsonl"
    line = json.dumps(assistant("m1", "r1", 10, 20)) + "\n"
    t.write_text(json.dumps(user("p1")) + "\n" + line[:30])
    cursor = Cursor()
    assert read_new(t, cursor).entries == []
    with open(t, "a") as f:
        f.write(line[30:])
    assert totals(read_new(t, cursor).entries)["output"] == 20
    assert read_new(t, cursor).entries == []


def test_synthetic_error_and_garbage_lines_are_skipped(tmp_path: Path) -> None:
    t = tmp_path / "s.jsonl"
    err = assistant("m9", "r9", 50, 50)
    err["isApiErrorMessage"] = True
    write(t, user("p1"), assistant("m1", "r1", 1, 2, model="<synthetic>"), err)
    with open(t, "a") as f:
        f.write('{"type": "assistant", "message": {"usage": {"input_tokens": 4\n')
        f.write("not json at all\n")
    write(t, assistant("m2", "r2", 7, 8))
    result = read_new(t, Cursor())
    assert totals(result.entries) == {"input": 7, "output": 8, "cache_creation": 0, "cache_read": 0}
    assert result.skipped == 1  # the truncated JSON line that mentions usage


def test_usage_is_charged_to_the_prompt_before_it(tmp_path: Path) -> None:
    t = tmp_path / "s.jsonl"
    write(
        t,
        user("p1"),
        assistant("m1", "r1", 1, 1),
        user("p2"),
        assistant("m2", "r2", 2, 2),
        user("p2", "tool result"),
        assistant("m3", "r3", 3, 3),
    )
    result = read_new(t, Cursor())
    assert [(e.prompt, e.usage["input"]) for e in result.entries] == [("p1", 1), ("p2", 2), ("p2", 3)]


def test_prompt_carries_over_between_reads(tmp_path: Path) -> None:
    t = tmp_path / "s.jsonl"
    write(t, user("p1"))
    cursor = Cursor()
    read_new(t, cursor)
    write(t, assistant("m1", "r1", 1, 1))
    assert [e.prompt for e in read_new(t, cursor).entries] == ["p1"]


def test_replaced_file_counts_only_newer_messages(tmp_path: Path) -> None:
    t = tmp_path / "s.jsonl"
    write(t, user("p1"), assistant("m1", "r1", 1, 1, ts="2026-11-25T10:00:00.000Z"))
    cursor = Cursor()
    read_new(t, cursor)
    replacement = tmp_path / "new.jsonl"
    write(
        replacement,
        user("p1"),
        assistant("m1", "r1", 1, 1, ts="2026-11-25T10:00:00.000Z"),
        assistant("m2", "r2", 5, 5, ts="2026-11-25T10:01:00.000Z"),
    )
    os.replace(replacement, t)
    assert totals(read_new(t, cursor).entries) == {"input": 5, "output": 5, "cache_creation": 0, "cache_read": 0}


def test_shrunk_file_counts_nothing_twice(tmp_path: Path) -> None:
    t = tmp_path / "s.jsonl"
    write(t, user("p1"), assistant("m1", "r1", 1, 1), assistant("m2", "r2", 2, 2, ts="2026-11-25T10:00:05.000Z"))
    cursor = Cursor()
    read_new(t, cursor)
    write(t, user("p1"), assistant("m1", "r1", 1, 1), mode="w")
    assert read_new(t, cursor).entries == []


def test_missing_file_and_directory(tmp_path: Path) -> None:
    assert read_new(tmp_path / "nope.jsonl", Cursor()).entries == []
    d = tmp_path / "dir.jsonl"
    d.mkdir()
    result = read_new(d, Cursor())
    assert result.problem == f"transcript {d} is not a regular file"


def test_baseline_stops_at_last_complete_line(tmp_path: Path) -> None:
    t = tmp_path / "s.jsonl"
    t.write_text('{"a": 1}\n{"b": 2}\n{"c": ')
    cur = baseline(t, Cursor())
    assert cur.offset == len('{"a": 1}\n{"b": 2}\n') and cur.inode == t.stat().st_ino
    none = baseline(tmp_path / "none.jsonl", Cursor())
    assert (none.offset, none.inode) == (0, None)


def test_subagent_files_are_found(tmp_path: Path) -> None:
    t = tmp_path / "abc.jsonl"
    sub = tmp_path / "abc" / "subagents"
    sub.mkdir(parents=True)
    (sub / "agent-1.jsonl").write_text("")
    (sub / "agent-1.meta.json").write_text("{}")
    (sub / "other.jsonl").write_text("")
    assert subagent_files(t) == [sub / "agent-1.jsonl"]
    assert subagent_files(tmp_path / "none.jsonl") == []


def test_lines_without_ids_are_each_counted(tmp_path: Path) -> None:
    t = tmp_path / "s.jsonl"
    a = assistant("", "", 1, 1)
    write(t, a, a)
    assert totals(read_new(t, Cursor()).entries)["input"] == 2
