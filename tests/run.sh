#!/usr/bin/env bash
# Set up everything the test suite needs on a fresh Debian machine, then run it.
# Usage: ./tests/run.sh [pytest args...]
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"

# System packages: a real PostgreSQL server for the Postgres tests, Debian's
# Chromium for the browser tests (Playwright drives it; no download), Slurm
# with munge for the one-node cluster the Slurm pilot tests start, Node.js to run
# FLE's own leaderboard script on our files, and chattr (e2fsprogs) to make the
# control store read-only in the store-fault tests.
if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || [ ! -x /usr/bin/chromium ] \
  || [ ! -x /usr/sbin/slurmctld ] || [ ! -x /usr/sbin/munged ] || ! command -v node >/dev/null 2>&1 \
  || ! command -v chattr >/dev/null 2>&1; then
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -q
  $SUDO apt-get install -y -q postgresql chromium slurm-wlm munge nodejs e2fsprogs
fi

command -v uv >/dev/null 2>&1 || python3 -m pip install -q "uv>=0.13"
# Use the machine's Python 3.11+; never try to download an interpreter (offline machines).
export UV_PYTHON_DOWNLOADS=never

uv sync --frozen -q
# Lint, format and types first: the test command fails on any of them.
uv run --frozen ruff check .
uv run --frozen ruff format --check .
uv run --frozen mypy
# Two workers by default: most tests wait on servers, browsers and subprocesses, not
# the CPU. Whole files go to one worker, so a module's fixtures (an app server, a
# browser, the Slurm cluster) are built once, as they are written; files are handed
# out in collection order (conftest puts the slow ones first), not by test count.
# FLE_TEST_WORKERS=0 runs serially.
exec uv run --frozen pytest -n "${FLE_TEST_WORKERS:-2}" --dist loadfile --no-loadscope-reorder "$@"
