"""Fixtures for tests against the real local control plane (hack/cluster.py).

The session reuses the cluster at $FTO_CLUSTER_DIR when it runs, else starts one and stops it at
the end (set FTO_KEEP_CLUSTER=1 to keep it for the next run). Each test gets its own namespace.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client, config
from namespaces import fresh_namespace

import localcluster
import strictyaml
from support.fixtures import Kubectl, WaitFor

REPO = Path(__file__).resolve().parents[2]

CRD_DIR = REPO / "crds"
# The CRDs the project's integration tests need: without them nearly every test would fail, so the fixture
# fails at once and says why (a skip would turn a broken checkout into a green run).
REQUIRED_CRDS = (
    "finetune.dev_finetuningjobs.yaml",
    "finetune.dev_modelversions.yaml",
    "finetune.dev_registeredmodels.yaml",
)


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # One cluster per pytest process, stopped at the end of its session: two xdist workers would each start and
    # stop it (the first to finish stopped it under the other's tests in CI), and xdist 3.8's `loadgroup` does
    # not group tests under pytest 9.2 (the `@group` it writes into the test ids does not reach the scheduler).
    here = Path(__file__).parent
    if hasattr(config, "workerinput") and any(here in item.path.parents for item in items):
        raise pytest.UsageError("tests/integration share one local cluster: run them in one process, without -n")
    # Tests that uninstall the operator delete the ServiceAccount whose tokens every other test's operator
    # uses (401 for a long-lived one, such as the shared trained quickstart's): they run before all the others.
    items.sort(key=lambda item: item.get_closest_marker("uninstalls_operator") is None)


@pytest.fixture(scope="session")
def cluster() -> Iterator[localcluster.ClusterInfo]:
    state = localcluster.state_dir_from_env()
    statuses = localcluster.status(state).items()
    was_running = all(pid for name, pid in statuses if name not in localcluster.OPTIONAL_COMPONENTS)
    info = localcluster.up(state)
    yield info
    if not was_running and os.environ.get("FTO_KEEP_CLUSTER") != "1":
        localcluster.down(state)


@pytest.fixture(scope="session")
def kube(cluster: localcluster.ClusterInfo) -> client.ApiClient:
    """An ApiClient with the cluster's admin credentials."""
    configuration = client.Configuration()
    config.load_kube_config(config_file=str(cluster.kubeconfig), client_configuration=configuration)  # type: ignore[no-untyped-call]
    return client.ApiClient(configuration)


@pytest.fixture(scope="session")
def kubectl(cluster: localcluster.ClusterInfo) -> Kubectl:
    """Runs the venv's kubectl against the cluster and returns its stdout."""

    def run(*args: str, stdin: str | None = None, check: bool = True) -> str:
        result = localcluster.run_kubectl(cluster.kubeconfig, *args, stdin=stdin)
        if check and result.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed: {result.stderr}")
        return result.stdout

    return run


@pytest.fixture(scope="session")
def wait_for() -> WaitFor:
    """Polls `probe` until it returns something other than None (or False); fails after `timeout`."""

    def wait(probe: Callable[[], Any], what: str, timeout: float = 60.0) -> Any:
        deadline = time.monotonic() + timeout
        while True:
            value = probe()
            if value is not None and value is not False:
                return value
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
            time.sleep(0.2)

    return wait


@pytest.fixture(scope="session")
def crds(cluster: localcluster.ClusterInfo, kubectl: Kubectl) -> list[dict[str, Any]]:
    """Installs every CRD in crds/ and waits until the API serves them."""
    missing = [name for name in REQUIRED_CRDS if not (CRD_DIR / name).exists()]
    if missing:
        pytest.fail(f"CRDs missing: {', '.join('crds/' + m for m in missing)}; generate them with `make crds`")
    installed = []
    for path in sorted(CRD_DIR.glob("*.yaml")):
        document = strictyaml.load(path.read_text())
        if document.get("kind") != "CustomResourceDefinition":
            continue
        kubectl("apply", "--server-side", "--force-conflicts", "-f", str(path))
        installed.append(document)
    localcluster.wait_established(cluster.kubeconfig, (d["metadata"]["name"] for d in installed))
    return installed


@pytest.fixture(scope="session")
def servicemonitor_crd(cluster: localcluster.ClusterInfo, kubectl: Kubectl) -> str:
    """The Prometheus Operator's ServiceMonitor CRD (hack/fetch-servicemonitor-crd.sh), installed and served."""
    fetched = subprocess.run(
        [str(REPO / "hack" / "fetch-servicemonitor-crd.sh")], check=True, capture_output=True, text=True
    )
    path = Path(fetched.stdout.strip().splitlines()[-1])
    name = str(strictyaml.load(path.read_text())["metadata"]["name"])
    kubectl("apply", "--server-side", "--force-conflicts", "-f", str(path))
    localcluster.wait_established(cluster.kubeconfig, [name])
    return name


@pytest.fixture
def namespace(request: pytest.FixtureRequest, kube: client.ApiClient, wait_for: WaitFor) -> Iterator[str]:
    """A fresh namespace per test."""
    with fresh_namespace(kube, wait_for, request.node.name) as name:
        yield name


# The operator fixtures live beside the harness they drive.
from operator_harness import operator_process, production_identity  # noqa: E402, F401
from trained import trained_quickstart  # noqa: E402, F401
