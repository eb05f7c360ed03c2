"""The documented ``status --json`` example (docs/json.md) has the structure and types of what the real CLI prints."""

from __future__ import annotations

import json
import re
from pathlib import Path

from json_shape import shape

ROOT = Path(__file__).parents[1]


def test_the_documented_example_is_the_golden_shape() -> None:
    doc = (ROOT / "docs" / "json.md").read_text(encoding="utf-8")
    section = doc[doc.index("## `claude-budget status --json` (version 2)") :]
    block = re.search(r"```json\n(.*?)```", section, re.DOTALL)
    assert block is not None, "docs/json.md: no ```json block under `claude-budget status --json` (version 2)"
    example = json.loads(block.group(1))
    golden = json.loads((ROOT / "tests" / "data" / "status_json_v2.json").read_text())
    assert shape(example) == shape(golden)
