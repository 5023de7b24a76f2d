"""Sessions from and the model to a real S3 server (s3s-fs) through the operator, on the real control plane.

The node agent runs the curation pod as a local process, so the product's own code downloads from the bucket
at 127.0.0.1 with the credentials the Secret holds; wrong credentials, a missing prefix and a truncated stored
object each end the job Failed with their reason, naming the URI.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from operator_harness import OperatorProcess, wait_phase

import strictyaml
from finetune_trainer.objectstore.client import Endpoint, Use, credential_env_name, make_client
from finetune_trainer.train.lineage import base_model_digest
from finetune_trainer.train.tinygpt import ensure_tiny_gpt
from localservers import S3Server
from support.fixtures import Kubectl

pytestmark = [pytest.mark.integration, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
SESSIONS = REPO / "manifests" / "samples" / "data" / "sessions.jsonl"


@pytest.fixture(scope="module")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    with S3Server(tmp_path_factory.mktemp("s3s-fs")) as server:
        assert isinstance(server, S3Server)
        yield server


@pytest.fixture
def bucket(s3_server: S3Server) -> str:
    """A bucket holding the quickstart's sessions split in two objects (one gzipped), and a stray object."""
    client = make_client(Endpoint(s3_server.url), environ_for(s3_server, Use.DATASET), Use.DATASET)
    name = f"logs-{uuid.uuid4().hex[:8]}"
    client.make_bucket(name)
    lines = SESSIONS.read_bytes().splitlines(keepends=True)
    half = len(lines) // 2
    objects = {
        "sessions/2026-11/part-1.jsonl": b"".join(lines[:half]),
        "sessions/2026-11/part-2.jsonl.gz": gzip.compress(b"".join(lines[half:]), mtime=0),
        "sessions/2026-11/README.txt": b"not sessions",
    }
    for key, data in objects.items():
        client.put_object(name, key, io.BytesIO(data), len(data))
    return name


def credentials_secret(kubectl: Kubectl, namespace: str, name: str, key_id: str, secret: str) -> None:
    manifest = kubectl(
        "-n", namespace, "create", "secret", "generic", name,
        f"--from-literal=AWS_ACCESS_KEY_ID={key_id}", f"--from-literal=AWS_SECRET_ACCESS_KEY={secret}",
        "--dry-run=client", "-o", "yaml",
    )  # fmt: skip
    kubectl("-n", namespace, "apply", "-f", "-", stdin=manifest)


def s3_job(name: str, server: S3Server, uri: str, secret: str, output: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = strictyaml.load((REPO / "manifests" / "samples" / "quickstart.yaml").read_text())
    body["metadata"]["name"] = name
    body["spec"]["training"]["epochs"] = 1
    body["spec"]["dataset"]["source"] = {"s3": {"uri": uri, "endpoint": server.url, "secretRef": {"name": secret}}}
    if output is not None:
        body["spec"]["output"]["s3"] = {"uri": output, "endpoint": server.url, "secretRef": {"name": secret}}
    return body


def environ_for(server: S3Server, use: Use) -> dict[str, str]:
    return {
        credential_env_name(use, "ACCESS_KEY_ID"): server.access_key,
        credential_env_name(use, "SECRET_ACCESS_KEY"): server.secret_key,
    }


def read_object(client: Any, bucket: str, key: str) -> bytes:
    response = client.get_object(bucket, key)
    try:
        return bytes(response.read())
    finally:
        response.close()
        response.release_conn()


def test_sessions_and_base_model_from_a_bucket_train_to_completed_the_model_goes_to_a_bucket_secret_stays_secret(
    kubectl: Kubectl,
    namespace: str,
    operator_process: OperatorProcess,
    s3_server: S3Server,
    bucket: str,
    tmp_path: Path,
) -> None:
    credentials_secret(kubectl, namespace, "logs-reader", s3_server.access_key, s3_server.secret_key)
    uri = f"s3://{bucket}/sessions/2026-11/*.jsonl*"
    body = s3_job("from-s3", s3_server, uri, "logs-reader", output=f"s3://{bucket}/trained")
    # The base model from the bucket too: a tiny-gpt folder built here, as a team would upload its model.
    built = ensure_tiny_gpt(tmp_path / "tiny-gpt", (line.decode() for line in SESSIONS.read_bytes().splitlines()), 7)
    client = make_client(Endpoint(s3_server.url), environ_for(s3_server, Use.BASE_MODEL), Use.BASE_MODEL)
    for path in sorted(p for p in built.rglob("*") if p.is_file()):
        client.fput_object(bucket, f"models/tiny-gpt/{path.relative_to(built).as_posix()}", str(path))
    secret = {"name": "logs-reader"}
    base = {"uri": f"s3://{bucket}/models/tiny-gpt", "endpoint": s3_server.url, "secretRef": secret}
    body["spec"]["baseModel"] = {"name": "tiny-gpt", "s3": base}
    kubectl("-n", namespace, "apply", "-f", "-", stdin=yaml.safe_dump(body))
    job = wait_phase(kubectl, namespace, "from-s3", ("Completed",), timeout=600, operator=operator_process)
    dataset = job["status"]["dataset"]
    assert dataset["sourceFiles"] == 2, dataset  # the README is outside the glob

    assert dataset["sourceRecords"] == len(SESSIONS.read_bytes().splitlines())
    # The last download (the base model, by the training pod) left its final figures in the status.
    progress, base_bytes = job["status"]["progress"], sum(p.stat().st_size for p in built.rglob("*") if p.is_file())
    downloaded = (progress.get("downloading"), progress.get("downloadedBytes"), progress.get("downloadBytes"))
    assert downloaded == ("baseModel.s3", base_bytes, base_bytes), progress
    mv = json.loads(kubectl("-n", namespace, "get", "mv", job["status"]["model"]["modelVersion"], "-o", "json"))
    assert mv["spec"]["dataset"]["source"] == uri
    # Trained from the downloaded folder: the weights the trainer fingerprinted are the ones built here.
    assert mv["spec"]["baseModelLocation"] == f"s3://{bucket}/models/tiny-gpt"
    assert mv["spec"]["baseModelDigest"] == base_model_digest(built)

    # The model went to the bucket (spec.output.s3) by the copy Job; the ModelVersion points at that folder, and
    # its digest is the SHA-256 of the uploaded SHA256SUMS, whose every line matches the uploaded file.
    artifact = mv["spec"]["artifact"]
    folder = f"trained/{mv['spec']['modelName']}/{mv['spec']['version']}/"
    assert artifact["uri"] == f"s3://{bucket}/{folder}" and "pvc" not in artifact, artifact
    client = make_client(Endpoint(s3_server.url), environ_for(s3_server, Use.OUTPUT), Use.OUTPUT)
    sums = read_object(client, bucket, folder + "SHA256SUMS")
    assert artifact["digest"] == "sha256:" + hashlib.sha256(sums).hexdigest()
    listed = dict(reversed(line.split("  ", 1)) for line in sums.decode().splitlines())
    assert any(name.endswith(".safetensors") for name in listed), listed
    for name, expected in listed.items():
        assert hashlib.sha256(read_object(client, bucket, folder + name)).hexdigest() == expected

    # The secret's value is nowhere the operator writes: status, Events, the job's ConfigMap, the manifest.
    events = kubectl("-n", namespace, "get", "events", "-o", "json")
    config = kubectl("-n", namespace, "get", "configmap", "from-s3-config", "-o", "json")
    for text in (json.dumps(job), events, config):
        assert s3_server.secret_key not in text
    assert "logs-reader" in config  # only the Secret's name


def test_wrong_credentials_a_missing_prefix_and_a_truncated_object_each_fail_with_their_reason(
    kubectl: Kubectl, namespace: str, operator_process: OperatorProcess, s3_server: S3Server, bucket: str
) -> None:
    credentials_secret(kubectl, namespace, "right", s3_server.access_key, s3_server.secret_key)
    credentials_secret(kubectl, namespace, "wrong", s3_server.access_key, "not-the-secret")
    # The store loses the tail of an object after it was written; its recorded ETag still says what was uploaded.
    stored = s3_server.root / bucket / "sessions/2026-11/part-1.jsonl"
    with stored.open("r+b") as data:
        data.truncate(stored.stat().st_size // 2)
    cases = {
        "denied": (f"s3://{bucket}/sessions/2026-11/*.jsonl*", "wrong", "SourceAccessDenied"),
        "missing": (f"s3://{bucket}/sessions/1999-01/*.jsonl", "right", "SourceNotFound"),
        "truncated": (f"s3://{bucket}/sessions/2026-11/part-1.jsonl", "right", "SourceCorrupt"),
    }
    jobs = [s3_job(name, s3_server, uri, secret) for name, (uri, secret, _) in cases.items()]
    kubectl("-n", namespace, "apply", "-f", "-", stdin=yaml.safe_dump_all(jobs))
    for name, (uri, _, reason) in cases.items():
        job = wait_phase(kubectl, namespace, name, ("Failed",), timeout=300, operator=operator_process)
        status = job["status"]
        assert (status["reason"], status["failureKind"]) == (reason, "User"), status
        assert (uri if name != "truncated" else f"s3://{bucket}/sessions/2026-11/part-1.jsonl") in status["message"]
        assert "not-the-secret" not in json.dumps(status)
