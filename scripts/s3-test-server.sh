#!/usr/bin/env bash
# A real S3 server for tests: a single-node Ceph RADOS Gateway (Debian's packages) on
# 127.0.0.1, with one monitor, one in-memory OSD, no auth between daemons, and an S3
# user with known test keys. Starts in about 15 s.
#
#   scripts/s3-test-server.sh start [DIR]   start it; prints the env to use on stdout
#   scripts/s3-test-server.sh stop [DIR]    stop it and remove DIR
#
# DIR (default /tmp/stowage-rgw) holds its config, data, logs and pid files. Ports are
# picked free at start. The packages are installed with apt-get when missing and we
# are root; otherwise the script stops and prints the command to run.
set -euo pipefail

cmd=${1:-}
dir=${2:-${STOWAGE_RGW_DIR:-/tmp/stowage-rgw}}
access_key=stowage-test-access-key
secret_key=stowage-test-secret-key-0123456789

log() { printf '[s3-test-server] %s\n' "$*" >&2; }

stop() {
  if [ -d "$dir/run" ]; then
    for pidfile in "$dir"/run/*.pid; do
      [ -f "$pidfile" ] || continue
      kill "$(cat "$pidfile")" 2>/dev/null || true
    done
    # Give the daemons a moment, then make sure they are gone.
    sleep 1
    for pidfile in "$dir"/run/*.pid; do
      [ -f "$pidfile" ] || continue
      kill -9 "$(cat "$pidfile")" 2>/dev/null || true
    done
  fi
  rm -rf "$dir"
}

free_port() {
  node -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'
}

wait_for() { # wait_for SECONDS DESCRIPTION COMMAND...
  local limit=$1 what=$2
  shift 2
  for _ in $(seq 1 $((limit * 5))); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 0.2
  done
  log "timed out after ${limit}s waiting for $what; logs are in $dir/log"
  tail -n 20 "$dir"/log/*.log >&2 || true
  return 1
}

ensure_packages() {
  local missing=()
  for bin in ceph-mon ceph-osd radosgw radosgw-admin monmaptool ceph; do
    command -v "$bin" >/dev/null 2>&1 || missing+=("$bin")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  local install='apt-get update && apt-get install -y --no-install-recommends ceph-mon ceph-osd radosgw ceph-common'
  if [ "$(id -u)" -ne 0 ]; then
    log "missing: ${missing[*]}. Install Ceph's packages as root first:"
    log "  sudo sh -c '$install'"
    exit 1
  fi
  log "installing Ceph packages (missing: ${missing[*]})"
  DEBIAN_FRONTEND=noninteractive sh -c "$install" >"${TMPDIR:-/tmp}/stowage-ceph-apt.log" 2>&1 || {
    log "apt-get failed; see ${TMPDIR:-/tmp}/stowage-ceph-apt.log"
    exit 1
  }
}

# One attempt at a fresh cluster. Every step is checked explicitly (set -e does not apply
# inside a function used as a condition), and a failing daemon's own words are shown.
start_once() {
  mkdir -p "$dir"/{mon,osd,run,log}
  local fsid mon_port rgw_port conf
  fsid=$(cat /proc/sys/kernel/random/uuid)
  mon_port=$(free_port)
  rgw_port=$(free_port)
  conf="$dir/ceph.conf"
  cat >"$conf" <<EOF
[global]
fsid = $fsid
mon host = v1:127.0.0.1:$mon_port
auth cluster required = none
auth service required = none
auth client required = none
ms bind msgr2 = false
osd objectstore = memstore
memstore device bytes = 8589934592
osd pool default size = 1
osd pool default min size = 1
mon allow pool size one = true
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
mon max pg per osd = 1000
osd crush chooseleaf type = 0
run dir = $dir/run
log file = $dir/log/\$name.log
admin socket = $dir/run/\$name.asok
pid file = $dir/run/\$name.pid
[mon.a]
mon data = $dir/mon
[osd.0]
osd data = $dir/osd
[client.rgw.a]
rgw frontends = beast endpoint=127.0.0.1:$rgw_port
# Data lives in RAM: reclaim deleted objects within seconds, not the default 2 hours.
rgw gc obj min wait = 5
rgw gc processor period = 10
EOF
  log "starting a monitor on 127.0.0.1:$mon_port"
  # --addv with an explicit v1 address: a plain --add on a non-default port records a
  # msgr2 address that this v1-only monitor never answers.
  local err="$dir/step.err"
  step() { "$@" >/dev/null 2>"$err" || { log "failed: $*"; grep -v '^$' "$err" | tail -n 5 >&2; return 1; }; }
  step monmaptool --create --addv a "[v1:127.0.0.1:$mon_port]" --fsid "$fsid" "$dir/monmap" || return 1
  step ceph-mon -c "$conf" --mkfs -i a --monmap "$dir/monmap" || return 1
  step ceph-mon -c "$conf" -i a || return 1
  log "starting an in-memory OSD"
  step ceph -c "$conf" --connect-timeout 20 osd create || return 1
  step ceph-osd -c "$conf" -i 0 --mkfs || return 1
  step ceph-osd -c "$conf" -i 0 || return 1
  wait_for 60 "the OSD to come up" sh -c "ceph -c '$conf' --connect-timeout 5 osd stat | grep -q '1 up'" || return 1
  log "starting the gateway on 127.0.0.1:$rgw_port"
  step radosgw -c "$conf" -n client.rgw.a || return 1
  wait_for 60 "the gateway to answer HTTP" node -e "fetch('http://127.0.0.1:$rgw_port/').then(()=>process.exit(0),()=>process.exit(1))" || return 1
  step radosgw-admin -c "$conf" user create --uid=stowage-test --display-name="Stowage tests" \
    --access-key="$access_key" --secret="$secret_key" || return 1
  log "ready"
  echo "STOWAGE_TEST_S3_ENDPOINT=http://127.0.0.1:$rgw_port"
  echo "STOWAGE_TEST_S3_ACCESS_KEY=$access_key"
  echo "STOWAGE_TEST_S3_SECRET_KEY=$secret_key"
  echo "STOWAGE_TEST_S3_REGION=us-east-1"
}

start() {
  ensure_packages
  for attempt in 1 2 3 4 5 6; do
    stop
    if start_once; then return 0; fi
    # Seen here in up to 1 start in 3: the new OSD is told "wrong fsid" by the monitor
    # (cause not found). A fresh cluster (new fsid, new ports) after a pause comes up.
    log "attempt $attempt failed; starting over with a fresh cluster"
    sleep 2
  done
  stop
  log "could not start Ceph RGW after 6 attempts"
  return 1
}

case "$cmd" in
  start) start ;;
  stop) stop ;;
  *)
    echo "usage: $0 start|stop [DIR]" >&2
    exit 2
    ;;
esac
