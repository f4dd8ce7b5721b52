#!/usr/bin/env bash
# Runs the soak test for longer than the test suite does.
# Usage: scripts/soak.sh [seconds, default 180]
set -euo pipefail
cd "$(dirname "$0")/.."
ISOLATE_SOAK_SECONDS=${1:-180} cargo test --release -p isolate-service --test soak -- --nocapture
