#!/usr/bin/env bash
# Fetches the CRDs of Flux's Kustomization (kustomize-controller) and Argo CD's Application and AppProject
# from their Go modules (the module proxy serves whole repositories), so tests can dry-run the GitOps
# examples of docs/install.md against the real schemas on the local API server. Nothing is built.
#
# Prints the folder holding the CRD files on stdout; a no-op when it exists (keyed by both versions and
# this script's hash). Shares GOMODCACHE with hack/build-controlplane.sh.
# Newer releases (kustomize-controller v1.10, argo-cd v3.6) need go >= 1.27; these are the newest that
# the project's Go 1.26 toolchain may download.
set -euo pipefail

FLUX_KUSTOMIZE_CONTROLLER_VERSION=v1.9.6
ARGOCD_VERSION=v3.5.7

ROOT="${FTO_CACHE_DIR:-$HOME/.cache/finetune-operator}"
script_hash="$(sha256sum "${BASH_SOURCE[0]}" | cut -c1-12)"
OUT="$ROOT/gitops-crds-flux-$FLUX_KUSTOMIZE_CONTROLLER_VERSION-argocd-$ARGOCD_VERSION-$script_hash"

if [[ -f "$OUT/.complete" ]]; then
  echo "$OUT"
  exit 0
fi

export GOMODCACHE="$ROOT/go/mod" GOTOOLCHAIN=local
module_dir() { # module@version -> its extracted folder in the module cache
  go mod download -json "$1" | python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])'
}
flux="$(module_dir "github.com/fluxcd/kustomize-controller@$FLUX_KUSTOMIZE_CONTROLLER_VERSION")"
argocd="$(module_dir "github.com/argoproj/argo-cd/v3@$ARGOCD_VERSION")"

work="$(mktemp -d "$ROOT/gitops-crds.XXXXXX")"
trap 'rm -rf "$work"' EXIT
cp "$flux/config/crd/bases/kustomize.toolkit.fluxcd.io_kustomizations.yaml" "$work/"
cp "$argocd/manifests/crds/application-crd.yaml" "$argocd/manifests/crds/appproject-crd.yaml" "$work/"
chmod u+w "$work"/*.yaml
touch "$work/.complete"
rm -rf "$OUT"
mv "$work" "$OUT"
echo "$OUT"
