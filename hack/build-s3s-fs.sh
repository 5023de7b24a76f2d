#!/usr/bin/env bash
# Builds (once) s3s-fs, a real S3-compatible server (crates.io, Apache-2.0) that serves a local directory:
# the integration tests start it on 127.0.0.1 as the object store for S3 sources and outputs.
#
# Prints the binary's path on stdout (progress goes to stderr). A no-op when it exists: the directory name
# carries the version, BUILD_REVISION (raise it when the build command changes) and a hash of
# `rustc --version`, so a bump builds afresh while editing comments here does not.
# 0.14.1 is the newest release that builds with rustc 1.95 (0.17 needs 1.96).
#
# Measured on the 2-core dev VM (2026-12-03): cold 1475 s wall under heavy neighbour load (290 s of CPU;
# 138 s on an idle machine); warm: a no-op.
set -euo pipefail

S3S_FS_VERSION=0.14.1
BUILD_REVISION=1

ROOT="${FTO_CACHE_DIR:-$HOME/.cache/finetune-operator}"
command -v cargo >/dev/null || { echo "build-s3s-fs: needs a Rust toolchain (https://rustup.rs)" >&2; exit 1; }
toolchain_hash="$(rustc --version | sha256sum | cut -c1-12)"
OUT="$ROOT/s3s-fs-$S3S_FS_VERSION-r$BUILD_REVISION-$toolchain_hash"

if [[ -x "$OUT/bin/s3s-fs" ]]; then
  echo "$OUT/bin/s3s-fs"
  exit 0
fi

mkdir -p "$ROOT"
exec 9>"$ROOT/build-s3s-fs.lock"
flock 9
if [[ -x "$OUT/bin/s3s-fs" ]]; then
  echo "$OUT/bin/s3s-fs"
  exit 0
fi

work="$(mktemp -d "$ROOT/build-s3s-fs.XXXXXX")"
trap 'rm -rf "$work"' EXIT
started=$SECONDS
echo "build-s3s-fs: cargo install s3s-fs $S3S_FS_VERSION" >&2
# --locked: the crate's own Cargo.lock, so a newer transitive release cannot break the build.
CARGO_TARGET_DIR="$work/target" cargo install --quiet --locked s3s-fs --version "$S3S_FS_VERSION" \
  --features binary --root "$work/root" >&2
rm -rf "$OUT"
mkdir -p "$OUT"
mv "$work/root/bin" "$OUT/bin"
echo "build-s3s-fs: built in $((SECONDS - started)) s on $(nproc) cores" >&2
echo "$OUT/bin/s3s-fs"
