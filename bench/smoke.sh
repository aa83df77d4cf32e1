#!/usr/bin/env bash
# Smoke run of the benchmark tools with small sizes: billingd on a free
# loopback port with a scratch data dir, one loadgen run that must see every
# window acknowledged, a second identical run that must see only duplicates,
# and a small ledger-limit run. Measures nothing; keeps the tools working.
set -euo pipefail
billingd=$1 loadgen=$2 ledger_limit=$3 query_bench=$4
work=$(mktemp -d)
server_pid=
cleanup() {
  [[ -n $server_pid ]] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

# Prints billingd's HOST:PORT once its log announces it.
wait_for_address() {
  local found=
  for _ in $(seq 1 100); do
    found=$(grep -o 'listening on [0-9.]*:[0-9]*' "$work/billingd.log" | head -1 | cut -d' ' -f3 || true)
    [[ -n $found ]] && { echo "$found"; return 0; }
    sleep 0.1
  done
  echo "billingd did not start" >&2
  cat "$work/billingd.log" >&2
  return 1
}

"$billingd" --listen=127.0.0.1:0 --data-dir="$work/data" --insecure-no-auth 2>"$work/billingd.log" &
server_pid=$!
address=$(wait_for_address)

run_loadgen() {
  "$loadgen" --target="$address" --connections=2 --batches=5 --batch-size=100 --vms=20 \
    --customers=7 --run-tag=smoke
}
first=$(run_loadgen)
echo "$first"
grep -qx 'accepted 1000' <<<"$first"

# The same windows again: all duplicates, nothing new acknowledged (exit 1 by design).
second=$(run_loadgen || true)
echo "$second"
grep -qx 'accepted 0' <<<"$second"
grep -qx 'duplicates 1000' <<<"$second"
grep -qx 'errors 0' <<<"$second"

"$ledger_limit" --data-dir="$work/limit" --writers=2 --batches=5 --batch-size=100 | tee "$work/limit.out"
grep -qx 'failures 0' "$work/limit.out"

# The query benchmark on a tiny dataset, against a second billingd serving it.
kill "$server_pid" && wait "$server_pid" 2>/dev/null || true
"$query_bench" --populate=yes --data-dir="$work/query" --vms=4 --days=2 | tee "$work/populate.out"
grep -qx 'windows_written 11520' "$work/populate.out"
"$billingd" --listen=127.0.0.1:0 --data-dir="$work/query" --insecure-no-auth 2>"$work/billingd.log" &
server_pid=$!
address=$(wait_for_address)
"$query_bench" --target="$address" --vms=4 --days=2 --queries=5 | tee "$work/query.out"
grep -qx 'query_check ok' "$work/query.out"
echo "bench smoke ok"
