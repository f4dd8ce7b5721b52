#!/usr/bin/env bash
# Load benchmark of isolate-service: builds release binaries, starts the service on a free
# port, and measures requests/s and latency percentiles with the repo's own load generator
# (target/release/isolate-bench):
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
# Output: Markdown tables on stdout, raw JSON lines in results/bench-<time>.jsonl.
set -euo pipefail
cd "$(dirname "$0")/.."
duration=${1:-10}
warmup=2

cargo build --release -q -p isolate-service -p isolate-bench
mkdir -p results
stamp=$(date -u +%Y%m%dT%H%M%SZ)
out="results/bench-$stamp.jsonl"
work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

start() { # name config-text -> sets $url
  printf '%s\n' "$2" >"$work/$1.toml"
  ISOLATE_PORT=0 ISOLATE_LOG_LEVEL=warn target/release/isolate-service --config "$work/$1.toml" \
    >"$work/$1.log" 2>&1 &
  pids+=($!)
  url=""
  for _ in $(seq 100); do
    url=$(sed -n 's/^isolate-service listening on //p' "$work/$1.log" | head -n 1)
    [[ -n $url ]] && break
    sleep 0.1
  done
  [[ -n $url ]] || { echo "the service did not start:"; cat "$work/$1.log"; exit 1; }
}

example='{"code":"return env.prices.reduce((a,b) => a+b, 0) / env.prices.length","preset":"compute","env":{"prices":[83.50,84.20,82.10]},"timeout":5000}'
# The same function body as TypeScript on /deno and as JavaScript on /execute (data preset).
ts_body='{"code":"interface Input { prices: number[] }\nconst input = data as Input;\nconst prices: number[] = input.prices!;\nreturn prices.reduce((a: number, b: number): number => a + b, 0) / prices.length","data":{"prices":[83.50,84.20,82.10]}}'
js_body='{"code":"\nconst input = env;\nconst prices = input.prices;\nreturn prices.reduce((a, b) => a + b, 0) / prices.length","preset":"data","env":{"prices":[83.50,84.20,82.10]}}'
run() { # label connections path [body]
  local args=(--url "$url$3" --connections "$2" --duration "$duration" --warmup "$warmup"
              --label "$1" --expect-status 200 --json)
  [[ $# -ge 4 ]] && args+=(--body "$4")
  target/release/isolate-bench "${args[@]}" 2>/dev/null >>"$out"
}
spawn_costs() { # label -> one JSON line with the mean lockdown and fork-to-ready times
  curl -s "$url/status" | python3 -c '
import json, sys
s = json.load(sys.stdin); w = s["workers"]
mean = lambda k: sum(x[k] for x in w) / len(w) if w else 0
print(json.dumps({"label": sys.argv[1], "workers": len(w), "lockdown_us": mean("lockdownMicros"), "spawn_us": mean("spawnMicros")}))' "$1" >>"$out"
}

# Two modules in binary form, encoded here so that the script needs no assembler: `add`
# (i32, i32) -> i32, and a WASI command whose _start writes "hi\n" with fd_write.
modules=$(python3 - <<'PY'
import base64, json
def leb(n):
    out = bytearray()
    while True:
        b = n & 0x7f; n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n: return bytes(out)
def vec(items): return leb(len(items)) + b"".join(items)
def sec(i, body): return bytes([i]) + leb(len(body)) + body
def name(s): return leb(len(s)) + s.encode()
head = b"\0asm\x01\0\0\0"
i32 = b"\x7f"
add = head + sec(1, vec([b"\x60" + vec([i32, i32]) + vec([i32])])) + sec(3, vec([leb(0)])) \
    + sec(7, vec([name("add") + b"\x00" + leb(0)])) \
    + sec(10, vec([leb(7) + b"\x00\x20\x00\x20\x01\x6a\x0b"]))
body = (b"\x41\x00\x41\x08\x36\x02\x00"      # iov.buf = 8
        b"\x41\x04\x41\x03\x36\x02\x00"      # iov.len = 3
        b"\x41\x01\x41\x00\x41\x01\x41\x14\x10\x00\x1a\x0b")  # fd_write(1, iov, 1, 20)
wasi = head + sec(1, vec([b"\x60" + vec([i32] * 4) + vec([i32]), b"\x60\x00\x00"])) \
    + sec(2, vec([name("wasi_snapshot_preview1") + name("fd_write") + b"\x00" + leb(0)])) \
    + sec(3, vec([leb(1)])) + sec(5, vec([b"\x00\x01"])) \
    + sec(7, vec([name("memory") + b"\x02" + leb(0), name("_start") + b"\x00" + leb(1)])) \
    + sec(10, vec([leb(len(body) + 1) + b"\x00" + body])) \
    + sec(11, vec([b"\x00\x41\x08\x0b" + vec([b"h", b"i", b"\n"])]))
print(base64.b64encode(add).decode(), base64.b64encode(wasi).decode())
PY
)
read -r add_b64 wasi_b64 <<<"$modules"
module_id() { # base64 -> moduleId
  curl -s -X POST "$url/wasm/compile" -H 'Content-Type: application/json' -d "{\"bytes\":\"$1\"}" |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["moduleId"])'
}

start on ""
run "execute, sandbox on" 1 /execute "$example"
run "execute, sandbox on" 8 /execute "$example"
run "health" 8 /health
run "execute, JavaScript, data preset" 8 /execute "$js_body"
run "deno, TypeScript, data preset" 8 /deno "$ts_body"
add_id=$(module_id "$add_b64")
wasi_id=$(module_id "$wasi_b64")
run "wasm/run add, sandbox on" 8 /wasm/run "{\"moduleId\":\"$add_id\",\"args\":[2,3]}"
run "wasm/run WASI command, sandbox on" 8 /wasm/run "{\"moduleId\":\"$wasi_id\",\"stdin\":\"x\"}"
spawn_costs "sandbox on"
kill "${pids[0]}"; wait "${pids[0]}" 2>/dev/null || true

start off $'[sandbox]\nseccomp = false\nlandlock = false\nnamespaces = false\nrlimits = false'
run "execute, sandbox off" 8 /execute "$example"
spawn_costs "sandbox off"

python3 - "$out" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
print("| scenario | connections | req/s | p50 ms | p99 ms | errors |")
print("|---|---|---|---|---|---|")
for r in rows:
    if "rps" in r:
        print(f"| {r['label']} | {r['connections']} | {r['rps']:.0f} | {r['p50_ms']:.3f} | {r['p99_ms']:.3f} | {r['errors']} |")
js = next((r for r in rows if r.get("label") == "execute, JavaScript, data preset"), None)
ts = next((r for r in rows if r.get("label") == "deno, TypeScript, data preset"), None)
if js and ts and ts["rps"] > 0:
    print()
    print(f"TypeScript /deno against the same JavaScript on /execute: {js['rps'] / ts['rps']:.2f}x the time per "
          f"request (throughput), p50 {ts['p50_ms'] / js['p50_ms']:.2f}x, p99 {ts['p99_ms'] / js['p99_ms']:.2f}x (target: at most 1.5x)")
print()
print("| workers | lockdown per worker (us) | fork request to ready worker (us) |")
print("|---|---|---|")
for r in rows:
    if "lockdown_us" in r:
        print(f"| {r['label']} ({r['workers']} live) | {r['lockdown_us']:.0f} | {r['spawn_us']:.0f} |")
PY
echo
echo "raw results: $out"
