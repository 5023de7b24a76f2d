"""The restricted Pod Security Standard, checked on a pod spec field by field as the admission plugin does.

https://kubernetes.io/docs/concepts/security/pod-security-standards/ (v1.25+): the baseline rules, then the
restricted ones, on every container kind; plus the project's own rule of a read-only root filesystem. Used on
the pods the operator builds (tests/unit/test_children.py) and on the ones the manifests install
(tests/unit/test_manifests.py).
"""

from __future__ import annotations

from typing import Any

Obj = dict[str, Any]

RESTRICTED_VOLUME_TYPES = {
    "configMap",
    "csi",
    "downwardAPI",
    "emptyDir",
    "ephemeral",
    "persistentVolumeClaim",
    "projected",
    "secret",
}
BASELINE_CAPABILITIES = {
    "AUDIT_WRITE",
    "CHOWN",
    "DAC_OVERRIDE",
    "FOWNER",
    "FSETID",
    "KILL",
    "MKNOD",
    "NET_BIND_SERVICE",
    "SETFCAP",
    "SETGID",
    "SETPCAP",
    "SETUID",
    "SYS_CHROOT",
}
SAFE_SYSCTLS = {
    "kernel.shm_rmid_forced",
    "net.ipv4.ip_local_port_range",
    "net.ipv4.ip_unprivileged_port_start",
    "net.ipv4.tcp_syncookies",
    "net.ipv4.ping_group_range",
    "net.ipv4.ip_local_reserved_ports",
    "net.ipv4.tcp_keepalive_time",
    "net.ipv4.tcp_fin_timeout",
    "net.ipv4.tcp_keepalive_intvl",
    "net.ipv4.tcp_keepalive_probes",
}
SELINUX_TYPES = {"", "container_t", "container_init_t", "container_kvm_t", "container_engine_t"}


def restricted_violations(pod: Obj) -> list[str]:
    """Violations of the restricted Pod Security Standard (which includes baseline), plus a writable root."""
    pod_ctx = pod.get("securityContext") or {}
    containers = (pod.get("initContainers") or []) + pod["containers"] + (pod.get("ephemeralContainers") or [])
    assert containers
    return _pod_violations(pod, pod_ctx) + [
        problem for container in containers for problem in _container_violations(container, pod_ctx)
    ]


def _pod_violations(pod: Obj, pod_ctx: Obj) -> list[str]:
    problems: list[str] = []
    # baseline
    for host in ("hostNetwork", "hostPID", "hostIPC"):
        if pod.get(host):
            problems.append(f"{host} is set")
    if pod_ctx.get("windowsOptions", {}).get("hostProcess"):
        problems.append("hostProcess")
    for sysctl in pod_ctx.get("sysctls") or []:
        if sysctl["name"] not in SAFE_SYSCTLS:
            problems.append(f"sysctl {sysctl['name']}")
    if (pod_ctx.get("seLinuxOptions") or {}).get("type", "") not in SELINUX_TYPES:
        problems.append("pod seLinuxOptions.type")
    if (pod_ctx.get("seLinuxOptions") or {}).get("user") or (pod_ctx.get("seLinuxOptions") or {}).get("role"):
        problems.append("pod seLinuxOptions user/role")
    # restricted: volume types
    for volume in pod.get("volumes") or []:
        kinds = set(volume) - {"name"}
        if len(kinds) != 1 or not kinds <= RESTRICTED_VOLUME_TYPES:
            problems.append(f"volume {volume['name']} uses {sorted(kinds)}")
    pod_seccomp = (pod_ctx.get("seccompProfile") or {}).get("type")
    if pod_seccomp is not None and pod_seccomp not in {"RuntimeDefault", "Localhost"}:
        problems.append(f"pod seccompProfile {pod_seccomp}")
    if pod_ctx.get("runAsNonRoot") is False:
        problems.append("pod runAsNonRoot is false")
    if pod_ctx.get("runAsUser") == 0:
        problems.append("pod runAsUser 0")
    return problems


def _container_violations(c: Obj, pod_ctx: Obj) -> list[str]:
    problems: list[str] = []
    name = c["name"]
    ctx = c.get("securityContext") or {}
    # baseline
    if ctx.get("privileged"):
        problems.append(f"{name}: privileged")
    if ctx.get("windowsOptions", {}).get("hostProcess"):
        problems.append(f"{name}: hostProcess")
    if any(port.get("hostPort") for port in c.get("ports") or []):
        problems.append(f"{name}: hostPort")
    if ctx.get("procMount", "Default") != "Default":
        problems.append(f"{name}: procMount")
    if (ctx.get("seLinuxOptions") or {}).get("type", "") not in SELINUX_TYPES:
        problems.append(f"{name}: seLinuxOptions.type")
    if (ctx.get("appArmorProfile") or {}).get("type") == "Unconfined":
        problems.append(f"{name}: AppArmor Unconfined")
    caps = ctx.get("capabilities") or {}
    # restricted: only NET_BIND_SERVICE may be added (a subset of baseline's list), ALL must be dropped
    added = set(caps.get("add") or [])
    if added - BASELINE_CAPABILITIES or added - {"NET_BIND_SERVICE"}:
        problems.append(f"{name}: adds capabilities {sorted(added)}")
    if "ALL" not in (caps.get("drop") or []):
        problems.append(f"{name}: capabilities do not drop ALL")
    if ctx.get("allowPrivilegeEscalation") is not False:
        problems.append(f"{name}: allowPrivilegeEscalation is not false")
    # runAsNonRoot must be true on the container or, if unset there, on the pod
    run_as_non_root = ctx.get("runAsNonRoot", pod_ctx.get("runAsNonRoot"))
    if run_as_non_root is not True:
        problems.append(f"{name}: runAsNonRoot is not true")
    if ctx.get("runAsUser", pod_ctx.get("runAsUser")) == 0:
        problems.append(f"{name}: runAsUser 0")
    seccomp = (ctx.get("seccompProfile") or pod_ctx.get("seccompProfile") or {}).get("type")
    if seccomp not in {"RuntimeDefault", "Localhost"}:
        problems.append(f"{name}: seccompProfile is {seccomp}")
    # our own rule on top of the standard
    if ctx.get("readOnlyRootFilesystem") is not True:
        problems.append(f"{name}: root filesystem is writable")
    return problems
