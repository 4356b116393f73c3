#!/usr/bin/env bash
# The operator's benchmark: apply to Available for 3 and 5 members, each scale step, each
# rolled member, and the operator's memory and CPU while it watches 50 Ensembles, on the
# control plane and node agent of the scenarios (operator/tests/bench). Prints a table for
# docs/benchmarks.md.
set -euo pipefail
cd "$(dirname "$0")/.."
exec scripts/e2e-operator.sh bench_operator --ignored --nocapture
