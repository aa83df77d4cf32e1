#!/usr/bin/env bash
# The query figures of README.md: one customer with VMS VMs (default 100) in
# two regions and DAYS days (default 31) of 1-minute windows, written once,
# then RUNS runs (default 5) of billing-query-bench against billingd on that
# data, then RUNS runs in-process on the same data (billingd stopped); prints
# the median of each run's p50 and p99 per query kind and way.
# Expects a build in ./build (scripts/build.sh); BUILD_DIR=DIR takes billingd
# and bench/billing-query-bench from DIR instead (e.g. a build of main, for a
# baseline measured in the same conditions).
set -euo pipefail
cd "$(dirname "$0")/.."
vms=${VMS:-100} days=${DAYS:-31} runs=${RUNS:-5} queries=${QUERIES:-300}
build=${BUILD_DIR:-build}
source bench/lib.sh
use_scratch_dir
"$build/bench/billing-query-bench" --populate=yes --data-dir="$work/data" --vms="$vms" --days="$days"
start_billingd "$build/billingd" "$work/billingd.log" --data-dir="$work/data"
for run in $(seq 1 "$runs"); do
  "$build/bench/billing-query-bench" --target="$address" --vms="$vms" --days="$days" \
    --queries="$queries" >"$work/server.$run"
  grep -qx 'query_check ok' "$work/server.$run"
done
stop_billingd
for run in $(seq 1 "$runs"); do
  "$build/bench/billing-query-bench" --data-dir="$work/data" --vms="$vms" --days="$days" \
    --queries="$queries" >"$work/in_process.$run"
  grep -qx 'query_check ok' "$work/in_process.$run"
done
echo "vms $vms days $days runs $runs queries_per_run $queries"
for way in server in_process; do
  for kind in usage_month_by_day usage_day_by_hour billing_window_hour; do
    p50=$(awk -v k="${kind}_latency_ms" '$1 == k {print $3}' "$work"/"$way".* | median)
    p99=$(awk -v k="${kind}_latency_ms" '$1 == k {print $5}' "$work"/"$way".* | median)
    echo "$way $kind p50_ms $p50 p99_ms $p99"
  done
done
