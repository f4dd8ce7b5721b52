#!/usr/bin/env bash
# Installs what building and testing isolate-service needs on a Debian-based machine:
# a C compiler (QuickJS is compiled from source by rquickjs-sys), pkg-config, python3 and
# curl (used by scripts/bench.sh to print its table, compile its modules and read /status),
# and wrk (the load generator of scripts/bench.sh and scripts/bench-vs-node.sh).
# The Rust toolchain itself (cargo, rustc, rustfmt, clippy; rustc >= 1.95) must already be
# installed, e.g. with rustup.
# Then scripts/install-packaging-deps.sh installs what the packaging checks need (cargo-deb,
# systemd-analyze, podman, mmdebstrap, kubernetes-validate), and
# scripts/install-observability-deps.sh what the tests of /metrics need (promtool).
# Safe to run repeatedly: it installs only what is missing.
set -euo pipefail

missing=()
command -v cc >/dev/null 2>&1 || missing+=(build-essential)
command -v pkg-config >/dev/null 2>&1 || missing+=(pkg-config)
command -v python3 >/dev/null 2>&1 || missing+=(python3)
command -v curl >/dev/null 2>&1 || missing+=(curl)
command -v wrk >/dev/null 2>&1 || missing+=(wrk)
if ((${#missing[@]})); then
  sudo=""
  [[ $(id -u) -eq 0 ]] || sudo="sudo"
  echo "installing: ${missing[*]}"
  $sudo apt-get update -q
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q "${missing[@]}"
fi

for tool in cargo rustc; do
  command -v "$tool" >/dev/null 2>&1 || { echo "error: $tool not found; install Rust (rustc >= 1.95) first" >&2; exit 1; }
done
for component in rustfmt clippy; do
  if ! cargo "${component/rustfmt/fmt}" --version >/dev/null 2>&1; then
    rustup component add "$component"
  fi
done
echo "build dependencies present: $(rustc --version), $(cc --version | head -n 1)"

"$(dirname "$0")/install-packaging-deps.sh"
"$(dirname "$0")/install-observability-deps.sh"
