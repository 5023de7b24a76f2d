#!/usr/bin/env bash
# Fetches the ServiceMonitor CRD of the Prometheus Operator from its Go module (the module proxy serves the
# whole repository), so the integration tests install it and check the ServiceMonitor of
# manifests/components/servicemonitor against the real schema instead of skipping. Nothing is built.
#
# Prints the CRD file's path on stdout; a no-op when it exists (keyed by the version and this script's hash).
# Shares GOMODCACHE with hack/build-controlplane.sh.
set -euo pipefail

PROMETHEUS_OPERATOR_VERSION=v0.85.0

ROOT="${FTO_CACHE_DIR:-$HOME/.cache/finetune-operator}"
script_hash="$(sha256sum "${BASH_SOURCE[0]}" | cut -c1-12)"
OUT="$ROOT/servicemonitor-crd-$PROMETHEUS_OPERATOR_VERSION-$script_hash"
CRD=monitoring.coreos.com_servicemonitors.yaml

if [[ -f "$OUT/.complete" ]]; then
  echo "$OUT/$CRD"
  exit 0
fi

export GOMODCACHE="$ROOT/go/mod" GOTOOLCHAIN=local
module="github.com/prometheus-operator/prometheus-operator@$PROMETHEUS_OPERATOR_VERSION"
dir="$(go mod download -json "$module" | python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])')"

work="$(mktemp -d "$ROOT/servicemonitor-crd.XXXXXX")"
trap 'rm -rf "$work"' EXIT
cp "$dir/example/prometheus-operator-crd/$CRD" "$work/"
chmod u+w "$work/$CRD"
touch "$work/.complete"
rm -rf "$OUT"
mv "$work" "$OUT"
echo "$OUT/$CRD"
