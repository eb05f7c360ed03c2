"""The README's ``status --json`` example has the structure and types of what the real CLI prints."""

from __future__ import annotations

import json
import re
from pathlib import Path

from json_shape import shape

ROOT = Path(__file__).parents[1]


def test_the_readme_example_is_the_golden_shape() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("## JSON output (version 2)") :]
    block = re.search(r"```json\n(.*?)```", section, re.DOTALL)
    assert block is not None, "README: no ```json block under JSON output (version 2)"
    example = json.loads(block.group(1))
    golden = json.loads((ROOT / "tests" / "data" / "status_json_v2.json").read_text())
    assert shape(example) == shape(golden)
