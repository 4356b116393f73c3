#!/usr/bin/env bash
# Memory per idle session: starts a standalone Zooid (release build) on loopback, opens N
# sessions (default 5,000) on N connections that then stay idle, as a service registry's
# clients do, and prints the server's resident memory before and after, and per session.
#
# Usage: scripts/bench-session-memory.sh [sessions]
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-5000}
cargo build --release -q -p zooid-node
WORK=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$WORK"' EXIT
PORT=23999
target/release/zooid --client-addr 127.0.0.1:$PORT --admin-enabled false \
  --max-client-cnxns 0 --data-dir "$WORK/data" >/dev/null 2>&1 &
PID=$!
python3 - "$PORT" "$N" "$PID" <<'PY'
import resource, socket, struct, sys, time
port, n, pid = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
def rss_kib():
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS"):
            return int(line.split()[1])
for _ in range(100):
    try:
        socket.create_connection(("127.0.0.1", port)).close()
        break
    except OSError:
        time.sleep(0.1)
# ConnectRequest: protocol 0, lastZxidSeen 0, timeout 30 s, a new session, no password.
req = struct.pack(">iqiqi", 0, 0, 30000, 0, 16) + b"\0" * 16 + b"\0"
frame = struct.pack(">i", len(req)) + req
before = rss_kib()
socks = []
for _ in range(n):
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(frame)
    socks.append(s)
for s in socks:
    want = struct.unpack(">i", s.recv(4))[0]
    got = 0
    while got < want:
        got += len(s.recv(want - got))
time.sleep(1)
after = rss_kib()
print(f"{n} idle sessions: RSS {before // 1024} -> {after // 1024} MiB, "
      f"{(after - before) * 1024 // n} bytes per session")
PY
