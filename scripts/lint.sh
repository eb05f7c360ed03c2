#!/usr/bin/env bash
# Static checks of the package: ruff (lint + format) and strict mypy.
set -euo pipefail
cd "$(dirname "$0")/.."
.venv/bin/ruff check budget_state
.venv/bin/ruff format --check budget_state
.venv/bin/mypy
