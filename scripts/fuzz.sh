#!/usr/bin/env bash
# Builds the libFuzzer targets with clang (ASan + UBSan) in build-fuzz/ and
# runs each for FUZZ_SECONDS (default 30) from its committed corpus in
# fuzz/corpus/<target>, which holds the regression inputs. New inputs found in
# a run go to a scratch directory, not into the repository. Exits non-zero on
# any crash, leak, timeout or sanitizer report; the reproducer is printed.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${FUZZ_SECONDS:-30}
build=${FUZZ_BUILD_DIR:-build-fuzz}
CC=clang CXX=clang++ cmake -S . -B "$build" -G Ninja -DBILLING_FUZZ=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
ninja -C "$build" connect_request_fuzzer metric_validation_fuzzer
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
for target in connect_request metric_validation; do
  mkdir -p "$scratch/$target"
  echo "fuzzing $target for ${seconds}s"
  "$build/fuzz/${target}_fuzzer" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
    -artifact_prefix="$scratch/" -print_final_stats=1 "$scratch/$target" "fuzz/corpus/$target" \
    2>&1 | tail -n 15
done
echo "fuzz ok"
