#!/usr/bin/env bash
# The scale benchmark: a 3-server ensemble on this machine (Apache ZooKeeper 3.8, Debian's
# `zookeeper`, and Zooid, one after the other, from zoo.cfg files of the same form), loaded as
# a service registry is:
#
# 1. S sessions (4 s timeout) each register an ephemeral node (`zooctl scale-register`, in
#    processes of at most 9,000 sessions: this machine allows 20,000 file descriptors a
#    process), then keep their sessions alive as ZooKeeper's clients do, resuming them on
#    another server when a connection is lost;
# 2. W watchers set a data watch on each of N nodes, then one setData per node fires them all
#    (`zooctl scale-watch`);
# 3. the registering processes are killed (SIGKILL), and every server is polled until it holds
#    none of their ephemerals.
#
# Reported per ensemble: registration rate; RSS (summed over the three servers) per session
# and per watch; watches set and notifications delivered per second; sessions lost while their
# clients were alive (must be 0; with the registering processes' longest stall, since a
# client starved of CPU for its whole timeout was silent, whatever the servers did); leader changes during the run (must be 0; `srvr` sampled
# every 0.5 s); the time from the kill until every server has dropped the ephemerals; and the
# time from the kill until every server takes a new session.
#
# Usage: scripts/bench-scale.sh [sessions (20000)] [watchers (200)] [nodes (5000)]
#                               [zookeeper|zooid|both (both)]
# ZOOID=path/to/zooid runs another build of the server (an older commit's, say), ZOOCTL= another
# build of the load generator. KEEP=1 keeps the servers' and clients' logs (the directory is
# printed).
set -euo pipefail
cd "$(dirname "$0")/.."
SESSIONS=${1:-20000}
WATCHERS=${2:-200}
NODES=${3:-5000}
ONLY=${4:-both}
PER_PROCESS=9000
TIMEOUT_MS=4000
cargo build --release -q -p zooid-node -p zooid-ctl
ZOOCTL=${ZOOCTL:-target/release/zooctl}
source scripts/bench-common.sh
WORK=$(mktemp -d)
trap 'kill -9 $(jobs -p) 2>/dev/null || true; wait 2>/dev/null || true; if [ -n "${KEEP:-}" ]; then echo "kept: $WORK" >&2; else rm -rf "$WORK"; fi' EXIT

rss_kib() { # pids...: current RSS summed, KiB
  local total=0
  for p in "$@"; do total=$((total + $(awk '/VmRSS/ {print $2}' "/proc/$p/status"))); done
  echo "$total"
}
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN {printf "%.2f", b - a}'; }
# Which server leads, every 0.5 s, one line per change, into $1, until killed.
sample_leader() { # file base
  local last=""
  while true; do
    local lead=""
    for i in 1 2 3; do
      if "$ZOOCTL" -s "127.0.0.1:$(($2 + i))" word srvr 2>/dev/null | grep -q '^Mode: leader'; then
        lead=$i
      fi
    done
    if [ -n "$lead" ] && [ "$lead" != "$last" ]; then echo "$lead" >> "$1"; last=$lead; fi
    sleep 0.5
  done
}
# Seconds until every server answers `stat` of /zooctl-scale/reg with no children (each stat
# opens a new session, so it also shows that the server takes sessions); 300 at the most.
wait_dropped() { # base kill_time
  for _ in $(seq 1500); do
    local left=0
    for i in 1 2 3; do
      n=$("$ZOOCTL" -s "127.0.0.1:$(($1 + i))" stat /zooctl-scale/reg 2>/dev/null | awk '/numChildren/ {print $3}')
      if [ "${n:-x}" != 0 ]; then left=1; fi
    done
    [ $left = 0 ] && { since "$2"; return 0; }
    sleep 0.2
  done
  echo "not within 300 s"
}
wait_serving() { # base kill_time
  for _ in $(seq 1500); do
    local ok=0
    for i in 1 2 3; do
      "$ZOOCTL" -s "127.0.0.1:$(($1 + i))" stat / >/dev/null 2>&1 && ok=$((ok + 1))
    done
    [ $ok = 3 ] && { since "$2"; return 0; }
    sleep 0.2
  done
  echo "not within 300 s"
}

# The previous run's connections (50,000 sessions, their reconnects) linger in TIME_WAIT
# for a minute; waits until they are gone (120 s at the most), so that each ensemble starts
# on a machine as quiet as the first one did. Prints what it found.
quiesce() {
  local t0 tw
  t0=$(now)
  for _ in $(seq 600); do
    tw=$(ss -Htan state time-wait | wc -l)
    [ "$tw" -lt 1000 ] && break
    sleep 0.2
  done
  echo "== quiet after $(since "$t0") s: $tw sockets in TIME_WAIT, $(awk '/MemAvailable/ {printf "%d MiB", $2 / 1024}' /proc/meminfo) available"
}

ROWS="$WORK/rows"
run() { # name base start-command (given the config file)
  local name=$1 base=$2
  shift 2
  quiesce
  write_cfgs "$WORK/$base" "$base"
  local pids=()
  for i in 1 2 3; do
    "$@" "$WORK/$base/zoo$i.cfg" > "$WORK/$base/server$i.log" 2>&1 &
    pids+=($!)
  done
  wait_ensemble "$base"
  local cs
  cs=$(servers "$base")
  local base_rss
  base_rss=$(rss_kib "${pids[@]}")
  sample_leader "$WORK/$base/leaders" "$base" &
  local sampler=$!

  echo "== $name: registering $SESSIONS sessions"
  local t0 regs=() left=$SESSIONS p=0
  t0=$(now)
  while [ "$left" -gt 0 ]; do
    local n=$((left < PER_PROCESS ? left : PER_PROCESS))
    # Each process connects from a loopback address of its own: tens of thousands of
    # connections from one address to three ports leave the kernel searching its ephemeral
    # ports at every connect (seconds of a process's CPU, stalling its sessions' pings).
    "$ZOOCTL" -s "$cs" --source-address "127.0.1.$((p + 1))" scale-register \
      --sessions "$n" --timeout-ms $TIMEOUT_MS --name "p$p" \
      > "$WORK/$base/reg$p.out" 2> "$WORK/$base/reg$p.err" &
    regs+=($!)
    left=$((left - n)); p=$((p + 1))
  done
  for _ in $(seq 3000); do
    [ "$(cat "$WORK/$base"/reg*.out 2>/dev/null | grep -c '^registered')" = "${#regs[@]}" ] && break
    sleep 0.2
  done
  local reg_secs failed
  reg_secs=$(since "$t0")
  failed=$(cat "$WORK/$base"/reg*.out | awk '/^registered/ {s += $(NF-1)} END {print s + 0}')
  cat "$WORK/$base"/reg*.out | grep '^registered' || echo "registration did not finish"
  local reg_rss
  reg_rss=$(rss_kib "${pids[@]}")

  echo "== $name: $WATCHERS watchers x $NODES nodes"
  local watch_out
  watch_out=$("$ZOOCTL" -s "$cs" --source-address 127.0.2.1 scale-watch --watchers "$WATCHERS" --nodes "$NODES" --within 180 2>&1 || true)
  echo "$watch_out"
  local watch_rss
  watch_rss=$(rss_kib "${pids[@]}")

  local lost
  lost=$(for f in "$WORK/$base"/reg*.out; do grep '^status' "$f" | tail -1; done |
    sed 's/.*lost=\([0-9]*\).*/\1/' | awk '{s += $1} END {print s + 0}')
  local resumed stall
  resumed=$(for f in "$WORK/$base"/reg*.out; do grep '^status' "$f" | tail -1; done |
    sed 's/.*resumed=\([0-9]*\).*/\1/' | awk '{s += $1} END {print s + 0}')
  stall=$(for f in "$WORK/$base"/reg*.out; do grep '^status' "$f" | tail -1; done |
    sed 's/.*stall_ms=\([0-9]*\).*/\1/' | awk '$1 > m {m = $1} END {print m + 0}')
  kill -9 "${regs[@]}" 2>/dev/null || true
  wait "${regs[@]}" 2>/dev/null || true
  local t_kill
  t_kill=$(now)
  local serving dropped
  serving=$(wait_serving "$base" "$t_kill")
  dropped=$(wait_dropped "$base" "$t_kill")
  kill "$sampler" 2>/dev/null || true
  wait "$sampler" 2>/dev/null || true
  local changes
  changes=$(($(wc -l < "$WORK/$base/leaders") - 1))
  local set_rate notify_rate
  set_rate=$(echo "$watch_out" | awk '/^set .* watches/ {gsub(/[(\/s)]/, "", $NF); print $NF}')
  notify_rate=$(echo "$watch_out" | awk '/notifications in/ {gsub(/[(\/s)]/, "", $NF); print $NF}')
  awk -v n="$name" -v s="$SESSIONS" -v rs="$reg_secs" -v f="$failed" \
    -v b="$base_rss" -v r="$reg_rss" -v w="$watch_rss" -v ws=$((WATCHERS * NODES)) \
    -v sr="${set_rate:-failed}" -v nr="${notify_rate:-failed}" -v l="$lost" -v re="$resumed" \
    -v c="$changes" -v d="$dropped" -v sv="$serving" -v st="$stall" 'BEGIN {
      printf "| %s | %d | %.0f/s (%d failed) | %.1f KB | %s | %s/s | %s/s | %d (%d resumed, client stalled up to %d ms) | %d | %s s | %s s |\n",
        n, s, (s - f) / rs, f, (r - b) * 1.024 / s,
        (w > r) ? sprintf("%.0f B", (w - r) * 1024 / ws) : "-", sr, nr, l, re, st, c, d, sv }' >> "$ROWS"
  tail -1 "$ROWS"
  kill "${pids[@]}" 2>/dev/null || true
  wait "${pids[@]}" 2>/dev/null || true
}

if [ "$ONLY" != zooid ]; then
  run "ZooKeeper $(dpkg-query -W -f '${Version}' zookeeper) x3" 23180 \
    java -cp /etc/zookeeper/conf:/usr/share/java/zookeeper.jar \
    org.apache.zookeeper.server.quorum.QuorumPeerMain
fi
if [ "$ONLY" != zookeeper ]; then
  run "Zooid ${ZOOID:+$ZOOID }$(git describe --always --dirty) x3" 24180 "${ZOOID:-target/release/zooid}" --config
fi
echo
echo "| ensemble | sessions | registration | RSS per session | RSS per watch | watches set | notifications | sessions lost | leader changes | ephemerals gone after kill | all serving after kill |"
echo "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"
cat "$ROWS"
