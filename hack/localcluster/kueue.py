"""Kueue as an optional component of the local cluster, for the tests that need real admission.

The manager (sigs.k8s.io/kueue/cmd/kueue, built by hack/build-kueue.sh with its CRDs and webhook manifests)
runs as a local process like the other components, with the admin kubeconfig. The API server reaches its
webhooks by URL (https://127.0.0.1:<port>/<path>) with a serving certificate from the cluster's CA, which
every webhook configuration carries as caBundle; Kueue's own certificate management is off.

Only `batch/job` is integrated, and only the webhooks Kueue serves for it and for its own kinds are
registered: the upstream manifests also name webhooks for Pods, Deployments, JobSets, ... that this
configuration does not serve, and with failurePolicy Fail they would block those kinds cluster-wide.
For the same reason `stop` removes the webhook configurations before it stops the process, and
`remove_stale_webhooks` (run when the cluster starts) removes any a crashed run left behind.

Kueue reads its metrics certificate from the fixed path /etc/kueue/metrics/certs when its certificate
management is off, so the process runs in its own mount namespace with the state dir's certificate folder
bind-mounted there (creating the empty mount point /etc/kueue/metrics/certs on the host once).
"""

from __future__ import annotations

import base64
import json
import ssl
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from . import processes
from .pki import ensure_pki, issue_loopback_serving_cert

if TYPE_CHECKING:
    from .cluster import ClusterInfo

COMPONENT = "kueue"
NAMESPACE = "kueue-system"
REPO = Path(__file__).resolve().parents[2]
_METRICS_CERT_DIR = "/etc/kueue/metrics/certs"
_WEBHOOK_PREFIX = "kueue-"
# Webhooks this configuration serves: Kueue's own kinds and batch/v1 Jobs (integrations.frameworks).
_SERVED_PATH_PARTS = ("-kueue-x-k8s-io-", "-batch-v1-job")
# CRDs whose upstream kustomization routes conversion (v1beta1 <-> v1beta2) through Kueue's /convert.
_CONVERTED_CRDS = frozenset(
    f"{plural}.kueue.x-k8s.io"
    for plural in ("localqueues", "clusterqueues", "cohorts", "workloads", "multikueueclusters")
)
_READY_TIMEOUT = 120.0


def build() -> Path:
    """Runs hack/build-kueue.sh (a no-op when cached); returns the folder with bin/, crds/ and webhook/."""
    out = subprocess.run([str(REPO / "hack" / "build-kueue.sh")], check=True, stdout=subprocess.PIPE, text=True).stdout
    return Path(out.strip().splitlines()[-1])


def running(state: Path) -> bool:
    return processes.running_pid(state, COMPONENT) is not None


def start(info: ClusterInfo) -> None:
    """Installs Kueue's CRDs and starts the manager with its webhooks registered (idempotent)."""
    from .cluster import kubectl
    from .crds import wait_established

    state = info.state_dir
    if running(state):
        return
    dist = build()
    certs = state / "kueue" / "certs"
    certs.mkdir(parents=True, exist_ok=True)
    pki = ensure_pki(state / "pki")
    issue_loopback_serving_cert(pki, "kueue-webhook", certs / "tls.crt", certs / "tls.key")
    webhook_port, health_port = processes.free_port(), processes.free_port()
    webhook_url = f"https://127.0.0.1:{webhook_port}"
    ca_bundle = base64.b64encode(pki.ca_cert.read_bytes()).decode()

    crds = [_with_conversion(c, webhook_url, ca_bundle) for c in _documents(sorted((dist / "crds").glob("*.yaml")))]
    kubectl(info, "apply", "--server-side", "--force-conflicts", "-f", "-", stdin=_list(crds))
    wait_established(info.kubeconfig, (c["metadata"]["name"] for c in crds))
    namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}}
    kubectl(info, "apply", "-f", "-", stdin=json.dumps(namespace))

    config = state / "config" / "kueue.json"
    config.write_text(json.dumps(_configuration(webhook_port, health_port, certs), indent=2) + "\n")
    mount_then_exec = f'mkdir -p {_METRICS_CERT_DIR} && mount --bind "$1" {_METRICS_CERT_DIR} && shift && exec "$@"'
    processes.start(
        state,
        COMPONENT,
        [
            "unshare", "--mount", "--propagation", "private", "sh", "-c", mount_then_exec, "sh", certs,
            dist / "bin" / "kueue", f"--config={config}", f"--kubeconfig={info.kubeconfig}",
            # The on-demand visibility API is an aggregated API server of its own; no test reads it.
            "--feature-gates=VisibilityOnDemand=false",
        ],
    )  # fmt: skip
    processes.wait_until(
        state,
        COMPONENT,
        # Plain HTTP: the context is not used.
        lambda: processes.https_ok(f"http://127.0.0.1:{health_port}/readyz", ssl.create_default_context()),
        _READY_TIMEOUT,
        "/readyz",
    )
    manifests = (dist / "webhook" / "manifests.yaml").read_text()
    kubectl(info, "apply", "-f", "-", stdin=_list(webhook_configurations(manifests, webhook_url, ca_bundle)))


def stop(info: ClusterInfo) -> None:
    """Removes the webhooks (nothing may call a stopped webhook), then stops the manager.

    The CRDs stay, as when Kueue's controller is scaled to zero, but without their conversion webhook: a CRD
    converted by a stopped webhook makes every list of its objects fail, and with it the deletion of any
    namespace (the namespace controller lists every namespaced resource), which hung later tests.
    """
    remove_stale_webhooks(info)
    _drop_conversion_webhooks(info)
    processes.stop(info.state_dir, COMPONENT)


def _drop_conversion_webhooks(info: ClusterInfo) -> None:
    from .cluster import kubectl

    installed = kubectl(info, "get", "crd", "-o", "name").split()
    # Strategy None serves every version of a stored object as it is (apiVersion relabelled).
    patch = json.dumps({"spec": {"conversion": {"strategy": "None", "webhook": None}}})
    for name in sorted(_CONVERTED_CRDS):
        if f"customresourcedefinition.apiextensions.k8s.io/{name}" in installed:
            kubectl(info, "patch", "crd", name, "--type=merge", "-p", patch)


def uninstall(info: ClusterInfo) -> None:
    """Stops Kueue and deletes its CRDs (and with them every Kueue object): the cluster is as without Kueue."""
    from .cluster import kubectl

    stop(info)
    names = [c["metadata"]["name"] for c in _documents(sorted((build() / "crds").glob("*.yaml")))]
    kubectl(info, "delete", "crd", "--ignore-not-found", *names)


def remove_stale_webhooks(info: ClusterInfo) -> None:
    from .cluster import kubectl

    kubectl(
        info,
        "delete",
        "--ignore-not-found",
        f"mutatingwebhookconfiguration/{_WEBHOOK_PREFIX}mutating-webhook-configuration",
        f"validatingwebhookconfiguration/{_WEBHOOK_PREFIX}validating-webhook-configuration",
    )


def _configuration(webhook_port: int, health_port: int, certs: Path) -> dict[str, Any]:
    return {
        "apiVersion": "config.kueue.x-k8s.io/v1beta2",
        "kind": "Configuration",
        "namespace": NAMESPACE,
        "health": {"healthProbeBindAddress": f"127.0.0.1:{health_port}"},
        # Off: the tests read Kueue's state from its objects.
        "metrics": {"bindAddress": "0"},
        "webhook": {"host": "127.0.0.1", "port": webhook_port, "certDir": str(certs)},
        "leaderElection": {"leaderElect": False},
        "internalCertManagement": {"enable": False},
        "manageJobsWithoutQueueName": False,
        "integrations": {"frameworks": ["batch/job"]},
    }


def webhook_configurations(manifests: str, url: str, ca_bundle: str) -> list[dict[str, Any]]:
    """Upstream's webhook configurations, reduced to the served webhooks and pointed at `url`."""
    configurations = []
    for document in yaml.safe_load_all(manifests):
        if not document:
            continue
        document["metadata"]["name"] = _WEBHOOK_PREFIX + document["metadata"]["name"]
        hooks = []
        for hook in document["webhooks"]:
            path = hook["clientConfig"]["service"]["path"]
            if any(part in path for part in _SERVED_PATH_PARTS):
                hook["clientConfig"] = {"url": url + path, "caBundle": ca_bundle}
                hooks.append(hook)
        document["webhooks"] = hooks
        configurations.append(document)
    return configurations


def _with_conversion(crd: dict[str, Any], url: str, ca_bundle: str) -> dict[str, Any]:
    if crd["metadata"]["name"] in _CONVERTED_CRDS:
        crd["spec"]["conversion"] = {
            "strategy": "Webhook",
            "webhook": {
                "clientConfig": {"url": f"{url}/convert", "caBundle": ca_bundle},
                "conversionReviewVersions": ["v1"],
            },
        }
    return crd


def _documents(paths: list[Path]) -> list[dict[str, Any]]:
    return [d for p in paths for d in yaml.safe_load_all(p.read_text()) if d]


def _list(objects: list[dict[str, Any]]) -> str:
    return json.dumps({"apiVersion": "v1", "kind": "List", "items": objects})
