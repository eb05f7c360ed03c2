"""The structure of a JSON document, to compare ``status --json`` with its golden file."""

from __future__ import annotations

import json
from typing import Any


def shape(value: Any, /, *, types: bool = True) -> Any:
    """Objects by key, arrays by the set of their items' shapes, leaves by JSON type (or ``"*"`` without types)."""
    if isinstance(value, dict):
        return {k: shape(v, types=types) for k, v in value.items()}
    if isinstance(value, list):
        return {"array of": sorted({json.dumps(shape(v, types=types), sort_keys=True) for v in value})}
    if not types:
        return "*"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    return "string"
