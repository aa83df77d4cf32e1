#!/usr/bin/env bash
# The replication figures of README.md (issue 16): ingest at
# --replication-factor=1 against =3 on a 3-node etcd cluster on this machine
# (alternately, medians over RUNS runs, default 3: metrics/s, their ratio and
# the p99 ack latency), and the failover time after a SIGKILLed leader
# (median over FAILOVER_RUNS runs, default 3). The cluster handling (etcd,
# placement, the failover probe) is the e2e harness's, so the measuring is in
# bench/replication_figures.mjs; this starts it with the build's binaries.
# Usage: bench/replication_figures.sh. Expects a build in ./build (or BUILD=DIR),
# etcd (/usr/bin/etcd or ETCD_BINARY) and tests/e2e/node_modules
# (scripts/install-deps.sh). SMOKE=1: one small run of each.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${BUILD:-build}
export BILLINGD
BILLINGD=$(realpath "$build/billingd")
export LOADGEN
LOADGEN=$(realpath "$build/bench/billing-loadgen")
exec node bench/replication_figures.mjs
