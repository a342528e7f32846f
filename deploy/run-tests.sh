#!/usr/bin/env bash
# Check the formatting, then install, build and run the whole test suite (unit, integration,
# interop) twice: first built by clang with AddressSanitizer + UndefinedBehaviorSanitizer and
# -Wthread-safety (build-asan/, warnings as errors), then the normal GCC build (build/: every
# case but the SQLite integration modules the first pass covers, with the integration suite on
# PostgreSQL). A failure in either stops the run. The CTest summary is the last thing printed.
# Benchmarks are separate: see tests/bench/README.md.
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
# clang and its sanitizer runtimes for the second build.
bash deploy/install-deps.sh clang libclang-rt-14-dev

echo "run-tests: clang AddressSanitizer + UndefinedBehaviorSanitizer build in build-asan/" >&2
# clang checks the lock annotations (-Wthread-safety, an error here). A build-asan/ that an
# earlier version made with GCC starts over.
bash deploy/check-build-dir.sh build-asan
if [ -f build-asan/CMakeCache.txt ] && ! grep -q '^CMAKE_CXX_COMPILER:.*clang' build-asan/CMakeCache.txt; then
  rm -rf build-asan
fi
# A unity build (16 sources per translation unit; build/ batches by 12, see build.sh).
cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_COMPILER=clang++ \
  -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g1" -DRDG_SANITIZE=address -DRDG_WERROR=ON \
  -DRDG_BUILD_BENCHMARKS=OFF -DCMAKE_UNITY_BUILD=ON -DCMAKE_UNITY_BUILD_BATCH_SIZE=16 >/dev/null
phase_done "clang packages and build-asan/ configure"
cmake --build build-asan
phase_done "build-asan/ built"
# Leaks are not checked: gRPC and DCMTK keep process-wide singletons until exit.
(cd build-asan && ASAN_OPTIONS=detect_leaks=0:abort_on_error=0 \
  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  ctest --output-on-failure --timeout 900 -j2)
phase_done "sanitizers' pass"

# The normal build: everything but the SQLite integration modules the sanitizers' pass has just
# run (label sanitized_pass_covers, see tests/CMakeLists.txt); the PostgreSQL pass of them runs.
cd build
exec ctest --output-on-failure --timeout 900 -j2 -LE sanitized_pass_covers
