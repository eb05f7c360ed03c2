"""The run log: finished runs, one JSON object per line, beside the ledger (interim; see forecast branch)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

MAX_BYTES = 4 * 1024 * 1024


def runlog_path(ledger_path: Path) -> Path:
    return ledger_path.with_name(f"{ledger_path.stem}.runs.jsonl")


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def append_runs(ledger_path: Path, runs: list[dict[str, Any]]) -> None:
    if not runs:
        return
    path = runlog_path(ledger_path)
    try:
        if path.stat().st_size > MAX_BYTES:
            os.replace(path, path.with_name(path.name + ".1"))
    except FileNotFoundError:
        pass
    data = "".join(json.dumps({"v": 1, **_plain(r)}, ensure_ascii=False) + "\n" for r in runs)
    with open(path, "a", encoding="utf-8") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def read_runs(ledger_path: Path, *, since: datetime | None = None) -> Iterator[dict[str, Any]]:
    path = runlog_path(ledger_path)
    for p in (path.with_name(path.name + ".1"), path):
        try:
            with open(p, encoding="utf-8") as f:
                for line in f:
                    try:
                        rec = json.loads(line)
                    except ValueError:
                        continue
                    if isinstance(rec, dict):
                        yield rec
        except FileNotFoundError:
            continue
