#!/usr/bin/env bash
# Runs `zooctl bench` against two builds of Zooid side by side on this machine: the server as
# committed at OLD (a git revision) and as it is in the working tree, both standalone on
# loopback. Loads alternate between them round after round (OLD first in odd rounds), so a
# slow minute of the machine falls on both sides: this is how a change is shown to cost no
# throughput. OLD is built in a git worktree under target/ab/ (kept, so a second run builds
# nothing), with a target directory of its own there.
#
# Usage: scripts/bench-ab.sh OLD [rounds (default 3)] [extra zooctl bench flags...]
set -euo pipefail
cd "$(dirname "$0")/.."
OLD=${1:?usage: scripts/bench-ab.sh OLD-REVISION [rounds] [zooctl bench flags...]}
ROUNDS=${2:-3}
shift 2 || shift || true
OLD_SHA=$(git rev-parse --short "$OLD")
TREE="target/ab/$OLD_SHA"
if [ ! -d "$TREE" ]; then
  git worktree add -q --detach "$TREE" "$OLD_SHA"
fi
# The crate was zooid-server before it was zooid-node; either builds the `zooid` binary.
PKG=$(grep -q 'name = "zooid-node"' "$TREE/server/node/Cargo.toml" && echo zooid-node || echo zooid-server)
(cd "$TREE" && CARGO_TARGET_DIR=target cargo build --release -q -p "$PKG")
cargo build --release -q -p zooid-node -p zooid-ctl
OLD_BIN="$TREE/target/release/zooid"
NEW_BIN=target/release/zooid
ZOOCTL=target/release/zooctl
WORK=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$WORK"' EXIT
OLD_PORT=22191
NEW_PORT=22181

source scripts/bench-common.sh
"$OLD_BIN" --client-addr 127.0.0.1:$OLD_PORT --admin-enabled false --data-dir "$WORK/old" >/dev/null 2>&1 &
"$NEW_BIN" --client-addr 127.0.0.1:$NEW_PORT --admin-enabled false --data-dir "$WORK/new" >/dev/null 2>&1 &
wait_port $OLD_PORT
wait_port $NEW_PORT
NEW_NAME="working tree ($(git describe --always --dirty))"

RESULTS="$WORK/results"
run() { # port label reads round
  local out
  out=$(bench_run "127.0.0.1:$1" "$3" "${@:5}")
  echo "== round $4, $2, $3% reads"
  echo "$out" | grep '^ops/s'
  echo "$2|$3|$(echo "$out" | awk '/^ops\/s/ {print $2}')" >> "$RESULTS"
}
for round in $(seq "$ROUNDS"); do
  for reads in 100 0; do
    if (( round % 2 )); then
      run $OLD_PORT "$OLD_SHA" $reads "$round" "$@"
      run $NEW_PORT "$NEW_NAME" $reads "$round" "$@"
    else
      run $NEW_PORT "$NEW_NAME" $reads "$round" "$@"
      run $OLD_PORT "$OLD_SHA" $reads "$round" "$@"
    fi
  done
done

echo "== medians over $ROUNDS rounds (ops/s)"
for reads in 100 0; do
  old=$(awk -F'|' -v n="$OLD_SHA" -v r=$reads '$1==n && $2==r {print $3}' "$RESULTS" | median)
  new=$(awk -F'|' -v n="$NEW_NAME" -v r=$reads '$1==n && $2==r {print $3}' "$RESULTS" | median)
  awk -v r=$reads -v o="$old" -v n="$new" -v on="$OLD_SHA" \
    'BEGIN {printf "%3d%% reads: %s %d, working tree %d, new/old %.2fx\n", r, on, o, n, n/o}'
done
