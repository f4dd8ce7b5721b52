#!/usr/bin/env bash
# The older Node.js service against isolate-service, in one run, with the same request bodies:
# starts the old service (`node src/server.js` in PATH-TO-OLD-SERVICE, on a free port given in
# ISOLATE_PORT) and ours (the release build, default configuration, on a free port), both
# without a token (the old service rate-limits every token to 60 requests a minute), and runs
# each scenario with `wrk -t1 -d<seconds>s` against one, then the other (a 1-second warm-up
# before each measured run):
#   - /execute, README example, compute preset, 8 connections;
#   - /execute, data preset (TextEncoder and btoa of env), 8 connections;
#   - /execute, agent preset (console.log, no fetch), 8 connections;
#   - /execute, README example, 1 connection, with our /health at 1 connection next to it;
#   - /wasm/run of a module exporting `add`, 8 connections (compiled on both under one id).
# Every answer must be 2xx on both services, or the script fails.
#
# Usage: scripts/bench-vs-node.sh PATH-TO-OLD-SERVICE [seconds per run, default 6]
# ISOLATE_BENCH_BINARY=PATH runs another build of ours (say, a copy of an earlier one) instead
# of target/release/isolate-service. ISOLATE_BENCH_PIN=CPU runs each service on that one CPU
# (its child processes too) and wrk on the others: the two compared core for core, where the
# default lets ours use every core while the old service, single-threaded, uses one.
# Output: a Markdown table on stdout (scripts/bench-report.py vs-node), raw JSON lines in
# results/bench-vs-node-<time>.jsonl.
# shellcheck disable=SC2016 # the backquotes in the scenario labels are Markdown
set -euo pipefail
old_dir=${1:?usage: scripts/bench-vs-node.sh PATH-TO-OLD-SERVICE [seconds]}
old_dir=$(cd "$old_dir" && pwd)
duration=${2:-6}
warmup=1
cd "$(dirname "$0")/.."
[[ -f $old_dir/src/server.js ]] || { echo "error: no src/server.js in $old_dir" >&2; exit 1; }
for tool in node wrk curl python3; do
  command -v "$tool" >/dev/null || { echo "error: $tool not found" >&2; exit 1; }
done

# shellcheck source=bench/lib.sh
. bench/lib.sh
bench_begin bench-vs-node
if [[ -n ${ISOLATE_BENCH_PIN-} ]]; then
  bench_pin "$ISOLATE_BENCH_PIN"
fi

old_port=$(free_port)
(cd "$old_dir" && exec env -u ISOLATE_AUTH_TOKEN ISOLATE_PORT="$old_port" ISOLATE_HOST=127.0.0.1 \
  ISOLATE_LOG_LEVEL=warn "${service_prefix[@]}" node src/server.js >"$work/old.log" 2>&1) &
pids+=($!)
old="http://127.0.0.1:$old_port"
wait_http "$old/health"
start_ours ours "" "${ISOLATE_BENCH_BINARY:-target/release/isolate-service}"
ours=$url

bench_bodies
compile_bench_add "$old" "$ours"

both() { # label connections path body
  service=old run_wrk "$1" "$2" "$old$3" "$4"
  service=ours run_wrk "$1" "$2" "$ours$3" "$4"
}

echo "old: node $(node --version) in $old_dir; ours: ${ISOLATE_BENCH_BINARY:-target/release/isolate-service};" \
  "wrk -t1, ${duration} s per run; $(nproc) CPUs${ISOLATE_BENCH_PIN:+, each service on CPU $ISOLATE_BENCH_PIN alone}; $(date -u +%Y-%m-%dT%H:%MZ)"
echo
both '`/execute` README example, `compute`' 8 /execute "$readme"
both '`/execute` `data` (`TextEncoder`, `btoa`)' 8 /execute "$data"
both '`/execute` `agent` (`console.log`, no fetch)' 8 /execute "$agent"
both '`/execute` README example, `compute`, 1 connection' 1 /execute "$readme"
service=ours run_wrk health 1 "$ours/health"
both '`/wasm/run` of `add`' 8 /wasm/run "$wasm"

scripts/bench-report.py vs-node "$out"
echo
echo "raw results: $out"
