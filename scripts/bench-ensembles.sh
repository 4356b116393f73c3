#!/usr/bin/env bash
# Runs `zooctl bench` against a 3-server Apache ZooKeeper 3.8 ensemble (Debian's `zookeeper`)
# and a 3-server Zooid ensemble on this machine, all six servers on loopback with their data on
# the same disk, each ensemble started from zoo.cfg files of the same form (one per server).
#
# The load generator spreads its sessions over the three servers of each ensemble (as clients
# given the whole connection string do), so reads are served by all three and writes are
# forwarded to the leader. Both ensembles run for the whole script and the loads alternate
# between them, round after round (ZooKeeper first in odd rounds, Zooid first in even ones).
# ZooKeeper gets a 10 s warm-up run (JIT) first. Prints every run, the ratio of each round,
# then the median ops/s and p99 per ensemble and load, and the ratio of the medians.
#
# Usage: scripts/bench-ensembles.sh [rounds (default 3)] [extra zooctl bench flags...]
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${1:-3}
shift || true
cargo build --release -q -p zooid-node -p zooid-ctl
ZOOCTL=target/release/zooctl
source scripts/bench-common.sh
WORK=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$WORK"' EXIT

# Ports: ZooKeeper 2318x (client) 2328x/2338x (quorum/election); Zooid 2418x/2428x/2438x.
rss() { # pids...
  local total=0
  for p in "$@"; do total=$((total + $(awk '/VmHWM/ {print $2}' "/proc/$p/status"))); done
  echo "$((total / 1024)) MiB"
}

ZK_BASE=23180
ZD_BASE=24180
write_cfgs "$WORK/zk" $ZK_BASE
write_cfgs "$WORK/zooid" $ZD_BASE
ZK_PIDS=()
ZD_PIDS=()
for i in 1 2 3; do
  java -cp /etc/zookeeper/conf:/usr/share/java/zookeeper.jar \
    org.apache.zookeeper.server.quorum.QuorumPeerMain "$WORK/zk/zoo$i.cfg" >/dev/null 2>&1 &
  ZK_PIDS+=($!)
  target/release/zooid --config "$WORK/zooid/zoo$i.cfg" >/dev/null 2>&1 &
  ZD_PIDS+=($!)
done
wait_ensemble $ZK_BASE
wait_ensemble $ZD_BASE
ZK="$(servers $ZK_BASE)"
ZD="$(servers $ZD_BASE)"
ZK_NAME="ZooKeeper $(dpkg-query -W -f '${Version}' zookeeper) x3"
ZD_NAME="Zooid $(git describe --always --dirty) x3"
echo "== ZooKeeper warm-up run (not recorded)"
"$ZOOCTL" -s "$ZK" bench --read-percent 50 --warmup 0 --duration 10 "$@" >/dev/null

RESULTS="$WORK/results"
run() { # servers label reads round
  local out
  out=$(bench_run "$1" "$3" "${@:5}")
  echo "== round $4, $2, $3% reads"
  echo "$out" | tail -n +2
  echo "$2|$3|$(echo "$out" | awk '/^ops\/s/ {print $2 "|" $7}')|$4" >> "$RESULTS"
}

for round in $(seq "$ROUNDS"); do
  for reads in 100 0; do
    if (( round % 2 )); then
      run "$ZK" "$ZK_NAME" $reads "$round" "$@"
      run "$ZD" "$ZD_NAME" $reads "$round" "$@"
    else
      run "$ZD" "$ZD_NAME" $reads "$round" "$@"
      run "$ZK" "$ZK_NAME" $reads "$round" "$@"
    fi
  done
done
echo "== peak RSS of the three servers: $ZK_NAME $(rss "${ZK_PIDS[@]}"), $ZD_NAME $(rss "${ZD_PIDS[@]}")"

echo "== Zooid / ZooKeeper per round (ops/s)"
for reads in 100 0; do
  awk -F'|' -v zkn="$ZK_NAME" -v zdn="$ZD_NAME" -v r=$reads '
    $2==r && $1==zkn {zk[$5]=$3} $2==r && $1==zdn {zd[$5]=$3}
    END {printf "%3d%% reads:", r; for (i=1; i in zk; i++) printf " %.2fx", zd[i]/zk[i]; print ""}' "$RESULTS"
done

echo "== medians over $ROUNDS rounds"
for reads in 100 0; do
  zk=$(awk -F'|' -v n="$ZK_NAME" -v r=$reads '$1==n && $2==r {print $3}' "$RESULTS" | median)
  zd=$(awk -F'|' -v n="$ZD_NAME" -v r=$reads '$1==n && $2==r {print $3}' "$RESULTS" | median)
  zkp=$(awk -F'|' -v n="$ZK_NAME" -v r=$reads '$1==n && $2==r {print $4}' "$RESULTS" | median)
  zdp=$(awk -F'|' -v n="$ZD_NAME" -v r=$reads '$1==n && $2==r {print $4}' "$RESULTS" | median)
  awk -v r=$reads -v zk="$zk" -v zd="$zd" -v zkp="$zkp" -v zdp="$zdp" \
    'BEGIN {printf "%3d%% reads: ZooKeeper %.0f ops/s (p99 %.3f ms), Zooid %.0f ops/s (p99 %.3f ms), ratio %.2fx\n", r, zk, zkp, zd, zdp, zd/zk}'
done
