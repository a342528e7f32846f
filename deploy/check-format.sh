#!/usr/bin/env bash
# Checks that every C++ source of the repository is formatted as .clang-format says (Google style,
# 100 columns; Debian's clang-format 14). Prints each difference and exits non-zero when a file is
# not. To format a file: clang-format -i FILE. Run by deploy/run-tests.sh before anything else.
set -euo pipefail
cd "$(dirname "$0")/.."
bash deploy/install-deps.sh clang-format
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  mapfile -t files < <(git ls-files -- '*.cc' '*.h')
else  # an unpacked tarball: the same folders git would list
  mapfile -t files < <(find gateway storage clients proto tests -name '*.cc' -o -name '*.h' | sort)
fi
clang-format --dry-run -Werror "${files[@]}"
echo "check-format: ${#files[@]} C++ files formatted as .clang-format says" >&2
