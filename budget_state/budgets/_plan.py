"""A subscription's usage windows: the plan's 5-hour and 7-day limits, as Claude Code reports them.

Claude Code (2.1.251+, logged in with a subscription) passes the statusLine command
``"rate_limits": {"five_hour": {"used_percentage": 42, "resets_at": <epoch s>}, "seven_day": {…}}``;
a mod gets the same from ``$.session.usage().rateLimits``. Both paths call :func:`observe_plan`.

Where the state lives. The windows belong to the *account*, not to a project: every project and
session of the user shares them. So the last known state is one small JSON file in the user's own
state folder — ``$XDG_STATE_HOME/claude-budget/plan.json`` (else ``~/.local/state/…``), one file per
Claude Code config folder (``CLAUDE_CONFIG_DIR`` is how people keep two logins apart). It is read
only if the folder and the file belong to this user and nobody else may write them (a state
another user could plant would refuse this user's commands), opened without following symbolic
links, and written atomically (temp file, fsync, ``os.replace``) under its own ``flock``.

What is exact and what is estimated. The percentages and reset times are Claude Code's own (the
API's ``anthropic-ratelimit-unified-*`` headers). Which command used how much of a window is an
estimate: each movement of a window between two observations is charged to this project's command
runs by their share of the tokens counted in that interval (:func:`attribute`); usage by other
projects or machines in the same interval lands here too, if this project was the only one busy.

A window past its ``resets_at`` is *stale*: Claude Code has not said anything since it reset, so
it counts as 0 % used (it never blocks) and every display says "stale".
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterator, Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from .._model import count_value, epoch_value, mark_value, percent_value, time_value

if TYPE_CHECKING:
    from .._api import Context
    from .._model import Budget
    from ..ledger._records import RunRecord
    from ..ledger._state import LedgerState
    from ._budgets import Decision, Standing

WINDOWS = ("five_hour", "seven_day")
LABELS = {"five_hour": "5-hour", "seven_day": "7-day"}
STATE_VERSION = 1
FILE_NAME = "plan.json"
MAX_BYTES = 64 * 1024
MAX_SAMPLES = 48  # observations kept per window for its burn rate (only those of the current window)
QUOTA_RUNS = 20  # per command, the last runs whose share of the 5-hour window is kept (p50/p90)
NO_PLAN = "no plan data"
MIN_RATE_SECONDS = 600  # a burn rate needs samples this far apart


class PlanWindow(NamedTuple):
    """One window's last known state."""

    name: str  # "five_hour" | "seven_day"
    used_percentage: float
    resets_at: datetime
    seen_at: datetime
    samples: tuple[tuple[int, float], ...] = ()  # (epoch s, %) of the current window, oldest first

    @property
    def label(self) -> str:
        return LABELS[self.name]

    def stale(self, now: datetime) -> bool:
        """Past its reset: what Claude Code said no longer holds (the window started over)."""
        return now >= self.resets_at

    def status(self, now: datetime) -> str:
        return "stale" if self.stale(now) else "current"

    @property
    def resets_epoch(self) -> int:
        """Its reset in epoch seconds: which window a mark of the ledger is of."""
        return int(self.resets_at.timestamp())

    def mark(self) -> tuple[int, float]:
        """``(resets_at, used %)``: the window as the ledger's marks keep it."""
        return self.resets_epoch, self.used_percentage

    def used_now(self, now: datetime) -> float:
        """The use to decide on: 0 once the window has reset."""
        return 0.0 if self.stale(now) else self.used_percentage

    def runs_out_at(self, now: datetime) -> datetime | None:
        """When the window reaches 100 % at the burn rate seen since its first sample this window
        (at least 10 minutes before its last); None when it will not before its reset, or no rate yet."""
        if self.stale(now):
            return None
        if self.used_percentage >= 100:
            return self.seen_at
        if len(self.samples) < 2:
            return None
        (t0, p0), (t1, p1) = self.samples[0], self.samples[-1]
        if t1 - t0 < MIN_RATE_SECONDS or p1 <= p0:
            return None  # as the forecasts: under 10 minutes of history says nothing of a rate
        rate = (p1 - p0) / (t1 - t0)  # % per second
        at = t1 + (100.0 - p1) / rate
        if at >= self.resets_at.timestamp():
            return None
        return datetime.fromtimestamp(int(at), timezone.utc)

    def as_json(self, now: datetime) -> dict[str, Any]:
        out = self.runs_out_at(now)
        return {
            "used_percentage": self.used_percentage,
            "resets_at": iso(self.resets_at),
            "seen_at": iso(self.seen_at),
            "status": self.status(now),
            "runs_out_at": iso(out) if out is not None else None,
        }


class Plan(NamedTuple):
    """The account's windows as last seen; a window Claude Code did not report is None."""

    five_hour: PlanWindow | None
    seven_day: PlanWindow | None

    def windows(self) -> tuple[PlanWindow, ...]:
        return tuple(w for w in (self.five_hour, self.seven_day) if w is not None)

    def as_json(self, now: datetime) -> dict[str, Any]:
        return {
            "five_hour": self.five_hour.as_json(now) if self.five_hour else None,
            "seven_day": self.seven_day.as_json(now) if self.seven_day else None,
        }


def iso(at: datetime) -> str:
    return at.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_rate_limits(rate_limits: object) -> dict[str, tuple[float, int]]:
    """``{"five_hour": (42.0, resets_at), …}`` from the statusLine's ``rate_limits`` (or a mod's
    ``rateLimits``, the same shape; camelCase ``usedPercentage``/``resetsAt`` accepted too).
    A window that is missing or malformed is left out; nothing raises."""
    out: dict[str, tuple[float, int]] = {}
    if not isinstance(rate_limits, Mapping):
        return out
    for name in WINDOWS:
        raw = rate_limits.get(name)
        if raw is None:
            raw = rate_limits.get({"five_hour": "fiveHour", "seven_day": "sevenDay"}[name])
        if not isinstance(raw, Mapping):
            continue
        pct = percent_value(raw.get("used_percentage", raw.get("usedPercentage")))
        at = epoch_value(raw.get("resets_at", raw.get("resetsAt")))
        if pct is not None and at is not None:
            out[name] = (pct, at)
    return out


# --- the account's state file ----------------------------------------------------------------------


class PlanStateError(Exception):
    """The state file or its folder is not safe to trust (or cannot be written); the message says why."""


def plan_path(env: Mapping[str, str]) -> Path | None:
    """The account state file: one per Claude Code config folder, in the user's state folder."""
    from .._paths import claude_home

    explicit = env.get("CLAUDE_BUDGET_PLAN_STATE")
    if explicit:
        return Path(os.path.expanduser(explicit))
    home = env.get("HOME")
    base = env.get("XDG_STATE_HOME") or (os.path.join(home, ".local", "state") if home else None)
    if not base:
        return None
    config = claude_home(env)
    name = FILE_NAME
    if home and os.path.abspath(config) != os.path.abspath(os.path.join(home, ".claude")):
        import zlib

        name = f"plan-{zlib.crc32(os.fsencode(os.path.abspath(config))):08x}.json"
    return Path(base) / "claude-budget" / name


def _check_private(st: os.stat_result, what: Path, *, folder: bool) -> None:
    uid = os.geteuid() if hasattr(os, "geteuid") else None
    if uid is not None and st.st_uid != uid:
        raise PlanStateError(f"{what} belongs to another user (uid {st.st_uid}) — not trusted; remove it")
    if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise PlanStateError(
            f"{what} may be written by other users (mode {stat.S_IMODE(st.st_mode):o}) — not trusted; "
            f"run: chmod go-w {what}"
        )
    if folder and not stat.S_ISDIR(st.st_mode):
        raise PlanStateError(f"{what} is not a folder — remove it")


def _read_raw(path: Path) -> dict[str, Any] | None:
    """The state file's JSON, or None when there is none. Raises PlanStateError if untrusted."""
    try:
        _check_private(os.lstat(path.parent), path.parent, folder=True)
    except FileNotFoundError:
        return None
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        return None
    except OSError as e:
        if os.path.islink(path):
            raise PlanStateError(f"{path} is a symbolic link — not trusted; remove it") from None
        raise PlanStateError(f"cannot read {path}: {e.strerror}") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise PlanStateError(f"{path} is not a regular file — remove it")
        _check_private(st, path, folder=False)
        raw = os.read(fd, MAX_BYTES + 1)
    finally:
        os.close(fd)
    if len(raw) > MAX_BYTES:
        return None
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError):
        return None  # torn by hand or by a crash before the rename: as if never seen
    return data if isinstance(data, dict) and data.get("version") == STATE_VERSION else None


def _window_from(name: str, raw: object) -> PlanWindow | None:
    if not isinstance(raw, dict):
        return None
    pct, at, seen = (
        percent_value(raw.get("used_percentage")),
        epoch_value(raw.get("resets_at")),
        epoch_value(raw.get("seen_at")),
    )
    if pct is None or at is None or seen is None:
        return None
    samples: list[tuple[int, float]] = []
    for item in raw.get("samples") or ():
        if isinstance(item, list) and len(item) == 2:
            t, p = epoch_value(item[0]), percent_value(item[1])
            if t is not None and p is not None:
                samples.append((t, p))
    utc = timezone.utc
    return PlanWindow(
        name, pct, datetime.fromtimestamp(at, utc), datetime.fromtimestamp(seen, utc), tuple(samples[-MAX_SAMPLES:])
    )


def _plan_from(data: Mapping[str, Any] | None) -> Plan | None:
    if data is None or not data.get("rate_limits"):
        return None
    plan = Plan(_window_from("five_hour", data.get("five_hour")), _window_from("seven_day", data.get("seven_day")))
    return plan if plan.windows() else None


def read_plan(env: Mapping[str, str]) -> Plan | None:
    """The account's last known windows, or None: never seen, the last observation had none (an
    API-key login, a Claude Code before 2.1.251), or the file is not trusted (see :func:`plan_problem`)."""
    if api_key_login(env):
        return None
    path = plan_path(env)
    if path is None:
        return None
    try:
        return _plan_from(_read_raw(path))
    except PlanStateError:
        return None


def plan_problem(env: Mapping[str, str]) -> str | None:
    """Why the state file is not used, for ``status`` and ``doctor``; None when it is fine or absent."""
    path = plan_path(env)
    if path is None:
        return None
    try:
        _read_raw(path)
    except PlanStateError as e:
        return f"claude-budget: plan state ignored: {e}"
    return None


def api_key_login(env: Mapping[str, str]) -> bool:
    """Whether this Claude Code process logs in with an API key (``ANTHROPIC_API_KEY`` and no
    subscription token): then it has no plan windows, whatever another session left in the file."""
    return bool(env.get("ANTHROPIC_API_KEY")) and not env.get("CLAUDE_CODE_OAUTH_TOKEN")


def _write(path: Path, data: Mapping[str, Any]) -> None:
    """Under the state file's lock (:func:`record_plan`), in one step (:func:`write_atomic`)."""
    from .._atomic import write_atomic

    folder = path.parent
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    _check_private(os.lstat(folder), folder, folder=True)
    write_atomic(path, json.dumps(data, separators=(",", ":")).encode("utf-8"), locked=True, new_mode=0o600)


def _merge(old: Mapping[str, Any] | None, seen: dict[str, tuple[float, int]], now: int, source: str) -> dict[str, Any]:
    data: dict[str, Any] = {"version": STATE_VERSION, "rate_limits": bool(seen), "seen_at": now, "source": source}
    for name in WINDOWS:
        before = (old or {}).get(name)
        if name not in seen:
            if isinstance(before, dict):
                data[name] = before  # kept: shown again if the windows come back
            continue
        pct, at = seen[name]
        samples = []
        if isinstance(before, dict) and epoch_value(before.get("resets_at")) == at:
            samples = [s for s in before.get("samples") or () if isinstance(s, list) and len(s) == 2]
        if not samples or samples[-1][1] != pct:
            samples.append([now, pct])
        data[name] = {"used_percentage": pct, "resets_at": at, "seen_at": now, "samples": samples[-MAX_SAMPLES:]}
    return data


def _changed(old: Mapping[str, Any] | None, seen: dict[str, tuple[float, int]]) -> bool:
    """Whether an observation says anything the file does not (the same percentages again do not)."""
    if old is None:
        return bool(seen)  # no windows, and none ever seen: nothing to write (API-key users get no file)
    if bool(old.get("rate_limits")) != bool(seen):
        return True
    for name, (pct, at) in seen.items():
        before = old.get(name)
        if not isinstance(before, dict) or before.get("used_percentage") != pct or before.get("resets_at") != at:
            return True
    return False


def record_plan(
    rate_limits: object, *, env: Mapping[str, str], now: datetime, source: str = "statusline"
) -> tuple[Plan | None, Plan | None]:
    """Write one observation to the account's file: ``(plan before, plan after)``.

    ``rate_limits`` None (or with no window) records that the last observation had no plan data.
    The file is only rewritten when something changed (a statusline runs after every response).
    :raises PlanStateError: the folder or file is not this user's alone, or cannot be written.
    """
    from .._paths import lock_path
    from ..ledger._lock import LedgerLock

    path = plan_path(env)
    if path is None:
        raise PlanStateError("no HOME (or XDG_STATE_HOME) to keep the plan's windows in")
    seen = parse_rate_limits(rate_limits)
    old = _read_raw(path)
    if not _changed(old, seen):
        plan = _plan_from(old)
        return plan, plan
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    _check_private(os.lstat(path.parent), path.parent, folder=True)
    try:
        with LedgerLock(lock_path(path), timeout=2.0):
            old = _read_raw(path)
            data = _merge(old, seen, int(now.timestamp()), source)
            _write(path, data)
    except OSError as e:
        raise PlanStateError(f"cannot write {path}: {e.strerror}") from None
    except Exception as e:  # LedgerError, LockTimeout: the lock file's problem, said the same way
        if isinstance(e, PlanStateError):
            raise
        raise PlanStateError(str(e)) from None
    return _plan_from(old), _plan_from(data)


# --- attribution: a window's movement charged to this project's command runs ------------------------


class Marks:
    """The project's ``[quota]`` table, typed (``_records.feature_value``): the mark :func:`attribute`
    charges the next move from.

    ``windows``: per window, ``(resets_at, used %)`` at the mark (``five_hour = [resets_at, %]``), in
    the order first marked; ``overall``: overall's counted tokens then; ``tokens``: each run's (by
    prompt id); ``seen_at``: when. What a hand edit broke reads as empty (a window's next move
    starts a new mark, a run's tokens count from 0); keys it does not know are kept.
    """

    __slots__ = ("_order", "extra", "overall", "seen_at", "tokens", "windows")

    def __init__(self) -> None:
        self.windows: dict[str, tuple[int, float]] = {}
        self.overall: int | None = None
        self.tokens: dict[str, int] = {}
        self.seen_at: datetime | None = None
        self.extra: dict[str, Any] = {}
        self._order: tuple[str, ...] = ()  # the keys as read: written back in that order, new ones after

    @classmethod
    def load(cls, table: Mapping[str, Any] | None) -> Marks | None:
        """The table as the ledger keeps it (None: there is none)."""
        if not isinstance(table, Mapping):
            return None
        m = cls()
        m._order = tuple(table)
        for key, value in table.items():
            if key in WINDOWS:
                mark = mark_value(value)
                if mark is not None:
                    m.windows[key] = mark
            elif key == "overall":
                m.overall = value if type(value) is int and count_value(value) == value else None
            elif key == "tokens":
                if isinstance(value, Mapping):
                    m.tokens = {str(k): v for k, v in value.items() if type(v) is int and count_value(v) == v}
            elif key == "seen_at":
                m.seen_at = time_value(value)
            else:
                m.extra[key] = value
        return m

    def dump(self) -> dict[str, Any]:
        out: dict[str, Any] = {name: list(mark) for name, mark in self.windows.items()}
        if self.overall is not None:
            out["overall"] = self.overall
        out["tokens"] = dict(self.tokens)
        if self.seen_at is not None:
            out["seen_at"] = self.seen_at
        out.update(self.extra)
        if not self._order:
            return out
        kept = {key: out[key] for key in self._order if key in out}
        kept.update(out)
        return kept

    def holds(self, plan: Plan) -> bool:
        """Whether the mark is of these windows, at these percentages (nothing moved since)."""
        return all(self.windows.get(w.name) == w.mark() for w in plan.windows())

    def move(self, window: PlanWindow) -> float:
        """How far ``window`` moved since its mark (its whole use if it reset since; 0 with no mark
        of it), which it is now."""
        mark = self.windows.get(window.name)
        self.windows[window.name] = window.mark()
        if mark is None:
            return 0.0
        return window.used_percentage - mark[1] if mark[0] == window.resets_epoch else window.used_percentage

    def spent_since(self, overall: int) -> int:
        """The counted tokens overall spent since the mark, from what it has now (0 when not known)."""
        return overall - self.overall if self.overall is not None and self.overall <= overall else 0

    def remark(self, overall: int, tokens: dict[str, int], now: datetime) -> None:
        """The next mark's counts: overall's and every run's now (a run absent from it started after, from 0)."""
        self.overall, self.tokens, self.seen_at = overall, tokens, now


def _marks(state: LedgerState) -> Marks:
    """The project's marks, made when there are none."""
    from ..ledger._records import feature_value

    found = feature_value(state, "quota", Marks.load)
    if found is None:
        found = Marks()
        feature_value(state, "quota", Marks.load, replace=found)
    return found


def attribute(state: LedgerState, plan: Plan, *, counted: tuple[str, ...], now: datetime) -> dict[str, float]:
    """Charge each window's movement since this project's last mark to the runs that spent tokens
    since then, by their share of those tokens; the whole movement to overall. The moves, per window.

    The project's ``[quota]`` table holds the mark (:class:`Marks`): per window ``[resets_at, used %]``
    at the last charge, and the counted tokens of overall and of each run then. A window that reset
    in between moved by its whole new use. With no tokens counted here since the mark, the movement
    was spent elsewhere (another project, another machine): it goes to overall's ``unattributed`` only.
    """
    from ..ledger import _records as records
    from ..ledger._runs import charge_plan, charge_unattributed

    marks = _marks(state)
    moved = [(w, move) for w in plan.windows() if (move := marks.move(w)) > 0]  # every window marked
    runs = records.runs(state)
    total_now = records.scope(state, "overall").usage.total(counted)
    if moved:
        spent = {}
        for run in runs:
            delta = run.usage.total(counted) - marks.tokens.get(run.prompt, 0)
            if delta > 0 and run.command is not None:
                spent[run.prompt] = (run, delta)
        denominator = max(marks.spent_since(total_now), sum(d for _, d in spent.values()))
        for window, move in moved:
            charge_plan(state, "overall", window.name, window.resets_epoch, move)
            if denominator <= 0:
                charge_unattributed(state, window.name, move)
                continue
            for run, delta in spent.values():
                _charge_run(state, run, window, move * delta / denominator)
    marks.remark(total_now, {r.prompt: r.usage.total(counted) for r in runs}, now)
    return {window.name: move for window, move in moved}


def _charge_run(state: LedgerState, run: RunRecord, window: PlanWindow, share: float) -> None:
    from ..ledger._runs import add_run_share, charge_plan, note_run_quota

    key = "quota_5h" if window.name == "five_hour" else "quota_7d"
    total = add_run_share(state, run.prompt, key, share)
    assert run.command is not None  # only runs of a command are charged (attribute)
    charge_plan(state, run.command, window.name, window.resets_epoch, share)
    if window.name == "five_hour":
        note_run_quota(state, run.command, run.prompt, total, keep=QUOTA_RUNS)


class QuotaUse(NamedTuple):
    """A scope's estimated use of the current windows, and (commands) its share per run."""

    five_hour: float = 0.0  # % of the current 5-hour window charged to it
    seven_day: float = 0.0
    runs: int = 0  # runs with a known 5-hour share
    p50: float | None = None  # % of the 5-hour window per run
    p90: float | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "five_hour": round(self.five_hour, 2),
            "seven_day": round(self.seven_day, 2),
            "per_run": None if self.p50 is None else {"runs": self.runs, "p50": self.p50, "p90": self.p90},
        }


def _nearest_rank(values: list[float], q: float) -> float:
    import math

    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def quota_use(state: LedgerState, name: str, plan: Plan | None, now: datetime) -> QuotaUse:
    """What ``name`` ("overall" or a command) has taken of the windows now current."""
    from ..ledger._records import plan_share

    share = plan_share(state, name)
    used = {}
    for w in plan.windows() if plan is not None else ():
        used[w.name] = 0.0 if w.stale(now) else share.charged_in(w.name, w.resets_epoch)
    shares = list(share.runs.values())
    p50 = round(_nearest_rank(shares, 0.5), 2) if shares else None
    p90 = round(_nearest_rank(shares, 0.9), 2) if shares else None
    return QuotaUse(used.get("five_hour", 0.0), used.get("seven_day", 0.0), len(shares), p50, p90)


def marked(state: LedgerState, plan: Plan) -> bool:
    """Whether the project's mark (in ``state``, read without the lock) already holds these windows."""
    from ..ledger._records import feature_value

    marks = feature_value(state, "quota", Marks.load)
    return marks is not None and marks.holds(plan)


# --- decisions: quota_guard, quotaBudget, the p90 fit ----------------------------------------------

#: finished runs with a known 5-hour share before their p90 is used to refuse a start
FIT_RUNS = 3


def _pct(value: float) -> str:
    return f"{value:.1f}".removesuffix(".0") + "%"


def _window_phrase(w: PlanWindow, now: datetime, zone: Any) -> str:
    return f"the plan's {w.label} window is at {_pct(w.used_percentage)}; {_resets_phrase(w, now, zone)}"


def _resets_phrase(w: PlanWindow, now: datetime, zone: Any) -> str:
    from ._budgets import when

    return f"it resets at {when(w.resets_at, now, zone)}"


def _hundredths(percent: float) -> int:
    return round(percent * 100)


def standings(
    plan: Plan | None,
    /,
    *,
    command: str,
    use: QuotaUse,
    guard: float | None,
    quota_5h: float | None,
    quota_7d: float | None,
    now: datetime,
    zone: Any = None,
) -> Iterator[Standing]:
    """The plan's windows as :func:`~._budgets.decide` reads them, for ``command``: quota_guard,
    the p90 fit, then its quotaBudget and quotaBudget7d.

    No plan data (an API-key login, a Claude Code that does not report the windows) gives none, and
    a stale window (past its reset) none of its own: it counts as 0 % used. quota_guard and the fit
    only refuse a start; a quotaBudget also stops a running command in kill mode once it has taken
    *more* than it (at exactly it, the turn goes on).
    With ``quota_guard`` set, a command whose p90 share of the 5-hour window (over at least
    :data:`FIT_RUNS` runs) would not fit in what is left of it is refused too.
    """
    if plan is None:
        return
    five = plan.five_hour
    if five is not None and not five.stale(now) and guard is not None:
        used = five.used_now(now)
        yield _standing(
            command,
            used,
            guard,
            used >= guard,
            f"{_window_phrase(five, now, zone)} — at or above quota_guard ({_pct(guard)}). "
            "To go on, wait for the reset, or raise quota_guard in .claude/budget.toml "
            "(or CLAUDE_BUDGET_QUOTA_GUARD)",
        )
        if use.p90 is not None and use.runs >= FIT_RUNS:
            yield _standing(
                command,
                used + use.p90,
                100.0,
                used + use.p90 > 100,
                f"a run of {command} takes about {_pct(use.p90)} of the 5-hour window (p90 of its last "
                f"{use.runs} runs), more than the {_pct(100 - used)} left: {_window_phrase(five, now, zone)}. "
                "To go on, wait for the reset, or set CLAUDE_BUDGET_QUOTA_GUARD=off",
            )
    for limit, window, taken, key in (
        (quota_5h, plan.five_hour, use.five_hour, "quotaBudget"),
        (quota_7d, plan.seven_day, use.seven_day, "quotaBudget7d"),
    ):
        if limit is None or window is None or window.stale(now):
            continue
        taken_phrase = (
            f"{command} has taken about {_pct(taken)} of the plan's {window.label} window and its {key} "
            f"is {_pct(limit)}; {_resets_phrase(window, now, zone)}. "
            f"To go on, wait for the reset, or raise {key} in its command file"
        )
        stop = f"claude-budget (kill mode) stopped this turn: {taken_phrase}."
        yield _standing(command, taken, limit, taken >= limit, taken_phrase, over=taken > limit, stop=stop)


def _standing(
    command: str, used: float, limit: float, spent: bool, found: str, /, *, over: bool = False, stop: str | None = None
) -> Standing:
    """One of the plan's limits: a refused start says ``found`` after "not started"; warn mode says it alone."""
    from ._budgets import Standing

    refusal = f"claude-budget: {command} not started: {found}."
    return Standing(
        "plan",
        command,
        "percent",
        _hundredths(used),
        _hundredths(limit),
        spent,
        over,
        refusal,
        refusal if stop is None else stop,
        f"claude-budget: {found}.",
    )


def read_standings(
    ctx: Context, state: LedgerState, command: str, budget: Budget | None, now: datetime, zone: Any
) -> Iterator[Standing]:
    """:func:`standings` for ``command``, with the account's windows and the config's quota_guard:
    what the prompt hook (:func:`plan_decision`) and kill mode's tool-call check decide on. The
    file is read only when :func:`~._budgets.decide` asks (a running turn outside kill mode never does)."""
    plan = read_plan(ctx.env)
    yield from standings(
        plan,
        command=command,
        use=quota_use(state, command, plan, now),
        guard=ctx.config.quota_guard,
        quota_5h=budget.quota_5h if budget is not None else None,
        quota_7d=budget.quota_7d if budget is not None else None,
        now=now,
        zone=zone,
    )


def plan_decision(
    ctx: Context, state: LedgerState, command: str, budget: Budget | None, now: datetime
) -> tuple[Decision, list[str]]:
    """May ``command`` start, by the plan's 5-hour and 7-day windows (a subscription's limits, as
    Claude Code last reported them): quota_guard and the command's quotaBudget, as the
    UserPromptSubmit hook and ``budget_state.may_start`` decide; ``(decision, notes)``.

    Block and kill mode refuse; warn mode lets it start with a note. No plan data decides nothing.
    """
    from ._budgets import ALLOW, decide, warn_note

    if ctx.config.quota_guard is None and (budget is None or (budget.quota_5h is None and budget.quota_7d is None)):
        return ALLOW, []
    found = list(read_standings(ctx, state, command, budget, now, ctx.config.zone()))
    mode = ctx.config.mode
    decision = decide(found, mode, "start")
    note = warn_note(found, mode) if decision.allowed else None
    return decision, [note] if note else []


def plan_part(plan: Any, now: datetime, /, *, share: float | None = None, zone: Any = None) -> str:
    """``5h 42% ↻14:05 out ~13:10 · 7d 13%`` (``~3.1% by /review-pr``), or ``no plan data``."""
    from ._budgets import clock

    if plan is None:
        return NO_PLAN
    bits = []
    for w in plan.windows():
        short = "5h" if w.name == "five_hour" else "7d"
        if w.stale(now):
            bits.append(f"{short} stale (reset {clock(w.resets_at, now, zone)})")
            continue
        text = f"{short} {w.used_percentage:g}% resets {clock(w.resets_at, now, zone)}"
        out = w.runs_out_at(now)
        if out is not None:
            text += f" out ~{clock(out, now, zone)}"
        bits.append(text)
    if share:
        bits.append(f"cmd ~{share:.1f}% of 5h")
    return ", ".join(bits)
