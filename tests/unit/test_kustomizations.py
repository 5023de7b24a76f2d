"""Every kustomization in the repository builds with the real `kubectl kustomize`, and its output reads strictly.

test_manifests.py checks what the install overlays contain; this covers the rest (dashboard, observability, the
Argo CD overlay, crds/, the ServiceMonitor component), found by file name so a new one cannot be forgotten. A
Component cannot be built on its own, so it is built into the base, as an overlay would use it.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
import yaml

import localcluster
import strictyaml

ROOT = Path(__file__).resolve().parents[2]
# The file names kustomize looks for in a directory.
KUSTOMIZATION_FILE_NAMES = ("kustomization.yaml", "kustomization.yml", "Kustomization")


def tracked_kustomizations() -> list[Path]:
    listed = subprocess.run(["git", "-C", str(ROOT), "ls-files"], capture_output=True, text=True, check=True)
    return sorted(ROOT / name for name in listed.stdout.split() if Path(name).name in KUSTOMIZATION_FILE_NAMES)


def build(directory: Path) -> str:
    command = [localcluster.kubectl_binary(), "kustomize", str(directory)]
    result = subprocess.run(command, capture_output=True, text=True, check=False, timeout=120)
    assert result.returncode == 0, result.stderr
    return result.stdout


def buildable(kustomization: Path, scratch: Path) -> Path:
    """The directory to build: the kustomization's own, or for a Component an overlay of the base using it."""
    if strictyaml.load(kustomization.read_text()).get("kind") != "Component":
        return kustomization.parent
    # kustomize refuses absolute paths to other kustomizations, so the overlay points back relatively.
    scratch.mkdir()
    base = os.path.relpath(ROOT / "manifests" / "base", scratch)
    component = os.path.relpath(kustomization.parent, scratch)
    (scratch / "kustomization.yaml").write_text(yaml.safe_dump({"resources": [base], "components": [component]}))
    return scratch


def test_the_repository_has_the_kustomizations_the_docs_name() -> None:
    found = {str(path.parent.relative_to(ROOT)) for path in tracked_kustomizations()}
    assert {"crds", "manifests/base", "manifests/overlays/production", "manifests/dashboard"} <= found, found


@pytest.mark.parametrize("kustomization", tracked_kustomizations(), ids=lambda p: str(p.parent.relative_to(ROOT)))
def test_kustomization_builds_into_strictly_readable_objects(kustomization: Path, tmp_path: Path) -> None:
    rendered = build(buildable(kustomization, tmp_path / "overlay"))
    objects = [o for o in strictyaml.load_all(rendered) if o]  # raises DuplicateKeyError on a repeated key
    assert objects, f"{kustomization} renders nothing"
    for obj in objects:
        assert obj.get("apiVersion") and obj.get("kind") and obj.get("metadata", {}).get("name"), obj
