#!/usr/bin/env bash
# `make run`: migrate, demo accounts and project, Redis (if none answers), a Celery worker and the
# web server on http://127.0.0.1:8000. Ctrl-C stops everything this script started.
set -euo pipefail
cd "$(dirname "$0")/.."
export REDIS_URL=${REDIS_URL:-redis://127.0.0.1:6379/0}
# Development: DEBUG on (it defaults to off), and a key kept in the data folder so that sign-ins
# survive a restart (the settings have no fixed key).
export DEBUG=${DEBUG:-1}
data_dir=${XRFWEB_DATA_DIR:-var}
mkdir -p "$data_dir"
[ -s "$data_dir/secret_key" ] || (umask 077 && head -c 48 /dev/urandom | base64 -w0 > "$data_dir/secret_key")
export SECRET_KEY=${SECRET_KEY:-$(cat "$data_dir/secret_key")}
prefix=${XRFWEB_QUEUE_PREFIX:-}
source scripts/redis.sh

pids=()
stop_all() {
  trap - EXIT INT TERM
  [ ${#pids[@]} -gt 0 ] && kill "${pids[@]}" 2>/dev/null || true
  wait 2>/dev/null || true
  echo "Stopped."
}
trap stop_all EXIT INT TERM

ensure_redis
[ -n "$REDIS_STARTED_PID" ] && pids+=("$REDIS_STARTED_PID")

.venv/bin/python manage.py migrate --noinput
.venv/bin/python manage.py demo_setup

.venv/bin/celery -A xrfweb worker -Q "${prefix}gpu,${prefix}default" -c 1 -l INFO &
pids+=($!)
.venv/bin/python manage.py runserver 127.0.0.1:8000 --noreload &
pids+=($!)
echo "xrfweb: http://127.0.0.1:8000 (health: /healthz). Ctrl-C stops it all."
wait -n  # if any of them stops, stop the rest
