#!/usr/bin/env bash
# Set up everything the test suite needs on a fresh Debian machine, then run it.
# Usage: ./tests/run.sh [pytest args...]
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"

# System packages: a real PostgreSQL server for the Postgres tests, and
# Debian's Chromium for the browser tests (Playwright drives it; no download).
if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || [ ! -x /usr/bin/chromium ]; then
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -q
  $SUDO apt-get install -y -q postgresql chromium
fi

command -v uv >/dev/null 2>&1 || python3 -m pip install -q "uv>=0.13"
# Use the machine's Python 3.11+; never try to download an interpreter (offline machines).
export UV_PYTHON_DOWNLOADS=never

uv sync --frozen -q
# Lint, format and types first: the test command fails on any of them.
uv run --frozen ruff check .
uv run --frozen ruff format --check .
uv run --frozen mypy
exec uv run --frozen pytest "$@"
