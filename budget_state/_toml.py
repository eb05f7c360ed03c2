"""TOML reading, in one place: tomllib (3.11+) or tomli, imported only by what parses a file."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any


def loads(text: str, /) -> dict[str, Any]:
    """Parse TOML text. :raises ValueError: it is not TOML (or is nested too deeply to read)."""
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover (Python < 3.11)
        import tomli as tomllib
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ValueError(str(e)) from None
    except RecursionError:
        raise ValueError("nested too deeply") from None


def loads_cached(raw: bytes, cache: Path | None, /) -> dict[str, Any]:
    """:func:`loads` of UTF-8 ``raw``, kept parsed in ``cache`` for the next process.

    A hook is a new process per event, and a ``budget.toml`` of 200 commands takes ~9 ms to parse.
    The cache holds the bytes it was made from and is used only when they are exactly the file's,
    so a stale or foreign cache can only miss. Any problem with it is a miss too: never an error.
    :raises ValueError: it is not TOML; :raises UnicodeDecodeError: not UTF-8.
    """
    import marshal

    if cache is not None:
        try:
            with open(cache, "rb") as f:
                kept, data = marshal.load(f)
            if kept == raw and isinstance(data, dict):
                return data
        except (OSError, EOFError, ValueError, TypeError):
            pass
    data = loads(raw.decode("utf-8"))
    if cache is not None:
        try:
            blob = marshal.dumps((raw, data))  # ValueError for what marshal cannot hold (TOML dates)
            cache.parent.mkdir(parents=True, exist_ok=True)
            tmp = cache.with_name(f"{cache.name}.{os.getpid()}.tmp")
            with open(tmp, "wb") as f:
                f.write(blob)
            os.replace(tmp, cache)  # whole or not at all, for a reader in another process
        except (OSError, ValueError):
            pass
    return data
