#!/usr/bin/env bash
# Page faults per execution, by the mapping they fall in: starts the release build with the
# default configuration, and for `/execute` in `agent`, `data` and `compute` (the request bodies
# of scripts/bench-vs-node.sh) at 8 connections records every page fault of the zygote and its
# workers (`perf record -e page-faults -c 1 -d -p ZYGOTE`) during one wrk run, then bins the
# faulting addresses by the zygote's mappings (workers are forked from it, so they share its
# layout; addresses in mappings made after the fork count as "other"). A fresh `agent` process
# pays every fault of its short life, so this is where the fork path's kernel time comes from.
#
# Usage: scripts/bench-faults.sh [seconds per run, default 3]
# Needs perf (Debian's linux-perf) and the rights to trace other processes (root, or
# kernel.perf_event_paranoid <= 1). Prints a Markdown table; asserts nothing.
set -euo pipefail
duration=${1:-3}
warmup=0
cd "$(dirname "$0")/.."
for tool in perf wrk curl python3; do
  command -v "$tool" >/dev/null || { echo "error: $tool not found (perf: apt-get install linux-perf)" >&2; exit 1; }
done

# shellcheck source=bench/lib.sh
. bench/lib.sh
bench_begin bench-faults
start_ours ours ""
ours=$url
bench_bodies
zygote=$(curl -s "$ours/status" | python3 -c 'import json, sys; print(json.load(sys.stdin)["zygote"]["pid"])')
[[ $zygote -gt 0 ]] || { echo "error: no zygote pid in /status" >&2; exit 1; }
cp "/proc/$zygote/maps" "$work/maps"

echo "page faults of the zygote and its workers per request; wrk -t1 -c8, ${duration} s per run;" \
  "$(nproc) CPUs; $(date -u +%Y-%m-%dT%H:%MZ)"
echo
echo "| scenario | req/s | faults per request | by mapping (faults per request) |"
echo "|---|---|---|---|"
for scenario in agent data readme; do
  body=${!scenario}
  printf '%s' "$body" >"$work/warm.json"
  WRK_BODY_FILE=$work/warm.json wrk -t1 -c8 -d1s -s "$bench_lua" "$ours/execute" >/dev/null
  perf record -q -c 1 -e page-faults -d -p "$zygote" -o "$work/faults.data" \
    -- sleep $((duration + 1)) 2>/dev/null &
  recorder=$!
  sleep 0.3
  run_wrk "$scenario" 8 "$ours/execute" "$body"
  wait "$recorder"
  perf script -i "$work/faults.data" -F addr 2>/dev/null >"$work/faults.txt"
  python3 - "$work/maps" "$work/faults.txt" "$(tail -n 1 "$out")" "$scenario" <<'EOF'
import bisect, collections, json, sys
maps = []
for line in open(sys.argv[1]):
    f = line.split()
    start, end = (int(x, 16) for x in f[0].split("-"))
    path = f[5].rsplit("/", 1)[-1] if len(f) > 5 else "anonymous"
    maps.append((start, end, f"{path} {f[1]}"))
maps.sort()
starts = [m[0] for m in maps]
counts = collections.Counter()
for line in open(sys.argv[2]):
    try:
        addr = int(line.split()[0], 16)
    except (IndexError, ValueError):
        continue
    i = bisect.bisect_right(starts, addr) - 1
    counts[maps[i][2] if i >= 0 and addr < maps[i][1] else "other"] += 1
run = json.loads(sys.argv[3])
n = max(run["requests"], 1)
top = ", ".join(f"{name} {c / n:.1f}" for name, c in counts.most_common(6))
scenario = {"readme": "README example, `compute`"}.get(sys.argv[4], f"`{sys.argv[4]}`")
print(f"| {scenario} | {run['rps']:.0f} | {sum(counts.values()) / n:.1f} | {top} |")
EOF
done
echo
echo "raw wrk results: $out"
