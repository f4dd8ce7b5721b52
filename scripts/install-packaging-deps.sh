#!/usr/bin/env bash
# Installs what the packaging checks in .ci/run need on a Debian-based machine, as root (or
# with sudo); called by scripts/install-deps.sh. Safe to run repeatedly: it installs only what is
# missing.
#   - cargo-deb, pinned, from crates.io (scripts/package-test.sh builds the .deb with it);
#   - systemd-analyze (package systemd; systemd need not be the running init), adduser;
#   - podman with runc, and mmdebstrap (scripts/container-test.sh builds and runs the image);
#   - kubernetes-validate and its dependencies, pinned in scripts/packaging-requirements.txt, in
#     a virtual environment under ~/.cache/isolate-service/ (scripts/kubernetes-validate.sh).
set -euo pipefail
cd "$(dirname "$0")/.."

CARGO_DEB_VERSION=3.8.0

sudo=""
[[ $(id -u) -eq 0 ]] || sudo="sudo"

missing=()
command -v systemd-analyze >/dev/null 2>&1 || missing+=(systemd)
command -v adduser >/dev/null 2>&1 || missing+=(adduser)
command -v podman >/dev/null 2>&1 || missing+=(podman)
command -v runc >/dev/null 2>&1 || missing+=(runc)
command -v mmdebstrap >/dev/null 2>&1 || missing+=(mmdebstrap)
command -v nsenter >/dev/null 2>&1 || missing+=(util-linux)
python3 -c 'import ensurepip, venv' >/dev/null 2>&1 || missing+=(python3-venv)
if ((${#missing[@]})); then
  echo "installing: ${missing[*]}"
  $sudo apt-get update -q
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q "${missing[@]}"
fi

if [[ $(cargo deb --version 2>/dev/null) != *" $CARGO_DEB_VERSION"* ]]; then
  echo "installing: cargo-deb $CARGO_DEB_VERSION"
  cargo install cargo-deb --locked --version "$CARGO_DEB_VERSION"
fi

# Outside the work tree, named by the requirements' hash, so that a fresh clone (as CI uses)
# reuses it and a change of pins makes a new one. scripts/kubernetes-validate.sh finds it the
# same way.
venv=${XDG_CACHE_HOME:-$HOME/.cache}/isolate-service/venv-packaging-$(sha256sum scripts/packaging-requirements.txt | cut -c1-12)
if [[ ! -f $venv/.installed ]]; then
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check -r scripts/packaging-requirements.txt
  touch "$venv/.installed"
fi
echo "packaging tools present: $(cargo deb --version), $(podman --version), $("$venv/bin/kubernetes-validate" --version 2>&1 | head -n 1)"
