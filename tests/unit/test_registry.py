"""The model registry (finetune_operator.registry): version choice, explicit-version conflicts, finding a job's
own registration again, and the ModelVersion object.

Expected versions and objects are literal values, never computed with the module under test.
"""

from __future__ import annotations

import math
from typing import Any

import pytest

from finetune_operator import registry
from finetune_operator.api import FineTuningJobSpec, ModelVersion
from finetune_operator.api.termination import TerminationMessage
from finetune_operator.backends import BatchJobBackend

Obj = dict[str, Any]

JOB_UID = "6f1c2a9e-1d3b-4c7a-9e0f-2b5d8c4a7e11"
OTHER_UID = "0d7e1b52-8a8c-4f0e-b0a4-7f3b0b9b2c33"
SHA = "3f" * 32


def spec(**output: Any) -> FineTuningJobSpec:
    return FineTuningJobSpec.model_validate(
        {
            "baseModel": {"name": "Llama 3.1 8B (instruct)", "path": "llama-3.1-8b", "pvc": "models"},
            "dataset": {"source": {"pvc": {"claimName": "logs", "path": "sessions/*.jsonl"}}},
            "training": {"method": "lora", "epochs": 2, "learningRate": 0.0002},
            "output": {"modelName": "support-bot", **output},
        }
    )


def mv(version: str, model: str = "support-bot", uid: str = OTHER_UID, name: str | None = None) -> Obj:
    return {
        "apiVersion": "finetune.dev/v1alpha1",
        "kind": "ModelVersion",
        "metadata": {"name": name or f"{model}-v{version}", "namespace": "ml"},
        "spec": {"modelName": model, "version": version, "job": {"name": "earlier", "uid": uid}},
    }


# --------------------------------------------------------------------------------------- choose_version


def test_explicit_version_is_taken_as_is() -> None:
    existing = [mv("1.0.0"), mv("2.0.0")]
    assert registry.choose_version(spec(version="1.5.0-rc.1"), existing) == "1.5.0-rc.1"
    assert registry.choose_version(spec(version="1.0.0", bump="major"), existing) == "1.0.0"


@pytest.mark.parametrize(("bump", "expected"), [("patch", "0.0.1"), ("minor", "0.1.0"), ("major", "1.0.0")])
def test_first_version(bump: str, expected: str) -> None:
    assert registry.choose_version(spec(bump=bump), []) == expected


@pytest.mark.parametrize(("bump", "expected"), [("patch", "1.10.1"), ("minor", "1.11.0"), ("major", "2.0.0")])
def test_next_version_after_the_highest_by_precedence(bump: str, expected: str) -> None:
    # 1.10.0 > 1.9.3 > 1.2.0 numerically, not as strings; build metadata does not matter.
    existing = [mv("1.2.0"), mv("1.10.0+build.5"), mv("1.9.3")]
    assert registry.choose_version(spec(bump=bump), existing) == expected


def test_patch_is_the_default_bump() -> None:
    assert registry.choose_version(spec(), [mv("0.3.7")]) == "0.3.8"


@pytest.mark.parametrize(
    ("existing", "bump", "expected"),
    [
        (["1.0.0", "1.1.0-rc.1"], "patch", "1.1.0"),  # the release of the highest pre-release
        (["1.0.0", "1.1.0-rc.1"], "minor", "1.1.0"),
        (["1.0.0", "1.1.0-rc.1"], "major", "2.0.0"),
        (["1.1.0-rc.1", "1.1.0"], "patch", "1.1.1"),  # the release is above its pre-releases
        (["2.0.0-alpha", "2.0.0-alpha.1", "2.0.0-beta"], "major", "2.0.0"),
        (["1.2.3-rc.1"], "minor", "1.3.0"),
    ],
)
def test_next_version_with_pre_releases(existing: list[str], bump: str, expected: str) -> None:
    assert registry.choose_version(spec(bump=bump), [mv(v) for v in existing]) == expected


def test_versions_of_other_models_are_ignored() -> None:
    existing = [mv("7.0.0", model="other-bot"), mv("0.2.0"), {"spec": {}}, {}]
    assert registry.choose_version(spec(bump="minor"), existing) == "0.3.0"
    assert registry.existing_versions(existing, "support-bot") == [existing[1]]


# ----------------------------------------------------------------------------- explicit_version_conflict


def test_no_conflict_without_an_explicit_version() -> None:
    assert registry.explicit_version_conflict(spec(), [mv("0.0.1")], JOB_UID) is None


def test_no_conflict_for_a_free_version() -> None:
    existing = [mv("1.0.0"), mv("1.2.0", model="other-bot")]
    assert registry.explicit_version_conflict(spec(version="1.2.0"), existing, JOB_UID) is None


def test_conflict_with_another_jobs_version() -> None:
    message = registry.explicit_version_conflict(spec(version="1.0.0"), [mv("1.0.0")], JOB_UID)
    assert message == (
        "version 1.0.0 of model support-bot is already registered (ModelVersion support-bot-v1.0.0); "
        "set output.version to a new version or leave it blank to take the next one"
    )


def test_same_job_uid_is_not_a_conflict() -> None:
    # The job's own registration, found again after an operator restart.
    assert registry.explicit_version_conflict(spec(version="1.0.0"), [mv("1.0.0", uid=JOB_UID)], JOB_UID) is None


def test_versions_of_equal_precedence_conflict() -> None:
    # Build metadata does not change precedence: 1.0.0+b is the same release as 1.0.0+a.
    existing = [mv("1.0.0+a", name="support-bot-v1.0.0")]
    message = registry.explicit_version_conflict(spec(version="1.0.0+b"), existing, JOB_UID)
    assert message is not None
    assert "support-bot-v1.0.0" in message


def test_a_pre_release_does_not_conflict_with_its_release() -> None:
    assert registry.explicit_version_conflict(spec(version="1.0.0-rc.1"), [mv("1.0.0")], JOB_UID) is None


# ------------------------------------------------------------------------------------------ registered_by


def test_registered_by_finds_the_jobs_own_version() -> None:
    mine = mv("0.0.2", uid=JOB_UID)
    assert registry.registered_by([mv("0.0.1"), mine, {"spec": {}}, {}], JOB_UID) is mine
    assert registry.registered_by([mv("0.0.1")], JOB_UID) is None
    assert registry.registered_by([], JOB_UID) is None


# ------------------------------------------------------------------------------------------ model_version

TRAINING_RESULT: Obj = {
    "outcome": "Succeeded",
    "metrics": {
        "trainLoss": 1.9,
        "evalLoss": 2,
        "perplexity": 7.389,
        "tokensPerSecond": 5400.0,  # throughput: not a model metric
        "evalExactMatch": 0.1,
        "evalTokenF1": 0.4,
    },
    "progress": {"step": 120, "totalSteps": 120, "epoch": 2.0},
    "model": {"path": "model", "format": "safetensors", "adapter": True, "merged": False},
}
DATASET: Obj = {
    "sourceRecords": 1200,
    "samples": 950,
    "trainSamples": 902,
    "evalSamples": 48,
    "sha256": SHA,
    "rejected": {"malformed": 20},
}


def build(version: str = "1.3.0", **overrides: Any) -> Obj:
    result = TerminationMessage.model_validate(overrides.pop("training_result", TRAINING_RESULT))
    arguments: Obj = {
        "job_name": "demo",
        "namespace": "ml",
        "job_uid": JOB_UID,
        "spec": spec(),
        "version": version,
        "artifact": BatchJobBackend().artifact("demo", result),
        "dataset": DATASET,
        "training_result": result,
        "created_at": "2026-11-23T17:00:00Z",
        "trainer_image": "ghcr.io/finetune-operator/trainer:0.1.0",
    }
    arguments.update(overrides)
    return registry.model_version(**arguments)


def test_model_version_object() -> None:
    assert build() == {
        "apiVersion": "finetune.dev/v1alpha1",
        "kind": "ModelVersion",
        "metadata": {
            "name": "support-bot-v1.3.0",
            "namespace": "ml",
            "labels": {
                "finetune.dev/model": "support-bot",
                "finetune.dev/base-model": "Llama-3.1-8B--instruct",
                "finetune.dev/job": "demo",
                "finetune.dev/job-uid": JOB_UID,
                "app.kubernetes.io/managed-by": "finetune-operator",
            },
        },
        "spec": {
            "modelName": "support-bot",
            "version": "1.3.0",
            "baseModel": "Llama 3.1 8B (instruct)",
            "baseModelLocation": "pvc://models/llama-3.1-8b",
            "trainerImage": "ghcr.io/finetune-operator/trainer:0.1.0",
            "trainerImageDefault": True,
            "method": "lora",
            "artifact": {
                "pvc": "demo-workspace",
                "path": "model",
                "uri": "pvc://demo-workspace/model",
                "adapter": True,
            },
            "metrics": {
                "trainLoss": 1.9,
                "evalLoss": 2.0,
                "perplexity": 7.389,
                "evalExactMatch": 0.1,
                "evalTokenF1": 0.4,
            },
            "dataset": {
                "sha256": SHA,
                "samples": 950,
                "trainSamples": 902,
                "evalSamples": 48,
                "source": "pvc://logs/sessions/*.jsonl",
            },
            "hyperparameters": spec().training.to_wire(),
            "job": {"name": "demo", "uid": JOB_UID},
            "createdAt": "2026-11-23T17:00:00Z",
        },
    }


BASE_DIGEST = "sha256:" + "ab" * 32


def test_model_version_records_what_the_trainer_resolved_and_the_base_model_identity() -> None:
    # The trainer's resolved configuration replaces the spec's (which lacks every default it did not set).
    resolved = {"method": "lora", "epochs": 2, "batchSize": 4, "loraR": 16, "configHash": "c" * 64}
    result = {**TRAINING_RESULT, "hyperparameters": resolved, "baseModelDigest": BASE_DIGEST}
    wire = spec().to_wire()
    wire["trainerImage"] = "registry.example/team/trainer:custom"
    obj = build(
        training_result=result,
        spec=FineTuningJobSpec.model_validate(wire),
        trainer_image="registry.example/team/trainer:custom",
    )
    assert obj["spec"]["hyperparameters"] == resolved
    assert obj["spec"]["baseModelDigest"] == BASE_DIGEST
    assert (obj["spec"]["trainerImage"], obj["spec"]["trainerImageDefault"]) == (
        "registry.example/team/trainer:custom",
        False,
    )
    ModelVersion.model_validate(obj)


@pytest.mark.parametrize(
    ("base", "location"),
    [
        ({"name": "tiny", "builtin": "tiny-gpt"}, "builtin://tiny-gpt"),
        ({"name": "in-image", "path": "/models/llama"}, "file:///models/llama"),
        ({"name": "on-claim", "pvc": "models", "path": "/llama"}, "pvc://models/llama"),
        ({"name": "in-a-bucket", "s3": {"uri": "s3://models/llama-3-8b/"}}, "s3://models/llama-3-8b/"),
    ],
)
def test_base_model_location(base: Obj, location: str) -> None:
    wire = spec().to_wire()
    wire["baseModel"] = base
    assert registry.base_model_location(FineTuningJobSpec.model_validate(wire)) == location


def test_model_version_is_valid_and_not_owned_by_the_job() -> None:
    obj = build()
    assert "ownerReferences" not in obj["metadata"]  # the registry outlives the job
    parsed = ModelVersion.model_validate(obj)
    assert parsed.spec.version == "1.3.0"
    assert parsed.spec.dataset.sha256 == SHA


@pytest.mark.parametrize(
    ("version", "name"),
    [
        ("0.0.1", "support-bot-v0.0.1"),
        ("1.0.0+build.7", "support-bot-v1.0.0"),
        ("2.0.0-RC.1", "support-bot-v2.0.0-rc.1"),
    ],
)
def test_model_version_name_is_deterministic(version: str, name: str) -> None:
    assert build(version)["metadata"]["name"] == name
    assert build(version) == build(version)
    assert build(version)["spec"]["version"] == version


def test_model_version_labels_are_valid_for_a_long_job_name() -> None:
    obj = build(job_name="j" * 253)
    for value in obj["metadata"]["labels"].values():
        assert len(value) <= 63
    assert obj["spec"]["job"]["name"] == "j" * 253  # the lineage keeps the full name


def test_model_version_of_a_configmap_source_and_a_full_fine_tune() -> None:
    wire = spec().to_wire()
    wire["dataset"]["source"] = {"configMap": {"name": "sessions", "key": "sessions.jsonl"}}
    wire["training"]["method"] = "full"
    full = FineTuningJobSpec.model_validate(wire)
    result = {**TRAINING_RESULT, "model": {"path": "model/merged", "adapter": False}}
    obj = build(spec=full, training_result=result)
    assert obj["spec"]["method"] == "full"
    assert obj["spec"]["dataset"]["source"] == "configmap://sessions/sessions.jsonl"
    assert obj["spec"]["artifact"] == {
        "pvc": "demo-workspace",
        "path": "model/merged",
        "uri": "pvc://demo-workspace/model/merged",
        "adapter": False,
    }


def test_model_version_with_a_sparse_result() -> None:
    obj = build(training_result={"outcome": "Succeeded"}, dataset={})
    assert obj["spec"]["artifact"] == {
        "pvc": "demo-workspace",
        "path": "model",
        "uri": "pvc://demo-workspace/model",
        "adapter": False,
    }
    assert obj["spec"]["metrics"] == {}
    assert obj["spec"]["dataset"] == {"source": "pvc://logs/sessions/*.jsonl"}
    ModelVersion.model_validate(obj)


def test_model_version_drops_non_finite_metrics() -> None:
    # NaN from a diverged run is not JSON: the API server would refuse the object on every retry.
    result = {**TRAINING_RESULT, "metrics": {"trainLoss": math.nan, "evalLoss": math.inf, "evalTokenF1": 0.3}}
    assert build(training_result=result)["spec"]["metrics"] == {"evalTokenF1": 0.3}


def test_model_version_records_the_specs_training_settings() -> None:
    assert build()["spec"]["hyperparameters"] == spec().training.to_wire()


def test_model_version_refuses_a_model_name_that_is_not_an_object_name() -> None:
    # The CRD schema refuses such a name; the builder still never produces an invalid object name.
    good = spec()
    bad = good.model_copy(update={"output": good.output.model_copy(update={"model_name": "Not_A_Name"})})
    with pytest.raises(ValueError, match="DNS-1123"):
        build(spec=bad)


def test_the_model_version_links_the_run() -> None:
    run = {"runId": "5f0c0b2e", "experimentId": "3", "url": "https://mlflow.example/#/experiments/3/runs/5f0c0b2e"}
    result = {**TRAINING_RESULT, "tracking": {"mlflow": run}}
    obj = build(training_result=result)
    assert obj["spec"]["tracking"] == {"mlflow": run}
    ModelVersion.model_validate(obj)
    assert "tracking" not in build()["spec"]
