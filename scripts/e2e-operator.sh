#!/usr/bin/env bash
# The operator's tests on a real Kubernetes control plane: builds it once per machine
# (scripts/kube-testenv.sh build, cached under target/kube-testenv/), builds the zooid binary
# the test node agent runs for the image `zooid`, then runs the tests that need the control
# plane, each starting its own on loopback.
#
# The tests run in a user, network and mount namespace of their own (unshare; no privilege
# needed): the node agent (operator/tests/agent) gives each pod a network namespace with an
# address on a bridge there, and a root of its own. Nothing outside those namespaces is
# touched or reached.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/kube-testenv.sh build
# moto's S3-compatible server (from PyPI) for the backup scenarios, in a virtualenv under
# target/ (never the system Python; scripts/test.sh has made sure python3-venv is there).
MOTO_VERSION=5.1.22
MOTO_VENV=target/e2e-venv
if [ ! -x "$MOTO_VENV/bin/moto_server" ]; then
  rm -rf "$MOTO_VENV"
  python3 -m venv "$MOTO_VENV"
  "$MOTO_VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
    "moto[server]==$MOTO_VERSION" ||
    { echo "scripts/e2e-operator.sh: could not install moto $MOTO_VERSION (is PyPI reachable?)" >&2; exit 1; }
fi
export ZOOID_TEST_MOTO="$PWD/$MOTO_VENV/bin/moto_server"
# The same workspace-wide feature set as scripts/test.sh's build (the control-plane feature adds
# no dependency), so every dependency is built once: `-p` alone resolves features per package
# and built the whole dependency tree a second time. This also builds target/debug/zooid.
cargo test --workspace --locked --features zooid-operator/control-plane --no-run
exec unshare --user --map-root-user --net --mount --propagation private bash -c '
  set -euo pipefail
  ip link set lo up
  # The pods'"'"' bridge (operator/tests/agent/network.rs): their gateway, and the API server'"'"'s
  # address for them; the route makes it this namespace'"'"'s own address, as a node'"'"'s is.
  ip link add zooid-e2e type bridge
  ip addr add 10.88.0.1/16 dev zooid-e2e
  ip link set zooid-e2e up
  ip route add default dev zooid-e2e
  export KUBE_TESTENV_POD_GATEWAY=10.88.0.1
  # ip netns keeps its names under /run/netns: a tmpfs of our own there.
  if mkdir -p /run/netns 2>/dev/null; then mount -t tmpfs e2e-netns /run/netns
  else mount -t tmpfs e2e-run /run && mkdir /run/netns; fi
  exec cargo test --workspace --locked --offline --features zooid-operator/control-plane \
    --test control_plane -- --test-threads 1 "$@"' e2e "$@"
