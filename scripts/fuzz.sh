#!/usr/bin/env bash
# Runs the cargo-fuzz targets in fuzz/ (frame decoder, request parsing and validation, result
# serialiser, TypeScript stripper, answer assembly, route access) for N seconds each, starting from a copy of the committed
# corpus in fuzz/corpus.
# A crash fails the run; its input is saved under fuzz/artifacts/<target>/ (add it to
# fuzz/corpus/<target>/ as a regression seed once fixed).
#
# Usage: scripts/fuzz.sh [seconds per target, default 10] [target ...]
#   CI runs the short version; for a real search: scripts/fuzz.sh 1800
#
# cargo-fuzz needs nightly compiler flags; RUSTC_BOOTSTRAP=1 lets the stable toolchain accept
# them, so no second toolchain is installed.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
seconds=${1:-10}
shift || true
targets=("$@")
[[ ${#targets[@]} -gt 0 ]] || targets=(frame_decode request_parse result_serialise ts_strip answer_assembly route_access)

command -v cargo-fuzz >/dev/null 2>&1 || cargo install cargo-fuzz --locked --version 0.13.2
export RUSTC_BOOTSTRAP=1
cargo fuzz build -O
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for t in "${targets[@]}"; do
  mkdir -p "$work/$t"
  cp -r "corpus/$t/." "$work/$t/" 2>/dev/null || true
  echo "::: fuzz $t for ${seconds}s"
  cargo fuzz run -O "$t" "$work/$t" -- -max_total_time="$seconds" -rss_limit_mb=4096 2>&1 \
    | grep -E '^(Done|==[0-9]+== ERROR|SUMMARY)|panicked at' || true
  if compgen -G "artifacts/$t/*" >/dev/null; then
    echo "fuzz target $t failed; inputs in fuzz/artifacts/$t/" >&2
    exit 1
  fi
done
