"""KWOK stages and fake nodes of the local cluster.

kwok v0.8.0 ships no built-in stages, so these are ours, adapted from kwok's own stage library
(`kustomize/stage/{node,pod}`). When several stages match one object kwok picks one at random, so
the pod stages below have disjoint selectors.

Pods bound to a KWOK node follow annotations (on the pod, hence on a Job's pod template):
- `kwok.finetune.dev/run-for`: a Go duration ("5s"); after it the pod terminates. Without it
  the pod runs until deleted (what a long training run looks like to the operator).
- `kwok.finetune.dev/exit-code`: the containers' exit code when they terminate (default 0);
  non-zero ends the pod Failed with reason Error.
- `kwok.finetune.dev/termination-message`: put into each terminated container's `message`
  (e.g. the trainer's JSON result).
"""

from __future__ import annotations

from typing import Any

RUN_FOR = "kwok.finetune.dev/run-for"
EXIT_CODE = "kwok.finetune.dev/exit-code"
TERMINATION_MESSAGE = "kwok.finetune.dev/termination-message"

# KWOK manages only nodes carrying this label; the node agent's node never does.
MANAGED_LABEL = "kwok.x-k8s.io/node"
MANAGED_VALUE = "fake"
MANAGED_SELECTOR = f"{MANAGED_LABEL}={MANAGED_VALUE}"

POOL_LABEL = "finetune.dev/node-pool"
GPU_RESOURCE = "nvidia.com/gpu"
GPUS_PER_NODE = 8

_NOT_DELETED: dict[str, Any] = {"key": ".metadata.deletionTimestamp", "operator": "DoesNotExist"}


def _annotation(name: str) -> str:
    return f'.metadata.annotations["{name}"]'


def _stage(name: str, kind: str, selector: list[dict[str, Any]], nxt: dict[str, Any], **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "kwok.x-k8s.io/v1alpha1",
        "kind": "Stage",
        "metadata": {"name": name},
        "spec": {
            "resourceRef": {"apiGroup": "v1", "kind": kind},
            "selector": {"matchExpressions": selector},
            "next": nxt,
            **spec,
        },
    }


_NODE_CONDITIONS = """\
{{ $now := Now }}
{{ $lastTransitionTime := or .metadata.creationTimestamp $now }}
conditions:
{{ range NodeConditions }}
- lastHeartbeatTime: {{ $now | Quote }}
  lastTransitionTime: {{ $lastTransitionTime | Quote }}
  message: {{ .message | Quote }}
  reason: {{ .reason | Quote }}
  status: {{ .status | Quote }}
  type: {{ .type | Quote }}
{{ end }}
addresses:
- address: {{ NodeIP | Quote }}
  type: InternalIP
- address: {{ NodeName | Quote }}
  type: Hostname
"""

_NODE_INITIALIZE = (
    _NODE_CONDITIONS
    + """\
allocatable:
{{ YAML .status.allocatable 1 }}
capacity:
{{ YAML .status.capacity 1 }}
nodeInfo:
  architecture: amd64
  containerRuntimeVersion: kwok
  kernelVersion: kwok
  kubeProxyVersion: kwok
  kubeletVersion: kwok
  operatingSystem: linux
phase: Running
"""
)

_POD_RUNNING = """\
{{ $now := Now }}
conditions:
{{ range list "PodReadyToStartContainers" "Initialized" "Ready" "ContainersReady" "PodScheduled" }}
- lastProbeTime: null
  lastTransitionTime: {{ $now | Quote }}
  status: "True"
  type: {{ . }}
{{ end }}
{{ if .spec.initContainers }}
initContainerStatuses:
{{ range .spec.initContainers }}
- image: {{ .image | Quote }}
  name: {{ .name | Quote }}
  ready: true
  restartCount: 0
  started: false
  state:
    terminated:
      exitCode: 0
      reason: Completed
      startedAt: {{ $now | Quote }}
      finishedAt: {{ $now | Quote }}
{{ end }}
{{ end }}
containerStatuses:
{{ range .spec.containers }}
- image: {{ .image | Quote }}
  name: {{ .name | Quote }}
  ready: true
  restartCount: 0
  started: true
  state:
    running:
      startedAt: {{ $now | Quote }}
{{ end }}
hostIP: {{ NodeIPWith .spec.nodeName | Quote }}
podIP: {{ PodIPWith .spec.nodeName false .metadata.uid .metadata.name .metadata.namespace | Quote }}
phase: Running
startTime: {{ $now | Quote }}
"""


def _pod_terminated(phase: str, reason: str, exit_code: str) -> str:
    return f"""\
{{{{ $now := Now }}}}
{{{{ $message := index .metadata.annotations "{TERMINATION_MESSAGE}" }}}}
conditions:
{{{{ range list "Ready" "ContainersReady" }}}}
- lastProbeTime: null
  lastTransitionTime: {{{{ $now | Quote }}}}
  reason: PodCompleted
  status: "False"
  type: {{{{ . }}}}
{{{{ end }}}}
containerStatuses:
{{{{ range .spec.containers }}}}
- image: {{{{ .image | Quote }}}}
  name: {{{{ .name | Quote }}}}
  ready: false
  restartCount: 0
  started: false
  state:
    terminated:
      exitCode: {exit_code}
      reason: {reason}
      {{{{ with $message }}}}message: {{{{ . | Quote }}}}{{{{ end }}}}
      startedAt: {{{{ $.status.startTime | Quote }}}}
      finishedAt: {{{{ $now | Quote }}}}
{{{{ end }}}}
phase: {phase}
"""


def stages() -> list[dict[str, Any]]:
    """Every Stage document kwok loads with `--config`."""
    running: list[dict[str, Any]] = [
        _NOT_DELETED,
        {"key": ".status.phase", "operator": "In", "values": ["Running"]},
    ]
    timed = [*running, {"key": _annotation(RUN_FOR), "operator": "Exists"}]
    run_for_delay = {"durationMilliseconds": 0, "durationFrom": {"expressionFrom": _annotation(RUN_FOR)}}
    exit_code = f'{{{{ index $.metadata.annotations "{EXIT_CODE}" }}}}'
    return [
        _stage(
            "node-initialize",
            "Node",
            [
                {
                    "key": '.status.conditions.[] | select( .type == "Ready" ) | .status',
                    "operator": "NotIn",
                    "values": ["True"],
                }
            ],
            {"statusTemplate": _NODE_INITIALIZE},
        ),
        # kwok renews the node Lease itself (--node-lease-duration-seconds); this stage refreshes
        # the conditions' heartbeat now and then, as a kubelet does.
        _stage(
            "node-heartbeat-with-lease",
            "Node",
            [
                {"key": ".status.phase", "operator": "In", "values": ["Running"]},
                {
                    "key": '.status.conditions.[] | select( .type == "Ready" ) | .status',
                    "operator": "In",
                    "values": ["True"],
                },
            ],
            {"statusTemplate": _NODE_CONDITIONS},
            delay={"durationMilliseconds": 60000, "jitterDurationMilliseconds": 70000},
        ),
        _stage(
            "pod-start",
            "Pod",
            [_NOT_DELETED, {"key": ".status.podIP", "operator": "DoesNotExist"}],
            {
                "event": {"type": "Normal", "reason": "Started", "message": "Started container (kwok)"},
                "statusTemplate": _POD_RUNNING,
            },
        ),
        _stage(
            "pod-succeed-by-default",
            "Pod",
            [*timed, {"key": _annotation(EXIT_CODE), "operator": "DoesNotExist"}],
            {"statusTemplate": _pod_terminated("Succeeded", "Completed", "0")},
            delay=run_for_delay,
        ),
        _stage(
            "pod-succeed",
            "Pod",
            [*timed, {"key": _annotation(EXIT_CODE), "operator": "In", "values": ["0"]}],
            {"statusTemplate": _pod_terminated("Succeeded", "Completed", "0")},
            delay=run_for_delay,
        ),
        _stage(
            "pod-fail",
            "Pod",
            [
                *timed,
                {"key": _annotation(EXIT_CODE), "operator": "Exists"},
                {"key": _annotation(EXIT_CODE), "operator": "NotIn", "values": ["0"]},
            ],
            {"statusTemplate": _pod_terminated("Failed", "Error", exit_code)},
            delay=run_for_delay,
        ),
        # A kubelet removes a deleted pod once its containers stopped; fake containers stop at once.
        _stage(
            "pod-delete",
            "Pod",
            [
                {"key": ".metadata.deletionTimestamp", "operator": "Exists"},
                {"key": ".metadata.finalizers", "operator": "DoesNotExist"},
            ],
            {"delete": True},
        ),
    ]


def _node(name: str, pool: str, capacity: dict[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "labels": {
                MANAGED_LABEL: MANAGED_VALUE,
                POOL_LABEL: pool,
                "kubernetes.io/hostname": name,
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64",
                "type": "kwok",
            },
            "annotations": {"node.alpha.kubernetes.io/ttl": "0", "kwok.x-k8s.io/node": "fake"},
        },
        # Untainted, like GPU nodes whose pods need no toleration: a pod that requests GPUs lands
        # here unless it opts into the node agent's (tainted) node.
        "spec": {},
        # Created with a plain create, the status is kept: it is what the scheduler counts.
        "status": {"capacity": capacity, "allocatable": capacity},
    }


def nodes(gpu_nodes: int = 2) -> list[dict[str, Any]]:
    """`gpu_nodes` GPU nodes (8 GPUs each; two by default) and one CPU-only node."""
    gpu = {
        "cpu": "64",
        "memory": "512Gi",
        "pods": "110",
        "ephemeral-storage": "1Ti",
        GPU_RESOURCE: str(GPUS_PER_NODE),
    }
    cpu = {"cpu": "32", "memory": "128Gi", "pods": "110", "ephemeral-storage": "1Ti"}
    return [*(_node(f"gpu-node-{i}", "gpu", gpu) for i in range(gpu_nodes)), _node("cpu-node-0", "cpu", cpu)]
