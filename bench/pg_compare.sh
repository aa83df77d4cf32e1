#!/usr/bin/env bash
# billingd against PostgreSQL 15 with hourly rollups (issue 18), alternating in
# one run on this machine: the three loads below, 4 connections each, RUNS runs
# (default 3) of billing-loadgen against one fresh billingd and of
# billing-pg-loadgen against one fresh PostgreSQL of its own (fsync=on,
# synchronous_commit=on, loopback, a free port), the order of the two swapped
# every run. Reports per load the medians of both sides' metrics/s and the
# median of the per-run ratios, then billingd's batch p99 in an open-loop run
# (billing-loadgen --rate) at RATE_FRACTION (default 0.7) of its measured
# median, and the load average before and after (the machine is shared: a
# figure without it means little).
#
# Usage: bench/pg_compare.sh. Expects a build in ./build (or BUILD=DIR).
# Environment: RUNS, WINDOWS_PER_CONNECTION (default 20000), CONNECTIONS
# (default 4), VERIFY=no to skip checking every run's totals through the query
# APIs (they are checked by default, which for the spread load queries 10,000
# customers per run), SMOKE=1 for a tiny run of every step that only checks
# the tools work (a few seconds; it measures nothing).
set -euo pipefail
cd "$(dirname "$0")/.."
build=${BUILD:-build}
runs=${RUNS:-3}
connections=${CONNECTIONS:-4}
windows_per_connection=${WINDOWS_PER_CONNECTION:-20000}
rate_fraction=${RATE_FRACTION:-0.7}
verify=${VERIFY:-yes}
# name batch_size vms_per_connection customers: 100 customers per batch twice,
# then every batch spread over 1000 customers (one per VM).
loads=(
  "batch1000-100-customers 1000 100 $((connections * 100))"
  "batch100-100-customers 100 100 $((connections * 100))"
  "batch1000-1000-customers 1000 2500 $((connections * 2500))"
)
if [[ ${SMOKE:-} == 1 ]]; then
  runs=1
  windows_per_connection=400
  loads=(
    "smoke-batch100 100 20 $((connections * 20))"
    "smoke-spread 100 200 $((connections * 200))"
  )
fi
source bench/lib.sh
use_scratch_dir
trap 'stop_billingd; stop_postgres "$work/pg"; rm -rf "$work"' EXIT
echo "loadavg_before $(cut -d' ' -f1-3 /proc/loadavg) cores $(nproc)"
start_postgres "$work/pg"
start_billingd "$build/billingd" "$work/billingd.log" --data-dir="$work/billingd-data"

# field FILE KEY [COLUMN]: the value after KEY at the start of a line.
field() { awk -v key="$1" -v column="${3:-2}" '$1 == key {print $column}' "$2"; }

run_billingd() {  # OUT TAG BATCH_SIZE VMS CUSTOMERS [LOADGEN FLAGS]
  local out=$1 tag=$2 batch_size=$3 vms=$4 customers=$5
  shift 5
  "$build/bench/billing-loadgen" --target="$address" --connections="$connections" \
    --batches=$(( (windows_per_connection + batch_size - 1) / batch_size )) \
    --batch-size="$batch_size" --vms="$vms" --customers="$customers" --run-tag="$tag" \
    --verify="$verify" "$@" >"$out" || { cat "$out" >&2; return 1; }
}

run_postgres() {  # OUT TAG BATCH_SIZE VMS CUSTOMERS
  local out=$1 tag=$2 batch_size=$3 vms=$4 customers=$5
  "$build/bench/billing-pg-loadgen" --conninfo="$postgres_conninfo" --connections="$connections" \
    --batches=$(( (windows_per_connection + batch_size - 1) / batch_size )) \
    --batch-size="$batch_size" --vms="$vms" --customers="$customers" --run-tag="$tag" \
    >"$out" || { cat "$out" >&2; return 1; }
}

for load in "${loads[@]}"; do
  read -r name batch_size vms customers <<<"$load"
  for run in $(seq 1 "$runs"); do
    if (( run % 2 )); then
      run_billingd "$work/$name.billingd.$run" "$name-r$run" "$batch_size" "$vms" "$customers"
      run_postgres "$work/$name.pg.$run" "$name-r$run" "$batch_size" "$vms" "$customers"
    else
      run_postgres "$work/$name.pg.$run" "$name-r$run" "$batch_size" "$vms" "$customers"
      run_billingd "$work/$name.billingd.$run" "$name-r$run" "$batch_size" "$vms" "$customers"
    fi
    awk -v b="$(field metrics_per_second "$work/$name.billingd.$run")" \
        -v p="$(field metrics_per_second "$work/$name.pg.$run")" \
        'BEGIN {printf "%.3f\n", b / p}' >>"$work/$name.ratios"
  done
  billingd_max=$(cat "$work/$name".billingd.* | awk '$1 == "metrics_per_second" {print $2}' | median)
  postgres_max=$(cat "$work/$name".pg.* | awk '$1 == "metrics_per_second" {print $2}' | median)
  echo "load $name batch_size $batch_size customers_per_batch $(( batch_size < vms ? batch_size : vms )) customers $customers runs $runs"
  echo "  billingd_metrics_per_second_median $billingd_max"
  echo "  postgres_metrics_per_second_median $postgres_max"
  echo "  ratio_median $(median <"$work/$name.ratios") ratios $(paste -sd' ' "$work/$name.ratios")"
  rate=$(awk -v m="$billingd_max" -v f="$rate_fraction" 'BEGIN {printf "%d", m * f}')
  run_billingd "$work/$name.rate" "$name-rate" "$batch_size" "$vms" "$customers" --rate="$rate"
  echo "  billingd_at_${rate_fraction}_of_max rate $rate metrics_per_second $(field metrics_per_second "$work/$name.rate") batch_latency_ms p50 $(field batch_latency_ms "$work/$name.rate" 3) p99 $(field batch_latency_ms "$work/$name.rate" 5)"
done
if [[ ${SMOKE:-} == 1 ]]; then
  # The last load's windows into PostgreSQL again: all duplicates, the rollups
  # unchanged (exit 1 by design: nothing new acknowledged).
  "$build/bench/billing-pg-loadgen" --conninfo="$postgres_conninfo" --connections="$connections" \
    --batches=$(( (windows_per_connection + batch_size - 1) / batch_size )) \
    --batch-size="$batch_size" --vms="$vms" --customers="$customers" --run-tag="$name-r1" \
    >"$work/again" || true
  grep -qx 'accepted 0' "$work/again" && grep -qx 'errors 0' "$work/again" &&
    grep -qx 'verify ok' "$work/again" || { cat "$work/again" >&2; exit 1; }
  echo "postgres duplicates counted once: ok"
fi
echo "loadavg_after $(cut -d' ' -f1-3 /proc/loadavg)"
