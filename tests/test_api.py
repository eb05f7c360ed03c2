"""The Python API's own checks (the rest of it is exercised through the hook, the CLI and e2e)."""

from __future__ import annotations

from pathlib import Path

import pytest

import budget_state


@pytest.mark.parametrize(
    ("usage", "message"),
    [
        ({"input": -1}, "usage input=-1 is not a non-negative whole number of tokens"),
        ({"input": 1.5}, "usage input=1.5 is not a non-negative whole number of tokens"),
        ({"input": True}, "usage input=True is not a non-negative whole number of tokens"),
        (
            {"output": 2**63},
            "usage output=9223372036854775808 is too large — the largest is 9223372036854775807",
        ),
        ({"tokens": 5}, "unknown usage keys ['tokens'] — use input, output, cache_creation, cache_read"),
    ],
    ids=["negative", "float", "bool", "beyond-toml", "unknown-key"],
)
def test_record_usage_refuses_what_the_ledger_cannot_hold(tmp_path: Path, usage: dict, message: str) -> None:
    with pytest.raises(ValueError) as info:
        budget_state.record_usage(usage, project=tmp_path, env={"HOME": str(tmp_path)})
    assert str(info.value) == message
    assert not (tmp_path / ".claude" / "budget-ledger.toml").exists()
