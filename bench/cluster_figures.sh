#!/usr/bin/env bash
# The cluster figures of README.md: ingest throughput of one node against a
# 3-node cluster on this machine, medians over RUNS runs (default 3). The
# same total load each time: 6 keep-alive connections (1 node: one loadgen
# with 6; 3 nodes: one loadgen with 2 against each gateway, concurrently),
# batches of BATCH_SIZE (default 1000), one customer per VM (100 per connection), every
# loadgen verifying its totals through the query API at the end (through
# its own gateway, so cross-node reads are checked too). Throughput is the
# sum of the concurrent loadgens' acknowledged metrics per second (each
# measured over its own ingest, not its verification).
# Usage: bench/cluster_figures.sh. Expects a build in ./build.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${RUNS:-3}
batch_size=${BATCH_SIZE:-1000}
windows_per_connection=${WINDOWS_PER_CONNECTION:-20000}
batches=$(( (windows_per_connection + batch_size - 1) / batch_size ))
source bench/lib.sh
work=$(mktemp -d)
pids=()
stop_all() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true; done
  pids=()
}
trap 'stop_all; rm -rf "$work"' EXIT

free_port() {
  node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'
}

# start_nodes RUN N: starts N nodes (a cluster when N > 1); sets `addresses`.
start_nodes() {
  local run=$1 count=$2 members="" i
  local -a ports=()
  for i in $(seq 1 "$count"); do ports+=("$(free_port)"); done
  for i in $(seq 1 "$count"); do members+="${members:+,}n$i@127.0.0.1:${ports[$((i - 1))]}"; done
  addresses=()
  for i in $(seq 1 "$count"); do
    local -a cluster_args=()
    if (( count > 1 )); then cluster_args=(--node-id="n$i" --cluster-members="$members"); fi
    start_billingd build/billingd "$work/$run.$count.n$i.log" --data-dir="$work/$run.$count.n$i" \
      "${cluster_args[@]}"
    pids+=("$server_pid")
    server_pid=
    addresses+=("$address")
  done
}

# measure RUN N: one run against N nodes; prints windows per second.
measure() {
  local run=$1 count=$2 connections=$(( 6 / $2 )) i
  start_nodes "$run" "$count"
  local -a loadgens=()
  for i in $(seq 1 "$count"); do
    build/bench/billing-loadgen --target="${addresses[$((i - 1))]}" --connections="$connections" \
      --batches="$batches" --batch-size="$batch_size" --vms=100 --customers=$((connections * 100)) \
      --run-tag="r$run-n$count-g$i" >"$work/load.$run.$count.$i" &
    loadgens+=($!)
  done
  for pid in "${loadgens[@]}"; do wait "$pid"; done
  stop_all
  if [[ $(cat "$work"/load."$run"."$count".* | grep -c '^verify ok') -ne $count ]]; then
    echo "verification failed" >&2
    exit 3
  fi
  awk '/^metrics_per_second/ {s += $2} END {printf "%.0f\n", s}' "$work"/load."$run"."$count".*
}

for run in $(seq 1 "$runs"); do
  measure "$run" 1 >>"$work/one"
  measure "$run" 3 >>"$work/three"
done
one=$(median <"$work/one")
three=$(median <"$work/three")
echo "batch_size $batch_size connections 6 runs $runs"
echo "one_node_metrics_per_second_median $one"
echo "three_nodes_metrics_per_second_median $three"
awk -v a="$one" -v b="$three" 'BEGIN {printf "three_to_one_ratio %.2f\n", b / a}'
