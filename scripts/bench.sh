#!/usr/bin/env bash
# Load benchmark of isolate-service: builds the release binary, starts the service on a free
# port, and measures requests/s and latency percentiles with wrk (bench/wrk/json-api.lua,
# one wrk thread, a warm-up before each measured run):
#   - /execute with the README example at 1 and 8 connections, all sandbox layers on;
#   - /health at 8 connections (the HTTP ceiling);
#   - TypeScript on POST /deno next to the same code as JavaScript on POST /execute (both in
#     the data preset), at 8 connections: the cost of stripping types in the worker;
#   - /wasm/run of a tiny exported `add` and of a WASI command (writes to stdout) at 8
#     connections, in the same service as /execute;
#   - /execute at 8 connections again with every sandbox layer switched off, in the same run,
#     so the two throughputs compare like for like;
#   - the cost of the lockdown per worker and the time from fork request to a ready worker,
#     read back from GET /status (measured by the workers and the supervisor themselves).
#
# Usage: scripts/bench.sh [seconds per scenario, default 10]
# Output: Markdown tables on stdout (scripts/bench-report.py), raw JSON lines in
# results/bench-<time>.jsonl. Fails when an answer is not 2xx or wrk reports a socket error;
# it asserts nothing about speed.
set -euo pipefail
cd "$(dirname "$0")/.."
duration=${1:-10}
warmup=2
command -v wrk >/dev/null || { echo "error: wrk not found; run scripts/install-deps.sh" >&2; exit 1; }

# shellcheck source=bench/lib.sh
. bench/lib.sh
bench_begin bench

example='{"code":"return env.prices.reduce((a,b) => a+b, 0) / env.prices.length","preset":"compute","env":{"prices":[83.50,84.20,82.10]},"timeout":5000}'
# The same function body as TypeScript on /deno and as JavaScript on /execute (data preset).
ts_body='{"code":"interface Input { prices: number[] }\nconst input = data as Input;\nconst prices: number[] = input.prices!;\nreturn prices.reduce((a: number, b: number): number => a + b, 0) / prices.length","data":{"prices":[83.50,84.20,82.10]}}'
js_body='{"code":"\nconst input = env;\nconst prices = input.prices;\nreturn prices.reduce((a, b) => a + b, 0) / prices.length","preset":"data","env":{"prices":[83.50,84.20,82.10]}}'

spawn_costs() { # label -> one JSON line with the mean lockdown and fork-to-ready times
  curl -sS --fail "$url/status" | python3 -c '
import json, sys
s = json.load(sys.stdin); w = s["workers"]
mean = lambda k: sum(x[k] for x in w) / len(w) if w else 0
print(json.dumps({"label": sys.argv[1], "workers": len(w), "lockdown_us": mean("lockdownMicros"), "spawn_us": mean("spawnMicros")}))' "$1" >>"$out"
}

start_ours on ""
run_wrk "execute, sandbox on" 1 "$url/execute" "$example"
run_wrk "execute, sandbox on" 8 "$url/execute" "$example"
run_wrk "health" 8 "$url/health"
run_wrk "execute, JavaScript, data preset" 8 "$url/execute" "$js_body"
run_wrk "deno, TypeScript, data preset" 8 "$url/deno" "$ts_body"
add_id=$(compile_module "$url" "$(wasm_module_b64 add)")
wasi_id=$(compile_module "$url" "$(wasm_module_b64 wasi)")
run_wrk "wasm/run add, sandbox on" 8 "$url/wasm/run" "{\"moduleId\":\"$add_id\",\"args\":[2,3]}"
run_wrk "wasm/run WASI command, sandbox on" 8 "$url/wasm/run" "{\"moduleId\":\"$wasi_id\",\"stdin\":\"x\"}"
spawn_costs "sandbox on"
stop_services

start_ours off $'[sandbox]\nseccomp = false\nlandlock = false\nnamespaces = false\nrlimits = false'
run_wrk "execute, sandbox off" 8 "$url/execute" "$example"
spawn_costs "sandbox off"
stop_services

scripts/bench-report.py table "$out"
echo
echo "raw results: $out"
