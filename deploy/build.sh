#!/usr/bin/env bash
# Installs the Debian packages RDG needs (idempotent) and builds everything into build/.
set -euo pipefail
cd "$(dirname "$0")/.."
bash deploy/install-deps.sh
bash deploy/check-build-dir.sh build
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build
