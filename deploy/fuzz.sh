#!/usr/bin/env bash
# Builds the libFuzzer targets with clang into build-fuzz/ and runs each for FUZZ_SECONDS (default
# 60) on a copy of its seed corpus, so the seeds in git are never touched. Exits non-zero when a
# fuzzer finds a crash, leak or timeout; the reproducer is kept in build-fuzz/crashes/<fuzzer>/.
# Idempotent: packages are installed only when missing. See tests/fuzz/README.md.
set -euo pipefail
cd "$(dirname "$0")/.."
root="$(pwd)"
seconds="${FUZZ_SECONDS:-60}"

# clang 14 and its libFuzzer / sanitizer runtimes, with everything the normal build needs.
bash deploy/install-deps.sh clang libclang-rt-14-dev

bash deploy/check-build-dir.sh build-fuzz
cmake -S . -B build-fuzz -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_COMPILER=clang++ \
  -DRDG_BUILD_FUZZERS=ON -DRDG_BUILD_TESTS=OFF -DRDG_BUILD_BENCHMARKS=OFF >/dev/null
# Only the fuzz targets (and the formats library they link), never the whole tree.
fuzzers=(hl7_lab_fuzzer:hl7 mllp_fuzzer:mllp ecg_waveform_fuzzer:ecg ecg_render_fuzzer:ecg
  dicom_object_fuzzer:dicom)
cmake --build build-fuzz --target "${fuzzers[@]%%:*}"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
failed=()
for entry in "${fuzzers[@]}"; do
  fuzzer="${entry%%:*}"
  seeds="tests/fuzz/corpus/${entry##*:}"
  corpus="$work/$fuzzer"
  crashes="$root/build-fuzz/crashes/$fuzzer"
  mkdir -p "$corpus" "$crashes"
  if [ -d "$seeds" ]; then cp -R "$seeds/." "$corpus/"; fi
  options=()
  if [ -f "tests/fuzz/${entry##*:}.dict" ]; then options+=("-dict=tests/fuzz/${entry##*:}.dict"); fi
  # MLLP carries HL7: its dictionary helps inside the frames.
  if [ "$fuzzer" = mllp_fuzzer ]; then options+=("-dict=tests/fuzz/hl7.dict"); fi
  # Drawing costs per sample: larger inputs only add samples, so keep them small.
  if [ "$fuzzer" = ecg_render_fuzzer ]; then options+=("-max_len=16384"); fi
  echo "fuzz: $fuzzer for ${seconds}s on a copy of $seeds" >&2
  if ! "build-fuzz/fuzz/$fuzzer" "$corpus" "${options[@]}" -max_total_time="$seconds" \
      -rss_limit_mb=2048 -timeout=25 -print_final_stats=1 -artifact_prefix="$crashes/"; then
    echo "fuzz: $fuzzer FAILED; reproducer(s) in $crashes" >&2
    failed+=("$fuzzer")
  fi
done
if [ ${#failed[@]} -ne 0 ]; then
  echo "fuzz: failures in ${failed[*]}" >&2
  exit 1
fi
echo "fuzz: no crash in ${#fuzzers[@]} fuzzers (${seconds}s each)" >&2
