#!/usr/bin/env bash
# Runs `zooctl bench` against a standalone Apache ZooKeeper 3.8 (Debian's `zookeeper`) and a
# standalone Zooid on this machine, both on loopback with their data on the same disk.
#
# Both servers run for the whole script and the loads alternate between them, round after
# round (ZooKeeper first in odd rounds, Zooid first in even ones), so that a slow minute of the
# machine's disk or CPU falls on both sides instead of deciding the ratio. ZooKeeper gets a
# 10 s warm-up run (JIT) first. Prints every run, the ratio of each round, then the median per
# server and load and the ratio of the medians.
#
# Usage: scripts/bench-vs-zookeeper.sh [rounds (default 3)] [extra zooctl bench flags...]
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${1:-3}
shift || true
cargo build --release -q -p zooid-node -p zooid-ctl
ZOOCTL=target/release/zooctl
WORK=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$WORK"' EXIT
ZK_PORT=22182
ZD_PORT=22181

source scripts/bench-common.sh
rss() { grep VmHWM "/proc/$1/status" | awk '{printf "%.0f MiB", $2/1024}'; }

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
target/release/zooid --client-addr 127.0.0.1:$ZD_PORT --admin-enabled false --data-dir "$WORK/zooid" >/dev/null 2>&1 &
ZD_PID=$!
wait_port $ZK_PORT
wait_port $ZD_PORT
ZK_NAME="ZooKeeper $(dpkg-query -W -f '${Version}' zookeeper)"
ZD_NAME="Zooid $(git describe --always --dirty)"
echo "== ZooKeeper warm-up run (not recorded)"
"$ZOOCTL" -s 127.0.0.1:$ZK_PORT bench --read-percent 50 --warmup 0 --duration 10 "$@" >/dev/null

RESULTS="$WORK/results"
run() { # port label reads round
  local out
  out=$(bench_run "127.0.0.1:$1" "$3" "${@:5}")
  echo "== round $4, $2, $3% reads"
  echo "$out" | tail -n +2
  echo "$2|$3|$(echo "$out" | awk '/^ops\/s/ {print $2}')|$4" >> "$RESULTS"
}

for round in $(seq "$ROUNDS"); do
  for reads in 100 0; do
    if (( round % 2 )); then
      run $ZK_PORT "$ZK_NAME" $reads "$round" "$@"
      run $ZD_PORT "$ZD_NAME" $reads "$round" "$@"
    else
      run $ZD_PORT "$ZD_NAME" $reads "$round" "$@"
      run $ZK_PORT "$ZK_NAME" $reads "$round" "$@"
    fi
  done
done
echo "== peak RSS: $ZK_NAME $(rss $ZK_PID), $ZD_NAME $(rss $ZD_PID)"

echo "== Zooid / ZooKeeper per round"
for reads in 100 0; do
  awk -F'|' -v zkn="$ZK_NAME" -v zdn="$ZD_NAME" -v r=$reads '
    $2==r && $1==zkn {zk[$4]=$3} $2==r && $1==zdn {zd[$4]=$3}
    END {printf "%3d%% reads:", r; for (i=1; i in zk; i++) printf " %.2fx", zd[i]/zk[i]; print ""}' "$RESULTS"
done

echo "== medians over $ROUNDS rounds (ops/s)"
for reads in 100 0; do
  zk=$(awk -F'|' -v n="$ZK_NAME" -v r=$reads '$1==n && $2==r {print $3}' "$RESULTS" | median)
  zd=$(awk -F'|' -v n="$ZD_NAME" -v r=$reads '$1==n && $2==r {print $3}' "$RESULTS" | median)
  awk -v r=$reads -v zk="$zk" -v zd="$zd" \
    'BEGIN {printf "%3d%% reads: ZooKeeper %.0f, Zooid %.0f, ratio %.2fx\n", r, zk, zd, zd/zk}'
done
