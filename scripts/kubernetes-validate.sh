#!/usr/bin/env bash
# Validates every manifest in packaging/kubernetes/ with kubernetes-validate in strict mode
# (unknown fields are errors) against the newest Kubernetes version it knows, and checks that
# the objects the deployment needs are all there. kubernetes-validate comes from the virtual
# environment scripts/install-packaging-deps.sh makes. Usage: scripts/kubernetes-validate.sh
set -euo pipefail
cd "$(dirname "$0")/.."

KUBERNETES_VERSION=1.37
# The virtual environment scripts/install-packaging-deps.sh makes.
venv=${XDG_CACHE_HOME:-$HOME/.cache}/isolate-service/venv-packaging-$(sha256sum scripts/packaging-requirements.txt | cut -c1-12)
validate=$venv/bin/kubernetes-validate
[[ -x $validate ]] || { echo "kubernetes-validate missing: run scripts/install-packaging-deps.sh" >&2; exit 1; }

shopt -s nullglob
manifests=(packaging/kubernetes/*.yaml)
((${#manifests[@]})) || { echo "no manifests in packaging/kubernetes/" >&2; exit 1; }
"$validate" --strict --quiet -k "$KUBERNETES_VERSION" "${manifests[@]}"

kinds=$(grep -h '^kind:' "${manifests[@]}" | awk '{print $2}' | sort | tr '\n' ' ')
for kind in ConfigMap Deployment HorizontalPodAutoscaler NetworkPolicy PodDisruptionBudget Service; do
  [[ " $kinds" == *" $kind "* ]] || { echo "packaging/kubernetes/ has no $kind" >&2; exit 1; }
done
echo "kubernetes manifests valid against Kubernetes $KUBERNETES_VERSION (strict): $kinds"
