#!/usr/bin/env bash
# Installs dependencies, builds, and starts billingd on its embedded default:
# one node, RocksDB under ./data, Connect on 127.0.0.1:8080. Extra arguments
# go to billingd (see `build/billingd --help`).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh
exec build/billingd --listen=127.0.0.1:8080 --data-dir=./data "$@"
