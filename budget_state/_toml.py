"""TOML reading, in one place: tomllib (3.11+) or tomli, imported only by what parses a file."""

from __future__ import annotations

import sys
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
