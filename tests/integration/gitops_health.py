"""What Flux and Argo CD would say about live objects, computed by the libraries they use.

- Flux (kustomize-controller's health checks, `flux ... --wait`) and any kstatus-based pipeline use
  sigs.k8s.io/cli-utils/pkg/kstatus/status: `kstatus` runs it on objects through tests/kstatus, a small Go
  program built by hack/build-kstatus.sh (cached by source hash under ~/.cache/finetune-operator).
- The GitOps examples of docs/install.md are dry-run against Flux's and Argo CD's own CRDs (`gitops_crds`).
- Argo CD runs manifests/gitops/argocd-health.lua in gopher-lua (Lua 5.1): `argocd_health` runs it in a real
  Lua 5.1 interpreter (lupa) the way Argo CD does, with the object as the global `obj`.
"""

from __future__ import annotations

import functools
import json
import subprocess
from pathlib import Path
from typing import Any

from lupa import lua51

REPO = Path(__file__).resolve().parents[2]
ARGOCD_SCRIPT = REPO / "manifests" / "gitops" / "argocd-health.lua"


@functools.cache
def cached_by(script: str) -> Path:
    """What a hack/ build script built (or found in its cache): the path it prints last."""
    out = subprocess.run([str(REPO / "hack" / script)], check=True, stdout=subprocess.PIPE, text=True).stdout
    return Path(out.strip().splitlines()[-1])


def gitops_crds() -> Path:
    """The folder of Flux's Kustomization and Argo CD's Application/AppProject CRDs."""
    return cached_by("fetch-gitops-crds.sh")


def kstatus_binary() -> Path:
    return cached_by("build-kstatus.sh")


def kstatus(kubectl_json: str) -> dict[str, dict[str, str]]:
    """kstatus' verdict ({"status", "message"}) by object name, for `kubectl get -o json` output."""
    out = subprocess.run([str(kstatus_binary())], input=kubectl_json, check=True, capture_output=True, text=True).stdout
    verdicts = [json.loads(line) for line in out.splitlines()]
    return {v["name"]: {"status": v["status"], "message": v["message"]} for v in verdicts}


def argocd_health(obj: dict[str, Any]) -> dict[str, str]:
    lua = lua51.LuaRuntime()
    lua.globals().obj = lua.table_from(obj, recursive=True)
    result = lua.execute(ARGOCD_SCRIPT.read_text())
    return {str(k): str(v) for k, v in result.items()}
