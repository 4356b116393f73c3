#!/usr/bin/env bash
# The operator's tests on a real Kubernetes control plane: builds it once per machine
# (scripts/kube-testenv.sh build, cached under target/kube-testenv/), then runs the tests that
# need it, each starting its own control plane on loopback.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/kube-testenv.sh build
cargo test --locked -p zooid-operator --features control-plane --test control_plane -- --test-threads 1 "$@"
