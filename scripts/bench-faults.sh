#!/usr/bin/env bash
# The write gap each fault causes: a 3-server ensemble (Apache ZooKeeper 3.8, Debian's
# `zookeeper`, then Zooid, from zoo.cfg files of the same form, tickTime 2000 and syncLimit 5
# as ZooKeeper's sample) under `zooctl write-gaps` (6 sessions over the three servers, each
# writing its own node one write at a time and resuming its session elsewhere when its
# connection is lost; a run of its own per fault, started 2 s before it), while this script,
# on the same schedule for both:
#
#   kills a follower (SIGKILL) and starts it again 5 s later,
#   kills the leader and starts it again 5 s later,
#   pauses a follower (SIGSTOP) for 5 s,
#   pauses the leader for 5 s,
#   cuts a follower off from its peers for 15 s, then heals the partition,
#   cuts the leader off from its peers for 15 s, then heals it,
#
# each once the ensemble has settled again. Reported per fault: the longest stretch without
# any acknowledged write from the fault until 10 s after it ended (the writers' own pace, a
# few ms, when nothing stalls), whether the ensemble kept its leader, and the sessions lost.
#
# The script runs in network namespaces of its own (unshare: a user, network and mount
# namespace; no privilege needed): each server in a namespace with two links, one to a
# client network (10.77.0.i, which the writers reach) and one to a peer network (10.77.1.i,
# its server.N address). A partition takes a server's peer link down: its clients still
# reach it, its peers do not, and the TCP connections across the cut stay open, unanswered,
# until it heals, as a real network's would.
#
# Usage: scripts/bench-faults.sh [zookeeper|zooid|both (both)]
# KEEP=1 keeps the servers' logs and the writers' output (the directory is printed).
set -euo pipefail
cd "$(dirname "$0")/.."
ONLY=${1:-both}
if [ -z "${ZOOID_BENCH_NETNS:-}" ]; then
  cargo build --release -q -p zooid-node -p zooid-ctl
  exec unshare --user --map-root-user --net --mount --propagation private \
    env ZOOID_BENCH_NETNS=1 "$0" "$@"
fi
ZOOCTL=target/release/zooctl
source scripts/bench-common.sh
client_host() { echo "10.77.0.$1"; }
peer_host() { echo "10.77.1.$1"; }

# The networks: bridges brc (clients; this namespace joins it as 10.77.0.100) and brp
# (peers), and a namespace zi per server with a link to each.
mount -t tmpfs none /run
mkdir -p /run/netns
ip link set lo up
ip link add brc type bridge
ip link add brp type bridge
ip link set brc up
ip link set brp up
ip addr add 10.77.0.100/24 dev brc
for i in 1 2 3; do
  ip netns add "z$i"
  for net in c p; do
    ip link add "$net$i" type veth peer name "$net${i}in"
    ip link set "$net${i}in" netns "z$i"
    ip link set "$net$i" master "br$net" up
  done
  ip -n "z$i" addr add "$(client_host "$i")/24" dev "c${i}in"
  ip -n "z$i" addr add "$(peer_host "$i")/24" dev "p${i}in"
  ip -n "z$i" link set "c${i}in" up
  ip -n "z$i" link set "p${i}in" up
  ip -n "z$i" link set lo up
done
WORK=$(mktemp -d)
trap 'kill -CONT $(jobs -p) 2>/dev/null || true; kill -9 $(jobs -p) 2>/dev/null || true; wait 2>/dev/null || true; if [ -n "${KEEP:-}" ]; then echo "kept: $WORK" >&2; else rm -rf "$WORK"; fi' EXIT

mode() { { "$ZOOCTL" -s "$(client_host "$2"):$(($1 + $2))" word srvr 2>/dev/null || true; } | sed -n 's/^Mode: //p'; }
settled() { # base: waits for a leader and two followers (60 s at the most)
  local m
  for _ in $(seq 300); do
    local modes=""
    for m in 1 2 3; do modes="$modes $(mode "$1" "$m")"; done
    if [ "$(echo "$modes" | grep -o leader | wc -l)" = 1 ] &&
       [ "$(echo "$modes" | grep -o follower | wc -l)" = 2 ]; then return 0; fi
    sleep 0.2
  done
  echo "the ensemble on $1 did not settle" >&2
  exit 1
}
member_with() { # base mode: the index of a member in that mode
  local m
  for m in 1 2 3; do [ "$(mode "$1" "$m")" = "$2" ] && { echo "$m"; return 0; }; done
  echo "no $2 on $1" >&2
  exit 1
}

ROWS="$WORK/rows"
run() { # name base start-command (given the config file)
  local name=$1 base=$2
  shift 2
  write_cfgs "$WORK/$base" "$base"
  local pids=(0)
  # `ip netns exec` runs the server in its own process (exec), so its pid is the server's.
  start() { ip netns exec "z$i" "$@" "$WORK/$base/zoo$i.cfg" >> "$WORK/$base/server$i.log" 2>&1 & pids[$i]=$!; }
  for i in 1 2 3; do start "$@"; done
  local lost=0
  for fault in "kill follower" "kill leader" "pause follower" "pause leader" \
    "partition follower" "partition leader"; do
    settled "$base"
    # A writer run of its own for each fault, so that its sessions start spread over the
    # three servers (after a fault, sessions that moved stay where they went).
    local out="$WORK/$base/gaps-${fault// /-}.out" lasts=5
    case $fault in partition*) lasts=15 ;; esac
    "$ZOOCTL" -s "$(servers "$base")" write-gaps --duration $((lasts + 13)) --min-gap-ms 20 \
      > "$out" 2>&1 &
    local writer=$!
    sleep 2
    local target at leader
    leader=$(member_with "$base" leader)
    target=$(member_with "$base" "${fault#* }")
    at=$(date +%s%3N)
    case $fault in
      kill*)
        kill -9 "${pids[$target]}"; wait "${pids[$target]}" 2>/dev/null || true
        sleep 5
        i=$target; start "$@" ;;
      pause*)
        kill -STOP "${pids[$target]}"; sleep 5; kill -CONT "${pids[$target]}" ;;
      partition*)
        ip link set "p$target" down; sleep 15; ip link set "p$target" up ;;
    esac
    wait "$writer" || true
    settled "$base"
    local kept=no
    [ "$(member_with "$base" leader)" = "$leader" ] && kept=yes
    # The longest stretch that starts before 10 s after the fault ended (or spans its start).
    local gap
    gap=$(awk -v at="$at" -v to="$((at + lasts * 1000 + 10000))" '/^gap/ {g = $2; from = $5; if (from + g >= at && from < to && g > m) m = g} END {print m + 0}' "$out")
    [ "$gap" = 0 ] && gap="< 20"
    echo "| $name | $fault | $gap ms | $kept |" | tee -a "$ROWS"
    lost=$((lost + $(awk '/sessions lost/ {print $4}' "$out")))
    grep 'called expired' "$out" | sed "s/^/  ($name, $fault) /" || true
  done
  echo "| $name | sessions lost (all six runs) | $lost | |" | tee -a "$ROWS"
  for i in 1 2 3; do kill -9 "${pids[$i]}" 2>/dev/null || true; done
  wait 2>/dev/null || true
}

if [ "$ONLY" != zooid ]; then
  run "ZooKeeper $(dpkg-query -W -f '${Version}' zookeeper) x3" 23180 \
    java -cp /etc/zookeeper/conf:/usr/share/java/zookeeper.jar \
    org.apache.zookeeper.server.quorum.QuorumPeerMain
fi
if [ "$ONLY" != zookeeper ]; then
  run "Zooid $(git describe --always --dirty) x3" 24180 target/release/zooid --config
fi
echo
echo "| ensemble | fault | longest write gap until 10 s after it | leader kept |"
echo "| --- | --- | --- | --- |"
cat "$ROWS"
