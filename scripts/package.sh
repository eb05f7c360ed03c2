#!/usr/bin/env bash
# Build the wheel and the sdist with the standard front-end (`python -m build`, PEP 517, in an
# isolated build environment), check what is in them, then install each into a clean virtualenv
# and smoke-test it as a user would: the two console scripts, install/doctor/uninstall on a
# throw-away project, and the hook answering /budget. Leaves the artifacts in dist/.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

rm -rf dist
.venv/bin/python -m build --outdir dist . >"$work/build.log" 2>&1 || { cat "$work/build.log"; exit 1; }
version=$(.venv/bin/python -c 'import budget_state; print(budget_state.__version__)')
wheel=dist/claude_budget-$version-py3-none-any.whl
sdist=dist/claude_budget-$version.tar.gz
[ -f "$wheel" ] && [ -f "$sdist" ] || { echo "expected $wheel and $sdist; got: $(ls dist)"; exit 1; }

# What is inside: the licence and SPDX metadata, the data files, no tests or plugin in the wheel.
.venv/bin/python - "$wheel" "$sdist" "$version" <<'PY'
import sys, tarfile, zipfile
wheel, sdist, version = sys.argv[1:]
names = zipfile.ZipFile(wheel).namelist()
meta = zipfile.ZipFile(wheel).read(f"claude_budget-{version}.dist-info/METADATA").decode()
need = ["budget_state/py.typed", "budget_state/pricing/prices.toml", "budget_state/hook/__main__.py", "budget_state/claude-budget.mod.ts",
        "budget_state/ledger/_ledger.py", "budget_state/budgets/_budgets.py", "budget_state/mod/_mod.py", "budget_state/cli/_cli.py",
        f"claude_budget-{version}.dist-info/licenses/LICENSE"]
missing = [n for n in need if n not in names]
assert not missing, f"wheel lacks {missing}"
assert not [n for n in names if n.startswith(("tests/", "plugin/", "benchmarks/"))], names
for line in ("License-Expression: MIT", f"Version: {version}", "Classifier: Typing :: Typed", "Project-URL: "):
    assert line in meta, f"METADATA lacks {line!r}"
assert "License :: OSI Approved" not in meta  # PEP 639: the expression, not a classifier
entry = zipfile.ZipFile(wheel).read(f"claude_budget-{version}.dist-info/entry_points.txt").decode()
assert "claude-budget = budget_state.cli._cli:main" in entry and "claude-budget-hook = budget_state.hook:main" in entry
members = tarfile.open(sdist).getnames()
for n in ("LICENSE", "README.md", "pyproject.toml", "budget_state/pricing/prices.toml"):
    assert f"claude_budget-{version}/{n}" in members, f"sdist lacks {n}"
print(f"contents ok: {len(names)} files in the wheel, {len(members)} in the sdist")
PY

for artifact in "$wheel" "$sdist"; do
    venv=$work/venv-$(basename "$artifact")
    "$PYTHON" -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "$artifact" >"$work/pip.log" 2>&1 \
        || { cat "$work/pip.log"; exit 1; }
    bin=$venv/bin
    [ "$("$bin/claude-budget" --version)" = "claude-budget $version" ]
    [ "$("$bin/claude-budget-hook" --version)" = "claude-budget $version" ]
    project=$work/project-$(basename "$artifact")
    home=$work/home
    mkdir -p "$project" "$home"
    (
        cd "$project"
        export HOME=$home PATH="$bin:/usr/bin:/bin" CLAUDE_PROJECT_DIR=$project
        claude-budget install >/dev/null
        claude-budget doctor --json >"$work/doctor.json" || true
        "$venv/bin/python" - "$work/doctor.json" <<'PY'
import json, sys
checks = {c["check"]: c for c in json.load(open(sys.argv[1]))["checks"]}
assert checks["runnable"]["status"] == "ok", checks["runnable"]
assert checks["hooks"]["status"] == "ok", checks["hooks"]
PY
        line=$("$venv/bin/python" -c 'import json; print(json.load(open(".claude/settings.json"))["hooks"]["UserPromptSubmit"][0]["hooks"][0]["command"])')
        event=$(printf '{"session_id":"s","hook_event_name":"UserPromptSubmit","prompt":"/budget","cwd":"%s"}' "$project")
        reply=$(printf '%s' "$event" | sh -c "$line")
        case $reply in *'"decision": "block"'*'Token budgets'*) ;; *) echo "the hook did not answer /budget: $reply"; exit 1 ;; esac
        claude-budget uninstall >/dev/null
        [ ! -e .claude/settings.json ]
    )
    echo "smoke test ok: $(basename "$artifact") in a clean venv"
done
