# shellcheck shell=bash
# shellcheck disable=SC2154 # duration and warmup are set by the caller
# Shell functions shared by scripts/bench.sh and scripts/bench-vs-node.sh (sourced, not run).
#
# The caller calls bench_begin first (it sets $work, a scratch directory, and $out, the
# JSON-lines file the measurements are appended to), and sets:
#   duration  seconds per measured run
#   warmup    seconds of unmeasured load before each measured run (0: none)
# and, for a run, optionally `service` (a name added to every line, e.g. "ours" or "old").
#
# Load comes from wrk (Debian's package) with bench/wrk/json-api.lua, one thread, closed loop:
# each connection sends its next request as soon as the answer to the last one has arrived.

bench_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
bench_lua="$bench_dir/wrk/json-api.lua"
pids=()
# Commands put before each service and before wrk (empty: none); `bench_pin` sets them.
service_prefix=()
wrk_prefix=()

# bench_pin CPU: every service started from now on runs on CPU alone (its children, workers
# included, inherit it), and wrk on all the other CPUs this shell may use, so that each service
# is measured on one core of its own. CPU must be one of those, and there must be another.
bench_pin() {
  local others
  others=$(python3 -c '
import os, sys
cpus = sorted(os.sched_getaffinity(0))
pin = sys.argv[1]
if not pin.isdigit() or int(pin) not in cpus or len(cpus) < 2:
    sys.exit("error: cannot pin to CPU %r: pick one of %s (and leave another for wrk)"
             % (pin, ",".join(map(str, cpus))))
print(",".join(str(c) for c in cpus if c != int(pin)))' "$1") || exit 1
  service_prefix=(taskset -c "$1")
  wrk_prefix=(taskset -c "$others")
}

# bench_begin NAME: builds the release binary, sets $out to results/NAME-<time>.jsonl and
# $work to a new scratch directory, and stops the services and removes $work on exit.
bench_begin() {
  cargo build --release -q -p isolate-service
  mkdir -p results
  out="results/$1-$(date -u +%Y%m%dT%H%M%SZ).jsonl"
  work=$(mktemp -d)
  trap 'stop_services; rm -rf "$work"' EXIT
}

# Stops every service started with start_ours or start_process.
stop_services() {
  local p
  for p in "${pids[@]}"; do
    kill "$p" 2>/dev/null || true
    wait "$p" 2>/dev/null || true
  done
  pids=()
}

# start_ours NAME CONFIG-TEXT [BINARY]: starts BINARY (default target/release/isolate-service)
# on a free port with this configuration (empty: the defaults) and no token; sets $url.
start_ours() {
  printf '%s\n' "$2" >"$work/$1.toml"
  env -u ISOLATE_AUTH_TOKEN ISOLATE_PORT=0 ISOLATE_LOG_LEVEL=warn "${service_prefix[@]}" \
    "${3:-target/release/isolate-service}" --config "$work/$1.toml" >"$work/$1.log" 2>&1 &
  pids+=($!)
  url=""
  local _
  for _ in $(seq 100); do
    url=$(sed -n 's/^isolate-service listening on //p' "$work/$1.log" | head -n 1)
    [[ -n $url ]] && return 0
    sleep 0.1
  done
  echo "isolate-service did not start:" >&2
  cat "$work/$1.log" >&2
  exit 1
}

# wait_http URL: waits up to 10 s until URL answers at all.
wait_http() {
  local _
  for _ in $(seq 100); do
    curl -s -o /dev/null "$1" && return 0
    sleep 0.1
  done
  echo "nothing answers at $1" >&2
  exit 1
}

# free_port: prints a TCP port on 127.0.0.1 that nothing listens on now.
free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# post URL BODY: POSTs a JSON body, prints the answer; fails on a non-2xx status.
post() {
  curl -sS --fail-with-body -H 'Content-Type: application/json' -d "$2" "$1"
}

# busy_ticks: the busy time of all CPUs so far, in clock ticks (user, nice, system, irq,
# softirq from /proc/stat).
busy_ticks() { awk '/^cpu /{print $2 + $3 + $4 + $7 + $8}' /proc/stat; }

# run_wrk LABEL CONNECTIONS URL [BODY]: an unmeasured warm-up, then one measured wrk run;
# appends its JSON line (with "service" when set, and "cpu_us_per_request": the whole
# machine's busy CPU time during the measured run over the requests answered) to $out. Fails,
# printing the first bad answer, when an answer was not 2xx, a socket error happened or
# nothing was answered.
run_wrk() {
  local label=$1 conns=$2 target=$3 body=${4-} line before after
  local body_file=""
  if [[ -n $body ]]; then
    body_file="$work/body.json"
    printf '%s' "$body" >"$body_file"
  fi
  if [[ $warmup != 0 ]]; then
    WRK_BODY_FILE=$body_file "${wrk_prefix[@]}" wrk -t1 -c"$conns" -d"${warmup}s" --timeout 10s \
      -s "$bench_lua" "$target" >/dev/null
  fi
  before=$(busy_ticks)
  line=$(WRK_BODY_FILE=$body_file WRK_LABEL=$label WRK_CONNECTIONS=$conns \
    "${wrk_prefix[@]}" wrk -t1 -c"$conns" -d"${duration}s" --timeout 10s -s "$bench_lua" "$target" |
    grep '^{' | tail -n 1)
  after=$(busy_ticks)
  if [[ -n ${service-} ]]; then
    line="{\"service\":\"$service\",${line#\{}"
  fi
  line=$(python3 -c '
import json, sys
r = json.loads(sys.argv[1])
r["cpu_us_per_request"] = int(sys.argv[2]) * 1e6 / int(sys.argv[3]) / max(r["requests"], 1)
print(json.dumps(r))' "$line" $((after - before)) "$(getconf CLK_TCK)")
  printf '%s\n' "$line" >>"$out"
  if ! python3 -c '
import json, sys
r = json.loads(sys.argv[1])
sys.exit(0 if r["requests"] > 0 and r["non2xx"] == 0 and r["errors"] == 0 else 1)' "$line"; then
    echo "error: $label (${service:-ours}, $conns connections, $target) failed: $line" >&2
    exit 1
  fi
}

# bench_bodies: sets the request bodies of the comparison scenarios: $readme (the README
# example, `compute`), $data (`TextEncoder` and `btoa` of env), $agent (`console.log`, no
# fetch) and $wasm (`add(2, 3)` of the module compiled under the id bench-add).
bench_bodies() {
  readme='{"code":"return env.prices.reduce((a,b) => a+b, 0) / env.prices.length","preset":"compute","env":{"prices":[83.50,84.20,82.10]},"timeout":5000}'
  data='{"code":"const text = JSON.stringify(env); const bytes = new TextEncoder().encode(text); return btoa(text) + \" \" + bytes.length","preset":"data","env":{"prices":[83.50,84.20,82.10],"name":"bench"}}'
  agent='{"code":"console.log(\"prices\", env.prices.length); return env.prices[0]","preset":"agent","env":{"prices":[83.50,84.20,82.10]}}'
  wasm='{"moduleId":"bench-add","entry":"add","args":[2,3]}'
}

# compile_bench_add URL...: compiles the `add` module on each service under the id bench-add
# (the id $wasm of bench_bodies names).
compile_bench_add() {
  local add_b64 base
  add_b64=$(wasm_module_b64 add)
  for base in "$@"; do
    compile_module "$base" "$add_b64" bench-add >/dev/null
  done
}

# wasm_module_b64 add|wasi: prints, base64-encoded, a module exporting add(i32, i32) -> i32,
# or a WASI command whose _start writes "hi\n" to stdout. Both are encoded here in binary
# form, so that no assembler is needed.
wasm_module_b64() {
  python3 - "$1" <<'PY'
import base64, sys
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
print(base64.b64encode({"add": add, "wasi": wasi}[sys.argv[1]]).decode())
PY
}

# compile_module URL BASE64 [ID]: POST /wasm/compile; prints the moduleId.
compile_module() {
  local body="{\"bytes\":\"$2\"}"
  if [[ -n ${3-} ]]; then
    body="{\"bytes\":\"$2\",\"id\":\"$3\"}"
  fi
  post "$1/wasm/compile" "$body" | python3 -c 'import json, sys; print(json.load(sys.stdin)["moduleId"])'
}
