#!/usr/bin/env bash
# Run every test: unit, property and end-to-end (the real Claude Code CLI against a local fake API).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/python -m pytest "$@"
