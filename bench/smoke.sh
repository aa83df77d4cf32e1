#!/usr/bin/env bash
# Smoke run of the benchmark tools with small sizes: billingd on a free
# loopback port with a scratch data dir, one loadgen run that must see every
# window acknowledged, a second identical run that must see only duplicates,
# and a small ledger-limit run. Measures nothing; keeps the tools working.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
billingd=$1 loadgen=$2 ledger_limit=$3 query_bench=$4 metald_loadgen=$5
use_scratch_dir
start_billingd "$billingd" "$work/billingd.log" --data-dir="$work/data"

run_loadgen() {
  "$loadgen" --target="$address" --connections=2 --batches=5 --batch-size=100 --vms=20 \
    --customers=7 --run-tag=smoke
}
first=$(run_loadgen)
echo "$first"
grep -qx 'accepted 1000' <<<"$first"
grep -qx 'verify ok' <<<"$first"

# The same windows again: all duplicates, nothing new acknowledged (exit 1 by design).
second=$(run_loadgen || true)
echo "$second"
grep -qx 'accepted 0' <<<"$second"
grep -qx 'duplicates 1000' <<<"$second"
grep -qx 'errors 0' <<<"$second"
# The ledger still holds each window once: the totals match the first run's.
grep -qx 'verify ok' <<<"$second"

# More customers than VMs cannot all be touched: refused (exit 2), nothing sent.
refused=0
"$loadgen" --target="$address" --connections=2 --batches=1 --batch-size=10 --vms=20 \
  --customers=41 --run-tag=too-many 2>"$work/refused.err" || refused=$?
[[ $refused -eq 2 ]] || { echo "too many customers not refused (exit $refused)" >&2; exit 1; }
grep -q 'at most 40 customers' "$work/refused.err"

# metald's 100 ms samples: every batch acknowledged, the ledger's CPU and VM
# time exactly what the counters carried.
"$metald_loadgen" --target="$address" --connections=2 --vms=3 --minutes=2 --customers=2 \
  --run-tag=smoke | tee "$work/metald.out"
grep -qx 'samples_acknowledged 7200' "$work/metald.out"
grep -qx 'verify ok' "$work/metald.out"

"$ledger_limit" --data-dir="$work/limit" --writers=2 --batches=5 --batch-size=100 | tee "$work/limit.out"
grep -qx 'failures 0' "$work/limit.out"

# The query benchmark on a tiny dataset, against a second billingd serving it.
stop_billingd
"$query_bench" --populate=yes --data-dir="$work/query" --vms=4 --days=2 | tee "$work/populate.out"
grep -qx 'windows_written 11520' "$work/populate.out"
start_billingd "$billingd" "$work/billingd2.log" --data-dir="$work/query"
"$query_bench" --target="$address" --vms=4 --days=2 --queries=5 | tee "$work/query.out"
grep -qx 'query_check ok' "$work/query.out"
# Live-usage latency: every update arrives with its exact delta.
stop_billingd
start_billingd "$billingd" "$work/billingd3.log" --data-dir="$work/stream"
node "$(dirname "$0")/stream_latency.mjs" "$address" 5 | tee "$work/stream.out"
grep -qx 'updates 5' "$work/stream.out"
echo "bench smoke ok"
