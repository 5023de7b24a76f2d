#!/usr/bin/env bash
# Builds tests/kstatus (a small program around sigs.k8s.io/cli-utils/pkg/kstatus/status, the library
# behind Flux's health checks) for the GitOps conformance test, into the shared cache.
#
# Prints the binary's path on stdout. A no-op when it exists: its folder name carries a hash of the
# program's sources, its go.mod/go.sum, this script and `go version`. It shares GOMODCACHE/GOCACHE with
# hack/build-controlplane.sh (and k8s.io/apimachinery's version with hack/build-kueue.sh's Kueue).
set -euo pipefail

SRC="$(cd "$(dirname "${BASH_SOURCE[0]}")/../tests/kstatus" && pwd)"
ROOT="${FTO_CACHE_DIR:-$HOME/.cache/finetune-operator}"
version="$(awk '$1 == "sigs.k8s.io/cli-utils" { print $2 }' "$SRC/go.mod")"
source_hash="$( { cat "${BASH_SOURCE[0]}" "$SRC"/go.mod "$SRC"/go.sum "$SRC"/*.go; go version; } | sha256sum | cut -c1-12)"
OUT="$ROOT/kstatus-cli-utils-$version-$source_hash"

if [[ -x "$OUT/kstatus" ]]; then
  echo "$OUT/kstatus"
  exit 0
fi

mkdir -p "$ROOT"
export GOMODCACHE="$ROOT/go/mod" GOCACHE="$ROOT/go/build"
export GOTOOLCHAIN=local CGO_ENABLED=0
# -mod=readonly: the committed go.mod and go.sum are the whole truth; a build never edits them.
export GOFLAGS="-buildvcs=false -trimpath -mod=readonly"
work="$(mktemp -d "$ROOT/build-kstatus.XXXXXX")"
trap 'rm -rf "$work"' EXIT
started=$SECONDS
echo "build-kstatus: cli-utils $version" >&2
(cd "$SRC" && go build -ldflags "-s -w" -o "$work/kstatus" .)
mkdir -p "$OUT"
mv "$work/kstatus" "$OUT/kstatus"
echo "build-kstatus: built in $((SECONDS - started)) s" >&2
echo "$OUT/kstatus"
