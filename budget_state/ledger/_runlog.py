"""The run log: finished runs, one JSON object per line, in ``<ledger stem>.runs.jsonl`` beside the ledger.

The ledger keeps totals, time buckets and the last few runs; every finished run also lands here
when it leaves the ledger, for per-run statistics (``claude-budget suggest``) over a long history.
Append-only: a writer adds whole lines at the end and never rewrites one, so a reader needs no
lock. Bounded: past :data:`ROTATE_BYTES` the file becomes ``.1`` (replacing the previous ``.1``)
and a new one starts, so the log holds between 4 and 8 MiB — about 10,000–20,000 runs.

Record (version 1; see README "The ledger")::

    {"v": 1, "prompt": "…", "command": "/review-pr", "session": "…",
     "started": "2026-12-02T10:00:00Z", "ended": "2026-12-02T10:03:10Z",
     "input": 120, "output": 2500, "cache_creation": 21807, "cache_read": 33006, "usd_micros": 166504,
     "models": {"claude-sonnet-4-5": {"input": 120, "output": 2500, "cache_creation": 21807,
                                      "cache_read": 33006, "usd_micros": 166504}},
     "source": "api", "orchestration": "…"}          # the last two only when set

Writers hold the ledger lock (the caller's); each append is one ``write`` of whole lines with
``O_APPEND``, then ``fsync``. A writer killed mid-line leaves a torn last line: the next append
starts on a new line, and readers skip (and count) any line that is not a whole record.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, BinaryIO, Final

from .._errors import LedgerError
from .._model import CATEGORIES, count_value

VERSION: Final = 1
#: Past this size the log is rotated to ``.1`` before the next append (4 MiB: ~10,000 runs).
ROTATE_BYTES: Final = 4 * 1024 * 1024
SUFFIX: Final = ".runs.jsonl"
_COUNTS = (*CATEGORIES, "usd_micros")
_TEXT = ("prompt", "command", "session")
_OPTIONAL = ("source", "orchestration")


def runlog_path(ledger_path: Path, /) -> Path:
    """``<ledger folder>/<ledger stem>.runs.jsonl`` (``budget-ledger.toml`` -> ``budget-ledger.runs.jsonl``)."""
    return ledger_path.with_name(ledger_path.stem + SUFFIX)


def _rotated(path: Path) -> Path:
    return path.with_name(path.name + ".1")


def _iso(value: object) -> str | None:
    if isinstance(value, datetime):
        moment = value if value.tzinfo is not None else value.replace(tzinfo=timezone.utc)
        return moment.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")
    return value if isinstance(value, str) else None


def _counts(table: Mapping[str, Any]) -> dict[str, int]:
    return {c: count_value(table.get(c, 0)) for c in _COUNTS}


def to_record(run: Mapping[str, Any], /) -> dict[str, Any]:
    """A ledger run table as a run-log record (the documented shape, version 1)."""
    record: dict[str, Any] = {"v": VERSION}
    for key in _TEXT:
        value = run.get(key)
        record[key] = value if isinstance(value, str) else None
    record["started"] = _iso(run.get("started"))
    record["ended"] = _iso(run.get("ended"))
    record.update(_counts(run))
    models = run.get("models")
    record["models"] = (
        {str(m): _counts(u) for m, u in models.items() if isinstance(u, Mapping)} if isinstance(models, Mapping) else {}
    )
    for key in _OPTIONAL:
        value = run.get(key)
        if isinstance(value, str):
            record[key] = value
    return record


def append_runs(ledger_path: Path, runs: Iterable[Mapping[str, Any]], /, *, max_bytes: int = ROTATE_BYTES) -> None:
    """Append finished runs to the ledger's run log. The caller holds the ledger lock.

    :param runs: ledger run tables (datetimes or ISO strings for ``started``/``ended``).
    :param max_bytes: rotate when the log is already past this size (:data:`ROTATE_BYTES`).
    :raises LedgerError: the log cannot be written (its message names the file and the fix).
    """
    lines = [json.dumps(to_record(r), ensure_ascii=False, separators=(",", ":")) + "\n" for r in runs]
    if not lines:
        return
    path = runlog_path(ledger_path)
    try:
        _append(path, "".join(lines).encode("utf-8"), max_bytes)
    except OSError as e:
        if os.path.islink(path):
            raise LedgerError(
                f"the run log {path} is a symbolic link — remove it; claude-budget creates the file itself",
                path=path,
            ) from None
        raise LedgerError(
            f"cannot write the run log {path}: {e.strerror or e} — check that the folder is writable, "
            "or point CLAUDE_BUDGET_STATE at a writable place",
            path=path,
        ) from None


def _append(path: Path, data: bytes, max_bytes: int) -> None:
    try:
        if os.stat(path).st_size > max_bytes:
            os.replace(path, _rotated(path))
    except FileNotFoundError:
        pass
    flags = os.O_RDWR | os.O_APPEND | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    fd = os.open(path, flags, 0o644)
    try:
        size = os.fstat(fd).st_size
        if size:
            os.lseek(fd, size - 1, os.SEEK_SET)  # O_APPEND: the write below goes to the end anyway
            if os.read(fd, 1) != b"\n":
                data = b"\n" + data  # a writer was killed mid-line: keep its torn line apart from ours
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)


def _when(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value[:-1] + "+00:00" if value.endswith("Z") else value)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=timezone.utc)


def _valid(record: object) -> dict[str, Any] | None:
    """The record with ``started``/``ended`` as datetimes, or None if it is not a version-1 run."""
    if not isinstance(record, dict) or record.get("v") != VERSION or not isinstance(record.get("command"), str):
        return None
    started, ended = _when(record.get("started")), _when(record.get("ended"))
    if started is None or ended is None:
        return None
    out = dict(record)
    out["started"], out["ended"] = started, ended
    out.update(_counts(record))
    models = record.get("models")
    out["models"] = (
        {str(m): _counts(u) for m, u in models.items() if isinstance(u, dict)} if isinstance(models, dict) else {}
    )
    return out


class RunReader(Iterator[dict[str, Any]]):
    """The log's runs, oldest first (``.1`` then the current file), as dicts with datetimes.

    ``skipped`` counts the lines that were not a whole version-1 record (a torn last line, a
    hand edit, a newer version's record); they are left out, never raised. A run logged twice
    (the ledger's writer was killed after the log got the run and before the ledger let it go,
    so the next write logged it again) is read once, as last logged, in its first place.
    """

    def __init__(self, ledger_path: Path, /, *, since: datetime | None = None) -> None:
        path = runlog_path(ledger_path)
        self.paths = (_rotated(path), path)
        self.since = since if since is None or since.tzinfo is not None else since.replace(tzinfo=timezone.utc)
        self.skipped = 0
        self._lines = self._read()
        self._unique_lines: Iterator[dict[str, Any]] | None = None

    def _read(self) -> Iterator[dict[str, Any]]:
        for path in self.paths:
            try:
                with open(path, "rb") as f:
                    yield from self._records(f)
            except (FileNotFoundError, NotADirectoryError):
                continue  # no log (yet), or no rotated one: no runs

    def _records(self, f: BinaryIO) -> Iterator[dict[str, Any]]:
        for raw in f:
            try:
                record = _valid(json.loads(raw)) if raw.endswith(b"\n") else None
            except ValueError:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
                record = None
            if record is None:
                if raw.strip():
                    self.skipped += 1
                continue
            if self.since is None or record["ended"] >= self.since:
                yield record

    def _unique(self) -> Iterator[dict[str, Any]]:
        # The whole log is at most 2 x ROTATE_BYTES: holding its runs to drop repeats is cheap.
        kept: dict[tuple[object, ...], dict[str, Any]] = {}
        for record in self._lines:
            kept[(record.get("prompt"), record.get("session"), record.get("command"), record["started"])] = record
        yield from kept.values()

    def __next__(self) -> dict[str, Any]:
        if self._unique_lines is None:
            self._unique_lines = self._unique()
        return next(self._unique_lines)


def read_runs(ledger_path: Path, /, *, since: datetime | None = None) -> RunReader:
    """The runs of the ledger's run log that ended at or after ``since`` (all without), oldest first.

    Never raises for a missing log (no runs); the returned reader's ``skipped`` counts bad lines.
    """
    return RunReader(ledger_path, since=since)
