# Sourced by run.sh and test.sh: make sure a Redis answers on REDIS_URL, starting one if needed.
# Sets REDIS_STARTED_PID when it started one (run.sh stops it on exit).
redis_answers() {
  .venv/bin/python - "$REDIS_URL" <<'PY' >/dev/null 2>&1
import sys, redis
redis.Redis.from_url(sys.argv[1], socket_connect_timeout=1).ping()
PY
}

ensure_redis() {
  REDIS_STARTED_PID=""
  redis_answers && return 0
  if ! command -v redis-server >/dev/null; then
    echo "Installing Debian's redis-server..."
    apt-get update -qq && apt-get install -y -qq redis-server >/dev/null
  fi
  local hostport host port
  hostport=$(.venv/bin/python -c "from urllib.parse import urlsplit as u; p=u('$REDIS_URL'); print(p.hostname or '127.0.0.1', p.port or 6379)")
  read -r host port <<<"$hostport"
  echo "Starting Redis on $host:$port (keeps nothing on disk)"
  redis-server --bind "$host" --port "$port" --save "" --appendonly no --loglevel warning &
  REDIS_STARTED_PID=$!
  for _ in $(seq 50); do redis_answers && return 0; sleep 0.2; done
  echo "Redis did not start on $host:$port" >&2
  return 1
}
