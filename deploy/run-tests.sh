#!/usr/bin/env bash
# Install, build and run the whole test suite (unit, integration, interop). The CTest summary is
# the last thing printed. Benchmarks are separate: see tests/bench/README.md.
set -euo pipefail
cd "$(dirname "$0")/.."
bash deploy/build.sh
cd build
exec ctest --output-on-failure --timeout 900 -j2
