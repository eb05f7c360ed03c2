"""Team budgets: settings and lease arithmetic (unit), then against a real PostgreSQL (``pg_server``):
the atomic grant, idempotent settles, the sweeper, windows, hooks of several machines at once, faults."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from budget_state._errors import ConfigError
from budget_state._model import Window
from budget_state.budgets._config import load_config
from budget_state.ledger import _runs
from budget_state.ledger._ledger import new_state
from budget_state.team import local
from budget_state.team.windows import parse_window

# --- settings and pure arithmetic ------------------------------------------------------------


def _cfg(tmp_path: Path, text: str, env: dict[str, str] | None = None) -> Any:
    (tmp_path / ".claude").mkdir(exist_ok=True)
    (tmp_path / ".claude" / "budget.toml").write_text(text)
    return load_config(tmp_path, env or {})


def test_team_keys_come_from_the_file_and_the_environment(tmp_path: Path) -> None:
    config = _cfg(tmp_path, 'team_url = "postgresql://cb@db:5432/b"\nteam = "platform"\n')
    assert (config.team_url, config.team, config.on_team_unreachable, config.warnings) == (
        "postgresql://cb@db:5432/b",
        "platform",
        "use-lease-then-warn",
        (),
    )
    env = {"CLAUDE_BUDGET_TEAM_URL": "postgresql://cb:secret@db/b", "CLAUDE_BUDGET_ON_TEAM_UNREACHABLE": "block"}
    config = _cfg(tmp_path, 'team = "platform"\n', env)
    assert (config.team_url, config.on_team_unreachable) == ("postgresql://cb:secret@db/b", "block")


@pytest.mark.parametrize(
    "text, message",
    [
        (
            'team_url = "postgresql://cb:hunter2@db/b"\n',
            "team_url in .claude/budget.toml holds a password, and that file may be committed — remove it from the "
            "URL and give it in PGPASSWORD or ~/.pgpass (or put the whole URL in CLAUDE_BUDGET_TEAM_URL)",
        ),
        (
            'team_url = "postgresql://db/b?password=x"\n',
            "team_url in .claude/budget.toml holds a password, and that file may be committed — remove it from the "
            "URL and give it in PGPASSWORD or ~/.pgpass (or put the whole URL in CLAUDE_BUDGET_TEAM_URL)",
        ),
        (
            'team_url = "mysql://db/b"\n',
            "team_url in .claude/budget.toml is not a postgresql:// URL — write e.g. team_url = "
            '"postgresql://claude_budget@db.example.com:5432/budgets"',
        ),
        (
            'on_team_unreachable = "panic"\n',
            'on_team_unreachable "panic" in .claude/budget.toml is not a choice — use use-lease-then-warn or block',
        ),
    ],
    ids=["password", "password-param", "scheme", "unreachable-choice"],
)
def test_bad_team_settings_say_what_and_how_to_fix(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError) as e:
        _cfg(tmp_path, text)
    assert str(e.value) == message


def test_windows_read_as_local_ones() -> None:
    assert parse_window("day") == Window("calendar", unit="day")
    assert parse_window("5h") == Window("rolling", minutes=300)
    assert parse_window("90m").label == "90m"
    assert parse_window("total") is None
    with pytest.raises(ValueError, match="is not a window"):
        parse_window("fortnight")


def _budget(**kw: Any) -> local.Lease:
    b = {"scope": "overall", "metric": "tokens", "limit": 10_000, "granted": 0, "used": 0, "settled": 0, "seen": 0}
    b.update(kw)
    return local.Lease.load(b)


def test_charge_takes_what_the_scope_gained_and_a_local_reset_refunds_nothing() -> None:
    now = datetime(2026, 1, 1, tzinfo=timezone.utc)
    state = new_state(now)
    state.overall.add({"input": 700, "output": 300, "usd_micros": 5})
    t = local.table(state, "k")
    t.budgets = {"1": _budget(seen=400), "2": _budget(metric="usd", seen=0), "3": _budget(counted=["output"])}
    local.charge(t, state, now)
    assert [t.budgets[k].used for k in "123"] == [600, 5, 300]
    _runs.reset(state, "overall", now=now)  # claude-budget reset
    state.overall.add({"input": 10})
    local.charge(t, state, now)
    assert t.budgets["1"].used == 600 and t.budgets["1"].seen == 10
    state.overall.add({"input": 20})  # overall is at 30
    local.charge(t, state, now)
    assert t.budgets["1"].used == 620


def test_a_top_up_keeps_its_number_until_answered_and_is_sized_from_the_burn_rate() -> None:
    t = local.table(new_state(datetime(2026, 1, 1, tzinfo=timezone.utc)), "k")
    t.budgets = {"1": _budget(lease="L", granted=100, used=100)}
    first = local.requests(t, release=False)
    again = local.requests(t, release=False)  # the answer was lost: the same request, never a second grant
    assert first == again == [{"budget": 1, "lease": "L", "used": 100, "seq": 1, "want": 200}]
    b = _budget(rate=10_000.0)
    assert b.chunk() == 2_000  # 2 minutes at the rate, capped at a fifth of the limit
    assert _budget(rate=300.0).chunk() == 600
    assert _budget().chunk() == 200  # at least a fiftieth


def test_a_team_table_reads_back_what_it_wrote_and_a_hand_edit_reads_as_empty() -> None:
    now = datetime(2026, 1, 1, tzinfo=timezone.utc)
    t = local.Team("team@db", "holder-1")
    t.budgets = {"1": _budget(lease="L", granted=100, used=40, window=["rolling", 60, "m"], valid_until=now)}
    t.closing = {"old": (1, 7)}
    t.synced = now
    again = local.Team.load(t.dump())
    assert again is not None and again.dump() == t.dump()
    broken = local.Team.load({"key": "k", "budgets": {"1": {"used": "lots", "lease": "L"}, "2": 3}, "outages": -1})
    assert broken is not None and list(broken.budgets) == ["1"]
    assert (broken.budgets["1"].used, broken.budgets["1"].lease, broken.outages) == (0, "L", 0)


def test_importing_the_hook_without_a_team_loads_no_database_client(tmp_path: Path) -> None:
    (tmp_path / ".claude").mkdir()
    code = (
        "import io, sys, json; from budget_state import hook; "
        "out = io.StringIO(); "
        "payload = json.dumps({'session_id': 's', 'hook_event_name': 'UserPromptSubmit', 'prompt': 'hi', "
        f"'cwd': {str(tmp_path)!r}}}).encode(); "
        f"hook.main([], stdin=io.BytesIO(payload), stdout=out, env={{'CLAUDE_PROJECT_DIR': {str(tmp_path)!r}, "
        f"'HOME': {str(tmp_path)!r}}}); "
        "print(sorted(m for m in sys.modules if m.startswith(('psycopg', 'budget_state.team'))))"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert proc.stdout.strip() == "[]", proc.stdout + proc.stderr


# --- against a real PostgreSQL ----------------------------------------------------------------

psycopg = pytest.importorskip("psycopg")
from team_kit import Machine, counters, new_team, server_url  # noqa: E402

from budget_state.team import db  # noqa: E402


@pytest.fixture(scope="module")
def url(pg_server: object) -> str:
    u = server_url(pg_server)
    with db.session(u) as conn:
        db.migrate(conn)
    return u


def _budget_id(url: str, team: str, scope: str = "overall", *, limit: int, window: tuple = ("total", 0, "")) -> int:
    with db.session(url) as conn:
        return db.set_budget(
            conn,
            team=team,
            scope=scope,
            metric="tokens",
            window=window,
            tz="UTC",
            limit=limit,
            counted="input,output,cache_creation,cache_read",
        )


def _sync(url: str, team: str, items: list[dict[str, Any]], holder: str = "h", ttl: int = 600) -> dict[str, Any]:
    with db.session(url) as conn:
        return db.sync(conn, team=team, holder=holder, items=items, ttl=ttl)


def test_migrating_twice_is_a_no_op_and_a_newer_schema_is_refused(url: str) -> None:
    with db.session(url) as conn:
        assert db.migrate(conn) == (1, 1)
        conn.execute("INSERT INTO claude_budget_schema (version, name) VALUES (99, 'future')")
        try:
            with pytest.raises(db.SchemaMismatch, match="newer than this claude-budget's 1 — upgrade"):
                db.require_schema(conn)
        finally:
            conn.execute("DELETE FROM claude_budget_schema WHERE version = 99")


def test_400_concurrent_grants_of_10_against_1000_admit_exactly_100(url: str) -> None:
    """The measurement of the reference (§3.2), through our grant: one conditional UPDATE each."""
    team = new_team()
    bid = _budget_id(url, team, limit=1000)
    granted: list[int] = []
    lock = threading.Lock()

    def client(n: int) -> None:
        for _ in range(n):
            lease = str(uuid.uuid4())
            got = _sync(url, team, [{"budget": bid, "lease": lease, "used": 0, "seq": 1, "want": 10}])
            with lock:
                granted.append(got["leases"][lease]["granted"])

    threads = [threading.Thread(target=client, args=(400 // 32 + (1 if i < 400 % 32 else 0),)) for i in range(32)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert len(granted) == 400
    assert sorted(set(granted)) == [0, 10] and granted.count(10) == 100
    [row] = counters(url, team)
    assert (row["spent"], row["leased"], row["held"]) == (0, 1000, 1000)


def test_a_retried_settle_or_top_up_counts_once(url: str) -> None:
    team = new_team()
    bid = _budget_id(url, team, limit=10_000)
    lease = str(uuid.uuid4())
    ask = {"budget": bid, "lease": lease, "used": 0, "seq": 1, "want": 1000}
    assert _sync(url, team, [ask])["leases"][lease]["granted"] == 1000
    assert _sync(url, team, [ask])["leases"][lease]["granted"] == 1000  # the same request again: nothing more
    for used in (300, 300, 200, 700):  # retried, then an older (reordered) one, then more
        _sync(url, team, [{"budget": bid, "lease": lease, "used": used}])
    [row] = counters(url, team)
    assert (row["spent"], row["leased"], row["held"]) == (700, 300, 300)
    _sync(url, team, [{"budget": bid, "lease": lease, "used": 1200}])  # past the lease: spent all the same
    [row] = counters(url, team)
    assert (row["spent"], row["leased"], row["held"]) == (1200, 0, 0)
    got = _sync(url, team, [{"budget": bid, "lease": lease, "used": 1200, "close": True}])
    assert got["leases"][lease]["state"] == "closed"
    _sync(url, team, [{"budget": bid, "lease": lease, "used": 1250}])  # a late settle of a closed lease counts
    [row] = counters(url, team)
    assert (row["spent"], row["leased"]) == (1250, 0)


def test_the_sweeper_returns_expired_leases_and_their_late_spend_still_counts(url: str) -> None:
    team = new_team()
    bid = _budget_id(url, team, limit=1000)
    dead = str(uuid.uuid4())
    _sync(url, team, [{"budget": bid, "lease": dead, "used": 0, "seq": 1, "want": 600}], holder="dead", ttl=0)
    _sync(url, team, [{"budget": bid, "lease": dead, "used": 100}], holder="dead", ttl=0)
    [row] = counters(url, team)
    assert (row["spent"], row["leased"]) == (100, 500)
    time.sleep(0.01)
    with db.session(url) as conn:
        assert db.sweep(conn, team=team) == 1
        assert db.sweep(conn, team=team) == 0
    [row] = counters(url, team)
    assert (row["spent"], row["leased"], row["held"]) == (100, 0, 0)
    got = _sync(url, team, [{"budget": bid, "lease": dead, "used": 150}], holder="dead")  # it comes back
    assert got["leases"][dead]["state"] == "expired"
    [row] = counters(url, team)
    assert (row["spent"], row["leased"], row["held"]) == (150, 0, 0)


def test_a_top_up_sweeps_first_so_a_dead_machines_lease_is_not_in_its_way(url: str) -> None:
    team = new_team()
    bid = _budget_id(url, team, limit=1000)
    dead, alive = str(uuid.uuid4()), str(uuid.uuid4())
    _sync(url, team, [{"budget": bid, "lease": dead, "used": 0, "seq": 1, "want": 900}], holder="dead", ttl=0)
    time.sleep(0.01)
    got = _sync(url, team, [{"budget": bid, "lease": alive, "used": 0, "seq": 1, "want": 1000}])
    assert got["leases"][alive]["granted"] == 1000
    [row] = counters(url, team)
    assert (row["leased"], row["held"]) == (1000, 1000)


def test_calendar_windows_are_counted_per_period_in_their_time_zone_and_rolling_ones_per_minute(url: str) -> None:
    team = new_team()
    day = _budget_id(url, team, limit=1000, window=("calendar", 0, "day"))
    with db.session(url) as conn:
        conn.execute("UPDATE claude_budget_budget SET tz = 'Pacific/Kiritimati' WHERE id = %s", (day,))
    roll = _budget_id(url, team, limit=1000, window=("rolling", 60, ""))
    a, b = str(uuid.uuid4()), str(uuid.uuid4())
    got = _sync(
        url,
        team,
        [
            {"budget": day, "lease": a, "used": 0, "seq": 1, "want": 400},
            {"budget": roll, "lease": b, "used": 0, "seq": 1, "want": 400},
        ],
    )
    rows = {r["id"]: r for r in got["budgets"]}
    start, end = rows[day]["period"], rows[day]["period_end"]
    assert end - start == timedelta(days=1)
    assert start.astimezone(timezone(timedelta(hours=14))).hour == 0  # midnight in UTC+14
    _sync(url, team, [{"budget": roll, "lease": b, "used": 250}])
    with db.session(url) as conn:
        conn.execute(
            "UPDATE claude_budget_bucket SET minute = minute - interval '61 minutes' WHERE budget_id = %s", (roll,)
        )
        [status] = [s for s in db.status(conn, team) if s["id"] == roll]
    assert (status["used"], status["leased"]) == (0, 150)  # the minute left the window; the lease still holds
    got = _sync(url, team, [{"budget": roll, "lease": b, "used": 250, "seq": 2, "want": 900}])
    assert got["leases"][b]["granted"] == 250 + 150 + 850  # (everything is out of the window) 1000 - 150 held


def test_the_machines_role_needs_only_the_documented_grants(url: str, pg_server: object) -> None:
    team = new_team()
    bid = _budget_id(url, team, limit=1000)
    role = f"cb_{uuid.uuid4().hex[:8]}"
    grants = (Path(__file__).parents[1] / "docs" / "team.md").read_text()
    block = grants.split("<!-- grants -->")[1].split("```sql")[1].split("```")[0].replace("claude_budget;", f"{role};")
    with db.session(url) as conn:
        conn.execute(f"CREATE ROLE {role} LOGIN")
        for statement in filter(str.strip, block.split(";")):
            conn.execute(statement)
    limited = url.replace("postgres@", f"{role}@", 1)
    lease = str(uuid.uuid4())
    got = _sync(limited, team, [{"budget": bid, "lease": lease, "used": 0, "seq": 1, "want": 100}])
    assert got["leases"][lease]["granted"] == 100
    with db.session(limited) as conn:
        assert db.sweep(conn, team=team) == 0
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("CREATE TABLE claude_budget_x (a int)")


def _per_machine(url: str, machines: list[Machine]) -> list[Any]:
    """For a failure message: each machine's local total, what its ledger charged, what the database has."""
    out = []
    with psycopg.connect(url, autocommit=True) as conn:
        for m in machines:
            t = m.team_table()
            held = conn.execute(
                "SELECT coalesce(sum(spent), 0) FROM claude_budget_lease WHERE holder LIKE %s",
                (f"%/{t['holder'][:8]}",),
            ).fetchone()
            out.append(
                (
                    m.local_total(),
                    {k: (b.get("used"), b.get("settled"), b.get("seen")) for k, b in t["budgets"].items()},
                    t.get("closing"),
                    held,
                    t.get("outages"),
                )
            )
    return out


def _flush(m: Machine) -> None:
    proc = m.cli("team", "sync", "--release")
    assert proc.returncode == 0, proc.stderr


def test_eight_machines_hammering_one_budget_stay_within_the_bound_and_add_up(url: str, tmp_path: Path) -> None:
    """Six machines through real hook processes, two through the API; block mode."""
    from budget_state import may_start, record_usage

    team, turn, limit = new_team(), 1000, 24_000
    # block: a machine that cannot reach the database in time (a loaded CI machine) refuses rather
    # than goes on past its lease, so the bound holds whatever the load (the default policy warns).
    extra = 'on_team_unreachable = "block"\n'
    machines = [Machine(tmp_path / f"m{i}", url, team, extra=extra) for i in range(8)]
    assert machines[0].cli("team", "set", "overall", "--tokens", str(limit)).returncode == 0
    spent = [0] * 8

    def spent_twice(m: Machine) -> bool:
        return sum("Team budget spent" in r for r in m.refused) >= 2

    def hooks(i: int) -> None:
        m = machines[i]
        while not spent_twice(m):
            if m.turn(turn):
                spent[i] += turn
        m.end()

    def api(i: int) -> None:
        m = machines[i]
        while not spent_twice(m):
            decision = may_start(None, project=m.root, env=m.env)
            if not decision.allowed:
                m.refused.append(str(decision.reason))
                continue
            record_usage({"input": turn}, project=m.root, env=m.env)
            spent[i] += turn

    threads = [threading.Thread(target=hooks if i < 6 else api, args=(i,)) for i in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    for m in machines:
        _flush(m)
    [row] = counters(url, team)
    outages = [int(m.team_table().get("outages", 0)) for m in machines]
    locals_ = [m.local_total() for m in machines]
    assert locals_ == spent
    assert row["spent"] == sum(spent) == row["lease_spent"]  # nothing lost, nothing counted twice
    assert limit <= row["spent"] <= limit + 8 * turn  # the bound: one turn per holder past its lease
    assert row["leased"] == row["held"]
    assert all("Team budget spent" in r or "on_team_unreachable is block" in r for m in machines for r in m.refused)
    print(
        f"\nteam overshoot: {row['spent'] - limit} tokens over {limit} with 8 machines (bound {8 * turn}); "
        f"outages seen: {outages}"
    )


def _blackhole() -> tuple[socket.socket, str]:
    """A server that accepts connections and never answers: the hook must not wait on it."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(64)
    return s, f"postgresql://x@127.0.0.1:{s.getsockname()[1]}/x"


@pytest.mark.parametrize("policy", ["use-lease-then-warn", "block"])
def test_a_database_that_never_answers_costs_a_hook_half_a_second_then_the_policy_decides(
    tmp_path: Path, policy: str
) -> None:
    sock, dead = _blackhole()
    try:
        m = Machine(tmp_path, dead, "t", extra=f'on_team_unreachable = "{policy}"\n', timeout=0.5)
        allowed = m.turn(100, stop=False)
        # The wait itself, without the process start and imports a loaded machine makes noisy:
        from budget_state._api import Context
        from budget_state.ledger._ledger import utcnow
        from budget_state.team import hook as team_hook

        ctx = Context.load(m.root, env=m.env)
        state = new_state(utcnow())
        started = time.monotonic()
        notes = team_hook.sync(ctx, state, utcnow())
        first = time.monotonic() - started
        started = time.monotonic()
        team_hook.sync(ctx, state, utcnow())
        second = time.monotonic() - started  # within the retry pause: no wait at all
    finally:
        sock.close()
    assert allowed is (policy == "use-lease-then-warn")
    assert "did not answer within 0.5 s" in notes[0]
    assert 0.5 <= first < 0.5 + 0.2 and second < 0.01, (first, second)
    status = json.loads(m.cli("status", "--json").stdout)
    assert status["team"]["unreachable_since"] is not None
    if policy == "block":
        assert "on_team_unreachable is block" in m.refused[0]
    else:
        assert "the team database is unreachable" in m.notes[0]


def test_faults_restart_killed_connections_outage_and_a_dead_machine_leave_the_total_exact(
    pg_server: object, url: str, tmp_path: Path
) -> None:
    if isinstance(pg_server, str):
        pytest.skip("CLAUDE_BUDGET_TEST_PG: the server is not ours to restart")
    team, turn = new_team(), 500
    machines = [Machine(tmp_path / f"m{i}", url, team) for i in range(4)]
    # small chunks (1/50 of the limit is 4 turns): machines go to the database every few turns
    assert machines[0].cli("team", "set", "overall", "--tokens", "100K").returncode == 0
    done = threading.Event()
    errors: list[BaseException] = []

    def run(m: Machine) -> None:
        try:
            while not done.is_set():
                m.turn(turn)
        except BaseException as e:  # noqa: BLE001 (reported by the main thread)
            errors.append(e)

    def killer() -> None:
        with psycopg.connect(url, autocommit=True) as conn:
            for _ in range(30):
                conn.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE application_name = 'claude-budget' AND pid <> pg_backend_pid()"
                )
                time.sleep(0.05)

    threads = [threading.Thread(target=run, args=(m,)) for m in machines]
    for th in threads:
        th.start()
    time.sleep(2)
    pg_server.restart()  # type: ignore[attr-defined]
    time.sleep(1.5)
    killer()
    pg_server.stop()  # type: ignore[attr-defined]
    time.sleep(2.5)  # unreachable: the machines go on on their leases, then warn
    pg_server.start()  # type: ignore[attr-defined]
    time.sleep(1.5)
    # A machine dies holding a lease: it took one, spent, and its Stop hook never ran.
    dead = Machine(tmp_path / "dead", url, team)
    assert dead.turn(turn, stop=False)
    done.set()
    for th in threads:
        th.join()
    assert not errors, errors
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "UPDATE claude_budget_lease SET expires_at = now() - interval '1 second' "
            "WHERE holder LIKE %s AND state = 'active'",
            (f"%/{dead.team_table()['holder'][:8]}",),
        )
    assert "returned 1 expired lease" in machines[0].cli("team", "status").stdout
    [row] = counters(url, team)
    assert row["leased"] == row["held"]
    for m in machines:
        m.end()
        _flush(m)
    dead.hook("Stop", background=True, prompt_id="late")  # it comes back: its spend is settled all the same
    _flush(dead)
    [row] = counters(url, team)
    total = sum(m.local_total() for m in [*machines, dead])
    assert row["spent"] == total == row["lease_spent"], (row, total, _per_machine(url, [*machines, dead]))
    assert (row["leased"], row["held"]) == (0, 0)
    assert any("unreachable" in n for m in machines for n in m.notes)
    print(f"\nfaults: {total} tokens settled exactly across 5 machines")


def test_a_machine_that_starts_during_an_outage_has_its_spending_counted_when_the_database_is_back(
    pg_server: object, url: str, tmp_path: Path
) -> None:
    if isinstance(pg_server, str):
        pytest.skip("CLAUDE_BUDGET_TEST_PG: the server is not ours to stop")
    team = new_team()
    m = Machine(tmp_path, url, team)
    assert m.cli("team", "set", "overall", "--tokens", "100K").returncode == 0
    pg_server.stop()  # type: ignore[attr-defined]
    try:
        assert m.turn(700) and m.turn(800)  # use-lease-then-warn: goes on, with a warning
    finally:
        pg_server.start()  # type: ignore[attr-defined]
    assert "the team database is unreachable" in m.notes[0]
    _flush(m)
    [row] = counters(url, team)
    assert row["spent"] == m.local_total() == 1500


def test_warn_mode_says_once_per_lease_that_the_team_budget_is_spent_and_goes_on(url: str, tmp_path: Path) -> None:
    team = new_team()
    m = Machine(tmp_path, url, team, mode="warn")
    assert m.cli("team", "set", "overall", "--tokens", "1000").returncode == 0
    assert all(m.turn(600) for _ in range(4))
    spent = [n for n in m.notes if "Team budget spent" in n]
    assert len(spent) == 1 and spent[0].endswith("(warn mode: going on)"), m.notes


def test_the_documented_example_of_team_status_json_has_the_keys_it_prints(url: str, tmp_path: Path) -> None:
    import re

    team = new_team()
    m = Machine(tmp_path, url, team)
    assert m.cli("team", "set", "overall", "--usd", "300", "--per", "day", "--tz", "Europe/Paris").returncode == 0
    assert m.turn(100)
    real = json.loads(m.cli("team", "status", "--json").stdout)
    doc = (Path(__file__).parents[1] / "docs" / "team.md").read_text()
    section = doc[doc.index("## `team status --json`") :]
    example = json.loads(re.search(r"```json\n(.*?)```", section, re.DOTALL).group(1))  # type: ignore[union-attr]

    def keys(d: dict[str, Any]) -> list[Any]:
        return sorted(
            (k, keys(v) if isinstance(v, dict) else type(v).__name__ if v is not None else None) for k, v in d.items()
        )

    assert keys(example["budgets"][0]) == keys(real["budgets"][0])
    assert keys(example["machine"]["budgets"][0]) == keys(real["machine"]["budgets"][0])
    assert sorted(example) == sorted(real) and sorted(example["machine"]) == sorted(real["machine"])
    assert real["budgets"][0]["holders"][0]["held"] > 0


def test_kill_mode_stops_a_running_turn_once_the_team_has_nothing_left_to_lease(url: str, tmp_path: Path) -> None:
    team = new_team()
    m = Machine(tmp_path, url, team, mode="kill")
    assert m.cli("team", "set", "overall", "--tokens", "1000").returncode == 0
    pid = "k1"
    assert m.hook("UserPromptSubmit", prompt="hello", prompt_id=pid) is None
    m.spend(pid, 600)
    assert m.hook("PreToolUse", prompt_id=pid, tool_name="Bash", tool_use_id="t1") is None  # topped up: goes on
    m.spend(pid, 600)
    reply = m.hook("PreToolUse", prompt_id=pid, tool_name="Bash", tool_use_id="t2")
    assert reply is not None and reply["continue"] is False, reply
    assert reply["stopReason"].startswith(
        f'Team budget exceeded: the overall team budget (tokens/total) of team "{team}" has used 1.2K tokens of '
        "1.0K tokens; claude-budget (kill mode) stopped this turn."
    ), reply


@pytest.mark.parametrize(
    "args, message",
    [
        (("--tokens", "fifty"), 'Error: --tokens "fifty" is not a number — write e.g. --tokens 2M'),
        (("--usd", "-3"), 'Error: --usd "-3" is not an amount of dollars above 0 — write e.g. --usd 300'),
        (
            ("--usd", "3", "--per", "fortnight"),
            'Error: --per "fortnight" is not a window — use a span like "1h", '
            '"90m", "5h", "24h", or day, week, month, or total for a budget that never resets',
        ),
        (
            ("--usd", "3", "--per", "day", "--tz", "Mars/Olympus"),
            'Error: --tz "Mars/Olympus" is not a time zone the database knows — use e.g. Europe/Paris',
        ),
    ],
    ids=["tokens", "usd", "window", "tz"],
)
def test_team_set_refuses_bad_values_with_the_fix(url: str, tmp_path: Path, args: tuple, message: str) -> None:
    m = Machine(tmp_path, url, new_team())
    proc = m.cli("team", "set", "overall", *args)
    assert (proc.returncode, proc.stderr.strip(), proc.stdout) == (1, message, "")


def test_doctor_checks_the_team_database(url: str, tmp_path: Path) -> None:
    from budget_state.cli._doctor import _team

    team = new_team()
    project = tmp_path / "p"
    (project / ".claude").mkdir(parents=True)
    (project / ".claude" / "budget.toml").write_text(f'team = "{team}"\n')
    env = {"HOME": str(tmp_path), "CLAUDE_BUDGET_TEAM_URL": url}
    check = _team(project, env)
    assert check is not None and (check.check, check.status) == ("team", "warn"), check
    assert "no budget is declared" in check.detail
    _budget_id(url, team, limit=1000)
    check = _team(project, env)
    assert check is not None and check.status == "ok" and "1 budget(s)" in check.detail, check
    # a database that does not answer is a problem, with the fix
    dead = socket.socket()
    dead.bind(("127.0.0.1", 0))
    port = dead.getsockname()[1]
    dead.close()
    check = _team(project, {**env, "CLAUDE_BUDGET_TEAM_URL": f"postgresql://x@127.0.0.1:{port}/b?connect_timeout=2"})
    assert check is not None and check.status == "problem" and check.fix, check
    assert _team(tmp_path / "none", {"HOME": str(tmp_path)}) is None  # no team: no line
