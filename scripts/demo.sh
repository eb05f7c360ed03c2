#!/usr/bin/env bash
# Set up, then show budgets working in the real Claude Code CLI (against a local stand-in API).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/python scripts/demo.py "$@"
