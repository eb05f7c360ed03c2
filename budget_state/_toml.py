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
    Kept with marshal (no import cost on the hook's path); see :func:`kept`.
    :raises ValueError: it is not TOML; :raises UnicodeDecodeError: not UTF-8.
    """
    import marshal

    if cache is not None and (data := kept(cache, raw, marshal)) is not None:
        return data
    data = loads(raw.decode("utf-8"))
    if cache is not None:
        keep(cache, raw, data, marshal)  # marshal cannot hold TOML dates: then nothing is kept
    return data


def kept(cache: Path, key: bytes | str, codec: Any, /) -> dict[str, Any] | None:
    """What :func:`keep` stored in ``cache`` for exactly ``key`` (the bytes or text it was parsed
    from), else None: a stale or foreign file can only miss, and any problem with it is a miss."""
    try:
        with open(cache, "rb") as f:
            was, data = codec.load(f)
    except Exception:  # noqa: BLE001 (a cache: never an error)
        return None
    return data if was == key and isinstance(data, dict) else None


def keep(cache: Path, key: bytes | str, data: dict[str, Any], codec: Any, /) -> None:
    """Store ``data`` parsed from ``key`` in ``cache`` (marshal or pickle ``codec``), whole or not at
    all for a reader in another process, readable by this user only. Best effort."""
    try:
        blob = codec.dumps((key, data))
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_name(f"{cache.name}.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_NOFOLLOW", 0), 0o600)
        try:
            os.write(fd, blob)
        finally:
            os.close(fd)
        os.replace(tmp, cache)
    except Exception:  # noqa: BLE001 (a cache: the next process parses the file itself)
        pass
