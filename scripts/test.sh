#!/usr/bin/env bash
# `make test`: what the tests need (Redis, Debian's Chromium), then every test with pytest.
# Uses DATABASE_URL when set (CI: PostgreSQL), else SQLite. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
export REDIS_URL=${REDIS_URL:-redis://127.0.0.1:6379/0}
export DEBUG=1  # the tests run the development settings (DEBUG defaults to off)
source scripts/redis.sh

if [ ! -x /usr/bin/chromium ]; then
  echo "Installing Debian's chromium for the browser tests..."
  apt-get update -qq && apt-get install -y -qq chromium >/dev/null
fi
ensure_redis
trap '[ -n "$REDIS_STARTED_PID" ] && kill "$REDIS_STARTED_PID" 2>/dev/null || true' EXIT

# pytest exits 5 when it ran no test: that is a failure too, never a pass.
unset DJANGO_SETTINGS_MODULE  # tests/conftest.py sets it after isolating the session
# Two test processes (pytest-xdist), each isolated like a session of its own (tests/conftest.py):
# most tests wait on a child process (CLI, worker, browser), so two keep both cores busy.
# --dist loadfile keeps a file's tests, and its module fixtures (workers, browser), in one process.
# Arguments to this script come last and win: `bash scripts/test.sh -n 0` runs in one process.
.venv/bin/python -m pytest -n 2 --dist loadfile "$@"
