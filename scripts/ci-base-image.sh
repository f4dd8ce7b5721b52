#!/usr/bin/env bash
# Makes sure podman's store holds localhost/isolate-service-ci-base:bookworm, a Debian bookworm
# base image made here with mmdebstrap from Debian's packages (minbase and passwd, without
# documentation, manual pages and translations, like debian:bookworm-slim), so that CI needs no
# image registry. Made again when it is older than a week, or with ISOLATE_CI_BASE_REBUILD=1.
# Prints the image's name. Used by scripts/container-test.sh and scripts/systemd-test.sh.
set -euo pipefail

BASE=localhost/isolate-service-ci-base:bookworm

age_days() {
  local created
  created=$(podman image inspect --format '{{.Created.Unix}}' "$BASE" 2>/dev/null) || { echo 9999; return; }
  echo $((($(date +%s) - created) / 86400))
}
if [[ ${ISOLATE_CI_BASE_REBUILD:-0} == 1 ]] || (($(age_days) >= 7)); then
  echo "ci-base-image: making $BASE with mmdebstrap" >&2
  tarball=$(mktemp --suffix=.tar)
  trap 'rm -f "$tarball"' EXIT
  mmdebstrap --quiet --variant=minbase --include=passwd --mode=root --format=tar \
    --aptopt='Acquire::Languages "none"' \
    --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-include=/usr/share/doc/*/copyright' \
    --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/locale/*' \
    bookworm "$tarball"
  podman import --quiet "$tarball" "$BASE" >/dev/null
else
  echo "ci-base-image: reusing $BASE ($(age_days) days old)" >&2
fi
echo "$BASE"
