#!/usr/bin/env bash
# Prints the podman options the CI scripts pass to `podman build` and `podman run`:
# runc rather than crun, because crun refuses hosts whose cgroup v2 hierarchy has controllers
# next to v1 ones (a hybrid layout, such as the CI machine's); and explicit ulimits, because
# podman's defaults (nofile and nproc of about a million) are above what a root without
# CAP_SYS_RESOURCE may set.
set -euo pipefail
nofile=$(ulimit -Hn)
[[ $nofile == unlimited ]] && nofile=65536
((nofile > 65536)) && nofile=65536
echo "--runtime runc --ulimit nofile=$nofile:$nofile --ulimit nproc=32768:32768"
