#!/usr/bin/env bash
# Times a backup and a restore through a 3-member Zooid ensemble on this machine: fills it with
# KEYS nodes of VALUE bytes (zooctl bench's keys), saves a snapshot through one member's admin
# API (`zooctl snapshot save`), changes a node and adds one, then restores the backup through another
# member (`zooctl snapshot restore`), which swaps it in on all three. Prints the sizes, the
# times, and the members' peak memory before and after the restore.
#
# Usage: scripts/bench-restore.sh [keys (default 100000)] [value bytes (default 1000)]
set -euo pipefail
cd "$(dirname "$0")/.."
KEYS=${1:-100000}
VALUE=${2:-1000}
cargo build --release -q -p zooid-node -p zooid-ctl
ZOOCTL=target/release/zooctl
WORK=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$WORK"' EXIT

BASE=25180 # client 2518x, quorum 2528x, election 2538x, admin 2548x
for i in 1 2 3; do
  mkdir -p "$WORK/data$i"
  echo "$i" > "$WORK/data$i/myid"
  {
    echo "tickTime=2000"
    echo "initLimit=10"
    echo "syncLimit=5"
    echo "dataDir=$WORK/data$i"
    echo "admin.serverAddress=127.0.0.1"
    echo "admin.serverPort=$((BASE + 300 + i))"
    echo "4lw.commands.whitelist=*"
    for j in 1 2 3; do
      echo "server.$j=127.0.0.1:$((BASE + 100 + j)):$((BASE + 200 + j));127.0.0.1:$((BASE + j))"
    done
  } > "$WORK/zoo$i.cfg"
done
head -c 32 /dev/urandom | base64 > "$WORK/token"
PIDS=()
for i in 1 2 3; do
  ZOOID_ADMIN_TOKEN_FILE="$WORK/token" target/release/zooid --config "$WORK/zoo$i.cfg" \
    >"$WORK/zooid$i.log" 2>&1 &
  PIDS+=($!)
done
ZD="127.0.0.1:$((BASE + 1)),127.0.0.1:$((BASE + 2)),127.0.0.1:$((BASE + 3))"
for _ in $(seq 300); do
  modes=$("$ZOOCTL" -s "$ZD" word srvr 2>/dev/null | grep -c '^Mode: \(leader\|follower\)' || true)
  [ "$modes" = 3 ] && break
  sleep 0.2
done
[ "$modes" = 3 ] || { echo "the ensemble did not start" >&2; exit 1; }
rss() { for p in "${PIDS[@]}"; do echo -n "$(($(awk '/VmHWM/ {print $2}' "/proc/$p/status") / 1024)) "; done; echo "MiB"; }
now() { date +%s.%N; }
secs() { echo "scale=2; ($2 - $1) / 1" | bc; }

echo "== Zooid $(git describe --always --dirty) x3: $KEYS nodes of $VALUE bytes"
t0=$(now)
"$ZOOCTL" -s "$ZD" bench --keys "$KEYS" --value-size "$VALUE" --duration 1 --warmup 0 >/dev/null
echo "filled in $(secs "$t0" "$(now)") s; peak RSS per member: $(rss)"
t0=$(now)
"$ZOOCTL" snapshot save "$WORK/backup.zsnap" --admin "127.0.0.1:$((BASE + 301))" --token-file "$WORK/token"
echo "backup: $(stat -c %s "$WORK/backup.zsnap") bytes in $(secs "$t0" "$(now)") s"
"$ZOOCTL" -s "$ZD" set /zooctl-bench/k-000000 changed-after-the-backup
"$ZOOCTL" -s "$ZD" create /after-the-backup >/dev/null
t0=$(now)
"$ZOOCTL" snapshot restore "$WORK/backup.zsnap" --admin "127.0.0.1:$((BASE + 302))" --token-file "$WORK/token"
echo "restore through a member: $(secs "$t0" "$(now)") s; peak RSS per member: $(rss)"
for i in 1 2 3; do
  n=$("$ZOOCTL" -s "127.0.0.1:$((BASE + i))" word mntr | awk '/^zk_znode_count/ {print $2}')
  echo "member $i: $n znodes, /after-the-backup $("$ZOOCTL" -s "127.0.0.1:$((BASE + i))" stat /after-the-backup >/dev/null 2>&1 && echo still there || echo gone)"
done
