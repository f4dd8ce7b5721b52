#!/usr/bin/env bash
# Prints the path of promtool: the one on PATH, else the one scripts/install-observability-deps.sh
# unpacks from Debian's prometheus package (which may not exist yet).
set -euo pipefail
if command -v promtool >/dev/null 2>&1; then
  command -v promtool
else
  echo "${XDG_CACHE_HOME:-$HOME/.cache}/isolate-service/promtool/usr/bin/promtool"
fi
