"""The README and docs/ hold together: links resolve, the README keeps its two commands on its first
screen, and the JSON examples of docs/json.md are documents with the keys the CLI prints."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Dict, List

import pytest

from budget_state.cli._cli import main

ROOT = Path(__file__).parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def _anchors(page: Path) -> set[str]:
    found, in_code = set(), False
    for line in page.read_text(encoding="utf-8").splitlines():
        if line.startswith("```"):
            in_code = not in_code
        elif not in_code and re.match(r"#{1,6} ", line):
            found.add(_slug(line.lstrip("#")))
    return found


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_names_a_file_and_heading_that_exist(page: Path) -> None:
    broken = []
    for link in re.findall(r"\]\(([^)\s]+)\)", page.read_text(encoding="utf-8")):
        if re.match(r"[a-z]+:", link):
            continue
        file, _, anchor = link.partition("#")
        target = (page.parent / file).resolve() if file else page
        if not target.exists():
            broken.append(f"{link} (no such file)")
        elif anchor and target.suffix == ".md" and anchor not in _anchors(target):
            broken.append(f"{link} (no such heading)")
    assert not broken, f"{page.relative_to(ROOT)}: {broken}"


def test_every_page_is_in_the_index_and_the_readme() -> None:
    index = (ROOT / "docs" / "README.md").read_text(encoding="utf-8")
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for page in (ROOT / "docs").glob("*.md"):
        if page.name != "README.md":
            assert f"]({page.name})" in index, f"docs/README.md does not list {page.name}"
            assert f"](docs/{page.name})" in readme, f"README.md does not link docs/{page.name}"


def test_the_readme_shows_the_two_commands_on_its_first_screen() -> None:
    first_screen = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()[:24]
    # .ci/run runs scripts/test.sh, the README's test command: the two must stay the same.
    assert "scripts/test.sh" in (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    for command in ("scripts/demo.sh", "scripts/test.sh"):
        assert any(line.startswith(command + " ") for line in first_screen), command


def _examples() -> Dict[str, Any]:
    doc = (ROOT / "docs" / "json.md").read_text(encoding="utf-8")
    out = {}
    for heading, body in re.findall(r"^## (.*?)\n(.*?)(?=^## |\Z)", doc, re.DOTALL | re.MULTILINE):
        block = re.search(r"```json\n(.*?)```", body, re.DOTALL)
        if block is not None:
            out[heading] = json.loads(block.group(1))
    return out


def test_every_json_example_parses() -> None:
    assert len(_examples()) == 4  # status, suggest, doctor, path


def _keys(d: Dict[str, Any]) -> List[str]:
    return sorted(d)


def test_the_path_and_doctor_examples_have_the_keys_the_cli_prints(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    project = tmp_path / "proj"
    (project / ".claude").mkdir(parents=True)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    for name in ("CLAUDE_PROJECT_DIR", "CLAUDE_BUDGET_STATE", "CLAUDE_CONFIG_DIR"):
        monkeypatch.delenv(name, raising=False)
    examples = _examples()

    assert main(["path", "--json", "--project", str(project)]) == 0
    assert _keys(json.loads(capsys.readouterr().out)) == _keys(examples["`claude-budget path --json`"])

    main(["doctor", "--json", "--project", str(project)])  # exit 1: nothing is wired here
    real = json.loads(capsys.readouterr().out)
    example = examples["`claude-budget doctor --json` (version 1)"]
    assert _keys(real) == _keys(example) and real["version"] == example["version"]
    assert _keys(real["checks"][0]) == _keys(example["checks"][0])
