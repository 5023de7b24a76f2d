#!/usr/bin/env bash
# Creates (once) and updates the project's virtualenv: `hack/venv.sh [DIR]`, default
# ~/.cache/finetune-operator/venv. Outside the repository, so fresh clones reuse it; torch alone is ~6 GB.
# A no-op when every pinned dependency is installed, apart from pointing the editable install at this checkout.
set -euo pipefail
cd "$(dirname "$0")/.."
CACHE="${FTO_CACHE_DIR:-$HOME/.cache/finetune-operator}"
VENV="${1:-$CACHE/venv}"
if [[ ! -x "$VENV/bin/python" ]]; then
  mkdir -p "$(dirname "$VENV")"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --upgrade pip
fi

# The curation step's compiled hot path (trainer-image/native, Rust + pyo3), a dependency of the [trainer]
# extra that no index serves: built once per hash of its sources (cargo and maturin come from crates.io and
# PyPI; a cold build takes a few minutes) and cached as a wheel, installed before the project needs it.
# The key is the hash of a snapshot, and the snapshot is what gets built: hashing the checkout and then building
# from it let a source change during the build file a wheel under another source's key.
# Builds share Cargo's build directory and take turns (flock): cargo decides that a source is unchanged from its
# modification time, so a snapshot copied while another clone's build ran was older than that build's output and
# got its compiled crate, filed under this snapshot's key (a wheel without 6e55f92's fix, under that commit's
# key, failed test_native in CI). Copied under the lock and touched, a snapshot is always newer than what cargo
# built before. "v2" in the key drops the wheels filed before.
mkdir -p "$CACHE"
exec {native_lock}>"$CACHE/native-build.lock"
flock "$native_lock"
NATIVE=$(mktemp -d)
trap 'rm -rf "$NATIVE"' EXIT
cp -r trainer-image/native/. "$NATIVE"
rm -rf "$NATIVE/target"
find "$NATIVE" -type f -exec touch {} +
key=$( (echo v2 && cd "$NATIVE" && cat Cargo.toml Cargo.lock pyproject.toml finetune_curate_native.pyi src/*.rs) | sha256sum | cut -c1-16)
wheels="$CACHE/wheels/finetune-curate-native-$key"
if ! compgen -G "$wheels/*.whl" >/dev/null; then
  command -v cargo >/dev/null || { echo "hack/venv.sh: building trainer-image/native needs a Rust toolchain (https://rustup.rs)" >&2; exit 1; }
  mkdir -p "$CACHE/wheels"
  staging=$(mktemp -d "$wheels.XXXXXX")
  # Cargo's build directory is shared by every clone, so a source change recompiles only this crate.
  CARGO_TARGET_DIR="$CACHE/native-target" "$VENV/bin/pip" wheel --quiet --disable-pip-version-check --no-deps \
    --wheel-dir "$staging" "$NATIVE"
  # -T: rename onto the key's folder, never into it. When a concurrent run filed the same key first, the rename
  # fails on the non-empty folder and this build is dropped (a plain mv nested it and left a stale wheel).
  mv -T "$staging" "$wheels" 2>/dev/null || rm -rf "$staging"
fi
if [[ "$(cat "$VENV/.finetune-curate-native" 2>/dev/null)" != "$key" ]]; then
  "$VENV/bin/pip" install --quiet --disable-pip-version-check --no-deps --force-reinstall "$wheels"/*.whl
  echo "$key" >"$VENV/.finetune-curate-native"
fi
flock -u "$native_lock"

"$VENV/bin/pip" install --quiet --disable-pip-version-check -e '.[trainer,wandb,dev]'
