#!/usr/bin/env bash
# Set up a fresh checkout: a virtualenv with claude-budget, its test tools and the build front-end
# in .venv/, and the pinned Claude Code CLIs (the oldest supported and the current release, for
# the end-to-end tests and the demo) in node_modules/claude-code-<version>/. Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e '.[test,lint,build]'
# An editable install leaves compiling to the first import, which PYTHONDONTWRITEBYTECODE forbids:
# without this every hook process would compile the package from source again.
.venv/bin/python -m compileall -q budget_state
# tmux drives the interactive end-to-end tests; Debian's package, installed when we are root.
if ! command -v tmux >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    apt-get update -qq && apt-get install -y -qq tmux >/dev/null
fi
# PostgreSQL runs the team-budget tests (a throwaway cluster per test session); Debian's package.
if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 && ! command -v initdb >/dev/null 2>&1 \
    && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    apt-get update -qq && apt-get install -y -qq postgresql >/dev/null
fi
pins=$(grep -o '"claude-code-[0-9.]*"' package.json | tr -d '"')
missing=0
for pin in $pins; do [ -x "node_modules/$pin/bin/claude.exe" ] || missing=1; done
[ -x node_modules/.bin/tsc ] || missing=1  # typescript: scripts/lint.sh type-checks the mod
if [ "$missing" = 1 ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
    npm ci --no-audit --no-fund --loglevel=error
fi
versions=$(for pin in $pins; do "node_modules/$pin/bin/claude.exe" --version | cut -d' ' -f1; done | paste -sd' ')
echo "set up: .venv/ ($(.venv/bin/python --version)), Claude Code $versions"
