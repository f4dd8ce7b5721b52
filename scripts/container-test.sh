#!/usr/bin/env bash
# Builds the container image from packaging/container/Containerfile with podman and runs it: the
# release binary the tests already built goes in (BINARY=prebuilt), on a Debian bookworm base
# made here with mmdebstrap from Debian's packages (no image registry is needed). The container
# runs non-root with a read-only root file system, no capabilities and no network but its own
# loopback; curl, entering the container's network namespace, gets /health, an /execute answer
# and /status. It runs once under podman's default seccomp profile and once with
# seccomp=unconfined (the Containerfile's option 3), prints which sandbox layers hold in each,
# and requires all of them in the second. Then it checks the HEALTHCHECK, stops the container
# with SIGTERM and checks that nothing is left running.
#
# Needs root, podman, runc, mmdebstrap, curl and nsenter (scripts/install-deps.sh installs
# them). Usage: scripts/container-test.sh
#
# The base image comes from scripts/ci-base-image.sh, which keeps it for a week. The image
# built, localhost/isolate-service:ci, is kept too, so that podman's layer cache spares the
# next run the apt-get of the Containerfile's tini layer while the base is the same.
set -euo pipefail
cd "$(dirname "$0")/.."

IMAGE=localhost/isolate-service:ci
NAME=isolate-service-ci-$$

fail() { echo "container-test: FAIL: $*" >&2; exit 1; }
step() { echo "container-test: $*"; }

[[ $(id -u) -eq 0 ]] || fail "run as root"
[[ -x target/release/isolate-service ]] || fail "target/release/isolate-service is missing: build it first"
for tool in podman runc mmdebstrap curl nsenter strip python3; do
  command -v "$tool" >/dev/null 2>&1 || fail "$tool not found (scripts/install-deps.sh)"
done

read -r -a podman_run_opts <<<"$(scripts/podman-options.sh)"

work=$(mktemp -d)
containers=()
cleanup() {
  local rc=$?
  for c in "${containers[@]}"; do
    if ((rc != 0)); then
      echo "--- log of $c" >&2
      podman logs "$c" 2>&1 | tail -n 30 >&2 || true
    fi
    podman rm -f -t 2 "$c" >/dev/null 2>&1 || true
  done
  # podman's complaints that no systemd runs to time the health checks are noise here.
  ((rc != 0)) && [[ -s $work/podman.log ]] && grep -v 'systemd connection' "$work/podman.log" >&2
  # Images left without a name by this run (the previous build, the prebuilt-binary stage);
  # the named images and the layers under them stay as the next run's cache.
  podman image prune -f >/dev/null 2>&1 || true
  rm -rf "$work"
  exit "$rc"
}
trap cleanup EXIT

BASE=$(scripts/ci-base-image.sh)

# A build context with only what the prebuilt path copies.
mkdir -p "$work/context/target/release" "$work/context/policies"
strip -o "$work/context/target/release/isolate-service" target/release/isolate-service
cp policies/config.toml "$work/context/policies/"

step "building $IMAGE from packaging/container/Containerfile (BINARY=prebuilt)"
# --format docker keeps the HEALTHCHECK (the OCI format has no field for it).
podman build --quiet --format docker "${podman_run_opts[@]}" \
  --build-arg BASE_IMAGE="$BASE" --build-arg BINARY=prebuilt \
  -f packaging/container/Containerfile -t "$IMAGE" "$work/context" >/dev/null 2>>"$work/podman.log"
[[ $(podman image inspect --format '{{.Config.User}}' "$IMAGE") == 10001:10001 ]] || fail "the image does not run as 10001:10001"
podman image inspect --format '{{.Config.Healthcheck}}' "$IMAGE" | grep -q '/dev/tcp' || fail "the image has no HEALTHCHECK"
step "image size: $(podman image inspect --format '{{.Size}}' "$IMAGE" | awk '{printf "%.0f MB", $1/1e6}')"

token=$(head -c 24 /dev/urandom | base64 | tr -d '/+=')

# run_one LABEL [podman options...]: starts the image, asks it for an execution and /status,
# prints the sandbox layers and leaves them in $work/LABEL.layers; the container is left running.
run_one() {
  local label=$1
  shift
  local name=$NAME-$label
  containers+=("$name")
  podman run -d --name "$name" "${podman_run_opts[@]}" \
    --network none --read-only --cap-drop=all --security-opt no-new-privileges \
    --health-interval disable \
    -e ISOLATE_AUTH_TOKEN="$token" "$@" "$IMAGE" >/dev/null 2>>"$work/podman.log"
  local cpid
  cpid=$(podman inspect --format '{{.State.Pid}}' "$name")
  ((cpid > 0)) || fail "$label: the container did not start"
  # curl from the host, inside the container's network namespace: its loopback only.
  in_ns() { nsenter --net="/proc/$cpid/ns/net" -- "$@"; }
  local ok=""
  for _ in $(seq 1 100); do
    if in_ns curl -sf -o /dev/null http://127.0.0.1:5900/health; then ok=1; break; fi
    [[ $(podman inspect --format '{{.State.Running}}' "$name") == true ]] || fail "$label: the container exited"
    sleep 0.1
  done
  [[ -n $ok ]] || fail "$label: /health did not answer"
  podman logs "$name" 2>/dev/null | grep -q 'listening on http://0.0.0.0:5900' || fail "$label: not listening on 0.0.0.0:5900"
  local answer
  answer=$(in_ns curl -s -H "Authorization: Bearer $token" -H 'Content-Type: application/json' \
    -d '{"code":"return env.xs.reduce((a, b) => a + b, 0)","env":{"xs":[20,22]}}' http://127.0.0.1:5900/execute)
  grep -q '"success":true' <<<"$answer" && grep -q '"result":42' <<<"$answer" || fail "$label: /execute answered $answer"
  step "$label: POST /execute answered from inside the container: $(cut -c1-60 <<<"$answer")"
  local status
  status=$(in_ns curl -sf -H "Authorization: Bearer $token" http://127.0.0.1:5900/status)
  python3 -c '
import json, sys
s = json.loads(sys.argv[1])["sandbox"]
ns = s["namespaces"]
print(" ".join(n + "=" + str(s[n]["active"]).lower() for n in ["seccomp", "noNewPrivs", "landlock", "namespaces"])
      + (" (namespaces: " + str(ns.get("error")) + ")" if not ns["active"] else "")
      + " zygote=" + ("filtered" if s["seccomp"].get("zygoteFiltered") else "unfiltered"))
' "$status" >"$work/$label.layers"
  step "$label: GET /status sandbox layers: $(cat "$work/$label.layers")"
  # The container's PID 1 is tini; the service is its only child.
  local service
  service=$(pgrep -P "$cpid" | head -n 1)
  [[ -n $service && $(ps -o user= -p "$service") == 10001 ]] || fail "$label: the service does not run as uid 10001"
  [[ $(ps -o comm= -p "$cpid") == tini ]] || fail "$label: PID 1 of the container is not tini"
  step "$label: the supervisor's own filter from the engine: $(sed -n 's/^Seccomp:[[:space:]]*//p' "/proc/$service/status" | sed 's/^0$/none/; s/^2$/filtered/')"
}

run_one default
# Under podman's default profile the workers must still get their own filter, no_new_privs and
# landlock; only the namespace layer may be refused.
grep -q 'seccomp=true noNewPrivs=true landlock=true' "$work/default.layers" \
  || fail "default: a layer other than namespaces is missing: $(cat "$work/default.layers")"

run_one unconfined --security-opt seccomp=unconfined
[[ $(cat "$work/unconfined.layers") != *false* ]] || fail "unconfined: a sandbox layer is not active: $(cat "$work/unconfined.layers")"

podman healthcheck run "$NAME-unconfined" >/dev/null || fail "the image's HEALTHCHECK failed"
step "HEALTHCHECK passed"

step "stopping the containers (SIGTERM)"
for c in "${containers[@]}"; do
  podman stop -t 10 "$c" >/dev/null 2>>"$work/podman.log"
  code=$(podman inspect --format '{{.State.ExitCode}}' "$c")
  [[ $code == 0 ]] || fail "$c exited with $code after SIGTERM"
done
pgrep -u 10001 >/dev/null && fail "processes of uid 10001 outlived the containers"
step "ok: image built, served /execute non-root in a container, stopped cleanly"
