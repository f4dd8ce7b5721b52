#!/usr/bin/env bash
# Tests the MCP server with the official Python MCP SDK (`mcp` from PyPI) over both transports,
# against the release binary. Creates .venv-mcp (gitignored) with the SDK and pytest, installing
# Debian's python3-venv first when it is missing. Safe to run repeatedly.
# Usage: scripts/mcp-test.sh [pytest arguments]
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONDONTWRITEBYTECODE=1

sudo=""
[[ $(id -u) -eq 0 ]] || sudo="sudo"
if ! python3 -c 'import ensurepip, venv' >/dev/null 2>&1; then
  echo "installing: python3-venv"
  $sudo apt-get update -q
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q python3-venv
fi

venv=.venv-mcp
if [[ ! -x $venv/bin/python ]]; then
  python3 -m venv "$venv"
fi
# The SDK's major version is pinned: its client API changed between 1.x and 2.x.
"$venv/bin/pip" install -q --disable-pip-version-check 'mcp>=2.3,<3' 'pytest>=8'

if [[ ! -x target/release/isolate-service ]]; then
  cargo build --release -p isolate-service
fi

exec "$venv/bin/python" -m pytest -q -p no:cacheprovider tests/mcp "$@"
