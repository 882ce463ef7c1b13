#!/usr/bin/env bash
# Throwaway PostgreSQL and Redis servers for gcm-queue's server tests: installed from the
# distribution's packages if missing, started on 127.0.0.1 on free ports with data in a
# temporary directory, their URLs written to target/test-servers.env (which the tests read).
#
#   bash scripts/test-servers.sh start    # then: cargo test -p gcm-queue --features postgres,redis
#   bash scripts/test-servers.sh stop
set -euo pipefail
cd "$(dirname "$0")/.."
env_file=target/test-servers.env
state=target/test-servers.state

stop() {
  [[ -f $state ]] || return 0
  # shellcheck disable=SC1090
  source "$state"
  as_postgres "$PG_BIN/pg_ctl" -D "$PG_DATA" -m fast stop >/dev/null 2>&1 || true
  redis-cli -p "$REDIS_PORT" shutdown nosave >/dev/null 2>&1 || true
  rm -rf "$PG_DATA" "$REDIS_DIR" "$state" "$env_file"
}

# PostgreSQL refuses to run as root: as root, run it as the package's postgres user.
as_postgres() {
  if [[ $(id -u) == 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi
}

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

install_missing() {
  local missing=()
  compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || missing+=(postgresql)
  command -v redis-server >/dev/null || missing+=(redis-server)
  ((${#missing[@]})) || return 0
  echo "installing ${missing[*]} from the distribution's packages"
  local sudo=()
  [[ $(id -u) == 0 ]] || sudo=(sudo)
  export DEBIAN_FRONTEND=noninteractive
  "${sudo[@]}" apt-get update -qq
  "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  # The packages start their own servers on the default ports; ours need none of them.
  "${sudo[@]}" service redis-server stop >/dev/null 2>&1 || true
  "${sudo[@]}" service postgresql stop >/dev/null 2>&1 || true
}

start() {
  stop
  install_missing
  mkdir -p target
  PG_BIN=$(dirname "$(compgen -G "/usr/lib/postgresql/*/bin/initdb" | sort -V | tail -1)")
  PG_DATA=$(mktemp -d /tmp/gcm-queue-pg.XXXXXX)
  REDIS_DIR=$(mktemp -d /tmp/gcm-queue-redis.XXXXXX)
  PG_PORT=$(free_port)
  REDIS_PORT=$(free_port)
  [[ $(id -u) == 0 ]] && chown postgres "$PG_DATA"
  printf 'PG_BIN=%q\nPG_DATA=%q\nREDIS_DIR=%q\nPG_PORT=%q\nREDIS_PORT=%q\n' \
    "$PG_BIN" "$PG_DATA" "$REDIS_DIR" "$PG_PORT" "$REDIS_PORT" >"$state"

  as_postgres "$PG_BIN/initdb" -D "$PG_DATA" -U gcm --auth=trust >/dev/null
  as_postgres "$PG_BIN/pg_ctl" -D "$PG_DATA" -l "$PG_DATA/server.log" -w start \
    -o "-p $PG_PORT -k $PG_DATA -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200" >/dev/null
  as_postgres "$PG_BIN/createdb" -h 127.0.0.1 -p "$PG_PORT" -U gcm gcm_queue_test

  redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --save '' --appendonly no --dir "$REDIS_DIR" \
    --daemonize yes --logfile "$REDIS_DIR/server.log" --pidfile "$REDIS_DIR/redis.pid"
  for _ in $(seq 50); do
    redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && break
    sleep 0.1
  done
  redis-cli -p "$REDIS_PORT" ping >/dev/null

  cat >"$env_file" <<ENV
GCM_QUEUE_POSTGRES_URL=postgres://gcm@127.0.0.1:$PG_PORT/gcm_queue_test
GCM_QUEUE_REDIS_URL=redis://127.0.0.1:$REDIS_PORT/
ENV
  echo "PostgreSQL on 127.0.0.1:$PG_PORT, Redis on 127.0.0.1:$REDIS_PORT ($env_file)"
}

case "${1:-start}" in
  start) start ;;
  stop) stop ;;
  *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
