#!/usr/bin/env bash
# Runs `zooctl bench` against a standalone Apache ZooKeeper 3.8 (Debian's `zookeeper`) and a
# standalone Zooid on this machine, one server at a time, both on loopback with their data on
# the same disk. ZooKeeper gets a full warm-up run first (JIT). Prints both reports.
# Usage: scripts/bench-vs-zookeeper.sh [extra zooctl bench flags...]
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -q -p zooid-server -p zooid-ctl
ZOOCTL=target/release/zooctl
WORK=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$WORK"' EXIT
ZK_PORT=22182
ZD_PORT=22181

wait_port() { for _ in $(seq 100); do "$ZOOCTL" -s "127.0.0.1:$1" word srvr 2>/dev/null | grep -q Mode && return 0; sleep 0.2; done; echo "server on $1 did not start" >&2; exit 1; }
rss() { grep VmHWM "/proc/$1/status" | awk '{printf "%.0f MiB", $2/1024}'; }

run_suite() { # port label pid
  for reads in 100 0; do
    echo "== $2, ${reads}% reads"
    "$ZOOCTL" -s "127.0.0.1:$1" bench --sessions 32 --depth 4 --value-size 1024 --read-percent "$reads" --warmup 3 --duration 10 "${@:4}"
  done
  echo "== $2 peak RSS: $(rss "$3")"
}

mkdir -p "$WORK/zk/data"
cat > "$WORK/zk/zoo.cfg" <<CFG
tickTime=2000
dataDir=$WORK/zk/data
clientPort=$ZK_PORT
clientPortAddress=127.0.0.1
admin.enableServer=false
4lw.commands.whitelist=*
maxClientCnxns=0
CFG
java -cp /etc/zookeeper/conf:/usr/share/java/zookeeper.jar org.apache.zookeeper.server.ZooKeeperServerMain "$WORK/zk/zoo.cfg" >/dev/null 2>&1 &
ZK_PID=$!
wait_port $ZK_PORT
echo "== ZooKeeper warm-up run (not recorded)"
"$ZOOCTL" -s 127.0.0.1:$ZK_PORT bench --read-percent 50 --warmup 0 --duration 10 "$@" >/dev/null
run_suite $ZK_PORT "Apache ZooKeeper $(dpkg-query -W -f '${Version}' zookeeper)" $ZK_PID "$@"
kill $ZK_PID; wait $ZK_PID 2>/dev/null || true

target/release/zooid --client-addr 127.0.0.1:$ZD_PORT --data-dir "$WORK/zooid" >/dev/null 2>&1 &
ZD_PID=$!
wait_port $ZD_PORT
run_suite $ZD_PORT "Zooid $(git describe --always --dirty)" $ZD_PID "$@"
