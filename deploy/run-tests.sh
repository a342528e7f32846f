#!/usr/bin/env bash
# Checks the formatting, then installs, builds (build/, as deploy/build.sh) and runs the whole test
# suite through CTest: unit cases, the gateway's cases once more on PostgreSQL, the integration
# suite on SQLite and once more on PostgreSQL, interop and layer checks. The CTest summary is the
# last thing printed. The sanitizers' build and run is deploy/sanitize.sh (both do not fit CI's
# 30 minutes on 2 cores together); benchmarks are separate (tests/bench/README.md).
set -euo pipefail
cd "$(dirname "$0")/.."
# Each phase says how long it took (stderr), so that a slow run shows where its time went.
phase_start=$SECONDS
phase_done() {
  echo "run-tests: $1 in $((SECONDS - phase_start)) s" >&2
  phase_start=$SECONDS
}
bash deploy/check-format.sh
phase_done "packages and format check"
bash deploy/build.sh
phase_done "build/ (packages, GCC build)"
cd build
exec ctest --output-on-failure --timeout 900 -j2
