#!/usr/bin/env python3
"""Build the release artifacts of one version: `make release VERSION=0.2.0` (or `hack/release.py --version ...`).

Writes into dist/<version>/:
- finetune-operator.yaml   one install manifest: the CRDs, then the production overlay with both images pinned
                           to <registry>/operator:<version> and <registry>/trainer:<version>
- crds.yaml                the CRDs alone: kubectl maps every object of a manifest before it applies any, so a
                           first install applies these (and waits for them) before the whole manifest
- SHA256SUMS               sha256 of every artifact (`sha256sum -c SHA256SUMS` verifies a download)
- CHANGELOG.md             the version's section of CHANGELOG.md (the release notes)

It refuses a version that is not the project's (pyproject.toml) or has no CHANGELOG.md section, so a tag, the
Python packages, the images and the manifest always agree. Publishing (pushing the images with
`make images-push`, attaching dist/<version>/ to the tag's release) is the release manager's step.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

import yaml

from localcluster import kubectl_binary

REPO = Path(__file__).resolve().parents[1]
DEFAULT_REGISTRY = "ghcr.io/finetune-operator"
SEMVER = re.compile(r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(-[0-9A-Za-z.-]+)?$")


class ReleaseError(Exception):
    pass


def project_version() -> str:
    return str(tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"])


def changelog_section(version: str, changelog: str) -> str:
    """The `## <version>` section of CHANGELOG.md, heading included."""
    match = re.search(rf"^## {re.escape(version)}\b.*?(?=^## |\Z)", changelog, re.M | re.S)
    if match is None:
        raise ReleaseError(f"CHANGELOG.md has no '## {version}' section: write the release notes first")
    return match.group(0).rstrip() + "\n"


def overlay(version: str, registry: str, production: str) -> dict[str, object]:
    """A kustomization over the production overlay (`production`: its path relative to the kustomization) that
    pins both images to the release."""
    trainer = {"name": "FTO_TRAINER_IMAGE", "value": f"{registry}/trainer:{version}"}
    deployment_patch = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "finetune-operator", "namespace": "finetune-system"},
        "spec": {"template": {"spec": {"containers": [{"name": "operator", "env": [trainer]}]}}},
    }
    return {
        "resources": [production],
        "images": [
            {"name": "ghcr.io/finetune-operator/operator", "newName": f"{registry}/operator", "newTag": version}
        ],
        "patches": [
            {"target": {"kind": "Deployment", "name": "finetune-operator"}, "patch": yaml.safe_dump(deployment_patch)}
        ],
    }


def render_manifest(version: str, registry: str) -> list[dict[str, object]]:
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        # kustomize loads other kustomizations only by relative path.
        production = os.path.relpath(REPO / "manifests" / "overlays" / "production", root)
        (root / "kustomization.yaml").write_text(yaml.safe_dump(overlay(version, registry, production)))
        built = subprocess.run([kubectl_binary(), "kustomize", str(root)], capture_output=True, text=True)
    if built.returncode != 0:
        raise ReleaseError(f"kubectl kustomize failed: {built.stderr.strip()}")
    documents = list(yaml.safe_load_all(built.stdout))
    # CRDs first: objects of their kinds (the ClusterKopfPeering) need them served when the bundle is applied.
    documents.sort(key=lambda d: d["kind"] != "CustomResourceDefinition")
    return documents


def as_yaml(title: str, documents: list[dict[str, object]]) -> str:
    return f"# {title}\n" + yaml.safe_dump_all(documents, sort_keys=False)


def release(version: str, registry: str, out: Path) -> Path:
    if not SEMVER.match(version):
        raise ReleaseError(f"{version!r} is not a semantic version (MAJOR.MINOR.PATCH[-PRERELEASE])")
    if version != project_version():
        raise ReleaseError(f"pyproject.toml says {project_version()}; set project.version to {version} first")
    notes = changelog_section(version, (REPO / "CHANGELOG.md").read_text())
    target = out / version
    target.mkdir(parents=True, exist_ok=True)
    documents = render_manifest(version, registry)
    crds = [document for document in documents if document["kind"] == "CustomResourceDefinition"]
    artifacts = {
        "finetune-operator.yaml": as_yaml(f"finetune-operator {version}: the CRDs and the operator", documents),
        "crds.yaml": as_yaml(f"finetune-operator {version}: the CRDs", crds),
        "CHANGELOG.md": notes,
    }
    for name, content in artifacts.items():
        (target / name).write_text(content)
    sums = "".join(f"{hashlib.sha256(content.encode()).hexdigest()}  {name}\n" for name, content in artifacts.items())
    (target / "SHA256SUMS").write_text(sums)
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--version", default=project_version())
    parser.add_argument("--registry", default=DEFAULT_REGISTRY)
    parser.add_argument("--out", type=Path, default=REPO / "dist")
    args = parser.parse_args(argv)
    try:
        target = release(args.version, args.registry, args.out)
    except ReleaseError as error:
        print(f"release: {error}", file=sys.stderr)
        return 1
    print(target)
    return 0


if __name__ == "__main__":
    sys.exit(main())
