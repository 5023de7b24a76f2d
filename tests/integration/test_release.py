"""`make release` builds an install manifest that a real API server accepts, with its images pinned."""

from __future__ import annotations

import hashlib
import re
import subprocess
import sys
from pathlib import Path

import pytest

import release
import strictyaml
from support.fixtures import Kubectl
from support.install import WAIT_FOR_ESTABLISHED

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
CRDS = "app.kubernetes.io/part-of=finetune-operator,app.kubernetes.io/component=crd"
NOT_CRDS = "app.kubernetes.io/component!=crd"


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    version = release.project_version()
    command = [sys.executable, str(REPO / "hack" / "release.py"), "--registry", "registry.example.com/ml", "--out"]
    subprocess.run([*command, str(out)], check=True, capture_output=True, text=True)
    return out / version


def test_checksums_cover_every_artifact(artifacts: Path) -> None:
    listed = dict(reversed(line.split("  ")) for line in (artifacts / "SHA256SUMS").read_text().splitlines())
    assert set(listed) == {"finetune-operator.yaml", "crds.yaml", "CHANGELOG.md"}
    for name, digest in listed.items():
        assert hashlib.sha256((artifacts / name).read_bytes()).hexdigest() == digest, name


def test_the_manifest_pins_both_images_to_the_version(artifacts: Path) -> None:
    version = release.project_version()
    documents = list(strictyaml.load_all((artifacts / "finetune-operator.yaml").read_text()))
    (deployment,) = [d for d in documents if d["kind"] == "Deployment"]
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == f"registry.example.com/ml/operator:{version}"
    env = {entry["name"]: entry.get("value") for entry in container["env"]}
    assert env["FTO_TRAINER_IMAGE"] == f"registry.example.com/ml/trainer:{version}"
    kinds = [d["kind"] for d in documents]
    assert kinds[: kinds.count("CustomResourceDefinition")] == ["CustomResourceDefinition"] * kinds.count(
        "CustomResourceDefinition"
    )
    crds = list(strictyaml.load_all((artifacts / "crds.yaml").read_text()))
    assert crds == [d for d in documents if d["kind"] == "CustomResourceDefinition"]


def test_the_release_is_refused_without_release_notes_or_for_another_version(tmp_path: Path) -> None:
    with pytest.raises(release.ReleaseError, match=re.escape("CHANGELOG.md has no '## 9.9.9' section")):
        release.changelog_section("9.9.9", (REPO / "CHANGELOG.md").read_text())
    with pytest.raises(release.ReleaseError, match=re.escape("set project.version to 9.9.9")):
        release.release("9.9.9", "registry.example.com/ml", tmp_path)
    with pytest.raises(release.ReleaseError, match="not a semantic version"):
        release.release("v1", "registry.example.com/ml", tmp_path)


@pytest.mark.uninstalls_operator  # the uninstall deletes the ServiceAccount other tests' operators use
def test_the_manifest_installs_on_the_api_server(kubectl: Kubectl, crds: object, artifacts: Path) -> None:
    """The documented two steps: the CRDs (and wait), then the whole manifest; uninstall keeps the CRDs."""
    kubectl("apply", "--server-side", "--force-conflicts", "-f", str(artifacts / "crds.yaml"))
    kubectl("wait", WAIT_FOR_ESTABLISHED, "--timeout=60s", "crd", "-l", CRDS)
    manifest = str(artifacts / "finetune-operator.yaml")
    try:
        kubectl("apply", "--server-side", "--force-conflicts", "-f", manifest)
        deployment = strictyaml.load(
            kubectl("get", "deployment", "finetune-operator", "-n", "finetune-system", "-o", "yaml")
        )
        assert deployment["spec"]["template"]["spec"]["containers"][0]["image"].startswith("registry.example.com/ml/")
    finally:
        kubectl("delete", "-f", manifest, "-l", NOT_CRDS, "--ignore-not-found", "--timeout=180s")
