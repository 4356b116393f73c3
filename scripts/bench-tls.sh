#!/usr/bin/env bash
# Reads and writes over TLS: a standalone Apache ZooKeeper 3.8 (Debian's `zookeeper`, its
# Netty connection factory on secureClientPort) against a standalone Zooid's TLS port, and
# Zooid's TLS port against its own plaintext port, all in one run on this machine. Both
# servers use certificates this script makes (P-256, one CA) and ask for client
# certificates (ssl.clientAuth=need); zooctl bench shows one.
#
# Loads alternate round by round as in bench-vs-zookeeper.sh (ZooKeeper first in odd rounds);
# ZooKeeper gets a 10 s warm-up run first. Prints every run, then the medians and the ratios:
# Zooid TLS / ZooKeeper TLS, and Zooid TLS / Zooid plaintext (TLS's cost to Zooid).
#
# With PIN=1 each server runs on CPU 0 alone and the load generator on CPU 1 alone (taskset),
# so that the load generator's own TLS work does not take the server's CPU: the servers'
# throughput, and TLS's cost to it, as the server alone decides them.
#
# Usage: [PIN=1] scripts/bench-tls.sh [rounds (default 3)] [extra zooctl bench flags...]
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${1:-3}
shift || true
cargo build --release -q -p zooid-node -p zooid-ctl
ZOOCTL=target/release/zooctl
WORK=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$WORK"' EXIT
ZK_PORT=22192
ZK_TLS=22292
ZD_PORT=22191
ZD_TLS=22291

source scripts/bench-common.sh
SERVER_CPU=()
CLIENT_CPU=()
if [ -n "${PIN:-}" ]; then
  SERVER_CPU=(taskset -c 0)
  CLIENT_CPU=(taskset -c 1)
fi

# A CA, and a certificate for 127.0.0.1 for each side: chain and PKCS#8 key in one PEM.
PKI="$WORK/pki"
mkdir -p "$PKI"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
  -subj "/CN=bench CA" -keyout "$PKI/ca.key" -out "$PKI/ca.pem" 2>/dev/null
for name in server client; do
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/O=bench/CN=$name" \
    -keyout "$PKI/$name.key" -out "$PKI/$name.csr" 2>/dev/null
  openssl x509 -req -in "$PKI/$name.csr" -CA "$PKI/ca.pem" -CAkey "$PKI/ca.key" \
    -CAcreateserial -days 2 -out "$PKI/$name.crt" \
    -extfile <(echo "subjectAltName=IP:127.0.0.1,DNS:localhost") 2>/dev/null
  openssl pkcs8 -topk8 -nocrypt -in "$PKI/$name.key" -out "$PKI/$name.p8"
  cat "$PKI/$name.crt" "$PKI/$name.p8" > "$PKI/$name.pem"
done

mkdir -p "$WORK/zk/data"
cat > "$WORK/zk/zoo.cfg" <<CFG
tickTime=2000
dataDir=$WORK/zk/data
clientPort=$ZK_PORT
clientPortAddress=127.0.0.1
secureClientPort=$ZK_TLS
secureClientPortAddress=127.0.0.1
serverCnxnFactory=org.apache.zookeeper.server.NettyServerCnxnFactory
ssl.keyStore.location=$PKI/server.pem
ssl.keyStore.type=PEM
ssl.trustStore.location=$PKI/ca.pem
ssl.trustStore.type=PEM
ssl.clientAuth=need
admin.enableServer=false
4lw.commands.whitelist=*
maxClientCnxns=0
CFG
# Debian's zookeeper.jar leaves netty-resolver and netty-codec off its class path; Netty's
# connection factory needs them.
CP=/etc/zookeeper/conf:/usr/share/java/zookeeper.jar:/usr/share/java/netty-resolver.jar:/usr/share/java/netty-codec.jar
"${SERVER_CPU[@]}" java -cp "$CP" org.apache.zookeeper.server.ZooKeeperServerMain "$WORK/zk/zoo.cfg" >"$WORK/zk.log" 2>&1 &
ZK_PID=$!
"${SERVER_CPU[@]}" target/release/zooid --client-addr 127.0.0.1:$ZD_PORT --secure-client-addr 127.0.0.1:$ZD_TLS \
  --ssl-key-store "$PKI/server.pem" --ssl-trust-store "$PKI/ca.pem" \
  --admin-enabled false --data-dir "$WORK/zooid" >/dev/null 2>&1 &
ZD_PID=$!
wait_port $ZK_PORT
wait_port $ZD_PORT
TLS=(--tls-ca "$PKI/ca.pem" --tls-identity "$PKI/client.pem")
for port in $ZK_TLS $ZD_TLS; do
  for _ in $(seq 100); do
    "$ZOOCTL" -s "127.0.0.1:$port" "${TLS[@]}" ls / >/dev/null 2>&1 && break
    sleep 0.2
  done
  "$ZOOCTL" -s "127.0.0.1:$port" "${TLS[@]}" ls / >/dev/null || {
    echo "no TLS session on $port" >&2
    tail -20 "$WORK/zk.log" >&2
    exit 1
  }
done
ZK_NAME="ZooKeeper $(dpkg-query -W -f '${Version}' zookeeper) TLS"
ZD_NAME="Zooid $(git describe --always --dirty) TLS"
ZP_NAME="Zooid $(git describe --always --dirty) plaintext"
echo "== ZooKeeper warm-up run over TLS (not recorded)"
"${CLIENT_CPU[@]}" "$ZOOCTL" -s 127.0.0.1:$ZK_TLS "${TLS[@]}" bench --read-percent 50 --warmup 0 --duration 10 "$@" >/dev/null

# CPU time (user + system, in clock ticks) a process has used.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
TICK_US=$((1000000 / $(getconf CLK_TCK)))

RESULTS="$WORK/results"
run() { # port label reads round server-pid [tls...]
  local out before after ops
  before=$(cpu_ticks "$5")
  out=$("${CLIENT_CPU[@]}" "$ZOOCTL" -s "127.0.0.1:$1" "${@:6}" bench --sessions 32 --depth 4 --value-size 1024 \
    --read-percent "$3" --warmup 3 --duration 10 "${EXTRA[@]}")
  after=$(cpu_ticks "$5")
  ops=$(echo "$out" | awk '/^ops\/s/ {print $2}')
  echo "== round $4, $2, $3% reads"
  echo "$out" | tail -n +2
  # The server's CPU over the whole run (3 s warm-up and 10 s measured, the same load) per
  # operation.
  awk -v t=$((after - before)) -v us=$TICK_US -v ops="$ops" \
    'BEGIN {printf "server CPU %.1f us/op\n", t * us / (ops * 13)}'
  echo "$2|$3|$ops|$4|$(awk -v t=$((after - before)) -v us=$TICK_US -v ops="$ops" 'BEGIN {print t * us / (ops * 13)}')" >> "$RESULTS"
}
EXTRA=("$@")

for round in $(seq "$ROUNDS"); do
  for reads in 100 0; do
    if (( round % 2 )); then
      run $ZK_TLS "$ZK_NAME" $reads "$round" $ZK_PID "${TLS[@]}"
      run $ZD_TLS "$ZD_NAME" $reads "$round" $ZD_PID "${TLS[@]}"
      run $ZD_PORT "$ZP_NAME" $reads "$round" $ZD_PID
    else
      run $ZD_PORT "$ZP_NAME" $reads "$round" $ZD_PID
      run $ZD_TLS "$ZD_NAME" $reads "$round" $ZD_PID "${TLS[@]}"
      run $ZK_TLS "$ZK_NAME" $reads "$round" $ZK_PID "${TLS[@]}"
    fi
  done
done

echo "== medians over $ROUNDS rounds (ops/s)"
for reads in 100 0; do
  med() { awk -F'|' -v n="$1" -v r=$reads -v f="$2" '$1==n && $2==r {print $f}' "$RESULTS" | median; }
  zk=$(med "$ZK_NAME" 3); zd=$(med "$ZD_NAME" 3); zp=$(med "$ZP_NAME" 3)
  zkc=$(med "$ZK_NAME" 5); zdc=$(med "$ZD_NAME" 5); zpc=$(med "$ZP_NAME" 5)
  awk -v r=$reads -v zk="$zk" -v zd="$zd" -v zp="$zp" -v zkc="$zkc" -v zdc="$zdc" -v zpc="$zpc" 'BEGIN {
    printf "%3d%% reads: ZooKeeper TLS %.0f ops/s (%.1f us/op), Zooid TLS %.0f (%.1f us/op; %.2fx ZooKeeper), Zooid plaintext %.0f (%.1f us/op); TLS costs Zooid %.0f%% of its throughput, %.0f%% more server CPU per op\n",
      r, zk, zkc, zd, zdc, zd/zk, zp, zpc, 100 * (1 - zd/zp), 100 * (zdc/zpc - 1) }'
  # TLS's cost in each round, Zooid's TLS run against its plaintext run of the same round
  # (run back to back): the spread says how far to trust the medians on this machine.
  awk -F'|' -v r=$reads -v tls="$ZD_NAME" -v plain="$ZP_NAME" '
    $2 == r && $1 == tls { t[$4] = $3 } $2 == r && $1 == plain { p[$4] = $3 }
    END { printf "%3d%% reads: TLS cost per round:", r
          for (k = 1; k in t; k++) printf " %.0f%%", 100 * (1 - t[k] / p[k]); print "" }' "$RESULTS"
done
