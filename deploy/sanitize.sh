#!/usr/bin/env bash
# The whole test suite once more, built by clang with AddressSanitizer + UndefinedBehaviorSanitizer
# and -Wthread-safety as an error (build-asan/, a unity build of 16 sources per unit, no
# benchmarks): every unit, integration and interop case against the instrumented binaries, the
# integration suite on SQLite (its PostgreSQL pass is run-tests.sh's). Not part of run-tests.sh:
# the two builds and the instrumented run do not fit CI's 30 minutes on 2 cores together. Run it
# before a release and for changes to threads, reactors, parsers or memory handling. The CTest
# summary is the last thing printed.
set -euo pipefail
cd "$(dirname "$0")/.."
# clang and its sanitizer runtimes.
bash deploy/install-deps.sh clang libclang-rt-14-dev
# clang checks the lock annotations (-Wthread-safety, an error here). A build-asan/ that an
# earlier version made with GCC starts over.
bash deploy/check-build-dir.sh build-asan
if [ -f build-asan/CMakeCache.txt ] && ! grep -q '^CMAKE_CXX_COMPILER:.*clang' build-asan/CMakeCache.txt; then
  rm -rf build-asan
fi
cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_COMPILER=clang++ \
  -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g1" -DRDG_SANITIZE=address -DRDG_WERROR=ON \
  -DRDG_BUILD_BENCHMARKS=OFF -DCMAKE_UNITY_BUILD=ON -DCMAKE_UNITY_BUILD_BATCH_SIZE=16 >/dev/null
SECONDS=0
cmake --build build-asan
echo "sanitize: build-asan/ built in ${SECONDS} s" >&2
# Leaks are not checked: gRPC and DCMTK keep process-wide singletons until exit.
cd build-asan
ASAN_OPTIONS=detect_leaks=0:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  exec ctest --output-on-failure --timeout 900 -j2
