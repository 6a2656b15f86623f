#!/usr/bin/env bash
# A real Redis for tests: Debian's redis-server on 127.0.0.1 only, on a free port, with
# the append-only file on (appendfsync everysec), as the README advises for quotas.
#
#   scripts/redis-test-server.sh start [DIR] [PORT]   start it; prints the env to use on stdout
#   scripts/redis-test-server.sh stop [DIR]           stop it and remove DIR
#
# DIR (default /tmp/stowage-redis) holds its config, data, log and pid file. PORT is
# picked free unless given (a test restarting its own server passes the old one). The
# package is installed with apt-get when missing and we are root; otherwise the script
# stops and prints the command to run.
set -euo pipefail

cmd=${1:-}
dir=${2:-${STOWAGE_REDIS_DIR:-/tmp/stowage-redis}}
port=${3:-}

log() { printf '[redis-test-server] %s\n' "$*" >&2; }

stop() {
  if [ -f "$dir/redis.pid" ]; then
    local pid
    pid=$(cat "$dir/redis.pid")
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -9 "$pid" 2>/dev/null || true
  fi
  rm -rf "$dir"
}

free_port() {
  node -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'
}

ensure_package() {
  command -v redis-server >/dev/null 2>&1 && command -v redis-cli >/dev/null 2>&1 && return 0
  local install='apt-get update && apt-get install -y --no-install-recommends redis-server'
  if [ "$(id -u)" -ne 0 ]; then
    log "redis-server is missing. Install it as root first:"
    log "  sudo sh -c '$install'"
    exit 1
  fi
  log "installing redis-server"
  DEBIAN_FRONTEND=noninteractive sh -c "$install" >"${TMPDIR:-/tmp}/stowage-redis-apt.log" 2>&1 || {
    log "apt-get failed; see ${TMPDIR:-/tmp}/stowage-redis-apt.log"
    exit 1
  }
}

start() {
  ensure_package
  # The data stays: a restart on the same DIR and PORT finds what the append-only file kept.
  mkdir -p "$dir"
  [ -n "$port" ] || port=$(free_port)
  cat >"$dir/redis.conf" <<CONF
bind 127.0.0.1
protected-mode yes
port $port
dir $dir
daemonize yes
pidfile $dir/redis.pid
logfile $dir/redis.log
appendonly yes
appendfsync everysec
save ""
CONF
  redis-server "$dir/redis.conf" || { log "redis-server failed to start; see $dir/redis.log"; exit 1; }
  for _ in $(seq 1 50); do
    if redis-cli -h 127.0.0.1 -p "$port" ping 2>/dev/null | grep -q PONG; then
      log "ready on 127.0.0.1:$port"
      echo "STOWAGE_TEST_REDIS_URL=redis://127.0.0.1:$port"
      return 0
    fi
    sleep 0.1
  done
  log "redis-server did not answer on 127.0.0.1:$port within 5 s; its log:"
  tail -n 20 "$dir/redis.log" >&2 || true
  exit 1
}

case "$cmd" in
  start) start ;;
  stop) stop ;;
  *)
    echo "usage: $0 start [DIR] [PORT] | stop [DIR]" >&2
    exit 2
    ;;
esac
