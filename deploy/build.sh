#!/usr/bin/env bash
# Installs the Debian packages RDG needs (idempotent) and builds everything into build/.
set -euo pipefail
cd "$(dirname "$0")/.."
bash deploy/install-deps.sh
bash deploy/check-build-dir.sh build
# A unity build (12 sources per translation unit) parses the heavy gRPC/protobuf headers once
# per batch instead of once per file: about half the build time on 2 cores. build-asan/
# (sanitize.sh) batches by 16, so the two group files differently: a source that compiles only
# thanks to a batch neighbour's includes is most likely caught by one of them.
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_UNITY_BUILD=ON -DCMAKE_UNITY_BUILD_BATCH_SIZE=12 >/dev/null
cmake --build build
