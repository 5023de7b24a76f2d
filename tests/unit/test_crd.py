"""The generated CRDs: in sync with the models, structural, and rejecting what the models reject.

Specs are validated against the GENERATED openAPIV3Schema the way the API server does it, emulated below in
its order: structural defaulting, OpenAPI validation (jsonschema) with unknown fields rejected as with
`kubectl apply --field-validation=Strict`, then the CEL rules (cel-python), transition rules (those reading
`oldSelf`) only on update and only where the old object has a value at that path. Each error reads
`<field path>: <message>` so a case can assert which field was named. tests/integration/test_crd_apply.py
repeats the catalogue against a real API server.
"""

from __future__ import annotations

import copy
import functools
import re
from pathlib import Path
from typing import Any

import celpy
import jsonschema
import pydantic
import pytest
from celpy.adapter import json_to_cel

import strictyaml
from finetune_operator.api import FineTuningJobSpec, FineTuningJobStatus, ModelVersionSpec, placement
from finetune_operator.codegen import admission, crdgen
from finetune_operator.codegen.openapi import walk
from support.specs import DELETE, MINIMAL, RUNNING, with_changes, with_server_defaults

REPO = Path(__file__).resolve().parents[2]

# ------------------------------------------------------------------------------ API server emulation

JsonObject = dict[str, Any]
_ABSENT = object()


def apply_defaults(schema: JsonObject, value: Any) -> Any:
    """A copy of `value` with every missing property with a default set, recursively, as the server does."""
    value = copy.deepcopy(value)
    _default_in_place(schema, value)
    return value


def _default_in_place(schema: JsonObject, value: Any) -> None:
    if isinstance(value, dict):
        for name, child in schema.get("properties", {}).items():
            if name not in value and "default" in child:
                value[name] = copy.deepcopy(child["default"])
            if name in value:
                _default_in_place(child, value[name])
        if isinstance(schema.get("additionalProperties"), dict):
            for item in value.values():
                _default_in_place(schema["additionalProperties"], item)
    elif isinstance(value, list) and "items" in schema:
        for item in value:
            _default_in_place(schema["items"], item)


def openapi_errors(schema: JsonObject, value: Any) -> list[str]:
    validator = jsonschema.Draft4Validator(_strict(schema))
    return sorted(_describe(error) for error in validator.iter_errors(value))


def _strict(schema: JsonObject) -> JsonObject:
    """OpenAPI v3 -> JSON Schema draft 4 (same boolean exclusiveMinimum), rejecting unknown fields."""
    out = {key: value for key, value in schema.items() if not key.startswith("x-kubernetes-")}
    if "properties" in schema:
        out["properties"] = {name: _strict(child) for name, child in schema["properties"].items()}
        if not schema.get("x-kubernetes-preserve-unknown-fields"):
            out["additionalProperties"] = False
    for key in ("items", "additionalProperties"):
        if isinstance(schema.get(key), dict):
            out[key] = _strict(schema[key])
    return out


def _describe(error: jsonschema.ValidationError) -> str:
    path = "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in error.absolute_path)
    return f"{path}: {error.message}"


def cel_errors(schema: JsonObject, new: Any, old: Any = _ABSENT, path: str = "") -> list[str]:
    """The messages of the CEL rules that `new` breaks (`old`: the stored object, for transition rules)."""
    errors: list[str] = []
    for rule in schema.get("x-kubernetes-validations", []):
        transition = "oldSelf" in rule["rule"]
        if transition and old is _ABSENT:
            continue
        activation = {"self": json_to_cel(new)}
        if transition:
            activation["oldSelf"] = json_to_cel(old)
        result = _program(rule["rule"]).evaluate(activation)
        if not (isinstance(result, celpy.celtypes.BoolType) and bool(result)):
            errors.append(f"{path}{rule.get('fieldPath', '')}: {rule['message']} ({result!r})")
    if isinstance(new, dict):
        for name, child in schema.get("properties", {}).items():
            if name in new:
                old_child = old.get(name, _ABSENT) if isinstance(old, dict) else _ABSENT
                errors += cel_errors(child, new[name], old_child, f"{path}.{name}")
    elif isinstance(new, list) and "items" in schema:
        # Atomic lists: the server correlates no old items, so item rules never see oldSelf.
        for index, item in enumerate(new):
            errors += cel_errors(schema["items"], item, _ABSENT, f"{path}[{index}]")
    return errors


@functools.cache
def _program(rule: str) -> celpy.Runner:
    environment = celpy.Environment()
    return environment.program(environment.compile(rule))


def admission_errors(schema: JsonObject, obj: Any, old: Any = _ABSENT) -> list[str]:
    """All errors the API server would report for creating `obj` (or updating `old` to `obj`)."""
    defaulted = apply_defaults(schema, obj)
    errors = openapi_errors(schema, defaulted)
    if errors:
        # The server runs CEL only on objects that passed the OpenAPI schema.
        return errors
    old_defaulted = _ABSENT if old is _ABSENT else apply_defaults(schema, old)
    return cel_errors(schema, defaulted, old_defaulted)


# ------------------------------------------------------------------------------------------------ CRDs

CRDS = {kind.kind: crdgen.crd(kind) for kind in crdgen.KINDS}


def _schema(kind: str) -> dict[str, Any]:
    schema: dict[str, Any] = CRDS[kind]["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    return schema


def test_committed_files_match_the_models() -> None:
    assert crdgen.drift(REPO, crdgen.generated_files(REPO)) == "", f"run `{crdgen.COMMAND}`"


def seed_hand_written_docs(root: Path) -> None:
    """The documents whose generated sections sit between hand-written prose."""
    (root / "docs").mkdir()
    for doc in (crdgen.CONTRACT_DOC, crdgen.INSTALL_DOC, crdgen.TRAINER_DOC):
        (root / doc).write_text((REPO / doc).read_text())


def test_check_mode_reports_drift(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    seed_hand_written_docs(tmp_path)
    assert crdgen.main(["--root", str(tmp_path)]) == 0
    assert crdgen.main(["--check", "--root", str(tmp_path)]) == 0
    crd_file = tmp_path / "crds/finetune.dev_finetuningjobs.yaml"
    crd_file.write_text(crd_file.read_text().replace("maximum: 64", "maximum: 65"))
    assert crdgen.main(["--check", "--root", str(tmp_path)]) == 1
    changed = [line.split() for line in capsys.readouterr().out.splitlines() if line[:1] in "+-"]
    assert ["-", "maximum:", "65"] in changed and ["+", "maximum:", "64"] in changed


def test_generated_yaml_is_the_crd_or_the_trainer_policy_with_a_header() -> None:
    for path, text in crdgen.generated_files(REPO).items():
        if path.endswith(".yaml"):
            assert text.startswith(f"# Generated from finetune_operator.api by `{crdgen.COMMAND}`")
            documents = list(strictyaml.load_all(text))
            if path == admission.TRAINER_POLICY_PATH:
                assert documents == admission.trainer_status_policy()
            else:
                assert len(documents) == 1 and documents[0] in CRDS.values()


@pytest.mark.parametrize(
    ("kind", "plural", "short", "has_status"),
    [
        ("FineTuningJob", "finetuningjobs", "ftj", True),
        ("ModelVersion", "modelversions", "mv", False),
        ("RegisteredModel", "registeredmodels", "rm", True),
    ],
)
def test_crd_names_scope_and_version(kind: str, plural: str, short: str, has_status: bool) -> None:
    crd = CRDS[kind]
    assert crd["metadata"]["name"] == f"{plural}.finetune.dev"
    assert crd["spec"]["scope"] == "Namespaced"
    assert crd["spec"]["names"]["shortNames"] == [short]
    assert crd["spec"]["names"]["categories"] == ["ml"]
    [version] = crd["spec"]["versions"]
    assert (version["name"], version["served"], version["storage"]) == ("v1alpha1", True, True)
    assert ("subresources" in version) == has_status
    assert version["schema"]["openAPIV3Schema"]["properties"]["metadata"] == {"type": "object"}


def test_printer_columns() -> None:
    columns = {c["name"]: c for c in CRDS["FineTuningJob"]["spec"]["versions"][0]["additionalPrinterColumns"]}
    assert [name for name, c in columns.items() if not c.get("priority")] == [
        "Phase",
        "Progress",
        "Loss",
        "Eval-Loss",
        "Model",
        "Reason",
        "Age",
    ]
    assert {name for name, c in columns.items() if c.get("priority") == 1} == {"Base", "GPUs", "Message"}
    assert (columns["Progress"]["type"], columns["Loss"]["type"], columns["Age"]["type"]) == (
        "integer",
        "number",
        "date",
    )
    assert columns["Eval-Loss"]["jsonPath"] == ".status.metrics.evalLoss"
    versions = {c["name"]: c for c in CRDS["ModelVersion"]["spec"]["versions"][0]["additionalPrinterColumns"]}
    assert (versions["Method"]["jsonPath"], versions["Artifact"]["jsonPath"]) == (".spec.method", ".spec.artifact.uri")


@pytest.mark.parametrize("kind", CRDS)
def test_schema_is_structural(kind: str) -> None:
    for path, node, _ in walk(_schema(kind)):
        assert not {"$ref", "$defs", "title", "nullable", "const", "oneOf", "allOf", "not"} & node.keys(), path
        if node.get("x-kubernetes-int-or-string"):
            assert "type" not in node and node["anyOf"] == [{"type": "integer"}, {"type": "string"}], path
        else:
            assert node.get("type") in {"object", "array", "string", "integer", "number", "boolean"}, path
            assert "anyOf" not in node, path
        assert node.get("default", "") is not None, path
        assert not ("properties" in node and "additionalProperties" in node), path
        for bound in ("exclusiveMinimum", "exclusiveMaximum"):
            if bound in node:
                assert node[bound] is True and bound.replace("exclusiveM", "m") in node, path
        if node.get("x-kubernetes-list-type") == "map":
            assert set(node["x-kubernetes-list-map-keys"]) <= set(node["items"]["required"]), path


@pytest.mark.parametrize("kind", CRDS)
def test_unknown_fields_are_not_preserved_at_the_top(kind: str) -> None:
    schema = _schema(kind)
    for part in ("", ".spec", ".status"):
        node = schema if not part else schema["properties"].get(part[1:], {})
        assert not node.get("x-kubernetes-preserve-unknown-fields"), part


def test_every_status_field_is_declared() -> None:
    """Undeclared status fields are pruned silently by the API server."""

    def aliases(model: type[pydantic.BaseModel]) -> set[str]:
        names = set()
        for name, field in model.model_fields.items():
            alias = field.alias or name
            names.add(alias)
            for arg in [field.annotation, *getattr(field.annotation, "__args__", ())]:
                inner = getattr(arg, "__args__", (arg,))
                for candidate in [arg, *inner]:
                    if isinstance(candidate, type) and issubclass(candidate, pydantic.BaseModel):
                        names |= {f"{alias}.{sub}" for sub in aliases(candidate)}
        return names

    status = _schema("FineTuningJob")["properties"]["status"]
    declared = {path.lstrip(".").replace("[*]", "") for path, _, _ in walk(status)} - {""}
    assert aliases(FineTuningJobStatus) <= declared
    assert "conditions.lastTransitionTime" in declared


def test_conditions_merge_by_type() -> None:
    conditions = _schema("FineTuningJob")["properties"]["status"]["properties"]["conditions"]
    assert conditions["x-kubernetes-list-type"] == "map"
    assert conditions["x-kubernetes-list-map-keys"] == ["type"]


def test_nested_defaults_come_from_object_defaults() -> None:
    spec = _schema("FineTuningJob")["properties"]["spec"]
    assert spec["properties"]["training"]["default"] == {}
    assert spec["properties"]["training"]["properties"]["epochs"]["default"] == 3
    assert "default" not in spec["properties"]["training"]["properties"]["batchSize"]


def test_cel_rules_are_declared_where_the_models_say() -> None:
    rules = {
        path: [rule["rule"] for rule in node["x-kubernetes-validations"]]
        for path, node, _ in walk(_schema("FineTuningJob"))
        if "x-kubernetes-validations" in node
    }
    assert set(rules) == {
        ".spec",
        ".spec.baseModel",
        ".spec.baseModel.path",
        ".spec.dataset.source",
        ".spec.dataset.source.pvc.path",
        ".spec.resources",
        ".spec.resources.tolerations[*]",
        ".spec.podMetadata",
        ".spec.env[*]",
        ".spec.env[*].valueFrom",
        ".spec.envFrom[*]",
        ".spec.evaluation",
        ".spec.training",
        ".spec.output",
    }
    assert len(rules[".spec"]) == 10


# ------------------------------------------------------------------------------------------ spec cases

_PVC_SOURCE = ("dataset.source", {"pvc": {"claimName": "logs", "path": "sessions/*.jsonl"}})
_S3_SOURCE = ("dataset.source", {"s3": {"uri": "s3://agent-logs/sessions/**/*.jsonl.gz"}})
_S3 = {"uri": "s3://agent-logs/s/*.jsonl", "secretRef": {"name": "s3-credentials"}}

VALID = {
    "minimal": MINIMAL,
    "pvc-source": with_changes(MINIMAL, _PVC_SOURCE),
    "s3-source-default-credentials": with_changes(MINIMAL, _S3_SOURCE),
    "s3-source-everything": with_changes(
        MINIMAL,
        (
            "dataset.source",
            {
                "s3": {
                    "uri": "s3://agent-logs/sessions/2026-11/day-[0-9]*.jsonl",
                    "endpoint": "https://minio.storage.svc:9000",
                    "region": "eu-west-1",
                    "secretRef": {
                        "name": "minio-creds",
                        "accessKeyIdKey": "accesskey",
                        "secretAccessKeyKey": "secretkey",
                        "sessionTokenKey": "token",
                    },
                }
            },
        ),
    ),
    "model-on-pvc": with_changes(MINIMAL, ("baseModel", {"name": "llama", "path": "llama-3-8b", "pvc": "models"})),
    "model-in-image": with_changes(MINIMAL, ("baseModel", {"name": "llama", "path": "/models/llama"})),
    "model-in-a-bucket": with_changes(
        MINIMAL,
        ("baseModel", {"name": "llama", "s3": {"uri": "s3://models/llama-3-8b/", "secretRef": {"name": "r"}}}),
    ),
    "cpu-int": with_changes(MINIMAL, ("resources.cpu", 4), ("resources.memory", "64Gi")),
    "cpu-milli": with_changes(MINIMAL, ("resources.cpu", "500m"), ("resources.gpus", 0)),
    "prerelease": with_changes(MINIMAL, ("output.version", "1.3.0-rc.1+build.5"), ("output.bump", "major")),
    "output-to-a-bucket-deleting-the-workspace": with_changes(
        MINIMAL,
        (
            "output.s3",
            {"uri": "s3://trained-models/agents", "endpoint": "http://minio:9000", "secretRef": {"name": "w"}},
        ),
        ("storage.retainPolicy", "Delete"),
        ("runPolicy.ttlSecondsAfterFinished", 60),
    ),
    "everything": with_changes(
        MINIMAL,
        ("dataset.curation", {"minSuccessRate": 0, "maxSamples": 1, "dedup": False, "evalFraction": 0.5}),
        ("dataset.curation.maxTokens", 16),
        (
            "training",
            {
                "method": "full",
                "epochs": 1000,
                "batchSize": 4096,
                "gradientAccumulationSteps": 1024,
                "learningRate": 0.999,
                "maxSeqLength": 131072,
                "warmupRatio": 0,
                "seed": 2**31 - 1,
                "precision": "bf16",
                "lora": {"r": 4096, "alpha": 8192, "dropout": 0, "targetModules": ["q_proj", "v_proj"]},
            },
        ),
        (
            "resources",
            {
                "gpus": 64,
                "nodes": 64,
                "gpuResourceName": "amd.com/gpu",
                "nodeSelector": {"gpu": "a100"},
                "tolerations": [{"key": "gpu", "operator": "Exists", "effect": "NoSchedule"}],
                "priorityClassName": "training",
            },
        ),
        ("evaluation", {"maxEvalLoss": 0.01, "minToolCallAccuracy": 1.0}),
        ("output", {"modelName": "chat", "version": "2.0.0", "bump": "minor", "pvc": "model-store"}),
        (
            "storage",
            {"size": "1Ti", "storageClassName": "fast", "accessMode": "ReadWriteMany", "retainPolicy": "Delete"},
        ),
        ("runPolicy", {"backoffLimit": 20, "activeDeadlineSeconds": 1, "ttlSecondsAfterFinished": 0}),
        ("queueName", "gpu-queue"),
        ("cancel", True),
        ("trainerImage", "registry.example/trainer:1"),
        ("podMetadata", {"labels": {"team": "ml"}, "annotations": {"note": "n" * 3584}}),
        (
            "env",
            [
                {"name": "HTTPS_PROXY", "value": "http://proxy:3128"},
                {"name": "MLFLOW_TRACKING_TOKEN", "valueFrom": {"secretKeyRef": {"name": "mlflow", "key": "token"}}},
                {"name": "NO_PROXY", "valueFrom": {"configMapKeyRef": {"name": "net", "key": "np", "optional": True}}},
            ],
        ),
        ("envFrom", [{"configMapRef": {"name": "proxy"}, "prefix": "P_"}, {"secretRef": {"name": "s"}}]),
        ("tracking", {"mlflow": {"trackingUri": "https://mlflow.ml:5000", "experiment": "agents", "runName": "r"}}),
    ),
    "wandb-online-self-hosted": with_changes(
        MINIMAL,
        (
            "tracking",
            {
                "wandb": {
                    "project": "support-agents",
                    "entity": "ml-team",
                    "mode": "online",
                    "runName": "nightly",
                    "host": "https://wandb.ml.example.com",
                }
            },
        ),
    ),
    "wandb-offline-and-mlflow": with_changes(
        MINIMAL,
        (
            "tracking",
            {"mlflow": {"trackingUri": "http://m", "experiment": "e"}, "wandb": {"project": "p", "mode": "offline"}},
        ),
    ),
}


@pytest.mark.parametrize("spec", VALID.values(), ids=VALID.keys())
def test_valid_specs_are_accepted(spec: dict[str, Any]) -> None:
    assert admission_errors(_schema("FineTuningJob"), {"spec": spec}) == []
    FineTuningJobSpec.model_validate(spec)


# A quantity written as a number stays a number on the server and becomes a string in the models.
_SAME_WIRE = {name: spec for name, spec in VALID.items() if name != "cpu-int"}


@pytest.mark.parametrize("spec", _SAME_WIRE.values(), ids=_SAME_WIRE.keys())
def test_server_defaults_equal_the_models_defaults(spec: dict[str, Any]) -> None:
    """What the API server stores is what the operator's models read: no default differs between them."""
    stored = apply_defaults(_schema("FineTuningJob")["properties"]["spec"], spec)
    assert stored == FineTuningJobSpec.model_validate(spec).to_wire()


def test_minimal_spec_gets_every_default() -> None:
    stored = apply_defaults(_schema("FineTuningJob"), {"spec": MINIMAL})["spec"]
    assert stored == with_server_defaults(MINIMAL)


# (id, change to MINIMAL, field path the error must name). Pydantic must reject each one too.
INVALID: list[tuple[str, tuple[str, Any], str]] = [
    ("missing-baseModel", ("baseModel", DELETE), "baseModel"),
    ("missing-dataset", ("dataset", DELETE), "dataset"),
    ("missing-output", ("output", DELETE), "output"),
    ("missing-baseModel-name", ("baseModel.name", DELETE), "name"),
    ("missing-modelName", ("output.modelName", DELETE), "modelName"),
    ("missing-source", ("dataset.source", DELETE), "source"),
    ("missing-claimName", ("dataset.source", {"pvc": {"path": "x"}}), "claimName"),
    ("missing-configMap-key", ("dataset.source.configMap", {"name": "x"}), "key"),
    ("unknown-spec-field", ("gpus", 1), "gpus"),
    ("unknown-nested-field", ("training.epoch", 3), "epoch"),
    ("unknown-baseModel-field", ("baseModel.revision", "main"), "revision"),
    ("spec-not-object", ("training", "fast"), ".spec.training"),
    ("name-empty", ("baseModel.name", ""), ".spec.baseModel.name"),
    ("name-too-long", ("baseModel.name", "x" * 254), ".spec.baseModel.name"),
    ("builtin-enum", ("baseModel.builtin", "gpt-2"), ".spec.baseModel.builtin"),
    ("path-empty", ("baseModel", {"name": "m", "path": ""}), ".spec.baseModel.path"),
    ("model-pvc-dns", ("baseModel", {"name": "m", "path": "p", "pvc": "Models"}), ".spec.baseModel.pvc"),
    ("cel-path-and-builtin", ("baseModel.path", "/m"), ".spec.baseModel"),
    ("cel-no-model-source", ("baseModel.builtin", DELETE), ".spec.baseModel"),
    ("cel-pvc-without-path", ("baseModel.pvc", "models"), ".spec.baseModel.pvc"),
    ("cel-s3-and-builtin", ("baseModel.s3", {"uri": "s3://models/m/"}), "exactly one of path"),
    ("base-s3-uri-missing", ("baseModel", {"name": "m", "s3": {}}), "uri"),
    *(
        (f"base-s3-{name}", ("baseModel", {"name": "m", "s3": {"uri": "s3://models/m/", **fields}}), path)
        for name, fields, path in (
            ("uri-scheme", {"uri": "https://models/m/"}, ".spec.baseModel.s3.uri"),
            ("uri-long", {"uri": "s3://models/" + "m" * 2048}, ".spec.baseModel.s3.uri"),
            ("endpoint-scheme", {"endpoint": "minio:9000"}, ".spec.baseModel.s3.endpoint"),
            ("endpoint-long", {"endpoint": "http://" + "e" * 2048}, ".spec.baseModel.s3.endpoint"),
            ("region-pattern", {"region": "EU West"}, ".spec.baseModel.s3.region"),
            ("region-long", {"region": "r" * 65}, ".spec.baseModel.s3.region"),
            ("secret-name-missing", {"secretRef": {}}, "name"),
            ("secret-name-dns", {"secretRef": {"name": "W"}}, ".spec.baseModel.s3.secretRef.name"),
            ("secret-name-long", {"secretRef": {"name": "s" * 254}}, ".spec.baseModel.s3.secretRef.name"),
            *(
                (f"secret-{key}-{what}", {"secretRef": {"name": "s", key: value}}, f".baseModel.s3.secretRef.{key}")
                for key in ("accessKeyIdKey", "secretAccessKeyKey", "sessionTokenKey")
                for what, value in (("chars", "a/b"), ("long", "k" * 254))
            ),
        )
    ),
    ("cel-two-sources", ("dataset.source.pvc", {"claimName": "l", "path": "p"}), ".spec.dataset.source"),
    ("cel-no-source", ("dataset.source", {}), ".spec.dataset.source"),
    ("configMap-name-dns", ("dataset.source.configMap.name", "Sessions"), ".configMap.name"),
    ("configMap-key-chars", ("dataset.source.configMap.key", "a/b"), ".configMap.key"),
    ("claimName-dns", ("dataset.source", {"pvc": {"claimName": "-logs", "path": "p"}}), ".pvc.claimName"),
    ("claim-path-empty", ("dataset.source", {"pvc": {"claimName": "l", "path": ""}}), ".pvc.path"),
    ("claim-path-parent", ("dataset.source", {"pvc": {"claimName": "l", "path": "s/../../etc"}}), ".pvc.path"),
    ("model-path-parent", ("baseModel", {"name": "m", "path": "../models", "pvc": "models"}), ".baseModel.path"),
    ("minSuccessRate-max", ("dataset.curation.minSuccessRate", 1.5), ".curation.minSuccessRate"),
    ("minSuccessRate-min", ("dataset.curation.minSuccessRate", -0.1), ".curation.minSuccessRate"),
    ("curation-format", ("dataset.curation.format", "sharegpt"), ".curation.format"),
    ("evalFraction-exclusive-min", ("dataset.curation.evalFraction", 0), ".curation.evalFraction"),
    ("evalFraction-max", ("dataset.curation.evalFraction", 0.6), ".curation.evalFraction"),
    ("maxSamples-min", ("dataset.curation.maxSamples", 0), ".curation.maxSamples"),
    ("maxTokens-min", ("dataset.curation.maxTokens", 15), ".curation.maxTokens"),
    ("dedup-type", ("dataset.curation.dedup", "maybe"), ".curation.dedup"),
    ("method-enum", ("training.method", "qlora"), ".training.method"),
    ("epochs-min", ("training.epochs", 0), ".training.epochs"),
    ("epochs-max", ("training.epochs", 1001), ".training.epochs"),
    ("epochs-type", ("training.epochs", 2.5), ".training.epochs"),
    ("batchSize-min", ("training.batchSize", 0), ".training.batchSize"),
    ("batchSize-max", ("training.batchSize", 4097), ".training.batchSize"),
    ("gradAccum-min", ("training.gradientAccumulationSteps", 0), ".training.gradientAccumulationSteps"),
    ("gradAccum-max", ("training.gradientAccumulationSteps", 1025), ".training.gradientAccumulationSteps"),
    ("learningRate-exclusive-min", ("training.learningRate", 0), ".training.learningRate"),
    ("learningRate-exclusive-max", ("training.learningRate", 1), ".training.learningRate"),
    ("maxSeqLength-min", ("training.maxSeqLength", 15), ".training.maxSeqLength"),
    ("maxSeqLength-max", ("training.maxSeqLength", 131073), ".training.maxSeqLength"),
    ("warmupRatio-min", ("training.warmupRatio", -0.01), ".training.warmupRatio"),
    ("warmupRatio-exclusive-max", ("training.warmupRatio", 1.0), ".training.warmupRatio"),
    ("seed-min", ("training.seed", -1), ".training.seed"),
    ("seed-max", ("training.seed", 2**31), ".training.seed"),
    ("precision-enum", ("training.precision", "int8"), ".training.precision"),
    ("sharding-enum", ("training.sharding", "zero3"), ".training.sharding"),
    (
        "cel-fsdp-without-quantization",
        (("training.sharding", "fsdp"), ("training.quantization", "4bit")),
        ".spec.training.sharding",
    ),
    ("quantization-enum", ("training.quantization", "2bit"), ".training.quantization"),
    (
        "cel-quantization-needs-lora",
        (("training.method", "full"), ("training.quantization", "4bit")),
        ".spec.training.quantization",
    ),
    ("lora-r-min", ("training.lora", {"r": 0}), ".lora.r"),
    ("lora-r-max", ("training.lora", {"r": 4097}), ".lora.r"),
    ("lora-alpha-min", ("training.lora", {"alpha": 0}), ".lora.alpha"),
    ("lora-alpha-max", ("training.lora", {"alpha": 8193}), ".lora.alpha"),
    ("lora-dropout-min", ("training.lora", {"dropout": -0.1}), ".lora.dropout"),
    ("lora-dropout-exclusive-max", ("training.lora", {"dropout": 1}), ".lora.dropout"),
    ("targetModules-empty", ("training.lora", {"targetModules": []}), ".lora.targetModules"),
    ("targetModules-too-many", ("training.lora", {"targetModules": ["m"] * 65}), ".lora.targetModules"),
    ("targetModules-item-empty", ("training.lora", {"targetModules": [""]}), ".lora.targetModules[0]"),
    ("targetModules-item-long", ("training.lora", {"targetModules": ["m" * 254]}), ".lora.targetModules[0]"),
    ("gpus-min", ("resources.gpus", -1), ".resources.gpus"),
    ("gpus-max", ("resources.gpus", 65), ".resources.gpus"),
    ("nodes-min", ("resources.nodes", 0), ".resources.nodes"),
    ("nodes-max", ("resources.nodes", 65), ".resources.nodes"),
    ("cel-nodes-need-ReadWriteMany", ("resources.nodes", 2), ".spec.storage.accessMode"),
    ("accessMode-enum", ("storage.accessMode", "ReadOnlyMany"), ".storage.accessMode"),
    ("gpuResourceName-pattern", ("resources.gpuResourceName", "nvidia.com/"), ".resources.gpuResourceName"),
    ("gpuResourceName-long", ("resources.gpuResourceName", "g" * 254), ".resources.gpuResourceName"),
    ("gpuResourceName-unqualified", ("resources.gpuResourceName", "gpu"), ".resources.gpuResourceName"),
    ("cpu-quantity", ("resources.cpu", "4 cores"), ".resources.cpu"),
    ("cpu-type", ("resources.cpu", True), ".resources.cpu"),
    ("cpu-long", ("resources.cpu", "1" * 65), ".resources.cpu"),
    ("memory-quantity", ("resources.memory", "64GB"), ".resources.memory"),
    ("cpu-zero", ("resources.cpu", "0"), ".resources.cpu"),
    ("cpu-zero-int", ("resources.cpu", 0), ".resources.cpu"),
    ("cpu-negative", ("resources.cpu", "-2"), ".resources.cpu"),
    ("memory-zero", ("resources.memory", "0.0Gi"), ".resources.memory"),
    ("memory-negative-int", ("resources.memory", -1), ".resources.memory"),
    ("nodeSelector-value-type", ("resources.nodeSelector", {"gpu": 1}), ".resources.nodeSelector.gpu"),
    ("nodeSelector-value-long", ("resources.nodeSelector", {"gpu": "a" * 64}), ".resources.nodeSelector.gpu"),
    ("nodeSelector-key-syntax", ("resources.nodeSelector", {"gpu type": "a100"}), ".spec.resources.nodeSelector"),
    ("nodeSelector-value-syntax", ("resources.nodeSelector", {"gpu": "a100!"}), ".resources.nodeSelector.gpu"),
    (
        "nodeSelector-too-many",
        ("resources.nodeSelector", {f"k{i}": "v" for i in range(65)}),
        ".resources.nodeSelector",
    ),
    ("tolerations-too-many", ("resources.tolerations", [{"key": "k"}] * 33), ".resources.tolerations"),
    ("toleration-operator", ("resources.tolerations", [{"operator": "In"}]), ".tolerations[0].operator"),
    ("toleration-effect", ("resources.tolerations", [{"effect": "NoRun"}]), ".tolerations[0].effect"),
    ("toleration-unknown", ("resources.tolerations", [{"keys": "k"}]), "keys"),
    ("toleration-key-long", ("resources.tolerations", [{"key": "k" * 318}]), ".tolerations[0].key"),
    ("toleration-value-long", ("resources.tolerations", [{"value": "v" * 64}]), ".tolerations[0].value"),
    ("toleration-key-syntax", ("resources.tolerations", [{"key": "gpu type"}]), ".tolerations[0].key"),
    ("cel-toleration-key-name-long", ("resources.tolerations", [{"key": "t" * 64}]), ".tolerations[0].key"),
    ("toleration-value-syntax", ("resources.tolerations", [{"key": "k", "value": "a b"}]), ".tolerations[0].value"),
    (
        "cel-toleration-exists-with-value",
        ("resources.tolerations", [{"key": "k", "operator": "Exists", "value": "v"}]),
        ".tolerations[0].value",
    ),
    (
        "cel-toleration-equal-without-key",
        ("resources.tolerations", [{"operator": "Equal", "value": "v"}]),
        ".tolerations[0].operator",
    ),
    (
        "cel-tolerationSeconds-without-NoExecute",
        ("resources.tolerations", [{"key": "k", "effect": "NoSchedule", "tolerationSeconds": 60}]),
        ".tolerations[0].tolerationSeconds",
    ),
    (
        "tolerationSeconds-min",
        ("resources.tolerations", [{"key": "k", "effect": "NoExecute", "tolerationSeconds": -1}]),
        ".tolerations[0].tolerationSeconds",
    ),
    (
        "tolerationSeconds-max",
        ("resources.tolerations", [{"key": "k", "effect": "NoExecute", "tolerationSeconds": 315_360_001}]),
        ".tolerations[0].tolerationSeconds",
    ),
    ("priorityClassName-dns", ("resources.priorityClassName", "High"), ".resources.priorityClassName"),
    ("maxEvalLoss-exclusive-min", ("evaluation.maxEvalLoss", 0), ".evaluation.maxEvalLoss"),
    ("minToolCallAccuracy-min", ("evaluation.minToolCallAccuracy", -0.1), ".evaluation.minToolCallAccuracy"),
    ("minToolCallAccuracy-max", ("evaluation.minToolCallAccuracy", 1.5), ".evaluation.minToolCallAccuracy"),
    ("evalsPerEpoch-min", ("evaluation.evalsPerEpoch", 0), ".evaluation.evalsPerEpoch"),
    ("evalsPerEpoch-max", ("evaluation.evalsPerEpoch", 101), ".evaluation.evalsPerEpoch"),
    ("earlyStopping-without-evals", ("evaluation", {"earlyStopping": {"patience": 2}}), ".spec.evaluation"),
    (
        "patience-min",
        ("evaluation", {"evalsPerEpoch": 2, "earlyStopping": {"patience": 0}}),
        ".evaluation.earlyStopping.patience",
    ),
    (
        "patience-max",
        ("evaluation", {"evalsPerEpoch": 2, "earlyStopping": {"patience": 101}}),
        ".evaluation.earlyStopping.patience",
    ),
    (
        "minDelta-min",
        ("evaluation", {"evalsPerEpoch": 2, "earlyStopping": {"minDelta": -0.1}}),
        ".evaluation.earlyStopping.minDelta",
    ),
    ("modelName-dns", ("output.modelName", "Chat"), ".output.modelName"),
    ("modelName-dots", ("output.modelName", "chat.v2"), ".output.modelName"),
    ("modelName-long", ("output.modelName", "c" * 64), ".output.modelName"),
    ("version-v-prefix", ("output.version", "v1.0.0"), ".output.version"),
    ("version-short", ("output.version", "1.0"), ".output.version"),
    ("version-leading-zero", ("output.version", "1.02.0"), ".output.version"),
    ("version-long", ("output.version", "1.0.0-" + "a" * 123), ".output.version"),
    ("bump-enum", ("output.bump", "build"), ".output.bump"),
    ("output-pvc-dns", ("output.pvc", "model_store"), ".output.pvc"),
    ("promoteTo-dns", ("output.promoteTo", "Champion"), ".output.promoteTo"),
    ("compareTo-alias-dns", ("evaluation.compareTo", {"alias": "Champion"}), ".evaluation.compareTo.alias"),
    ("compareTo-model-dns", ("evaluation.compareTo", {"model": "chat_v2"}), ".evaluation.compareTo.model"),
    ("compareTo-regression-min", ("evaluation.compareTo", {"maxRegression": -0.1}), ".compareTo.maxRegression"),
    ("compareTo-regression-max", ("evaluation.compareTo", {"maxRegression": 101}), ".compareTo.maxRegression"),
    (
        "cel-output-one-store",
        (("output.pvc", "store"), ("output.s3", {"uri": "s3://trained-models/agents"})),
        "at most one model store",
    ),
    ("output-s3-uri-missing", ("output.s3", {"region": "eu-west-1"}), "uri"),
    ("output-s3-uri-scheme", ("output.s3", {"uri": "gs://trained-models/agents"}), ".output.s3.uri"),
    ("output-s3-bucket-name", ("output.s3", {"uri": "s3://Trained_Models/x"}), ".output.s3.uri"),
    ("output-s3-uri-long", ("output.s3", {"uri": "s3://trained/" + "k" * 2048}), ".output.s3.uri"),
    *(
        (f"output-s3-{name}", ("output.s3", {"uri": "s3://trained/x", **fields}), path)
        for name, fields, path in (
            ("endpoint-scheme", {"endpoint": "minio:9000"}, ".output.s3.endpoint"),
            ("endpoint-long", {"endpoint": "http://" + "e" * 2048}, ".output.s3.endpoint"),
            ("region-pattern", {"region": "EU West"}, ".output.s3.region"),
            ("region-long", {"region": "r" * 65}, ".output.s3.region"),
            ("secret-name-missing", {"secretRef": {}}, "name"),
            ("secret-name-dns", {"secretRef": {"name": "W"}}, ".output.s3.secretRef.name"),
            ("secret-name-long", {"secretRef": {"name": "s" * 254}}, ".output.s3.secretRef.name"),
            *(
                (f"secret-{key}-{what}", {"secretRef": {"name": "s", key: value}}, f".output.s3.secretRef.{key}")
                for key in ("accessKeyIdKey", "secretAccessKeyKey", "sessionTokenKey")
                for what, value in (("chars", "a/b"), ("long", "k" * 254))
            ),
        )
    ),
    ("storage-size-quantity", ("storage.size", "10 GB"), ".storage.size"),
    ("storage-size-zero", ("storage.size", "0Gi"), ".storage.size"),
    ("storage-size-negative", ("storage.size", "-10Gi"), ".storage.size"),
    ("storageClassName-syntax", ("storage.storageClassName", "Fast_SSD"), ".storage.storageClassName"),
    ("retainPolicy-enum", ("storage.retainPolicy", "Keep"), ".storage.retainPolicy"),
    ("storageClassName-long", ("storage.storageClassName", "s" * 254), ".storage.storageClassName"),
    ("backoffLimit-min", ("runPolicy.backoffLimit", -1), ".runPolicy.backoffLimit"),
    ("backoffLimit-max", ("runPolicy.backoffLimit", 21), ".runPolicy.backoffLimit"),
    ("activeDeadline-min", ("runPolicy.activeDeadlineSeconds", 0), ".runPolicy.activeDeadlineSeconds"),
    ("ttl-min", ("runPolicy.ttlSecondsAfterFinished", -1), ".runPolicy.ttlSecondsAfterFinished"),
    ("ttl-max", ("runPolicy.ttlSecondsAfterFinished", 10**12), ".runPolicy.ttlSecondsAfterFinished"),
    ("activeDeadline-max", ("runPolicy.activeDeadlineSeconds", 315_360_001), ".runPolicy.activeDeadlineSeconds"),
    (
        "cel-delete-with-ttl-needs-store",
        (("storage.retainPolicy", "Delete"), ("runPolicy.ttlSecondsAfterFinished", 60)),
        ".spec.storage.retainPolicy",
    ),
    ("queueName-dns", ("queueName", "GPU"), ".spec.queueName"),
    ("cancel-type", ("cancel", "maybe"), ".spec.cancel"),
    ("trainerImage-empty", ("trainerImage", ""), ".spec.trainerImage"),
    ("trainerImage-whitespace", ("trainerImage", "registry.example/trainer: 1.2"), ".spec.trainerImage"),
    ("podLabels-too-many", ("podMetadata.labels", {f"k{i}": "v" for i in range(65)}), ".podMetadata.labels"),
    ("podLabel-value-long", ("podMetadata.labels", {"team": "t" * 64}), ".podMetadata.labels.team"),
    ("podAnnotations-too-many", ("podMetadata.annotations", {f"k{i}": "" for i in range(65)}), ".annotations"),
    ("podAnnotation-long", ("podMetadata.annotations", {"note": "n" * 3585}), ".podMetadata.annotations.note"),
    ("podLabel-key-syntax", ("podMetadata.labels", {"team/": "x"}), ".spec.podMetadata.labels"),
    ("podLabel-key-name-long", ("podMetadata.labels", {"t" * 64: "x"}), ".spec.podMetadata.labels"),
    ("podLabel-key-prefix-long", ("podMetadata.labels", {"p" * 254 + "/team": "x"}), ".spec.podMetadata.labels"),
    ("podLabel-value-syntax", ("podMetadata.labels", {"team": "ml team"}), ".podMetadata.labels.team"),
    ("podLabel-reserved-ours", ("podMetadata.labels", {"finetune.dev/job": "x"}), ".spec.podMetadata.labels"),
    ("podLabel-reserved-batch", ("podMetadata.labels", {"batch.kubernetes.io/job-name": "x"}), ".podMetadata.labels"),
    ("podLabel-reserved-controller-uid", ("podMetadata.labels", {"controller-uid": "x"}), ".podMetadata.labels"),
    ("cel-podAnnotation-bytes", ("podMetadata.annotations", {"note": "中" * 1200}), ".spec.podMetadata.annotations"),
    ("podAnnotation-key-syntax", ("podMetadata.annotations", {"-note": ""}), ".spec.podMetadata.annotations"),
    ("podAnnotation-reserved", ("podMetadata.annotations", {"finetune.dev/x": ""}), ".spec.podMetadata.annotations"),
    ("podMetadata-unknown", ("podMetadata.finalizers", ["x"]), "finalizers"),
    ("cel-pvc-and-s3", ("dataset.source.s3", {"uri": "s3://logs/s/"}), ".spec.dataset.source"),
    ("s3-uri-missing", ("dataset.source", {"s3": {}}), "uri"),
    ("s3-uri-scheme", ("dataset.source", {"s3": {"uri": "https://logs/s/"}}), ".s3.uri"),
    ("s3-uri-bucket", ("dataset.source", {"s3": {"uri": "s3://Logs_Bucket/s"}}), ".s3.uri"),
    ("s3-uri-long", ("dataset.source", {"s3": {"uri": "s3://logs/" + "k" * 2048}}), ".s3.uri"),
    ("s3-endpoint-scheme", ("dataset.source", {"s3": {**_S3, "endpoint": "minio:9000"}}), ".s3.endpoint"),
    ("s3-endpoint-long", ("dataset.source", {"s3": {**_S3, "endpoint": "http://" + "e" * 2048}}), ".s3.endpoint"),
    ("s3-region-pattern", ("dataset.source", {"s3": {**_S3, "region": "EU West"}}), ".s3.region"),
    ("s3-region-long", ("dataset.source", {"s3": {**_S3, "region": "r" * 65}}), ".s3.region"),
    ("s3-secret-name-missing", ("dataset.source", {"s3": {**_S3, "secretRef": {}}}), "name"),
    ("s3-secret-name-dns", ("dataset.source", {"s3": {**_S3, "secretRef": {"name": "S3"}}}), ".secretRef.name"),
    (
        "s3-secret-name-long",
        ("dataset.source", {"s3": {**_S3, "secretRef": {"name": "s" * 254}}}),
        ".secretRef.name",
    ),
    *(
        (
            f"s3-secret-{key}-{what}",
            ("dataset.source", {"s3": {**_S3, "secretRef": {"name": "s", key: value}}}),
            f".secretRef.{key}",
        )
        for key in ("accessKeyIdKey", "secretAccessKeyKey", "sessionTokenKey")
        for what, value in (("chars", "a/b"), ("long", "k" * 254))
    ),
    ("env-operator-name", ("env", [{"name": "FINETUNE_CONFIG", "value": "/x"}]), ".spec.env[0].name"),
    ("env-operator-rank", ("env", [{"name": "WORLD_SIZE", "value": "8"}]), ".spec.env[0].name"),
    ("env-operator-kubernetes", ("env", [{"name": "KUBERNETES_SERVICE_HOST", "value": "x"}]), ".env[0].name"),
    ("env-name-missing", ("env", [{"value": "x"}]), "name"),
    ("env-name-pattern", ("env", [{"name": "1X", "value": "x"}]), ".spec.env[0].name"),
    ("env-name-long", ("env", [{"name": "N" * 254, "value": "x"}]), ".spec.env[0].name"),
    ("env-value-long", ("env", [{"name": "N", "value": "v" * 32769}]), ".spec.env[0].value"),
    ("env-too-many", ("env", [{"name": f"N{i}", "value": ""} for i in range(65)]), ".spec.env"),
    (
        "cel-env-value-and-valueFrom",
        ("env", [{"name": "N", "value": "v", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}]),
        ".spec.env[0]",
    ),
    ("cel-env-valueFrom-empty", ("env", [{"name": "N", "valueFrom": {}}]), ".env[0].valueFrom"),
    (
        "env-keyref-name-dns",
        ("env", [{"name": "N", "valueFrom": {"secretKeyRef": {"name": "S", "key": "k"}}}]),
        ".secretKeyRef.name",
    ),
    (
        "env-keyref-name-long",
        ("env", [{"name": "N", "valueFrom": {"configMapKeyRef": {"name": "s" * 254, "key": "k"}}}]),
        ".configMapKeyRef.name",
    ),
    (
        "env-keyref-key-chars",
        ("env", [{"name": "N", "valueFrom": {"secretKeyRef": {"name": "s", "key": "a/b"}}}]),
        ".secretKeyRef.key",
    ),
    (
        "env-keyref-key-long",
        ("env", [{"name": "N", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k" * 254}}}]),
        ".secretKeyRef.key",
    ),
    ("env-keyref-key-missing", ("env", [{"name": "N", "valueFrom": {"secretKeyRef": {"name": "s"}}}]), "key"),
    (
        "env-configMapKeyRef-key-chars",
        ("env", [{"name": "N", "valueFrom": {"configMapKeyRef": {"name": "c", "key": "a b"}}}]),
        ".configMapKeyRef.key",
    ),
    ("cel-envFrom-empty", ("envFrom", [{"prefix": "P_"}]), ".spec.envFrom[0]"),
    ("envFrom-prefix-pattern", ("envFrom", [{"prefix": "1", "secretRef": {"name": "s"}}]), ".envFrom[0].prefix"),
    ("envFrom-prefix-long", ("envFrom", [{"prefix": "P" * 254, "secretRef": {"name": "s"}}]), ".envFrom[0].prefix"),
    ("envFrom-ref-name-dns", ("envFrom", [{"secretRef": {"name": "S"}}]), ".secretRef.name"),
    ("envFrom-ref-name-long", ("envFrom", [{"configMapRef": {"name": "c" * 254}}]), ".configMapRef.name"),
    ("envFrom-ref-name-missing", ("envFrom", [{"secretRef": {}}]), "name"),
    ("envFrom-too-many", ("envFrom", [{"secretRef": {"name": "s"}}] * 17), ".spec.envFrom"),
    ("mlflow-uri-missing", ("tracking", {"mlflow": {"experiment": "e"}}), "trackingUri"),
    ("mlflow-uri-scheme", ("tracking", {"mlflow": {"trackingUri": "mlflow:5000", "experiment": "e"}}), ".trackingUri"),
    (
        "mlflow-uri-long",
        ("tracking", {"mlflow": {"trackingUri": "http://" + "m" * 2048, "experiment": "e"}}),
        ".mlflow.trackingUri",
    ),
    ("mlflow-experiment-missing", ("tracking", {"mlflow": {"trackingUri": "http://m"}}), "experiment"),
    ("mlflow-experiment-empty", ("tracking", {"mlflow": {"trackingUri": "http://m", "experiment": ""}}), ".experiment"),
    (
        "mlflow-experiment-long",
        ("tracking", {"mlflow": {"trackingUri": "http://m", "experiment": "e" * 501}}),
        ".mlflow.experiment",
    ),
    (
        "mlflow-runName-empty",
        ("tracking", {"mlflow": {"trackingUri": "http://m", "experiment": "e", "runName": ""}}),
        ".mlflow.runName",
    ),
    (
        "mlflow-runName-long",
        ("tracking", {"mlflow": {"trackingUri": "http://m", "experiment": "e", "runName": "r" * 251}}),
        ".mlflow.runName",
    ),
    ("tracking-unknown", ("tracking", {"neptune": {"project": "p"}}), "neptune"),
    ("wandb-project-missing", ("tracking", {"wandb": {"entity": "e"}}), "project"),
    ("wandb-project-empty", ("tracking", {"wandb": {"project": ""}}), ".wandb.project"),
    ("wandb-project-chars", ("tracking", {"wandb": {"project": "a/b"}}), ".wandb.project"),
    ("wandb-project-long", ("tracking", {"wandb": {"project": "p" * 129}}), ".wandb.project"),
    ("wandb-entity-chars", ("tracking", {"wandb": {"project": "p", "entity": "my team"}}), ".wandb.entity"),
    ("wandb-entity-long", ("tracking", {"wandb": {"project": "p", "entity": "e" * 129}}), ".wandb.entity"),
    ("wandb-mode-unknown", ("tracking", {"wandb": {"project": "p", "mode": "disabled"}}), ".wandb.mode"),
    ("wandb-runName-empty", ("tracking", {"wandb": {"project": "p", "runName": ""}}), ".wandb.runName"),
    ("wandb-runName-long", ("tracking", {"wandb": {"project": "p", "runName": "r" * 129}}), ".wandb.runName"),
    ("wandb-host-scheme", ("tracking", {"wandb": {"project": "p", "host": "wandb.example.com"}}), ".wandb.host"),
    ("wandb-host-long", ("tracking", {"wandb": {"project": "p", "host": "https://" + "w" * 2048}}), ".wandb.host"),
]


@pytest.mark.parametrize(("change", "field"), [case[1:] for case in INVALID], ids=[case[0] for case in INVALID])
def test_invalid_specs_are_rejected_by_the_crd(change: tuple[str, Any], field: str) -> None:
    errors = admission_errors(_schema("FineTuningJob"), {"spec": with_changes(MINIMAL, change)})
    assert errors, "accepted"
    assert any(field in error for error in errors), errors


@pytest.mark.parametrize(("change", "field"), [case[1:] for case in INVALID], ids=[case[0] for case in INVALID])
def test_invalid_specs_are_rejected_by_the_models(change: tuple[str, Any], field: str) -> None:
    with pytest.raises(pydantic.ValidationError):
        FineTuningJobSpec.model_validate(with_changes(MINIMAL, change))


def test_pod_annotations_within_their_bounds_fit_the_api_servers_total_limit() -> None:
    """No spec the bounds admit is refused on its pods for the annotations' total size (key plus value bytes;
    the operator adds no pod annotations of its own)."""
    longest_key = 253 + 1 + 63
    assert placement.MAX_ANNOTATIONS * (longest_key + placement.MAX_ANNOTATION_VALUE) < placement.POD_ANNOTATIONS_LIMIT


# ----------------------------------------------------------------------------------------- transitions

# (id, stored spec, change applied on update, field path the error must name or None when allowed)
UPDATES: list[tuple[str, dict[str, Any], tuple[str, Any], str | None]] = [
    ("baseModel-name", RUNNING, ("baseModel.name", "other"), ".spec.baseModel"),
    ("baseModel-source", RUNNING, ("baseModel", {"name": "tiny", "path": "/m"}), ".spec.baseModel"),
    ("dataset-source", RUNNING, _PVC_SOURCE, ".spec.dataset"),
    ("dataset-curation", RUNNING, ("dataset.curation.minSuccessRate", 0.5), ".spec.dataset"),
    ("training-epochs", RUNNING, ("training.epochs", 4), ".spec.training"),
    ("training-lora", RUNNING, ("training.lora.r", 16), ".spec.training"),
    (
        "training-removed-default-differs",
        with_changes(RUNNING, ("training.epochs", 5)),
        ("training", DELETE),
        ".spec.training",
    ),
    ("resources-gpus", RUNNING, ("resources.gpus", 2), ".spec.resources"),
    ("resources-nodeSelector", RUNNING, ("resources.nodeSelector", {"gpu": "h100"}), ".spec.resources"),
    ("output-version", RUNNING, ("output.version", "9.0.0"), ".spec.output"),
    ("output-modelName", RUNNING, ("output.modelName", "other"), ".spec.output"),
    ("cancel-true-to-false", with_changes(RUNNING, ("cancel", True)), ("cancel", False), ".spec.cancel"),
    ("cancel-true-to-unset", with_changes(RUNNING, ("cancel", True)), ("cancel", DELETE), ".spec.cancel"),
    ("cancel-false-to-true", RUNNING, ("cancel", True), None),
    ("cancel-stays-true", with_changes(RUNNING, ("cancel", True)), ("queueName", "q"), None),
    ("same-spec-reapplied", RUNNING, ("training.epochs", 3), None),
    ("explicit-default-reapplied", RUNNING, ("resources.gpuResourceName", "nvidia.com/gpu"), None),
    ("evaluation-changes", RUNNING, ("evaluation.maxEvalLoss", 2.5), ".spec.evaluation"),
    ("runPolicy-changes", RUNNING, ("runPolicy.backoffLimit", 5), None),
    ("storage-size", RUNNING, ("storage.size", "20Gi"), ".spec.storage"),
    ("storage-retainPolicy", RUNNING, ("storage.retainPolicy", "Delete"), ".spec.storage"),
    ("queueName-changes", RUNNING, ("queueName", "other"), None),
    ("trainerImage-changes", RUNNING, ("trainerImage", "trainer:2"), None),
]


@pytest.mark.parametrize(
    ("stored", "change", "field"), [case[1:] for case in UPDATES], ids=[case[0] for case in UPDATES]
)
def test_updates(stored: dict[str, Any], change: tuple[str, Any], field: str | None) -> None:
    errors = admission_errors(_schema("FineTuningJob"), {"spec": with_changes(stored, change)}, {"spec": stored})
    if field is None:
        assert errors == []
    else:
        assert any(error.startswith(f"{field}: ") for error in errors), errors


def test_transition_rules_are_skipped_on_create() -> None:
    schema = _schema("FineTuningJob")
    assert cel_errors(schema, apply_defaults(schema, {"spec": MINIMAL})) == []


# --------------------------------------------------------------------------------------- ModelVersion

MODEL_VERSION: dict[str, Any] = {
    "modelName": "chat",
    "version": "1.0.0",
    "baseModel": "tiny",
    "artifact": {"pvc": "store", "path": "chat/1.0.0"},
    "job": {"name": "demo", "uid": "0000-1111"},
    "hyperparameters": {"epochs": 3, "lora": {"r": 8}},
}

MV_INVALID: list[tuple[str, tuple[str, Any], str]] = [
    ("missing-version", ("version", DELETE), "version"),
    ("missing-job", ("job", DELETE), "job"),
    ("cel-artifact-nowhere", ("artifact", {"path": "p", "adapter": True}), "artifact needs pvc and path"),
    ("version-semver", ("version", "1.0"), ".spec.version"),
    ("modelName-dns", ("modelName", "Chat"), ".spec.modelName"),
    ("sha256-pattern", ("dataset", {"sha256": "abc"}), ".spec.dataset.sha256"),
    ("samples-min", ("dataset", {"samples": -1}), ".spec.dataset.samples"),
    ("unknown-field", ("owner", "me"), "owner"),
]


def test_valid_model_version() -> None:
    schema = _schema("ModelVersion")
    assert admission_errors(schema, {"spec": MODEL_VERSION}) == []
    stored = apply_defaults(schema, {"spec": MODEL_VERSION})["spec"]
    assert stored["hyperparameters"] == {"epochs": 3, "lora": {"r": 8}}  # preserved, not pruned
    assert stored == ModelVersionSpec.model_validate(MODEL_VERSION).to_wire()


@pytest.mark.parametrize(("change", "field"), [case[1:] for case in MV_INVALID], ids=[case[0] for case in MV_INVALID])
def test_invalid_model_versions(change: tuple[str, Any], field: str) -> None:
    errors = admission_errors(_schema("ModelVersion"), {"spec": with_changes(MODEL_VERSION, change)})
    assert any(field in error for error in errors), errors
    with pytest.raises(pydantic.ValidationError):
        ModelVersionSpec.model_validate(with_changes(MODEL_VERSION, change))


@pytest.mark.parametrize(("change", "allowed"), [(("metrics", {"evalLoss": 1.0}), False), (("version", "1.0.0"), True)])
def test_model_version_is_immutable(change: tuple[str, Any], allowed: bool) -> None:
    old = {"spec": MODEL_VERSION}
    errors = admission_errors(_schema("ModelVersion"), {"spec": with_changes(MODEL_VERSION, change)}, old)
    assert (errors == []) == allowed, errors
    if not allowed:
        assert errors[0].startswith(".spec: a ModelVersion is immutable")


# ------------------------------------------------------------------------------------------- coverage

_CHECKS = ("minimum", "maximum", "minLength", "maxLength", "minItems", "maxItems", "maxProperties", "enum", "pattern")


def _error_paths(spec: dict[str, Any]) -> set[str]:
    paths = set()
    for error in admission_errors(_schema("FineTuningJob"), {"spec": spec}):
        path, message = error.split(": ", 1)
        if message.endswith("is a required property"):
            path += "." + message.split("'")[1]
        paths.add(path)
    return paths


def test_every_bound_required_field_and_rule_has_an_invalid_case() -> None:
    """A new bound, enum, pattern, required field or CEL rule in the models needs one more line in INVALID
    (or, for a transition rule, in UPDATES)."""
    schema = _schema("FineTuningJob")
    covered = set().union(*(_error_paths(with_changes(MINIMAL, change)) for _, change, _ in INVALID))
    messages = "\n".join(
        [
            error
            for _, change, _ in INVALID
            for error in admission_errors(schema, {"spec": with_changes(MINIMAL, change)})
        ]
        + [
            error
            for _, stored, change, _ in UPDATES
            for error in admission_errors(schema, {"spec": with_changes(stored, change)}, {"spec": stored})
        ]
    )
    spec = schema["properties"]["spec"]
    missing = []
    for path, node, required in walk(spec, ".spec"):
        pattern = re.escape(path).replace(r"\[\*\]", r"\[\d+\]").replace(r"\.\*", r"\.[^.]+")
        if (required or _CHECKS & node.keys()) and not any(re.fullmatch(pattern, p) for p in covered):
            missing.append(path)
        missing += [
            rule["message"] for rule in node.get("x-kubernetes-validations", []) if rule["message"] not in messages
        ]
    assert missing == []


def test_check_mode_reports_a_contract_table_out_of_date(tmp_path: Path) -> None:
    seed_hand_written_docs(tmp_path)
    doc = (REPO / crdgen.CONTRACT_DOC).read_text()
    (tmp_path / crdgen.CONTRACT_DOC).write_text(doc.replace("| `StorageFull` | 13 |", "| `StorageFull` | 20 |"))
    assert crdgen.main(["--root", str(tmp_path), "--check"]) == 1
    assert crdgen.main(["--root", str(tmp_path)]) == 0
    assert (tmp_path / crdgen.CONTRACT_DOC).read_text() == doc
