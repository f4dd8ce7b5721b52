#!/usr/bin/env bash
# Installs what the tests of GET /metrics and of the admin page (/ui) need on a Debian-based
# machine, as root (or with sudo); called by scripts/install-deps.sh. Safe to run repeatedly:
# it fetches only what is missing.
#   - promtool, from Debian's prometheus package. The package is downloaded with apt-get and
#     only promtool is unpacked, under ~/.cache/isolate-service/ (installing the package would
#     also create a system user and, on machines without a policy-rc.d, start a Prometheus
#     server that the tests do not want). tests/e2e/metrics.rs runs `promtool check metrics`
#     on the live output; it finds promtool on PATH or through scripts/promtool-path.sh.
#   - chromium (Debian's) and nodejs, and playwright-core (npm, pinned in
#     tests/ui/package.json) in ~/.cache/isolate-service/ui-test-<hash of package.json>/, for
#     tests/e2e/ui.rs, which finds it through scripts/ui-test-path.sh.
set -euo pipefail
cd "$(dirname "$0")/.."

sudo=""
[[ $(id -u) -eq 0 ]] || sudo="sudo"

promtool=$(scripts/promtool-path.sh)
if [[ ! -x $promtool ]]; then
  command -v dpkg-deb >/dev/null 2>&1 || { echo "error: dpkg-deb not found (not a Debian-based machine?)" >&2; exit 1; }
  dir=$(dirname "$(dirname "$(dirname "$promtool")")")
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  echo "fetching promtool from Debian's prometheus package"
  if ! (cd "$tmp" && apt-get download -q prometheus >/dev/null 2>&1); then
    $sudo apt-get update -q
    # apt-get download writes as the _apt user when it can; a root-owned 0700 temp dir makes
    # it fall back to root, with a warning.
    (cd "$tmp" && apt-get download -q prometheus)
  fi
  rm -rf "$dir"
  mkdir -p "$dir"
  dpkg-deb -x "$tmp"/prometheus_*.deb "$tmp/x"
  mkdir -p "$dir/usr/bin"
  cp "$tmp/x/usr/bin/promtool" "$dir/usr/bin/promtool"
fi
missing=()
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v node >/dev/null 2>&1 || missing+=(nodejs)
command -v npm >/dev/null 2>&1 || missing+=(npm)
if ((${#missing[@]})); then
  echo "installing: ${missing[*]}"
  $sudo apt-get update -q
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
ui=$(scripts/ui-test-path.sh)
if [[ ! -f $ui/.installed ]]; then
  rm -rf "$ui"
  mkdir -p "$ui"
  cp tests/ui/package.json "$ui/"
  (cd "$ui" && npm install --no-audit --no-fund --loglevel=error)
  touch "$ui/.installed"
fi
echo "observability test tools present: $("$promtool" --version 2>&1 | head -n 1), $(chromium --version), node $(node --version)"
