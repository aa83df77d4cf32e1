#!/usr/bin/env bash
# The ingest figures of README.md: medians over RUNS runs (default 5) of
#  - billing-loadgen against a fresh billingd (durable acks), and
#  - billing-ledger-limit: the same records written straight to the ledger,
# plus their ratio. Usage: bench/ingest_figures.sh [BATCH_SIZE] (default 1000).
# Expects a build in ./build (scripts/build.sh), or BUILD=DIR with billingd and
# bench/ from another build (e.g. a copy of the previous commit's, to compare
# before/after under the same machine load).
set -euo pipefail
cd "$(dirname "$0")/.."
batch_size=${1:-1000}
runs=${RUNS:-5}
connections=${CONNECTIONS:-4}
windows_per_connection=${WINDOWS_PER_CONNECTION:-50000}
batches=$(( (windows_per_connection + batch_size - 1) / batch_size ))
build=${BUILD:-build}
source bench/lib.sh
use_scratch_dir
start_billingd "$build/billingd" "$work/billingd.log" --data-dir="$work/data"

for run in $(seq 1 "$runs"); do
  "$build/bench/billing-loadgen" --target="$address" --connections="$connections" --batches="$batches" \
    --batch-size="$batch_size" --vms=100 --customers=$((connections * 100)) --run-tag="r$run" >"$work/server.$run"
  "$build/bench/billing-ledger-limit" --data-dir="$work/limit" --writers="$connections" \
    --batches="$batches" --batch-size="$batch_size" >"$work/limit.$run"
done
server=$(awk '/^metrics_per_second/ {print $2}' "$work"/server.* | median)
p50=$(awk '/^batch_latency_ms/ {print $3}' "$work"/server.* | median)
p99=$(awk '/^batch_latency_ms/ {print $5}' "$work"/server.* | median)
limit=$(awk '/^records_per_second/ {print $2}' "$work"/limit.* | median)
echo "batch_size $batch_size connections $connections runs $runs"
echo "server_metrics_per_second_median $server"
echo "server_batch_latency_ms_median p50 $p50 p99 $p99"
echo "ledger_limit_records_per_second_median $limit"
awk -v s="$server" -v l="$limit" 'BEGIN {printf "server_to_limit_ratio %.2f\n", s / l}'
