#!/usr/bin/env bash
# Installs dependencies, builds, and runs the whole test suite: unit tests
# (doctest), protocol lint, end-to-end tests against the real billingd.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh
ctest --test-dir build --output-on-failure --timeout 900 -j"${TEST_JOBS:-2}"
