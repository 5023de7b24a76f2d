#!/usr/bin/env bash
# Builds the Kueue controller manager (sigs.k8s.io/kueue/cmd/kueue) from Go modules for the local
# cluster's optional Kueue component (hack/localcluster/kueue.py), and copies the CRDs and webhook
# manifests of the same version beside it.
#
# Prints the output directory on stdout (bin/kueue, crds/*.yaml, webhook/manifests.yaml); progress
# goes to stderr. A no-op when that directory is complete: its name carries the version plus a hash
# of this script and of `go version`. It shares GOMODCACHE/GOCACHE with hack/build-controlplane.sh.
#
# Kueue's go.mod has no replace directives, so a wrapper module that `go get -tool`s it is enough.
#
# Measured on the 2-core dev VM (2026-12-03, see the issue 19 note): cold (Kueue's modules not yet
# downloaded, the control plane's build cache warm) ~6 min wall; cached afterwards.
set -euo pipefail

KUEUE_VERSION=v0.17.0

ROOT="${FTO_CACHE_DIR:-$HOME/.cache/finetune-operator}"
script_hash="$( { cat "${BASH_SOURCE[0]}"; go version; } | sha256sum | cut -c1-12)"
OUT="$ROOT/kueue-$KUEUE_VERSION-$script_hash"

complete() {
  [[ -x "$OUT/bin/kueue" && -f "$OUT/webhook/manifests.yaml" && -f "$OUT/crds/kueue.x-k8s.io_workloads.yaml" ]]
}

if complete; then
  echo "$OUT"
  exit 0
fi

mkdir -p "$ROOT"
exec 9>"$ROOT/build-kueue.lock"
echo "build-kueue: waiting for the build lock" >&2
flock 9
if complete; then
  echo "$OUT"
  exit 0
fi

export GOMODCACHE="$ROOT/go/mod" GOCACHE="$ROOT/go/build"
# A go directive newer than the installed toolchain must fail, never download a toolchain.
export GOTOOLCHAIN=local CGO_ENABLED=0
export GOFLAGS="-buildvcs=false -trimpath"

work="$(mktemp -d "$ROOT/build-kueue.XXXXXX")"
trap 'rm -rf "$work"' EXIT
started=$SECONDS
echo "build-kueue: kueue $KUEUE_VERSION" >&2

mkdir -p "$work/out/bin" "$work/out/crds" "$work/out/webhook" "$work/module"
(
  cd "$work/module"
  go mod init fto.local/build/kueue >/dev/null 2>&1
  go get -tool "sigs.k8s.io/kueue/cmd/kueue@$KUEUE_VERSION"
  # The module proxy's commit time serves as a reproducible build date.
  info="$(go mod download -json "sigs.k8s.io/kueue@$KUEUE_VERSION" \
    | python3 -c 'import json,sys; print(json.load(sys.stdin)["Info"])')"
  date="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["Time"])' "$info")"
  go build -ldflags "-s -w -X sigs.k8s.io/kueue/pkg/version.GitVersion=$KUEUE_VERSION \
-X sigs.k8s.io/kueue/pkg/version.BuildDate=$date" -o "$work/out/bin/kueue" sigs.k8s.io/kueue/cmd/kueue
)
src="$(cd "$work/module" && go list -m -f '{{.Dir}}' sigs.k8s.io/kueue)"
cp "$src"/config/components/crd/bases/*.yaml "$work/out/crds/"
cp "$src/config/components/webhook/manifests.yaml" "$work/out/webhook/"
chmod -R u+w "$work/out"

rm -rf "$OUT"
mv "$work/out" "$OUT"
echo "build-kueue: built in $((SECONDS - started)) s on $(nproc) cores" >&2
echo "$OUT"
