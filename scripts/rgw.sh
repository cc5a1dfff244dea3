#!/usr/bin/env bash
# Runs a throw-away single-node Ceph cluster (one mon, one OSD, radosgw) on 127.0.0.1 as a real
# S3-compatible store for tests and benchmarks. Everything lives in DIR; nothing is left running
# after `stop`. Facts behind each setting: ../shared/reference/ceph-rgw.md (Ceph 16, no cephx).
#
# Usage:
#   rgw.sh start DIR   start and wait until the bucket takes writes; prints KEY=VALUE lines
#                      (RGW_ENDPOINT, RGW_REGION, RGW_BUCKET, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
#                      RGW_STARTUP_MS) and writes them to DIR/rgw.env
#   rgw.sh stop DIR    kill the daemons started from DIR (radosgw and the OSD at once, then the mon)
#   rgw.sh stop-gateway DIR   kill -9 only radosgw (S3 goes away; the mon and OSD keep the data)
#   rgw.sh start-gateway DIR  start radosgw again on its port and wait until it answers
# Environment: RGW_PORT, RGW_MON_PORT (default: free ports), RGW_BUCKET (default: pullgate),
#   RGW_STORE=memstore|bluestore (default memstore: RAM, fastest start; bluestore: a sparse 10 GiB file),
#   RGW_TIMEOUT (seconds for each wait, default 60).
# Packages: ceph-mon ceph-osd radosgw ceph-common (scripts/install-test-deps.sh installs them).
set -euo pipefail

die() {
  echo "rgw.sh: $*" >&2
  exit 1
}

now_ms() { date +%s%3N; }

free_port() {
  node -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'
}

# wait_for SECONDS WHAT COMMAND...: retries COMMAND every 0.2 s; dies with the log tails when it never succeeds.
wait_for() {
  local seconds=$1 what=$2
  shift 2
  local deadline=$(($(date +%s) + seconds))
  until "$@" >/dev/null 2>&1; do
    if [ "$(date +%s)" -ge "$deadline" ]; then
      for log in "$dir"/log/*.log; do
        [ -f "$log" ] && { echo "--- $log" >&2; tail -n 15 "$log" >&2; }
      done
      die "timed out after ${seconds}s waiting for $what"
    fi
    sleep 0.2
  done
}

stop_cluster() {
  local dir=$1
  for name in rgw osd; do
    if [ -f "$dir/run/$name.pid" ]; then kill -9 "$(cat "$dir/run/$name.pid")" 2>/dev/null || true; fi
  done
  if [ -f "$dir/run/mon.pid" ]; then
    local pid
    pid=$(cat "$dir/run/mon.pid")
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -9 "$pid" 2>/dev/null || true
  fi
  rm -f "$dir"/run/*.pid
}

write_conf() {
  local store_lines
  if [ "$store" = bluestore ]; then
    store_lines="osd objectstore = bluestore
bluestore block create = true
bluestore block size = 10737418240"
  else
    store_lines="osd objectstore = memstore
memstore device bytes = 4294967296"
  fi
  cat >"$conf" <<EOF
[global]
fsid = $fsid
mon host = [v2:127.0.0.1:$mon_port]
mon initial members = a
public addr = 127.0.0.1
cluster addr = 127.0.0.1
ms bind msgr1 = false
ms bind port min = $ms_min
ms bind port max = $ms_max
auth cluster required = none
auth service required = none
auth client required = none
ms mon client mode = crc
ms mon service mode = crc
ms mon cluster mode = crc
ms client mode = crc
ms service mode = crc
ms cluster mode = crc
run dir = $dir/run
admin socket = $dir/run/\$cluster-\$name.asok
pid file = $dir/run/\$type.pid
log file = $dir/log/\$name.log
mon cluster log file = $dir/log/cluster.log
keyring = $dir/keyring
crash dir = $dir/crash
tmp dir = $dir/tmp
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
osd crush chooseleaf type = 0
mon allow pool size one = true
mon allow pool delete = true
paxos propose interval = 0.1
osd data = $dir/osd
$store_lines
mon data = $dir/mon
[client.rgw]
rgw frontends = beast endpoint=127.0.0.1:$rgw_port
rgw data = $dir/rgw
pid file = $dir/run/rgw.pid
EOF
}

# s3 METHOD PATH [curl args...]: a SigV4-signed request to the gateway.
s3() {
  local method=$1 key=$2
  shift 2
  curl -sS -f -o /dev/null -X "$method" --aws-sigv4 "aws:amz:us-east-1:s3" --user "$access_key:$secret_key" \
    -H 'x-amz-content-sha256: UNSIGNED-PAYLOAD' "$@" "http://127.0.0.1:$rgw_port/$key"
}

start_cluster() {
  local started
  started=$(now_ms)
  for tool in ceph-mon ceph-osd radosgw radosgw-admin ceph ceph-authtool monmaptool curl; do
    command -v "$tool" >/dev/null 2>&1 || die "$tool not found; run: bash scripts/install-test-deps.sh (Debian packages ceph-mon ceph-osd radosgw ceph-common)"
  done
  [ -e "$dir/ceph.conf" ] && die "$dir already holds a cluster; stop it and use a fresh directory"
  mkdir -p "$dir"/{run,log,crash,tmp,mon,osd,rgw}
  store=${RGW_STORE:-memstore}
  timeout=${RGW_TIMEOUT:-60}
  mon_port=${RGW_MON_PORT:-$(free_port)}
  rgw_port=${RGW_PORT:-$(free_port)}
  ms_min=$((20000 + RANDOM % 40000))
  ms_max=$((ms_min + 99))
  fsid=$(uuidgen)
  bucket=${RGW_BUCKET:-pullgate}
  access_key=$(head -c 10 /dev/urandom | od -An -tx1 | tr -d ' \n' | tr a-f A-F)
  secret_key=$(head -c 20 /dev/urandom | od -An -tx1 | tr -d ' \n')
  conf=$dir/ceph.conf
  write_conf
  # Any failure from here on (a die included) takes down whatever was started.
  trap 'stop_cluster "$dir"' EXIT

  ceph-authtool --create-keyring "$dir/mon.keyring" --gen-key -n mon. --cap mon 'allow *' >/dev/null
  monmaptool --create --fsid "$fsid" --addv a "[v2:127.0.0.1:$mon_port]" "$dir/monmap" >/dev/null
  ceph-mon -c "$conf" --mkfs -i a --monmap "$dir/monmap" --keyring "$dir/mon.keyring"
  ceph-mon -c "$conf" -i a </dev/null >>"$dir/log/daemons.out" 2>&1
  wait_for "$timeout" "the monitor's quorum" timeout 5 ceph -c "$conf" quorum_status

  local uuid id
  uuid=$(uuidgen)
  id=$(ceph -c "$conf" osd new "$uuid")
  [ "$id" = 0 ] || die "ceph osd new answered '$id', expected 0"
  ceph-osd -c "$conf" -i 0 --mkfs --osd-uuid "$uuid" >"$dir/log/osd-mkfs.out" 2>&1 || { cat "$dir/log/osd-mkfs.out" >&2; die "ceph-osd --mkfs failed"; }
  ceph-osd -c "$conf" -i 0 </dev/null >>"$dir/log/daemons.out" 2>&1
  wait_for "$timeout" "osd.0 up" bash -c "ceph -c '$conf' osd dump 2>/dev/null | grep -q '^osd.0 up'"

  radosgw -c "$conf" -n client.rgw </dev/null >>"$dir/log/daemons.out" 2>&1
  wait_for "$timeout" "radosgw on 127.0.0.1:$rgw_port" curl -sf -o /dev/null "http://127.0.0.1:$rgw_port/"
  radosgw-admin -c "$conf" user create --uid=pullgate --display-name=pullgate \
    --access-key="$access_key" --secret-key="$secret_key" >/dev/null
  wait_for "$timeout" "bucket $bucket" s3 PUT "$bucket"
  # The data pool is created on the first write; take that pause here, not in the first test.
  wait_for "$timeout" "a first write" s3 PUT "$bucket/.warm-up" --data-binary warm-up
  s3 DELETE "$bucket/.warm-up"
  trap - EXIT

  local elapsed=$(($(now_ms) - started))
  {
    echo "RGW_ENDPOINT=http://127.0.0.1:$rgw_port"
    echo "RGW_REGION=us-east-1"
    echo "RGW_BUCKET=$bucket"
    echo "AWS_ACCESS_KEY_ID=$access_key"
    echo "AWS_SECRET_ACCESS_KEY=$secret_key"
    echo "RGW_STARTUP_MS=$elapsed"
  } | tee "$dir/rgw.env"
}

# stop_gateway DIR: kills radosgw alone, at once, as a crash would.
stop_gateway() {
  local dir=$1
  [ -f "$dir/run/rgw.pid" ] || die "no radosgw pid file in $dir/run"
  local pid
  pid=$(cat "$dir/run/rgw.pid")
  kill -9 "$pid" 2>/dev/null || true
  for _ in $(seq 1 50); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  rm -f "$dir/run/rgw.pid"
}

# start_gateway DIR: starts radosgw again with the cluster's config and waits until its port answers.
start_gateway() {
  local dir=$1
  conf=$dir/ceph.conf
  [ -f "$conf" ] || die "$dir holds no cluster (no ceph.conf)"
  local port
  port=$(sed -n 's/^rgw frontends = beast endpoint=127\.0\.0\.1:\([0-9]*\)$/\1/p' "$conf")
  [ -n "$port" ] || die "no radosgw port in $conf"
  radosgw -c "$conf" -n client.rgw </dev/null >>"$dir/log/daemons.out" 2>&1
  wait_for "${RGW_TIMEOUT:-60}" "radosgw on 127.0.0.1:$port" curl -sf -o /dev/null "http://127.0.0.1:$port/"
}

[ $# -eq 2 ] || die "usage: rgw.sh start|stop|stop-gateway|start-gateway DIR"
dir=$(realpath -m "$2")
case "$1" in
  start) start_cluster ;;
  stop) stop_cluster "$dir" ;;
  stop-gateway) stop_gateway "$dir" ;;
  start-gateway) start_gateway "$dir" ;;
  *) die "usage: rgw.sh start|stop|stop-gateway|start-gateway DIR" ;;
esac
