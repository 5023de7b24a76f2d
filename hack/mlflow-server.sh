#!/usr/bin/env bash
# Installs (once) an MLflow tracking server in its own virtualenv: the integration tests start
# `mlflow server` on 127.0.0.1 with a SQLite backend and proxied artifacts under a local folder. Kept apart from the project's
# virtualenv because the server pulls ~850 MB (pandas, scikit-learn, flask, ...) that neither the operator nor
# the trainer needs; the trainer talks to it over its REST API.
#
# Prints the path of the `mlflow` executable on stdout (progress to stderr). A no-op when it is installed: the
# directory name carries the version, INSTALL_REVISION (raise it when the install command changes) and a hash
# of the Python version.
# 3.17.2, not 3.18.0: 3.18.0's dependency mlflow-tracing==3.18.0 is not served by the index.
set -euo pipefail

MLFLOW_VERSION=3.17.2
INSTALL_REVISION=1

ROOT="${FTO_CACHE_DIR:-$HOME/.cache/finetune-operator}"
python_hash="$(python3 --version | sha256sum | cut -c1-12)"
OUT="$ROOT/mlflow-$MLFLOW_VERSION-r$INSTALL_REVISION-$python_hash"

if [[ -x "$OUT/bin/mlflow" && -e "$OUT/.installed" ]]; then
  echo "$OUT/bin/mlflow"
  exit 0
fi

mkdir -p "$ROOT"
exec 9>"$ROOT/mlflow-server.lock"
flock 9
if [[ -x "$OUT/bin/mlflow" && -e "$OUT/.installed" ]]; then
  echo "$OUT/bin/mlflow"
  exit 0
fi

started=$SECONDS
rm -rf "$OUT"
python3 -m venv "$OUT"
echo "build-mlflow: pip install mlflow==$MLFLOW_VERSION" >&2
"$OUT/bin/pip" install --quiet --disable-pip-version-check "mlflow==$MLFLOW_VERSION" >&2
# The marker is written last: an interrupted install is redone, never half-used.
touch "$OUT/.installed"
echo "build-mlflow: installed in $((SECONDS - started)) s" >&2
# Measured on the 2-core dev VM (2026-12-03): 521 s under heavy neighbour load (63 s on an idle machine).
echo "$OUT/bin/mlflow"
