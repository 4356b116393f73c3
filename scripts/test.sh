#!/usr/bin/env bash
# Runs the whole test suite on a fresh Debian 12 machine, preparing what it needs first:
#   - Debian's `zookeeper` (Apache ZooKeeper 3.8 and zkCli.sh) for the differential and zkCli
#     tests, through apt-get (as root, or with sudo);
#   - Debian's `prometheus` (prometheus and promtool) for the tests of dashboards/: a real
#     Prometheus scraping an ensemble, and promtool's checks and unit tests of the alerts;
#   - kazoo (and pure-sasl, for its SASL) in a virtualenv under target/ (never the system
#     Python), for the kazoo tests;
# then `cargo test --workspace --locked` with any extra arguments given.
# Idempotent: a second run installs nothing.
set -euo pipefail
cd "$(dirname "$0")/.."

KAZOO_VERSION=2.11.0
# kazoo's SASL (DIGEST-MD5) needs pure-sasl.
PURE_SASL_VERSION=0.6.2
VENV=target/test-venv

die() {
  echo "scripts/test.sh: $*" >&2
  exit 1
}

command -v cargo >/dev/null ||
  die "cargo is not installed; install Rust from https://rustup.rs and run this again"

apt_install() {
  local sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null ||
      die "need root or sudo to install Debian packages: $*; install them and run this again"
    sudo="sudo"
  fi
  echo "scripts/test.sh: installing Debian packages: $*" >&2
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

missing=()
[ -x /usr/share/zookeeper/bin/zkCli.sh ] || missing+=(zookeeper)
{ command -v prometheus >/dev/null && command -v promtool >/dev/null; } || missing+=(prometheus)
if [ ${#missing[@]} -gt 0 ]; then
  apt_install "${missing[@]}"
fi

if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c 'import kazoo, puresasl' 2>/dev/null; then
  command -v python3 >/dev/null || apt_install python3 python3-venv
  rm -rf "$VENV"
  if ! python3 -m venv "$VENV" >/dev/null 2>&1; then
    # Debian's Python leaves ensurepip out of the interpreter package.
    rm -rf "$VENV"
    apt_install python3-venv
    python3 -m venv "$VENV" || die "could not create a virtualenv in $VENV"
  fi
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
    "kazoo==$KAZOO_VERSION" "pure-sasl==$PURE_SASL_VERSION" ||
    die "could not install kazoo $KAZOO_VERSION and pure-sasl into $VENV (is PyPI reachable?)"
fi

export ZOOID_TEST_PYTHON="$PWD/$VENV/bin/python"
exec cargo test --workspace --locked "$@"
