"""The child builders' environment: S3 credentials by reference only in the pod that reads the bucket, the
user's spec.env/envFrom in both containers, and no credential value anywhere in what the operator writes.

Expected entries are written out by hand from docs/object-storage.md and the API's field docs.
"""

from __future__ import annotations

import json
from typing import Any

from finetune_operator import children
from finetune_operator.api import FineTuningJobSpec, JobConfig
from finetune_operator.backends import batchjob
from finetune_operator.config import Settings

SETTINGS = Settings(trainer_image="registry.local/trainer:9.9", python_command="python3")
S3_SOURCE = {
    "s3": {
        "uri": "s3://agent-logs/sessions/**/*.jsonl",
        "endpoint": "http://minio.storage:9000",
        "secretRef": {"name": "logs-reader", "accessKeyIdKey": "id", "secretAccessKeyKey": "secret"},
    }
}


def job(**overrides: Any) -> children.JobRef:
    wire: dict[str, Any] = {
        "baseModel": {"name": "tiny", "builtin": "tiny-gpt"},
        "dataset": {"source": S3_SOURCE},
        "output": {"modelName": "support-bot"},
        "resources": {"gpus": 0},
        **overrides,
    }
    return children.JobRef("demo", "ml", "uid-1", FineTuningJobSpec.model_validate(wire))


def container(workload: dict[str, Any]) -> dict[str, Any]:
    (only,) = workload["spec"]["template"]["spec"]["containers"]
    return dict(only)


def env_names(workload: dict[str, Any]) -> list[str]:
    return [entry["name"] for entry in container(workload)["env"]]


def test_the_curation_pod_gets_the_dataset_credentials_as_secret_references() -> None:
    env = container(children.curation_job(job(), SETTINGS))["env"]
    credentials = [entry for entry in env if entry["name"].startswith("FINETUNE_S3_")]
    assert credentials == [
        {
            "name": "FINETUNE_S3_DATASET_ACCESS_KEY_ID",
            "valueFrom": {"secretKeyRef": {"name": "logs-reader", "key": "id"}},
        },
        {
            "name": "FINETUNE_S3_DATASET_SECRET_ACCESS_KEY",
            "valueFrom": {"secretKeyRef": {"name": "logs-reader", "key": "secret"}},
        },
        # Long-lived keys have no session token: optional, so the pod starts without it.
        {
            "name": "FINETUNE_S3_DATASET_SESSION_TOKEN",
            "valueFrom": {"secretKeyRef": {"name": "logs-reader", "key": "AWS_SESSION_TOKEN", "optional": True}},
        },
    ]


def test_the_training_pod_never_gets_the_dataset_credentials() -> None:
    assert not [name for name in env_names(batchjob.training_job(job(), SETTINGS)) if name.startswith("FINETUNE_S3")]


def test_without_secret_ref_no_credentials_are_injected_and_the_default_chain_applies() -> None:
    no_secret = {"s3": {"uri": "s3://agent-logs/sessions/*.jsonl"}}
    curation = children.curation_job(job(dataset={"source": no_secret}), SETTINGS)
    assert not [name for name in env_names(curation) if name.startswith("FINETUNE_S3")]


def test_an_s3_source_mounts_no_source_volume_and_stages_into_the_workspace() -> None:
    curation = children.curation_job(job(), SETTINGS)
    assert "source" not in [volume["name"] for volume in curation["spec"]["template"]["spec"]["volumes"]]
    paths = json.loads(children.config_map(job())["data"]["job.json"])["paths"]
    assert (paths["sourceStaging"], paths["sourceGlob"]) == ("/workspace/sources", "/workspace/sources/**/*")


def test_a_base_model_in_a_bucket_is_downloaded_by_the_training_pod_with_only_its_own_credentials() -> None:
    base = {"name": "llama", "s3": {"uri": "s3://models/llama/", "secretRef": {"name": "model-reader"}}}
    training = batchjob.training_job(job(baseModel=base), SETTINGS)
    credentials = {
        entry["name"]: entry["valueFrom"]["secretKeyRef"]
        for entry in container(training)["env"]
        if entry["name"].startswith("FINETUNE_S3_")
    }
    assert credentials == {
        "FINETUNE_S3_BASE_MODEL_ACCESS_KEY_ID": {"name": "model-reader", "key": "AWS_ACCESS_KEY_ID"},
        "FINETUNE_S3_BASE_MODEL_SECRET_ACCESS_KEY": {"name": "model-reader", "key": "AWS_SECRET_ACCESS_KEY"},
        "FINETUNE_S3_BASE_MODEL_SESSION_TOKEN": {"name": "model-reader", "key": "AWS_SESSION_TOKEN", "optional": True},
    }
    assert "base-model" not in [volume["name"] for volume in training["spec"]["template"]["spec"]["volumes"]]
    curation = children.curation_job(job(baseModel=base), SETTINGS)
    assert not [name for name in env_names(curation) if name.startswith("FINETUNE_S3_BASE_MODEL")]
    paths = json.loads(children.config_map(job(baseModel=base))["data"]["job.json"])["paths"]
    assert paths["baseModel"] == "/workspace/base-model"


def test_the_job_config_names_the_secret_and_holds_no_value_from_it() -> None:
    config = children.config_map(job())["data"]["job.json"]
    source = JobConfig.model_validate_json(config).spec.dataset.source.s3
    assert source is not None and source.secret_ref is not None and source.secret_ref.name == "logs-reader"
    # The operator never reads the Secret: nothing but its name and key names can be in what it writes.
    assert "FINETUNE_S3" not in config


def test_spec_env_and_env_from_reach_both_containers_after_the_operators_own() -> None:
    spec_env = [
        {"name": "HTTPS_PROXY", "value": "http://proxy:3128"},
        {"name": "MLFLOW_TRACKING_TOKEN", "valueFrom": {"secretKeyRef": {"name": "mlflow", "key": "token"}}},
    ]
    env_from = [{"configMapRef": {"name": "proxy-settings"}, "prefix": "NET_"}]
    with_env = job(env=spec_env, envFrom=env_from)
    for workload in (children.curation_job(with_env, SETTINGS), batchjob.training_job(with_env, SETTINGS)):
        built = container(workload)
        names = [entry["name"] for entry in built["env"]]
        assert names.index("FINETUNE_CONFIG") < names.index("HTTPS_PROXY")
        assert [
            entry for entry in built["env"] if entry["name"] in {"HTTPS_PROXY", "MLFLOW_TRACKING_TOKEN"}
        ] == spec_env
        assert built["envFrom"] == env_from


def test_no_env_from_key_without_spec_env_from() -> None:
    assert "envFrom" not in container(children.curation_job(job(), SETTINGS))
