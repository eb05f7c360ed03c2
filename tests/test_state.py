"""The ledger's typed state (budget_state.ledger._state): read once, checked field by field, written
back as it was read; a field of the wrong kind is named, left out, and the file kept as it was."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

from budget_state._model import Usage
from budget_state.ledger import _records, _runs
from budget_state.ledger._ledger import Ledger, new_state
from budget_state.ledger._state import Cursor, FieldError, LedgerState, Run, Scope, Session

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=timezone.utc)


def _scope() -> Scope:
    s = Scope(since=NOW)
    s.add({"input": 10, "output": 20, "cache_creation": 30, "cache_read": 40, "usd_micros": 50}, "m")
    s.count_run(NOW)
    s.set_warned("tokens", 70)
    s.set_warned("usd/day", 90)
    s.recent = [[1, 2, 3, 4, 5]]
    s.extra["a_note_of_a_newer_version"] = "kept"
    return s


def test_every_class_reads_back_what_it_wrote() -> None:
    run = Run("p1", "/a", "s1")
    run.started = NOW
    run.add({"input": 5, "usd_micros": 7}, "m")
    run.set_budget({"tokens": 100, "window": "1h", "quota_5h": 2.5, "usd_micros": None})
    run.add_share("quota_5h", 1.25)
    session = Session(seen=NOW)
    cursor = session.files["/t.jsonl"] = Cursor(10)
    cursor.inode, cursor.prompt, cursor.last_ts = 3, "p1", "2026-12-07T12:00:00.000Z"
    cursor.recent = {"msg_1|req_1": [1, 2, 3, 4], "msg_2|req_2": [1, 2, 3, 4, 5]}  # before dollars, and after
    cursor.replay, cursor.after, cursor.inherited, cursor.skipped = "toolu_1", "2026-12-07T11:59:00Z", True, 2
    session.mark_handled("p1", typed=True)
    session.add_counted({"input": 5}, "m")
    session.note_peak({"input": 5, "usd_micros": 7})
    session.mod_seq = ("mod-1", 4)
    session.unlogged, session.reconciled_runs = [0, 0, 0, 0, 3], ["p1"]
    session.hold("p1", [0, 0, 0, 0, 1])  # the run holds part of what reconciling added
    assert session.run_extra == [0, 0, 0, 0, 1] and session.run_share("p1") == [0, 0, 0, 0, 1]
    for value, kind in ((_scope(), Scope), (run, Run), (session, Session), (cursor, Cursor)):
        text = json.dumps(value.dump(), default=datetime.isoformat)  # as a part file holds it
        problems: list[FieldError] = []
        again = kind.load(json.loads(text), "x", problems)  # type: ignore[attr-defined]
        assert problems == []
        assert again.dump() == value.dump()


def test_a_field_of_the_wrong_kind_is_named_and_left_out_the_rest_is_kept() -> None:
    problems: list[FieldError] = []
    table = {"input": "12", "output": 7, "runs": -1, "since": "yesterday", "models": {"m": {"input": 3}}}
    s = Scope.load(table, "commands/%2Fa.json", problems)
    assert (s.input, s.output, s.runs, s.since, s.models) == (0, 7, 0, None, {"m": {"input": 3}})
    assert [str(p) for p in problems] == [
        "commands/%2Fa.json.input is the text '12', expected a count (a whole number from 0)",
        "commands/%2Fa.json.runs is -1, expected a count (a whole number from 0)",
        "commands/%2Fa.json.since is the text 'yesterday', expected a time with its zone (ISO 8601)",
    ]


RESETS = 1_900_000_000  # a plan window's reset, epoch seconds


def test_a_scopes_share_of_the_plan_reads_back_what_it_wrote() -> None:
    s = Scope()
    s.plan.charge("seven_day", RESETS + 86400, 1.25)
    s.plan.charge("five_hour", RESETS, 2.0)
    s.plan.charge("five_hour", RESETS, 0.5)
    for n in range(3):
        s.plan.note_run(f"p{n}", n + 0.5, keep=2)
    s.plan.note_run("p1", 4.0, keep=2)  # the newest again
    s.plan.charge_unattributed("five_hour", 3.0)
    table = s.dump()
    assert {k: table[k] for k in ("quota", "quota_runs", "quota_unattributed")} == {
        "quota": {"seven_day": [RESETS + 86400, 1.25], "five_hour": [RESETS, 2.5]},
        "quota_runs": {"p2": 2.5, "p1": 4.0},
        "quota_unattributed": {"five_hour": 3.0},
    }
    text = json.dumps(table, default=datetime.isoformat)  # as a part file holds it
    problems: list[FieldError] = []
    again = Scope.load(json.loads(text), "x", problems)
    assert problems == [] and json.dumps(again.dump(), default=datetime.isoformat) == text
    assert (again.plan.charged, again.plan.runs, again.plan.unattributed) == (
        {"seven_day": (RESETS + 86400, 1.25), "five_hour": (RESETS, 2.5)},
        {"p2": 2.5, "p1": 4.0},
        {"five_hour": 3.0},
    )
    again.plan.charge("five_hour", RESETS + 5 * 3600, 1.0)  # the window reset: its share starts again
    assert again.plan.charged["five_hour"] == (RESETS + 5 * 3600, 1.0)
    assert Scope().dump() == {}  # nothing charged: none of its fields


def test_a_wrong_entry_of_the_plans_share_is_named_and_left_out_the_rest_is_kept(tmp_path: Path) -> None:
    problems: list[FieldError] = []
    table = {
        "input": 5,
        "quota": {"five_hour": [RESETS, "lots"], "seven_day": [RESETS + 86400, 2.0]},
        "quota_runs": {"p1": -1, "p2": 0.5},
        "quota_unattributed": "none",
    }
    s = Scope.load(table, "commands/%2Fx.json", problems)
    assert (s.input, s.plan.charged, s.plan.runs, s.plan.unattributed) == (
        5,
        {"seven_day": (RESETS + 86400, 2.0)},
        {"p2": 0.5},
        {},
    )
    assert [str(p) for p in problems] == [
        "commands/%2Fx.json.quota.five_hour is a list, expected [a reset in epoch seconds, a percent from 0 to 1000]",
        "commands/%2Fx.json.quota_runs.p1 is -1, expected a percent",
        "commands/%2Fx.json.quota_unattributed is the text 'none', expected a table",
    ]
    # In a ledger: told, the part as it was kept beside, the rest of the field kept.
    path = tmp_path / "budget-ledger.toml"
    with Ledger(path).transaction() as state:
        _runs.record(state, Usage(input=100), command="/x", model="m", session=None, prompt="p1", now=NOW)
        _runs.charge_plan(state, "/x", "five_hour", RESETS, 1.5)
        _runs.charge_plan(state, "/x", "seven_day", RESETS + 86400, 0.5)
    part = tmp_path / "budget-ledger.d" / "commands" / "%2Fx.json"
    part.write_text(part.read_text().replace(f"[{RESETS}, 1.5]", f'[{RESETS}, "1.5"]'))
    ledger = Ledger(path)
    with ledger.transaction() as state:
        assert _records.plan_share(state, "/x").charged == {"seven_day": (RESETS + 86400, 0.5)}
        _runs.charge_plan(state, "/x", "five_hour", RESETS, 0.25)
    assert ledger.recovered is not None
    assert "commands/%2Fx.json.quota.five_hour is a list" in str(ledger.recovered)
    kept = ledger.recovered.moved_to
    assert kept is not None and '"1.5"' in kept.read_text()
    assert json.loads(part.read_text())["quota"] == {"seven_day": [RESETS + 86400, 0.5], "five_hour": [RESETS, 0.25]}


def test_a_run_without_its_prompt_is_no_run_and_the_others_are_read() -> None:
    problems: list[FieldError] = []
    doc = {"schema_version": 3, "runs": [{"command": "/a"}, {"prompt": "p2", "command": "/b", "input": 4}]}
    state = LedgerState.load(doc, problems)
    assert [(r.prompt, r.command, r.input) for r in state.runs] == [("p2", "/b", 4)]
    assert [p.where for p in problems] == ["runs[0].prompt"]


def test_a_hand_edited_field_is_told_once_kept_beside_and_gone_at_the_next_write(tmp_path: Path) -> None:
    path = tmp_path / "budget-ledger.toml"
    ledger = Ledger(path)
    with ledger.transaction() as state:
        _runs.record(state, Usage(input=100), command="/a", model="m", session=None, prompt="p1", now=NOW)
    text = path.read_text().replace("input = 100", 'input = "a hundred"', 1)
    path.write_text(text)
    assert _records.scope(Ledger(path).read(), "overall").usage.input == 0  # a reader: read as empty, nothing written
    assert path.read_text() == text

    ledger = Ledger(path)
    with ledger.transaction() as state:
        assert state.overall.input == 0
        assert _records.scope(state, "/a").usage.input == 100  # the command's part is another file: whole
    assert ledger.recovered is not None
    assert "overall.input is the text 'a hundred', expected a count" in str(ledger.recovered)
    kept = ledger.recovered.moved_to
    assert kept is not None and kept.read_text() == text  # the file as it was
    assert '"a hundred"' not in path.read_text()

    ledger = Ledger(path)
    with ledger.transaction():
        pass
    assert ledger.recovered is None  # told once


def test_a_part_with_a_bad_field_is_copied_aside_and_its_other_fields_kept(tmp_path: Path) -> None:
    path = tmp_path / "budget-ledger.toml"
    with Ledger(path).transaction() as state:
        _runs.record(state, Usage(input=100), command="/a", model="m", session=None, prompt="p1", now=NOW)
    part = tmp_path / "budget-ledger.d" / "commands" / "%2Fa.json"
    table = json.loads(part.read_text())
    table["runs"] = "three"
    part.write_text(json.dumps(table))
    ledger = Ledger(path)
    with ledger.transaction() as state:
        assert _records.scope(state, "/a").usage.input == 100
        _runs.record(state, Usage(input=1), command="/a", model="m", session=None, prompt="p2", now=NOW)
    assert ledger.recovered is not None and "runs is the text 'three'" in str(ledger.recovered)
    assert (
        ledger.recovered.moved_to is not None and json.loads(ledger.recovered.moved_to.read_text())["runs"] == "three"
    )
    got = _records.scope(Ledger(path).read(), "/a")
    assert (got.usage.input, got.runs) == (101, 1)


def test_a_new_state_is_a_schema_3_ledger_with_nothing_in_it() -> None:
    state = new_state(NOW)
    assert (state.version, state.created, state.overall.since, state.runs) == (3, NOW, NOW, [])
    assert state.dump() == {"schema_version": 3, "created": NOW, "overall": {"since": NOW}, "runs": []}


def test_ending_and_counting_are_methods_of_the_values() -> None:
    run = Run("p1", "/a")
    run.end(NOW)
    run.end(NOW + timedelta(minutes=5))  # ended once
    assert run.ended == NOW and not run.open
    scope = Scope()
    scope.count_run(NOW)
    scope.count_run(NOW + timedelta(minutes=1))
    assert (scope.runs, scope.since, scope.last_run) == (2, NOW, NOW + timedelta(minutes=1))
    scope.add({"input": 5})
    scope.add({"input": -9}, correction=True)
    assert scope.input == 0  # a correction never takes a total below 0


def test_every_charge_says_when_its_scopes_last_spent_even_a_new_commands() -> None:
    state = new_state(NOW)
    _runs.record(state, Usage(input=5), command="/new", model="m", session=None, prompt="p1", now=NOW)
    assert _records.scope(state, "/new").spent_at == NOW and _records.scope(state, "overall").spent_at == NOW
    earlier = NOW - timedelta(hours=2)  # a late record of an older run: spent_at never moves back
    _runs.record(state, Usage(input=5), command="/new", model="m", session=None, prompt="p0", now=earlier)
    assert _records.scope(state, "/new").spent_at == NOW


def test_a_cursor_keeps_what_it_can_and_never_loses_where_it_stands() -> None:
    """A session file's read cursor, hand-edited: a broken response key is named and left out (that
    one response could be counted again); a broken offset or inode cannot be left out — the file
    would be read again from its start — so the session's cursors go whole, and its next hook starts
    at each file's end, as for a session seen for the first time."""
    good = {"offset": 40, "inode": 7, "recent": ["a|r 1 2 3 4 5", "b|r 1 x 3 4 5", "c|r 1 2"]}
    problems: list[FieldError] = []
    session = Session.load({"files": {"/t.jsonl": good}}, "sessions/s.json", problems)
    cursor = session.files["/t.jsonl"]
    assert (cursor.offset, cursor.inode, cursor.recent) == (40, 7, {"a|r": [1, 2, 3, 4, 5]})
    assert [p.where for p in problems] == [
        "sessions/s.json.files./t.jsonl.recent[1]",
        "sessions/s.json.files./t.jsonl.recent[2]",
    ]
    for broken in ({"offset": "40"}, {"offset": 40, "inode": -1}, {"offset": 40, "inode": True}):
        problems = []
        session = Session.load({"files": {"/t.jsonl": good, "/u.jsonl": broken}}, "sessions/s.json", problems)
        assert session.files == {}
        assert [p.where for p in problems] in (
            ["sessions/s.json.files./u.jsonl.offset"],
            ["sessions/s.json.files./u.jsonl.inode"],
        )
    big = Cursor.load({"offset": 1, "inode": 2**64 - 1}, "c", problems := [])  # a file system's own number
    assert big.inode == 2**64 - 1 and problems == []
