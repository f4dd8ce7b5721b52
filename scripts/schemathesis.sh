#!/usr/bin/env bash
# Property-based API testing: schemathesis (PyPI, every version pinned in
# scripts/schemathesis-requirements.txt) generates requests from docs/openapi.json, as the
# release binary serves it at /openapi.json (checked first), and checks every answer: no 5xx, a documented
# status, media type and headers, and a body that matches the documented schema.
#
# Starts target/release/isolate-service (built if missing) on a free loopback port with a
# random token and a scratch wasm.cache_dir, runs schemathesis with at most EXAMPLES generated
# cases per operation (default 100) plus its examples and coverage cases, and stops the service.
# The virtual environment lives under ~/.cache/isolate-service/, named by the pins' hash, so
# fresh clones reuse it. Installs Debian's python3-venv first when it is missing.
# Usage: scripts/schemathesis.sh [EXAMPLES] [more schemathesis options]
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONDONTWRITEBYTECODE=1

examples=${1:-100}
shift || true

sudo=""
[[ $(id -u) -eq 0 ]] || sudo="sudo"
if ! python3 -c 'import ensurepip, venv' >/dev/null 2>&1; then
  echo "installing: python3-venv"
  $sudo apt-get update -q
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q python3-venv
fi

requirements=scripts/schemathesis-requirements.txt
venv=${XDG_CACHE_HOME:-$HOME/.cache}/isolate-service/venv-schemathesis-$(sha256sum "$requirements" | cut -c1-12)
if [[ ! -f $venv/.installed ]]; then
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check -r "$requirements"
  touch "$venv/.installed"
fi

binary=target/release/isolate-service
if [[ ! -x $binary ]]; then
  cargo build --release -p isolate-service
fi

work=$(mktemp -d)
pid=""
cleanup() {
  if [[ -n $pid ]]; then
    kill -TERM "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

token=$(od -An -N24 -tx1 /dev/urandom | tr -d ' \n')
# Short timeouts keep generated code that loops from costing seconds; no rate limit, so that
# generated requests reach the handlers (429 is covered by tests/e2e/openapi.rs).
cat >"$work/config.toml" <<TOML
[server]
host = "127.0.0.1"
port = 0
[auth]
token = "$token"
rate_limit_per_minute = 0
[limits]
default_timeout_ms = 500
max_timeout_ms = 500
deno_default_timeout_ms = 500
deno_max_timeout_ms = 500
[wasm]
cache_dir = "$work/cache"
compile_timeout_ms = 2000
TOML

env -u ISOLATE_AUTH_TOKEN ISOLATE_LOG_LEVEL=warn "$binary" --config "$work/config.toml" \
  >"$work/stdout" 2>"$work/stderr" </dev/null &
pid=$!
addr=""
for _ in $(seq 300); do
  addr=$(sed -n 's|^isolate-service listening on http://||p' "$work/stdout")
  [[ -n $addr ]] && break
  if ! kill -0 "$pid" 2>/dev/null; then
    cat "$work/stderr" >&2
    echo "the service did not start" >&2
    exit 1
  fi
  sleep 0.1
done
if [[ -z $addr ]]; then
  cat "$work/stderr" >&2
  echo "the service did not print its address within 30 s" >&2
  exit 1
fi
echo "isolate-service on $addr; schemathesis $("$venv/bin/schemathesis" --version | awk '{print $NF}'), at most $examples generated cases per operation"

# The document under test is the one the binary serves: it must be docs/openapi.json.
if ! curl -sf "http://$addr/openapi.json" -H "Authorization: Bearer $token" | cmp -s - docs/openapi.json; then
  echo "GET /openapi.json does not serve docs/openapi.json (rebuild the release binary)" >&2
  exit 1
fi

status=0
# The checks: no 5xx, and every answer as documented (status, media type, headers, schema);
# requests the schema forbids must be refused (4xx), and wrong methods must answer 405 with
# Allow. The hard timeout only guards CI's budget: a normal run takes well under a minute.
# Run from the scratch directory: schemathesis keeps a cache in its working directory.
repo=$PWD
cd "$work"
timeout 100 "$venv/bin/schemathesis" run "$repo/docs/openapi.json" --url "http://$addr" \
  --header "Authorization: Bearer $token" \
  --phases examples,coverage,fuzzing \
  --checks not_a_server_error,status_code_conformance,content_type_conformance,response_headers_conformance,response_schema_conformance,negative_data_rejection,unsupported_method,allow_header_conformance \
  --max-examples "$examples" \
  --workers 1 \
  --request-timeout 10 \
  --generation-database none \
  --suppress-health-check too_slow,filter_too_much \
  --no-color \
  "$@" || status=$?

cd "$repo"
if grep -q "panicked" "$work/stderr"; then
  grep -B2 -A10 "panicked" "$work/stderr" >&2
  echo "the service panicked during the run" >&2
  status=1
fi
if ! kill -0 "$pid" 2>/dev/null; then
  echo "the service died during the run" >&2
  status=1
fi
exit "$status"
