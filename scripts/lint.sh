#!/usr/bin/env bash
# Static checks of the package: ruff (lint + format), strict mypy, and the import-linter contracts
# of pyproject.toml (the layers of docs/architecture.md: no backwards arrow, no cycle).
set -euo pipefail
cd "$(dirname "$0")/.."
.venv/bin/ruff check budget_state
.venv/bin/ruff format --check budget_state
.venv/bin/mypy
.venv/bin/lint-imports --no-cache
