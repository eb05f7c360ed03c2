#!/usr/bin/env bash
# Static checks of the package: ruff (lint + format), strict mypy, the import-linter contracts of
# pyproject.toml (the layers of docs/architecture.md: no backwards arrow, no cycle), and tsc on the mod
# (plugin/hooks/claude-budget.mod.ts) against the declarations Claude Code 2.1.332 writes for it.
set -euo pipefail
cd "$(dirname "$0")/.."
.venv/bin/ruff check budget_state
# the tests and benchmarks: pyflakes only (an undefined name, an unused variable), not the style
.venv/bin/ruff check --select F tests benchmarks
.venv/bin/ruff format --check budget_state
.venv/bin/mypy
.venv/bin/lint-imports --no-cache
# TSC: another tsc to use (default: the one package.json pins, in node_modules/ after npm ci)
tsc=${TSC:-node_modules/.bin/tsc}
if [ ! -x "$tsc" ]; then
    echo "Error: $tsc not found: run npm ci (package.json pins typescript) or set TSC=/path/to/tsc" >&2
    exit 1
fi
"$tsc" -p tsconfig.mod.json
cmp -s plugin/hooks/claude-budget.mod.ts budget_state/claude-budget.mod.ts || {
    echo "Error: plugin/hooks/claude-budget.mod.ts and budget_state/claude-budget.mod.ts differ: they are one mod (the plugin's, and the one install writes) — copy one over the other" >&2
    exit 1
}
