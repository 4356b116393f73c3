#!/usr/bin/env bash
# Runs the cargo-fuzz targets of fuzz/ (the request decoder, the handshake, the auth
# packets) for a given time each, and prints how many inputs each ran clean.
#
#   scripts/fuzz.sh [seconds-per-target] [target...]     (default: 60 s, every target)
#
# Needs the nightly toolchain (rustup); cargo-fuzz is built once into target/tools. Corpora
# are kept in target/fuzz-corpus/<target> so that later runs start where earlier ones got.
# A crash stops the run with libFuzzer's report and the input under fuzz/artifacts/.
set -euo pipefail
cd "$(dirname "$0")/.."

SECONDS_EACH="${1:-60}"
shift || true
TARGETS=("$@")
[ ${#TARGETS[@]} -gt 0 ] || TARGETS=(request handshake auth)

rustup toolchain list | grep -q '^nightly' || {
  echo "fuzz.sh: the nightly toolchain is needed: rustup toolchain install nightly" >&2
  exit 1
}
TOOLS="$PWD/target/tools"
if [ ! -x "$TOOLS/bin/cargo-fuzz" ]; then
  cargo install cargo-fuzz --version 0.13.1 --locked --root "$TOOLS"
fi
export PATH="$TOOLS/bin:$PATH"
export CARGO_TARGET_DIR="$PWD/target/fuzz"

for t in "${TARGETS[@]}"; do
  corpus="target/fuzz-corpus/$t"
  mkdir -p "$corpus"
  log="target/fuzz-$t.log"
  cargo +nightly fuzz run --fuzz-dir fuzz "$t" "$corpus" -- \
    -max_total_time="$SECONDS_EACH" -max_len=4096 -print_final_stats=1 2>"$log" || {
    tail -40 "$log" >&2
    echo "fuzz.sh: $t failed; its log is $log" >&2
    exit 1
  }
  runs=$(grep -o 'Done [0-9]* runs' "$log" | tail -1 | grep -o '[0-9]*')
  echo "$t: ${runs:-?} inputs ran clean in ${SECONDS_EACH} s"
done
