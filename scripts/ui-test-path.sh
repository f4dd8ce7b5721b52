#!/usr/bin/env bash
# Prints the directory where scripts/install-observability-deps.sh installs playwright-core for
# the admin page's browser test, named by the hash of tests/ui/package.json.
set -euo pipefail
cd "$(dirname "$0")/.."
echo "${XDG_CACHE_HOME:-$HOME/.cache}/isolate-service/ui-test-$(sha256sum tests/ui/package.json | cut -c1-12)"
