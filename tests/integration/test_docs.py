"""The YAML the docs tell people to apply is accepted by a real API server, as written.

Every ```yaml block of README.md and docs/*.md that holds Kubernetes objects is applied with a server-side dry
run (the API server's validation, defaulting and admission, nothing stored); the "your own overlay" example of
docs/install.md is built with `kubectl kustomize` first. Fragments (a `baseModel:` excerpt) have no
apiVersion and are not objects. Objects of other tools' APIs (EXTERNAL_GROUPS) are left to the tests that
install those tools (test_kueue.py applies the Kueue setup with Kueue running; test_gitops_health.py dry-runs the
Flux and Argo CD examples against those projects' CRDs).
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

import localcluster
import strictyaml
from support.fixtures import Kubectl

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
DOCS = sorted([REPO / "README.md", *(REPO / "docs").glob("*.md")])
BLOCK = re.compile(r"^```yaml\n(.*?)^```", re.M | re.S)
OVERLAY_MARKER = "# my-cluster/kustomization.yaml"
# APIs the docs show for tools this local cluster does not run; their schemas are the tools' own.
EXTERNAL_GROUPS = {
    "argoproj.io": "Argo CD",
    "kustomize.toolkit.fluxcd.io": "Flux",
    "kueue.x-k8s.io": "Kueue",
    # Kustomizations are kustomize's input, not API objects; test_manifests checks the docs show them as they are.
    "kustomize.config.k8s.io": "kustomize",
    "source.toolkit.fluxcd.io": "Flux",
    "serving.kserve.io": "KServe",
    "monitoring.coreos.com": "the Prometheus Operator",
}


def yaml_blocks(path: Path) -> list[str]:
    return BLOCK.findall(path.read_text(encoding="utf-8"))


def documented_objects() -> list[tuple[str, dict[str, Any]]]:
    found = []
    for path in DOCS:
        for block in yaml_blocks(path):
            if block.startswith(OVERLAY_MARKER):
                continue
            for document in strictyaml.load_all(block):
                if not (isinstance(document, dict) and "apiVersion" in document and "kind" in document):
                    continue
                if document["apiVersion"].split("/")[0] not in EXTERNAL_GROUPS:
                    found.append((f"{path.name}: {document['kind']} {document['metadata'].get('name')}", document))
    return found


OBJECTS = documented_objects()


@pytest.fixture(scope="module")
def peering_crds(cluster: localcluster.ClusterInfo, kubectl: Kubectl, crds: Any) -> None:
    """Kopf's peering CRDs, as the install's first step applies them (a dry run cannot establish a CRD)."""
    kubectl("apply", "--server-side", "--force-conflicts", "-f", str(REPO / "manifests/crds/kopf-peering-crds.yaml"))
    localcluster.wait_established(cluster.kubeconfig, ["clusterkopfpeerings.kopf.dev", "kopfpeerings.kopf.dev"])


def test_the_docs_hold_objects_to_check() -> None:
    kinds = {document["kind"] for _, document in OBJECTS}
    assert {"FineTuningJob", "Pod", "Job", "PersistentVolumeClaim"} <= kinds, kinds


@pytest.mark.parametrize(("where", "document"), OBJECTS, ids=[where for where, _ in OBJECTS])
def test_documented_object_passes_a_server_side_dry_run(
    kubectl: Kubectl, peering_crds: None, namespace: str, where: str, document: dict[str, Any]
) -> None:
    applied = json.loads(json.dumps(document))
    applied["metadata"].pop("namespace", None)  # each test runs in its own namespace
    kubectl("apply", "--server-side", "--dry-run=server", "-n", namespace, "-f", "-", stdin=json.dumps(applied))


def test_your_own_overlay_example_builds_and_applies(kubectl: Kubectl, peering_crds: None, tmp_path: Path) -> None:
    (example,) = [block for block in yaml_blocks(REPO / "docs" / "install.md") if block.startswith(OVERLAY_MARKER)]
    kustomization = strictyaml.load(example)
    # The example sits beside a checkout; the ServiceMonitor component needs the Prometheus Operator's CRD.
    kustomization.pop("components")
    overlay = tmp_path / "my-cluster"
    overlay.mkdir()
    os.symlink(REPO / "manifests", tmp_path / "manifests")
    (overlay / "kustomization.yaml").write_text(yaml.safe_dump(kustomization))
    rendered = list(strictyaml.load_all(kubectl("kustomize", str(overlay))))
    deployment = next(obj for obj in rendered if obj["kind"] == "Deployment")
    env = deployment["spec"]["template"]["spec"]["containers"][0]["env"]
    assert [entry["value"] for entry in env if entry["name"] == "FTO_MAX_ACTIVE_PER_NAMESPACE"] == ["4"]
    assert deployment["spec"]["template"]["spec"]["containers"][0]["image"].startswith(
        "registry.example.com/ml/finetune-operator:"
    )
    namespaced = [obj for obj in rendered if obj["kind"] != "Namespace" and obj["metadata"].get("namespace")]
    namespace = namespaced[0]["metadata"]["namespace"]
    created = not kubectl("get", "namespace", namespace, "--ignore-not-found", "-o", "name").strip()
    if created:
        kubectl("create", "namespace", namespace)
    try:
        for obj in rendered:
            kubectl("apply", "--server-side", "--dry-run=server", "-f", "-", stdin=json.dumps(obj))
    finally:
        if created:
            kubectl("delete", "namespace", namespace, "--wait=false")
