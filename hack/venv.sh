#!/usr/bin/env bash
# Creates (once) and updates the project's virtualenv: `hack/venv.sh [DIR]`, default
# ~/.cache/finetune-operator/venv. Outside the repository, so fresh clones reuse it; torch alone is ~6 GB.
# A no-op when every pinned dependency is installed, apart from pointing the editable install at this checkout.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${1:-${FTO_CACHE_DIR:-$HOME/.cache/finetune-operator}/venv}"
if [[ ! -x "$VENV/bin/python" ]]; then
  mkdir -p "$(dirname "$VENV")"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --upgrade pip
fi
"$VENV/bin/pip" install --quiet --disable-pip-version-check -e '.[trainer,dev]'
