#!/usr/bin/env bash
# Usage: deploy/check-build-dir.sh DIR — run from the checkout's root before configuring DIR.
# CMake refuses a build folder made for another source tree (a moved or copied checkout) with an
# error that does not say what to do; this says it first and exits 2. No output when DIR is new
# or belongs to this checkout.
set -euo pipefail
dir="$1"
cache="$dir/CMakeCache.txt"
[ -f "$cache" ] || exit 0
source_dir="$(sed -n 's/^CMAKE_HOME_DIRECTORY:INTERNAL=//p' "$cache")"
if [ -n "$source_dir" ] && [ "$(realpath -m "$source_dir")" != "$(realpath .)" ]; then
  cat >&2 <<MSG
error: $dir/ was configured for the checkout at $source_dir, not this one ($(realpath .)).
  It holds only build output: remove it and run the command again —
    rm -rf $dir
  (build-asan/ and build-fuzz/ made there are in the same state; remove them too).
MSG
  exit 2
fi
