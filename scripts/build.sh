#!/usr/bin/env bash
# Configures and builds everything into ./build (billingd at build/billingd,
# the dashboard it serves at /ui/ in build/ui).
set -euo pipefail
cd "$(dirname "$0")/.."
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE="${BUILD_TYPE:-RelWithDebInfo}" >/dev/null
cmake --build build -j"${BUILD_JOBS:-$(nproc)}"
if [ -d ui/node_modules ]; then
  node ui/build.mjs --out=build/ui
else
  echo "build: ui/node_modules missing (run scripts/install-deps.sh): the dashboard is not built" >&2
fi
