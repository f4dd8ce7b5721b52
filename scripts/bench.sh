#!/usr/bin/env bash
# Load benchmark of isolate-service: builds release binaries, starts the service on a free
# port, and measures requests/s and latency percentiles with the repo's own load generator
# (target/release/isolate-bench) for the README example on /execute at 1 and 8 connections
# and for /health (the HTTP ceiling) at 8 connections.
#
# Usage: scripts/bench.sh [seconds per scenario, default 10]
# Output: a Markdown table on stdout, raw JSON lines in results/bench-<time>.jsonl.
set -euo pipefail
cd "$(dirname "$0")/.."
duration=${1:-10}
warmup=2

cargo build --release -q -p isolate-service -p isolate-bench
mkdir -p results
out="results/bench-$(date -u +%Y%m%dT%H%M%SZ).jsonl"

log=$(mktemp)
ISOLATE_PORT=0 ISOLATE_LOG_LEVEL=warn target/release/isolate-service >"$log" 2>&1 &
pid=$!
trap 'kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; rm -f "$log"' EXIT
for _ in $(seq 100); do
  url=$(sed -n 's/^isolate-service listening on //p' "$log" | head -n 1)
  [[ -n $url ]] && break
  sleep 0.1
done
[[ -n ${url:-} ]] || { echo "the service did not start:"; cat "$log"; exit 1; }

example='{"code":"return env.prices.reduce((a,b) => a+b, 0) / env.prices.length","preset":"compute","env":{"prices":[83.50,84.20,82.10]},"timeout":5000}'
run() { # label connections path [body]
  local args=(--url "$url$3" --connections "$2" --duration "$duration" --warmup "$warmup"
              --label "$1" --expect-status 200 --json)
  [[ $# -ge 4 ]] && args+=(--body "$4")
  target/release/isolate-bench "${args[@]}" 2>/dev/null | tee -a "$out"
}
{
  run "execute (README example)" 1 /execute "$example"
  run "execute (README example)" 8 /execute "$example"
  run "health" 8 /health
} >/dev/null

echo "| scenario | connections | req/s | p50 ms | p99 ms | errors |"
echo "|---|---|---|---|---|---|"
python3 - "$out" <<'PY'
import json, sys
for line in open(sys.argv[1]):
    r = json.loads(line)
    print(f"| {r['label']} | {r['connections']} | {r['rps']:.0f} | {r['p50_ms']:.3f} | {r['p99_ms']:.3f} | {r['errors']} |")
PY
echo
echo "raw results: $out"
