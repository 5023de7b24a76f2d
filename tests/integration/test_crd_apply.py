"""The generated CRDs on a real kube-apiserver: what it rejects, and the message naming the field.

Every invalid manifest is sent twice, as users and GitOps tools send it: `kubectl apply --server-side
--validate=strict` and `kubectl create --validate=strict` (kubectl's spelling of the API's
`fieldValidation=Strict`). Both must fail and name the
offending field path. A new rule or bound adds one line to INVALID (or UPDATES); the unit test
tests/unit/test_crd.py holds the same kind of catalogue against an emulation, this one proves the emulation
and the CRD right on the server (incl. CEL compilation and cost limits, which the emulation cannot check).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any, cast

import pytest
import yaml
from kubernetes import client

from finetune_operator.api import FineTuningJobSpec
from finetune_operator.codegen import crdgen
from support.fixtures import Kubectl
from support.specs import DELETE, MINIMAL, RUNNING, with_changes, with_server_defaults

pytestmark = pytest.mark.integration


def _job(name: str, spec: dict[str, Any]) -> str:
    return yaml.safe_dump(
        {"apiVersion": "finetune.dev/v1alpha1", "kind": "FineTuningJob", "metadata": {"name": name}, "spec": spec}
    )


def _rejected(kubectl: Kubectl, *args: str, manifest: str) -> str:
    """The error of a kubectl call that must fail (the fixture raises AssertionError with kubectl's stderr)."""
    with pytest.raises(AssertionError) as failure:
        kubectl(*args, "-f", "-", stdin=manifest)
    return str(failure.value)


@pytest.fixture(scope="module")
def ns(crds: list[dict[str, Any]], kubectl: Kubectl) -> Iterator[str]:
    """One namespace for the whole catalogue: rejected objects never exist, so cases cannot interfere."""
    name = f"crd-apply-{uuid.uuid4().hex[:6]}"
    kubectl("create", "namespace", name)
    yield name
    kubectl("delete", "namespace", name, "--wait=false")


# (id, change to MINIMAL, the field path the server's message must contain)
INVALID: list[tuple[str, tuple[str, Any], str]] = [
    ("missing-baseModel", ("baseModel", DELETE), "spec.baseModel"),
    ("missing-dataset", ("dataset", DELETE), "spec.dataset"),
    ("missing-output", ("output", DELETE), "spec.output"),
    ("missing-baseModel-name", ("baseModel.name", DELETE), "spec.baseModel.name"),
    ("missing-modelName", ("output.modelName", DELETE), "spec.output.modelName"),
    ("missing-claimName", ("dataset.source", {"pvc": {"path": "x"}}), "spec.dataset.source.pvc.claimName"),
    ("unknown-spec-field", ("gpus", 1), "spec.gpus"),
    ("unknown-nested-field", ("training.epoch", 3), "spec.training.epoch"),
    ("type-object", ("training", "fast"), "spec.training"),
    ("type-integer", ("training.epochs", 2.5), "spec.training.epochs"),
    ("type-boolean", ("cancel", "maybe"), "spec.cancel"),
    ("type-int-or-string", ("resources.cpu", True), "spec.resources.cpu"),
    ("name-empty", ("baseModel.name", ""), "spec.baseModel.name"),
    ("name-too-long", ("baseModel.name", "x" * 254), "spec.baseModel.name"),
    ("builtin-enum", ("baseModel.builtin", "gpt-2"), "spec.baseModel.builtin"),
    ("model-pvc-dns", ("baseModel", {"name": "m", "path": "p", "pvc": "Models"}), "spec.baseModel.pvc"),
    ("configMap-name-dns", ("dataset.source.configMap.name", "Sessions"), "spec.dataset.source.configMap.name"),
    ("configMap-key-chars", ("dataset.source.configMap.key", "a/b"), "spec.dataset.source.configMap.key"),
    ("minSuccessRate-max", ("dataset.curation.minSuccessRate", 1.5), "spec.dataset.curation.minSuccessRate"),
    ("evalFraction-exclusive-min", ("dataset.curation.evalFraction", 0), "spec.dataset.curation.evalFraction"),
    ("maxTokens-min", ("dataset.curation.maxTokens", 15), "spec.dataset.curation.maxTokens"),
    ("method-enum", ("training.method", "qlora"), "spec.training.method"),
    ("epochs-min", ("training.epochs", 0), "spec.training.epochs"),
    ("epochs-max", ("training.epochs", 1001), "spec.training.epochs"),
    ("learningRate-exclusive-max", ("training.learningRate", 1), "spec.training.learningRate"),
    ("warmupRatio-exclusive-max", ("training.warmupRatio", 1.0), "spec.training.warmupRatio"),
    ("seed-max", ("training.seed", 2**31), "spec.training.seed"),
    ("precision-enum", ("training.precision", "int8"), "spec.training.precision"),
    ("sharding-enum", ("training.sharding", "zero3"), "spec.training.sharding"),
    (
        "cel-fsdp-without-quantization",
        (("training.sharding", "fsdp"), ("training.quantization", "4bit")),
        "spec.training.sharding",
    ),
    ("quantization-enum", ("training.quantization", "2bit"), "spec.training.quantization"),
    (
        "cel-quantization-needs-lora",
        (("training.method", "full"), ("training.quantization", "4bit")),
        "spec.training.quantization",
    ),
    ("lora-r-max", ("training.lora", {"r": 4097}), "spec.training.lora.r"),
    ("targetModules-empty", ("training.lora", {"targetModules": []}), "spec.training.lora.targetModules"),
    ("targetModules-too-many", ("training.lora", {"targetModules": ["m"] * 65}), "spec.training.lora.targetModules"),
    ("gpus-max", ("resources.gpus", 65), "spec.resources.gpus"),
    ("nodes-max", ("resources.nodes", 65), "spec.resources.nodes"),
    ("cel-nodes-need-ReadWriteMany", ("resources.nodes", 2), "spec.storage.accessMode"),
    ("gpuResourceName-pattern", ("resources.gpuResourceName", "nvidia.com/"), "spec.resources.gpuResourceName"),
    ("cpu-quantity", ("resources.cpu", "4 cores"), "spec.resources.cpu"),
    ("memory-quantity", ("resources.memory", "64GB"), "spec.resources.memory"),
    (
        "nodeSelector-too-many",
        ("resources.nodeSelector", {f"k{i}": "v" for i in range(65)}),
        "spec.resources.nodeSelector",
    ),
    ("tolerations-too-many", ("resources.tolerations", [{"key": "k"}] * 33), "spec.resources.tolerations"),
    ("toleration-effect", ("resources.tolerations", [{"effect": "NoRun"}]), "spec.resources.tolerations[0].effect"),
    ("maxEvalLoss-exclusive-min", ("evaluation.maxEvalLoss", 0), "spec.evaluation.maxEvalLoss"),
    ("minToolCallAccuracy-max", ("evaluation.minToolCallAccuracy", 1.5), "spec.evaluation.minToolCallAccuracy"),
    ("modelName-dns", ("output.modelName", "Chat"), "spec.output.modelName"),
    ("version-semver", ("output.version", "v1.0.0"), "spec.output.version"),
    ("bump-enum", ("output.bump", "build"), "spec.output.bump"),
    ("storage-size-quantity", ("storage.size", "10 GB"), "spec.storage.size"),
    ("retainPolicy-enum", ("storage.retainPolicy", "Keep"), "spec.storage.retainPolicy"),
    ("backoffLimit-max", ("runPolicy.backoffLimit", 21), "spec.runPolicy.backoffLimit"),
    ("ttl-max", ("runPolicy.ttlSecondsAfterFinished", 10**12), "spec.runPolicy.ttlSecondsAfterFinished"),
    (
        "cel-delete-with-ttl-needs-store",
        (("storage.retainPolicy", "Delete"), ("runPolicy.ttlSecondsAfterFinished", 60)),
        "spec.storage.retainPolicy",
    ),
    ("queueName-dns", ("queueName", "GPU"), "spec.queueName"),
    ("podLabel-value-long", ("podMetadata.labels", {"team": "t" * 64}), "spec.podMetadata.labels.team"),
    ("podAnnotations-too-many", ("podMetadata.annotations", {f"k{i}": "" for i in range(65)}), "spec.podMetadata"),
    ("cel-path-and-builtin", ("baseModel.path", "/m"), "spec.baseModel"),
    ("cel-no-model-source", ("baseModel.builtin", DELETE), "spec.baseModel"),
    ("cel-pvc-without-path", ("baseModel.pvc", "models"), "spec.baseModel.pvc"),
    ("cel-two-sources", ("dataset.source.pvc", {"claimName": "l", "path": "p"}), "spec.dataset.source"),
    ("cel-no-source", ("dataset.source", {}), "spec.dataset.source"),
    # What a pod template would refuse later (api/placement.py): map keys are checked by CEL on the map.
    ("podLabel-key-syntax", ("podMetadata.labels", {"team/": "x"}), "spec.podMetadata.labels"),
    ("podLabel-key-prefix-long", ("podMetadata.labels", {"p" * 254 + "/team": "x"}), "spec.podMetadata.labels"),
    ("podLabel-value-syntax", ("podMetadata.labels", {"team": "ml team"}), "spec.podMetadata.labels.team"),
    ("podLabel-reserved-ours", ("podMetadata.labels", {"finetune.dev/job": "x"}), "spec.podMetadata.labels"),
    ("podLabel-reserved-controller-uid", ("podMetadata.labels", {"controller-uid": "x"}), "spec.podMetadata.labels"),
    ("podAnnotation-reserved", ("podMetadata.annotations", {"batch.kubernetes.io/x": ""}), "spec.podMetadata"),
    ("cel-podAnnotation-bytes", ("podMetadata.annotations", {"note": "中" * 1200}), "spec.podMetadata.annotations"),
    ("nodeSelector-key-syntax", ("resources.nodeSelector", {"gpu type": "a"}), "spec.resources.nodeSelector"),
    ("nodeSelector-value-syntax", ("resources.nodeSelector", {"gpu": "a!"}), "spec.resources.nodeSelector.gpu"),
    ("toleration-key-syntax", ("resources.tolerations", [{"key": "a b"}]), "spec.resources.tolerations[0].key"),
    (
        "cel-toleration-exists-with-value",
        ("resources.tolerations", [{"key": "k", "operator": "Exists", "value": "v"}]),
        "spec.resources.tolerations[0].value",
    ),
    (
        "cel-toleration-equal-without-key",
        ("resources.tolerations", [{"operator": "Equal", "value": "v"}]),
        "spec.resources.tolerations[0].operator",
    ),
    (
        "cel-tolerationSeconds-without-NoExecute",
        ("resources.tolerations", [{"key": "k", "effect": "NoSchedule", "tolerationSeconds": 60}]),
        "spec.resources.tolerations[0].tolerationSeconds",
    ),
    ("cel-toleration-key-name-long", ("resources.tolerations", [{"key": "t" * 64}]), "tolerations[0].key"),
    ("cpu-zero", ("resources.cpu", "0"), "spec.resources.cpu"),
    ("cpu-zero-int", ("resources.cpu", 0), "spec.resources.cpu"),
    ("memory-negative", ("resources.memory", "-1Gi"), "spec.resources.memory"),
    ("storage-size-zero", ("storage.size", "0Gi"), "spec.storage.size"),
    ("gpuResourceName-unqualified", ("resources.gpuResourceName", "gpu"), "spec.resources.gpuResourceName"),
    ("storageClassName-syntax", ("storage.storageClassName", "Fast_SSD"), "spec.storage.storageClassName"),
    ("trainerImage-whitespace", ("trainerImage", "registry.example/trainer: 1.2"), "spec.trainerImage"),
    (
        "claim-path-parent",
        ("dataset.source", {"pvc": {"claimName": "l", "path": "s/../../etc"}}),
        "spec.dataset.source.pvc.path",
    ),
    ("model-path-parent", ("baseModel", {"name": "m", "path": "../m", "pvc": "models"}), "spec.baseModel.path"),
]


@pytest.mark.parametrize(("change", "field"), [case[1:] for case in INVALID], ids=[case[0] for case in INVALID])
@pytest.mark.parametrize(
    "verb",
    [("apply", "--server-side", "--validate=strict"), ("create", "--validate=strict")],
    ids=["apply", "create"],
)
def test_invalid_job_is_rejected_naming_the_field(
    kubectl: Kubectl, ns: str, verb: tuple[str, ...], change: tuple[str, Any], field: str
) -> None:
    name = f"bad-{uuid.uuid4().hex[:8]}"
    error = _rejected(kubectl, *verb, "-n", ns, manifest=_job(name, with_changes(MINIMAL, change)))
    assert field in error, error
    assert kubectl("get", "ftj", "-n", ns, name, "--ignore-not-found", "-o", "name") == ""


# (id, stored spec, change applied on update, field path the message must contain, or None when allowed)
UPDATES: list[tuple[str, dict[str, Any], tuple[str, Any], str | None]] = [
    ("baseModel", RUNNING, ("baseModel.name", "other"), "spec.baseModel"),
    ("dataset", RUNNING, ("dataset.curation.minSuccessRate", 0.5), "spec.dataset"),
    ("training", RUNNING, ("training.epochs", 4), "spec.training"),
    ("training-nested", RUNNING, ("training.lora.r", 16), "spec.training"),
    ("resources", RUNNING, ("resources.gpus", 2), "spec.resources"),
    ("resources-map", RUNNING, ("resources.nodeSelector", {"gpu": "h100"}), "spec.resources"),
    ("output", RUNNING, ("output.version", "9.0.0"), "spec.output"),
    ("cancel-true-to-false", with_changes(RUNNING, ("cancel", True)), ("cancel", False), "spec.cancel"),
    ("cancel-false-to-true", RUNNING, ("cancel", True), None),
    ("same-spec", RUNNING, ("training.epochs", 3), None),
    ("evaluation", RUNNING, ("evaluation.maxEvalLoss", 2.5), "spec.evaluation"),
    ("runPolicy", RUNNING, ("runPolicy.backoffLimit", 5), None),
    ("storage", RUNNING, ("storage.size", "20Gi"), "spec.storage"),
]


@pytest.mark.parametrize(
    ("stored", "change", "field"), [case[1:] for case in UPDATES], ids=[case[0] for case in UPDATES]
)
def test_update(kubectl: Kubectl, ns: str, stored: dict[str, Any], change: tuple[str, Any], field: str | None) -> None:
    name = f"upd-{uuid.uuid4().hex[:8]}"
    apply = ("apply", "--server-side", "--validate=strict", "-n", ns, "-f", "-")
    kubectl(*apply, stdin=_job(name, stored))
    updated = _job(name, with_changes(stored, change))
    if field is None:
        kubectl(*apply, stdin=updated)
    else:
        error = _rejected(kubectl, *apply[:-2], manifest=updated)
        assert field in error and ("immutable" in error or "cannot go back" in error), error
    kubectl("delete", "ftj", "-n", ns, name, "--wait=false")


def test_minimal_job_gets_every_default(kubectl: Kubectl, ns: str) -> None:
    """The server fills in exactly the defaults the operator's models assume."""
    kubectl("apply", "--server-side", "--validate=strict", "-n", ns, "-f", "-", stdin=_job("minimal", MINIMAL))
    stored = json.loads(kubectl("get", "ftj", "-n", ns, "minimal", "-o", "json"))["spec"]
    assert stored == FineTuningJobSpec.model_validate(MINIMAL).to_wire()
    assert stored == with_server_defaults(MINIMAL)


FULL_STATUS: dict[str, Any] = {
    "phase": "Running",
    "reason": "Training",
    "message": "step 40 of 120",
    "failureKind": "User",
    "observedGeneration": 1,
    "startTime": "2026-11-23T16:00:00Z",
    "completionTime": "2026-11-23T17:00:00Z",
    "conditions": [
        {
            "type": "Running",
            "status": "True",
            "reason": "Training",
            "message": "m",
            "lastTransitionTime": "2026-11-23T16:00:00Z",
            "observedGeneration": 1,
        }
    ],
    "progress": {
        "stage": "Training",
        "step": 40,
        "totalSteps": 120,
        "epoch": 1.5,
        "percent": 33,
        "updatedAt": "2026-11-23T16:30:00.5+01:00",
    },
    "metrics": {
        "trainLoss": 2.3,
        "evalLoss": 2.5,
        "perplexity": 12.2,
        "learningRate": 0.0002,
        "tokensPerSecond": 5100.5,
        "evalExactMatch": 0.1,
        "evalTokenF1": 0.4,
    },
    "dataset": {
        "sourceFiles": 1,
        "sourceRecords": 10,
        "samples": 8,
        "trainSamples": 7,
        "evalSamples": 1,
        "sha256": "0" * 64,
        "rejected": {"malformed": 1, "lowSuccess": 1, "duplicate": 0, "tooLong": 0, "empty": 0},
        "redactions": 2,
    },
    "model": {"name": "chat", "version": "0.0.1", "modelVersion": "chat-v0.0.1", "uri": "pvc://store/chat"},
    "checkpoint": {"path": "checkpoints/checkpoint-40", "step": 40},
    "memoryPlan": {
        "estimatedGib": 21.7,
        "deviceGib": 79.65,
        "weightsGib": 15.1,
        "optimizerGib": 0.5,
        "activationsGib": 4.6,
        "gradientCheckpointing": True,
        "checkpointEveryLayers": 2,
        "batchSize": 4,
        "gradientAccumulationSteps": 2,
        "choice": "every other layer checkpointed, micro-batch 4 x 2 accumulation steps: ~21.7 of 79.6 GiB",
        "shards": 8,
    },
    "attempts": 1,
}


def test_every_status_field_survives_a_status_patch(kubectl: Kubectl, ns: str) -> None:
    """Undeclared status fields would be pruned silently; the status subresource keeps spec out of reach.

    The patch's response is the object as stored by that very write, so an operator reconciling the same
    cluster (other test sessions run one) cannot race this check.
    """
    kubectl("apply", "--server-side", "-n", ns, "-f", "-", stdin=_job("status", MINIMAL))
    patch = json.dumps({"status": FULL_STATUS, "spec": {"cancel": True}})
    response = kubectl(
        "patch", "ftj", "status", "-n", ns, "--subresource=status", "--type=merge", "-p", patch, "-o", "json"
    )
    stored = json.loads(response)
    assert stored["status"] == FULL_STATUS
    assert stored["spec"]["cancel"] is False


def _json_path(obj: Any, path: str) -> Any:
    for key in path.lstrip(".").split("."):
        obj = obj.get(key) if isinstance(obj, dict) else None
    return obj


def test_printer_columns_show_their_json_paths(kube: client.ApiClient, kubectl: Kubectl, ns: str) -> None:
    """Each cell of `kubectl get` is the value at its column's jsonPath in the same (Table) response."""
    two_gpus = _job("columns", with_changes(MINIMAL, ("resources.gpus", 2)))
    kubectl("apply", "--server-side", "-n", ns, "-f", "-", stdin=two_gpus)
    status = json.dumps({"status": FULL_STATUS})
    kubectl("patch", "ftj", "columns", "-n", ns, "--subresource=status", "--type=merge", "-p", status)
    request = kube.param_serialize(
        "GET",
        f"/apis/finetune.dev/v1alpha1/namespaces/{ns}/finetuningjobs/columns",
        query_params=[("includeObject", "Object")],
        header_params={"Accept": "application/json;as=Table;v=v1;g=meta.k8s.io"},
        auth_settings=["BearerToken"],
    )
    method, url, headers = request[:3]
    response = kube.call_api(method, url, header_params=headers)
    response.read()  # type: ignore[no-untyped-call]  # fills response.data
    table = json.loads(cast(bytes, response.data))
    columns = [column["name"] for column in table["columnDefinitions"]]
    assert columns == [
        "Name",
        "Phase",
        "Progress",
        "Loss",
        "Eval-Loss",
        "Model",
        "Reason",
        "Age",
        "Base",
        "GPUs",
        "Message",
    ]
    [row] = table["rows"]
    crd = crdgen.crd(crdgen.KINDS[0])
    paths = {c["name"]: c["jsonPath"] for c in crd["spec"]["versions"][0]["additionalPrinterColumns"]}
    cells = dict(zip(columns, row["cells"], strict=True))
    for name, path in paths.items():
        if name != "Age":
            assert cells[name] == _json_path(row["object"], path), name
    assert (cells["Base"], cells["GPUs"]) == ("tiny", 2)


MODEL_VERSION: dict[str, Any] = {
    "apiVersion": "finetune.dev/v1alpha1",
    "kind": "ModelVersion",
    "metadata": {"name": "chat-v1.0.0"},
    "spec": {
        "modelName": "chat",
        "version": "1.0.0",
        "baseModel": "tiny",
        "artifact": {"pvc": "store", "path": "chat/1.0.0"},
        "job": {"name": "demo", "uid": "0000-1111"},
        "hyperparameters": {"epochs": 3, "lora": {"r": 8}},
    },
}


def test_model_version_is_immutable_and_keeps_hyperparameters(kubectl: Kubectl, ns: str) -> None:
    kubectl("apply", "--server-side", "--validate=strict", "-n", ns, "-f", "-", stdin=yaml.safe_dump(MODEL_VERSION))
    stored = json.loads(kubectl("get", "mv", "-n", ns, "chat-v1.0.0", "-o", "json"))["spec"]
    assert stored["hyperparameters"] == {"epochs": 3, "lora": {"r": 8}}
    changed = with_changes(MODEL_VERSION, ("spec.metrics", {"evalLoss": 1.0}))
    error = _rejected(kubectl, "apply", "--server-side", "-n", ns, manifest=yaml.safe_dump(changed))
    assert "spec" in error and "a ModelVersion is immutable" in error, error
    invalid = with_changes(MODEL_VERSION, ("metadata.name", "bad"), ("spec.version", "1.0"))
    error = _rejected(kubectl, "create", "--validate=strict", "-n", ns, manifest=yaml.safe_dump(invalid))
    assert "spec.version" in error, error


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("completionTime", "yesterday at noon"),
        ("startTime", "2026-11-23 16:00:00"),
        ("message", "m" * 4097),
        ("trainingPods", [f"pod-{i}" for i in range(21)]),
    ],
)
def test_status_outside_its_schema_is_refused(kubectl: Kubectl, ns: str, field: str, value: Any) -> None:
    """Status times are RFC 3339 date-times and status strings and lists are bounded, so no writer (operator,
    trainer, anyone with status access) can store a value the operator cannot read or keep cheaply."""
    name = f"st-{uuid.uuid4().hex[:8]}"
    kubectl("apply", "--server-side", "-n", ns, "-f", "-", stdin=_job(name, MINIMAL))
    patch = json.dumps({"status": {field: value}})
    with pytest.raises(AssertionError) as refused:
        kubectl("patch", "ftj", name, "-n", ns, "--subresource=status", "--type=merge", "-p", patch)
    assert f"status.{field}" in str(refused.value), refused.value
    kubectl("delete", "ftj", "-n", ns, name, "--wait=false")
