#!/usr/bin/env bash
# Installs dependencies, builds, and starts billingd on its embedded default:
# one node, RocksDB under ./data, Connect on 127.0.0.1:8080. Extra arguments
# go to billingd (see `build/billingd --help`). Without --auth-tokens-file in
# the arguments this local default runs in the explicit, loudly logged
# --insecure-no-auth development mode.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh
auth=(--insecure-no-auth)
for arg in "$@"; do
  case "$arg" in --auth-tokens-file*|--insecure-no-auth*) auth=() ;; esac
done
exec build/billingd --listen=127.0.0.1:8080 --data-dir=./data "${auth[@]}" "$@"
