#!/usr/bin/env bash
# The "hostile neighbour" benchmark (see e2e/src/bin/hostile-neighbours.rs): a fast reader and a
# fast writer, alone and then beside slow consumers, a four-letter-word loop and large
# multiReads, against a standalone Zooid and then a standalone Apache ZooKeeper 3.8 (Debian's
# `zookeeper`), each on loopback with its data on the same disk and every setting at its
# default (ZooKeeper's heap capped at 2 GiB so that its unbounded queues cannot take the
# machine). Prints one table per server. Zooid's table ends with a control row: the large
# multiReads sent to a second Zooid instead, which shows what the machine itself (2 cores
# shared by every process, the kernel's loopback copies) costs the fast clients.
#
# Usage: scripts/bench-hostile.sh [seconds per phase (default 10)] [zooid|zookeeper|both]
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${1:-10}
WHICH=${2:-both}
cargo build --release -q -p zooid-node -p zooid-e2e
WORK=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$WORK"' EXIT
ZK_PORT=22182
ZD_PORT=22181
CONTROL_PORT=22183

# Serving once `srvr` reports a mode (ZooKeeper answers `ruok` before it serves sessions).
srvr() { timeout 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1 && printf srvr >&3 && cat <&3" 2>/dev/null; }
wait_port() {
  for _ in $(seq 100); do
    srvr "$1" | grep -q '^Mode' && return 0
    sleep 0.2
  done
  echo "server on $1 did not start" >&2
  exit 1
}

if [ "$WHICH" != zookeeper ]; then
  target/release/zooid --client-addr 127.0.0.1:$ZD_PORT --admin-enabled false --data-dir "$WORK/zooid" \
    --four-letter-words '*' >"$WORK/zooid.log" 2>&1 &
  ZD_PID=$!
  target/release/zooid --client-addr 127.0.0.1:$CONTROL_PORT --admin-enabled false --data-dir "$WORK/control" \
    >"$WORK/control.log" 2>&1 &
  CONTROL_PID=$!
  wait_port $ZD_PORT
  wait_port $CONTROL_PORT
  echo "== Zooid $(git describe --always --dirty), $SECS s per phase"
  target/release/hostile-neighbours 127.0.0.1:$ZD_PORT $ZD_PID "$SECS" 127.0.0.1:$CONTROL_PORT
  echo "connections Zooid cut for not reading: $(grep -c 'does not read\|read nothing' "$WORK/zooid.log" || true)"
  kill $ZD_PID $CONTROL_PID
  wait $ZD_PID $CONTROL_PID || true
fi

if [ "$WHICH" != zooid ]; then
  mkdir -p "$WORK/zk/data"
  cat >"$WORK/zk/zoo.cfg" <<CFG
tickTime=2000
dataDir=$WORK/zk/data
clientPort=$ZK_PORT
clientPortAddress=127.0.0.1
admin.enableServer=false
4lw.commands.whitelist=*
CFG
  java -Xmx2g -cp /etc/zookeeper/conf:/usr/share/java/zookeeper.jar \
    org.apache.zookeeper.server.ZooKeeperServerMain "$WORK/zk/zoo.cfg" >"$WORK/zk.log" 2>&1 &
  ZK_PID=$!
  wait_port $ZK_PORT
  echo "== ZooKeeper $(dpkg-query -W -f '${Version}' zookeeper), $SECS s per phase"
  target/release/hostile-neighbours 127.0.0.1:$ZK_PORT $ZK_PID "$SECS" ||
    echo "(the run against ZooKeeper failed: see above)"
fi
