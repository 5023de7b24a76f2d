#!/usr/bin/env bash
# End-to-end test on a kind cluster, for machines with a Docker engine and kind:
#   1. create a kind cluster (own kubeconfig: the user's ~/.kube/config is not touched)
#   2. build the operator and trainer images and load them into the cluster
#   3. install the operator with manifests/overlays/dev (CRDs first, then the rest)
#   4. run manifests/samples/quickstart-cluster.yaml on its ConfigMap dataset until it is Completed
#   5. check that a ModelVersion was registered
# On failure it prints what explains it (describe, events, operator and pod logs). The cluster is deleted at
# the end unless KEEP_CLUSTER=1.
#
# Environment: OPERATOR_IMAGE, TRAINER_IMAGE (default ghcr.io/finetune-operator/{operator,trainer}:0.1.0),
# SKIP_BUILD=1 (images already built), KIND_CLUSTER (default finetune-e2e), E2E_TIMEOUT (seconds, 1800),
# DOCKER (default docker), KUBECTL (default: the project venv's kubectl, else the one on PATH).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
OPERATOR_IMAGE="${OPERATOR_IMAGE:-ghcr.io/finetune-operator/operator:0.1.0}"
TRAINER_IMAGE="${TRAINER_IMAGE:-ghcr.io/finetune-operator/trainer:0.1.0}"
CLUSTER="${KIND_CLUSTER:-finetune-e2e}"
TIMEOUT="${E2E_TIMEOUT:-1800}"
DOCKER="${DOCKER:-docker}"
VENV_KUBECTL="$HOME/.cache/finetune-operator/venv/bin/kubectl"
if [[ -z "${KUBECTL:-}" ]]; then
  if [[ -x "$VENV_KUBECTL" ]]; then KUBECTL="$VENV_KUBECTL"; else KUBECTL=kubectl; fi
fi
NS=finetune-e2e
JOB=quickstart
DATA="$ROOT/manifests/samples/data/sessions.jsonl"

log() { printf '\n=== %s\n' "$*" >&2; }

"$DOCKER" info >/dev/null 2>&1 || { echo "kind.sh: no Docker engine ($DOCKER info failed)" >&2; exit 2; }
command -v kind >/dev/null || { echo "kind.sh: kind is not installed (https://kind.sigs.k8s.io)" >&2; exit 2; }
[[ -f "$DATA" ]] || { echo "kind.sh: missing dataset $DATA" >&2; exit 2; }

WORK="$(mktemp -d)"
export KUBECONFIG="$WORK/kubeconfig"
k() { "$KUBECTL" "$@"; }

diagnose() {
  log "diagnostics"
  k get nodes -o wide || true
  k get all,pvc,configmaps -n finetune-system || true
  k get finetuningjobs,modelversions,jobs,pods,pvc -n "$NS" -o wide || true
  k describe finetuningjob "$JOB" -n "$NS" || true
  k get events -n "$NS" --sort-by=.lastTimestamp || true
  k get events -n finetune-system --sort-by=.lastTimestamp || true
  k describe pods -n "$NS" || true
  k logs -n finetune-system deployment/finetune-operator --all-containers --tail=300 || true
  local pod
  for pod in $(k get pods -n "$NS" -o name 2>/dev/null); do
    log "logs of $pod"
    k logs -n "$NS" "$pod" --all-containers --prefix --tail=200 || true
  done
}

finish() {
  local rc=$?
  if [[ $rc -ne 0 ]]; then diagnose; fi
  if [[ "${KEEP_CLUSTER:-0}" == 1 ]]; then
    log "keeping kind cluster $CLUSTER (KUBECONFIG=$KUBECONFIG)"
  else
    kind delete cluster --name "$CLUSTER" >/dev/null 2>&1 || true
    rm -rf "$WORK"
  fi
  exit "$rc"
}
trap finish EXIT

log "kind cluster $CLUSTER"
kind create cluster --name "$CLUSTER" --kubeconfig "$KUBECONFIG" --wait 180s

if [[ "${SKIP_BUILD:-0}" != 1 ]]; then
  log "building images"
  "$DOCKER" build -f "$ROOT/operator/Dockerfile" -t "$OPERATOR_IMAGE" "$ROOT"
  "$DOCKER" build -f "$ROOT/trainer-image/Dockerfile" -t "$TRAINER_IMAGE" "$ROOT"
fi
log "loading images into the cluster"
kind load docker-image --name "$CLUSTER" "$OPERATOR_IMAGE" "$TRAINER_IMAGE"

# The quickstart selects nodes labelled for the local runner of the demo; on kind the real kubelet runs it.
k label nodes --all finetune.dev/local-runner=true --overwrite

log "installing the operator (manifests/overlays/dev)"
# An overlay of the dev overlay that points at the images just built. kustomize only accepts relative paths
# to other kustomizations, hence the relpath.
OVERLAY="$WORK/overlay"
mkdir -p "$OVERLAY"
DEV="$(python3 -c 'import os, sys; print(os.path.relpath(sys.argv[1], sys.argv[2]))' "$ROOT/manifests/overlays/dev" "$OVERLAY")"
cat >"$OVERLAY/kustomization.yaml" <<EOF
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
  - $DEV
images:
  - name: ghcr.io/finetune-operator/operator
    newName: ${OPERATOR_IMAGE%:*}
    newTag: ${OPERATOR_IMAGE##*:}
patches:
  - target: {kind: Deployment, name: finetune-operator}
    patch: |-
      apiVersion: apps/v1
      kind: Deployment
      metadata: {name: finetune-operator}
      spec:
        template:
          spec:
            containers:
              - name: operator
                env:
                  - name: FTO_TRAINER_IMAGE
                    value: $TRAINER_IMAGE
EOF
# CRDs first: the ClusterKopfPeering in the overlay needs its CRD served (docs/install.md).
k apply --server-side -k "$ROOT/manifests/crds"
k wait --for=jsonpath='{.status.conditions[?(@.type=="Established")].status}'=True --timeout=60s crd -l app.kubernetes.io/part-of=finetune-operator,app.kubernetes.io/component=crd
k apply --server-side -k "$OVERLAY"
k rollout status deployment/finetune-operator -n finetune-system --timeout=300s

log "running the quickstart"
k create namespace "$NS"
k create configmap quickstart-sessions -n "$NS" --from-file=sessions.jsonl="$DATA"
k apply -n "$NS" -f "$ROOT/manifests/samples/quickstart-cluster.yaml"

# Poll instead of a bare `kubectl wait` so that a Failed job ends the test at once, not at the timeout.
deadline=$((SECONDS + TIMEOUT))
phase=""
while ((SECONDS < deadline)); do
  phase="$(k get finetuningjob "$JOB" -n "$NS" -o jsonpath='{.status.phase}')"
  case "$phase" in
    Completed | Failed | Cancelled) break ;;
  esac
  sleep 10
done
k get finetuningjob "$JOB" -n "$NS"
# The pipeline idiom from docs/install.md, as the assertion.
k wait --for=jsonpath='{.status.phase}'=Completed "finetuningjob/$JOB" -n "$NS" --timeout=10s

model_version="$(k get finetuningjob "$JOB" -n "$NS" -o jsonpath='{.status.model.modelVersion}')"
[[ -n "$model_version" ]] || { echo "kind.sh: $JOB is Completed but names no ModelVersion" >&2; exit 1; }
k get modelversion "$model_version" -n "$NS"
log "e2e passed: $JOB Completed, registered $model_version"
