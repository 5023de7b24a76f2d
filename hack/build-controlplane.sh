#!/usr/bin/env bash
# Builds the binaries of the local test control plane (hack/cluster.py) from Go modules:
# kube-apiserver, kube-controller-manager, kube-scheduler (k8s.io/kubernetes), etcd and kwok.
#
# Prints the bin directory on stdout (progress goes to stderr). It is a no-op when that directory
# exists: its name carries every version plus a hash of this script and of `go version`, so a bump
# or an edit here builds a fresh directory while GOMODCACHE/GOCACHE keep the rebuild incremental.
#
# k8s.io/kubernetes and etcd's server module cannot be `go install`ed: their go.mod files map
# sibling modules with replace directives, which a dependent module ignores. So each is built
# from a generated wrapper module that carries the replace lines itself.
#
# Measured on the 2-core dev VM (2026-11-23): cold (empty module and build caches) 677 s wall,
# 1.1 GB of modules and 3.5 GB of build cache; a rebuild after editing this script, with warm
# caches, only relinks.
set -euo pipefail

K8S_VERSION=v1.36.3
ETCD_VERSION=v3.6.16
KWOK_VERSION=v0.8.0

ROOT="${FTO_CACHE_DIR:-$HOME/.cache/finetune-operator}"
script_hash="$( { cat "${BASH_SOURCE[0]}"; go version; } | sha256sum | cut -c1-12)"
OUT="$ROOT/k8s-$K8S_VERSION-etcd-$ETCD_VERSION-kwok-$KWOK_VERSION-$script_hash"
BINARIES=(kube-apiserver kube-controller-manager kube-scheduler etcd kwok)

complete() {
  local b
  for b in "${BINARIES[@]}"; do [[ -x "$OUT/bin/$b" ]] || return 1; done
}

if complete; then
  echo "$OUT/bin"
  exit 0
fi

mkdir -p "$ROOT"
exec 9>"$ROOT/build-controlplane.lock"
echo "build-controlplane: waiting for the build lock" >&2
flock 9
# Another build may have finished while we waited for the lock.
if complete; then
  echo "$OUT/bin"
  exit 0
fi

export GOMODCACHE="$ROOT/go/mod" GOCACHE="$ROOT/go/build"
# A go directive newer than the installed toolchain must fail, never download a toolchain.
export GOTOOLCHAIN=local CGO_ENABLED=0
export GOFLAGS="-buildvcs=false -trimpath"

work="$(mktemp -d "$ROOT/build.XXXXXX")"
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/bin"
started=$SECONDS

# Fields of `go mod download -json`, read with the Python every host of this project has.
mod_field() { # module@version field
  go mod download -json "$1" | python3 -c 'import json,sys; print(json.load(sys.stdin).get(sys.argv[1]) or "")' "$2"
}
mod_time() { # module@version -> its RFC 3339 commit time, used as a reproducible build date
  python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["Time"])' "$(mod_field "$1" Info)"
}

build_kubernetes() {
  local dir="$work/kubernetes" k8s_gomod staging minor date ldflags pkg
  echo "build-controlplane: kubernetes $K8S_VERSION" >&2
  k8s_gomod="$(mod_field "k8s.io/kubernetes@$K8S_VERSION" GoMod)"
  # Staging modules (k8s.io/api, k8s.io/client-go, ...) are tagged v0.<minor>.<patch>.
  staging="v0.${K8S_VERSION#v1.}"
  minor="$(cut -d. -f2 <<<"$K8S_VERSION")"
  mkdir -p "$dir"
  {
    echo "module fto.local/build/kubernetes"
    echo
    grep -E '^(go|godebug) ' "$k8s_gomod"
    echo
    # Every `k8s.io/X => ./staging/src/k8s.io/X` line of kubernetes' go.mod becomes a versioned replace.
    awk -v v="$staging" '$2 == "=>" && $3 ~ /^\.\/staging\// { print "replace " $1 " => " $1 " " v }' "$k8s_gomod"
  } >"$dir/go.mod"
  if ! grep -q '^replace k8s.io/client-go ' "$dir/go.mod"; then
    echo "build-controlplane: found no staging replace lines in $k8s_gomod" >&2
    exit 1
  fi
  date="$(mod_time "k8s.io/kubernetes@$K8S_VERSION")"
  (
    cd "$dir"
    go get -tool \
      "k8s.io/kubernetes/cmd/kube-apiserver@$K8S_VERSION" \
      "k8s.io/kubernetes/cmd/kube-controller-manager@$K8S_VERSION" \
      "k8s.io/kubernetes/cmd/kube-scheduler@$K8S_VERSION"
    ldflags="-s -w"
    # Without these, /version reports v0.0.0-master+$Format:%H$. The module proxy records no
    # commit hash for these versions, so gitCommit keeps its placeholder.
    for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
      ldflags+=" -X $pkg.gitVersion=$K8S_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
      ldflags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=$date"
    done
    go build -tags selinux,notest,grpcnotrace -ldflags "$ldflags" -o "$work/bin/" \
      k8s.io/kubernetes/cmd/kube-apiserver \
      k8s.io/kubernetes/cmd/kube-controller-manager \
      k8s.io/kubernetes/cmd/kube-scheduler
  )
}

build_etcd() {
  # server/v3's own replace lines point at sibling modules released at the same version, which
  # its require lines already name: the wrapper module needs no replace lines of its own.
  local dir="$work/etcd"
  echo "build-controlplane: etcd $ETCD_VERSION" >&2
  mkdir -p "$dir"
  (
    cd "$dir"
    go mod init fto.local/build/etcd >/dev/null 2>&1
    go get -tool "go.etcd.io/etcd/server/v3@$ETCD_VERSION"
    go build -ldflags "-s -w" -o "$work/bin/etcd" go.etcd.io/etcd/server/v3
  )
}

build_kwok() {
  # kwok's go.mod has no replace directives, so a plain install works.
  echo "build-controlplane: kwok $KWOK_VERSION" >&2
  GOBIN="$work/bin" go install -ldflags "-s -w -X sigs.k8s.io/kwok/pkg/consts.Version=$KWOK_VERSION" \
    "sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION"
}

build_kubernetes
build_etcd
build_kwok

rm -rf "$OUT"
mkdir -p "$OUT"
mv "$work/bin" "$OUT/bin"
echo "build-controlplane: built in $((SECONDS - started)) s on $(nproc) cores" >&2
echo "$OUT/bin"
