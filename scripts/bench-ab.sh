#!/usr/bin/env bash
# Two builds of isolate-service against each other, in one run: starts BINARY-A and BINARY-B
# (each with the default configuration, no token, on a free port, both running throughout),
# and runs each scenario with `wrk -t1` against one, then the other, ROUNDS times, the order
# swapped every round (A first in odd rounds), after a 1-second warm-up each. Besides wrk's
# figures it reads the whole machine's busy CPU time from /proc/stat around every run and
# divides it by the requests answered: CPU per request moves much less than throughput on a
# shared machine. It prints the median of the rounds per scenario and build.
#
# Scenarios (the request bodies of scripts/bench-vs-node.sh):
#   agent 8, data 8, compute 8 and 1 connection(s) on /execute; /wasm/run `add` at 8 and 1.
#
# Usage: scripts/bench-ab.sh BINARY-A BINARY-B [rounds, default 4] [seconds per run, default 3]
# Copy a build aside first (cp target/release/isolate-service /tmp/before) to compare it with
# a later one. Every answer must be 2xx, or the script fails.
set -euo pipefail
a=$(realpath "${1:?usage: scripts/bench-ab.sh BINARY-A BINARY-B [rounds] [seconds]}")
b=$(realpath "${2:?usage: scripts/bench-ab.sh BINARY-A BINARY-B [rounds] [seconds]}")
rounds=${3:-4}
duration=${4:-3}
warmup=1
cd "$(dirname "$0")/.."
for tool in wrk curl python3; do
  command -v "$tool" >/dev/null || { echo "error: $tool not found" >&2; exit 1; }
done

# shellcheck source=bench/lib.sh
. bench/lib.sh
mkdir -p results
out="results/bench-ab-$(date -u +%Y%m%dT%H%M%SZ).jsonl"
work=$(mktemp -d)
trap 'stop_services; rm -rf "$work"' EXIT

start_ours a "" "$a"
url_a=$url
start_ours b "" "$b"
url_b=$url

bench_bodies
compile_bench_add "$url_a" "$url_b"

echo "A: $a; B: $b; wrk -t1, ${duration} s per run, $rounds rounds; $(nproc) CPUs;" \
  "$(date -u +%Y-%m-%dT%H:%MZ)"
echo
for round in $(seq "$rounds"); do
  order=(A B)
  ((round % 2)) || order=(B A)
  while read -r label conns path body; do
    for build in "${order[@]}"; do
      base=$url_a
      [[ $build == B ]] && base=$url_b
      service=$build run_wrk "$label" "$conns" "$base$path" "${!body}"
    done
  done <<'EOF'
agent 8 /execute agent
data 8 /execute data
compute 8 /execute readme
compute 1 /execute readme
wasm-add 8 /wasm/run wasm
wasm-add 1 /wasm/run wasm
EOF
done

python3 - "$out" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
keys = []
for r in rows:
    k = (r["label"], r["connections"])
    if k not in keys:
        keys.append(k)
def med(label, conns, build, field):
    v = [r[field] for r in rows
         if (r["label"], r["connections"], r["service"]) == (label, conns, build)]
    return statistics.median(v)
print("| scenario | connections | A req/s | B req/s | B / A | A p50 ms | B p50 ms"
      " | A CPU µs/req | B CPU µs/req |")
print("|---|---|---|---|---|---|---|---|---|")
for label, conns in keys:
    ra, rb = med(label, conns, "A", "rps"), med(label, conns, "B", "rps")
    print(f"| {label} | {conns} | {ra:.0f} | {rb:.0f} | {rb / ra:.2f} "
          f"| {med(label, conns, 'A', 'p50_us') / 1000:.3f} "
          f"| {med(label, conns, 'B', 'p50_us') / 1000:.3f} "
          f"| {med(label, conns, 'A', 'cpu_us_per_request'):.0f} "
          f"| {med(label, conns, 'B', 'cpu_us_per_request'):.0f} |")
print()
print(f"medians of the rounds; raw results: {sys.argv[1]}")
PY
