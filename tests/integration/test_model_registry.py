"""The model registry (issue #7) against the real control plane, with KWOK GPU nodes running the pods.

Every successful job registers a ModelVersion: semver assigned from what exists (or `output.version`), distinct
versions for jobs finishing together (the API server's name uniqueness decides), a taken explicit version
failing the job before training, lineage copied from the job, and the ModelVersion outliving the job.

(Named test_model_registry.py: tests/unit/test_registry.py already owns the module name `test_registry`.)
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

import pytest
from kubernetes import client
from kwok_jobs import (
    CURATED,
    TRAINED,
    apply,
    children,
    get_json,
    gpu_job,
    phase_is,
    poll,
    reason_is,
    sessions_config_map,
    wait_status,
)
from operator_harness import OperatorProcess

from finetune_operator.kube import Kube
from finetune_operator.registrar import Registrar
from support.fixtures import Kubectl

pytestmark = pytest.mark.integration


def model_versions(kubectl: Kubectl, namespace: str, selector: str) -> list[dict[str, Any]]:
    mvs: list[dict[str, Any]] = get_json(kubectl, "-n", namespace, "get", "mv", "-l", selector)["items"]
    return sorted(mvs, key=lambda mv: mv["metadata"]["name"])


def test_sequential_jobs_take_the_next_version_by_their_bump(
    kubectl: Kubectl, namespace: str, operator_process: OperatorProcess
) -> None:
    apply(kubectl, namespace, sessions_config_map())
    expected = [("patch", "0.0.1"), ("patch", "0.0.2"), ("minor", "0.1.0")]
    for i, (bump, version) in enumerate(expected):
        job = gpu_job(f"seq-{i}", model="seq", run_for="1s", output={"modelName": "seq", "bump": bump})
        apply(kubectl, namespace, job)
        status = wait_status(kubectl, namespace, f"seq-{i}", phase_is("Completed"), "Completed", 120, operator_process)
        assert status["model"]["version"] == version, status["model"]
        assert status["model"]["modelVersion"] == f"seq-v{version}"
    registered = model_versions(kubectl, namespace, "finetune.dev/model=seq")
    assert [(mv["spec"]["version"], mv["spec"]["job"]["name"]) for mv in registered] == [
        ("0.0.1", "seq-0"),
        ("0.0.2", "seq-1"),
        ("0.1.0", "seq-2"),
    ]


def test_jobs_finishing_together_get_distinct_versions(
    kubectl: Kubectl, namespace: str, operator_process: OperatorProcess
) -> None:
    # Same run-for, applied together. The operator is down while the trainings end, so on its restart it sees
    # them all succeeded at the same moment and registers them concurrently: fresh reads of the registry find
    # no version yet, and the API server's name uniqueness decides who gets which. (Three jobs rather than two:
    # a pair then collides on almost every run, so a registry that lost the race would not go unnoticed.)
    names = ("twin-a", "twin-b", "twin-c")
    # Long enough that no training ends before the last one started, even on a loaded machine.
    apply(kubectl, namespace, sessions_config_map(), *(gpu_job(name, model="twin", run_for="20s") for name in names))
    uids = {}
    for name in names:
        wait_status(kubectl, namespace, name, reason_is("Running", "Training"), "training", 90, operator_process)
        uids[name] = get_json(kubectl, "-n", namespace, "get", "ftj", name)["metadata"]["uid"]
    operator_process.kill()

    def trained() -> bool:
        jobs = [get_json(kubectl, "-n", namespace, "get", "jobs.batch", f"{name}-train") for name in uids]
        return all(
            any(c["type"] == "Complete" and c["status"] == "True" for c in job["status"].get("conditions") or [])
            for job in jobs
        )

    poll(trained, "the training Jobs to complete", 120)
    assert not model_versions(kubectl, namespace, "finetune.dev/model=twin")
    operator_process.start()
    statuses = {
        name: wait_status(kubectl, namespace, name, phase_is("Completed"), "Completed", 120, operator_process)
        for name in uids
    }
    registered = model_versions(kubectl, namespace, "finetune.dev/model=twin")
    assert len(registered) == 3, [mv["metadata"]["name"] for mv in registered]
    assert sorted(mv["spec"]["version"] for mv in registered) == ["0.0.1", "0.0.2", "0.0.3"]
    by_name = {mv["metadata"]["name"]: mv for mv in registered}
    for name, status in statuses.items():
        mv = by_name[status["model"]["modelVersion"]]
        assert mv["spec"]["job"] == {"name": name, "uid": uids[name]}
        assert status["model"]["version"] == mv["spec"]["version"]
    assert len({status["model"]["version"] for status in statuses.values()}) == 3


def test_explicit_version_that_exists_fails_the_job_before_training(
    kubectl: Kubectl, namespace: str, operator_process: OperatorProcess
) -> None:
    pinned = {"modelName": "pinned", "version": "1.0.0"}
    apply(kubectl, namespace, sessions_config_map(), gpu_job("first", model="pinned", output=pinned))
    wait_status(kubectl, namespace, "first", phase_is("Completed"), "Completed", 120, operator_process)
    first = get_json(kubectl, "-n", namespace, "get", "mv", "pinned-v1.0.0")

    apply(kubectl, namespace, gpu_job("second", model="pinned", output=pinned))
    status = wait_status(kubectl, namespace, "second", phase_is("Failed"), "Failed", 60, operator_process)
    assert status["reason"] == "VersionExists", status
    assert status["failureKind"] == "User"
    assert "pinned-v1.0.0" in status["message"]
    uid = get_json(kubectl, "-n", namespace, "get", "ftj", "second")["metadata"]["uid"]
    assert children(kubectl, namespace, uid)["training"] == []
    assert not status.get("startTime"), "a job that never trained has no startTime"
    # The registered version is untouched and still the first job's.
    after = get_json(kubectl, "-n", namespace, "get", "mv", "pinned-v1.0.0")
    assert after["metadata"]["uid"] == first["metadata"]["uid"]
    assert after["spec"]["job"]["name"] == "first"
    assert len(model_versions(kubectl, namespace, "finetune.dev/model=pinned")) == 1


def test_model_version_outlives_its_job_with_lineage_and_labels(
    kubectl: Kubectl, namespace: str, operator_process: OperatorProcess
) -> None:
    dataset = {
        "sourceFiles": 1,
        "sourceRecords": 57,
        "samples": 50,
        "trainSamples": 45,
        "evalSamples": 5,
        "sha256": "ab" * 32,
        "rejected": {"malformed": 2, "lowSuccess": 3, "duplicate": 2, "tooLong": 0, "empty": 0},
    }
    metrics = {"trainLoss": 1.25, "evalLoss": 1.5, "perplexity": 4.48, "evalExactMatch": 0.25, "evalTokenF1": 0.5}
    message = {
        "outcome": "Succeeded",
        "dataset": dataset,
        "metrics": metrics,
        "progress": {"step": 30, "totalSteps": 30, "epoch": 3.0},
        "model": {"path": "model", "format": "safetensors", "adapter": True, "merged": False},
    }
    other = gpu_job("other", model="other-model", message={**CURATED, **TRAINED})
    other["spec"]["baseModel"] = {"name": "mistral-7b", "builtin": "tiny-gpt"}
    apply(kubectl, namespace, sessions_config_map(), gpu_job("lineage", model="lin", message=message), other)
    status = wait_status(kubectl, namespace, "lineage", phase_is("Completed"), "Completed", 120, operator_process)
    wait_status(kubectl, namespace, "other", phase_is("Completed"), "Completed", 120, operator_process)
    job = get_json(kubectl, "-n", namespace, "get", "ftj", "lineage")
    mv = get_json(kubectl, "-n", namespace, "get", "mv", status["model"]["modelVersion"])
    spec = mv["spec"]

    # Lineage: the job's dataset status and the trainer's final metrics, as the termination messages said.
    assert {k: status["dataset"][k] for k in ("samples", "trainSamples", "evalSamples", "sha256")} == {
        k: dataset[k] for k in ("samples", "trainSamples", "evalSamples", "sha256")
    }
    assert spec["dataset"] == {
        "sha256": status["dataset"]["sha256"],
        "samples": status["dataset"]["samples"],
        "trainSamples": status["dataset"]["trainSamples"],
        "evalSamples": status["dataset"]["evalSamples"],
        "source": "configmap://sessions/sessions.jsonl",
    }
    assert spec["metrics"] == pytest.approx(metrics)
    assert {k: status["metrics"][k] for k in metrics} == pytest.approx(metrics)
    assert spec["job"] == {"name": "lineage", "uid": job["metadata"]["uid"]}
    assert spec["baseModel"] == "llama-3.1-8b"
    assert spec["modelName"] == "lin" and spec["version"] == "0.0.1"
    assert spec["artifact"] == {
        "pvc": "lineage-workspace",
        "path": "model",
        "uri": "pvc://lineage-workspace/model",
        "adapter": True,
    }
    assert status["model"]["uri"] == "pvc://lineage-workspace/model"
    assert spec["hyperparameters"], "the training hyperparameters are recorded"
    assert "ownerReferences" not in mv["metadata"]

    # Labels select by model, base model and job; the other job's ModelVersion never matches.
    def names(selector: str) -> list[str]:
        return kubectl("-n", namespace, "get", "mv", "-l", selector, "-o", "name").split()

    assert names("finetune.dev/model=lin") == ["modelversion.finetune.dev/lin-v0.0.1"]
    assert names("finetune.dev/base-model=llama-3.1-8b") == ["modelversion.finetune.dev/lin-v0.0.1"]
    assert names("finetune.dev/job=lineage") == ["modelversion.finetune.dev/lin-v0.0.1"]
    assert names("finetune.dev/model=other-model") == ["modelversion.finetune.dev/other-model-v0.0.1"]
    table = kubectl("-n", namespace, "get", "mv", "-l", "finetune.dev/model=lin")
    assert "0.0.1" in table and "lineage" in table and "1.5" in table, table

    # Deleting the job keeps its ModelVersion, unchanged.
    kubectl("-n", namespace, "delete", "ftj", "lineage", "--wait=true", "--timeout=60s")
    poll(
        lambda: not kubectl("-n", namespace, "get", "ftj", "lineage", "--ignore-not-found", "-o", "name").strip(),
        "the job to be gone",
        60,
    )
    kept = get_json(kubectl, "-n", namespace, "get", "mv", "lin-v0.0.1")
    assert kept["metadata"]["uid"] == mv["metadata"]["uid"]
    assert kept["spec"] == spec


def registered_model(kubectl: Kubectl, namespace: str, name: str) -> dict[str, Any]:
    body: dict[str, Any] = get_json(kubectl, "-n", namespace, "get", "registeredmodel", name)
    return body


def set_aliases(kubectl: Kubectl, namespace: str, model: str, aliases: str) -> None:
    """Patches the RegisteredModel's spec.aliases as a person would (`aliases`: the JSON object)."""
    patch = f'{{"spec": {{"aliases": {aliases}}}}}'
    kubectl("-n", namespace, "patch", "registeredmodel", model, "--type=merge", "-p", patch)


def test_registered_model_lists_versions_and_moves_aliases(
    kubectl: Kubectl, namespace: str, operator_process: OperatorProcess
) -> None:
    apply(kubectl, namespace, sessions_config_map())
    for i in range(2):
        apply(kubectl, namespace, gpu_job(f"rm-{i}", model="rm", run_for="1s", output={"modelName": "rm"}))
        wait_status(kubectl, namespace, f"rm-{i}", phase_is("Completed"), "Completed", 120, operator_process)

    def listed(want: int) -> Any:
        status = (registered_model(kubectl, namespace, "rm").get("status")) or {}
        return status if status.get("versionCount") == want else None

    status = poll(lambda: listed(2), "the RegisteredModel to list both versions", 60)
    assert (status["latestVersion"], status["highestVersion"]) == ("0.0.2", "0.0.2")
    assert [entry["version"] for entry in status["versions"]] == ["0.0.2", "0.0.1"]

    # A person (or a pipeline) moves the champion alias; the operator resolves it and marks the version.
    set_aliases(kubectl, namespace, "rm", '{"champion": "0.0.1"}')

    def resolved() -> Any:
        aliases = (registered_model(kubectl, namespace, "rm").get("status") or {}).get("aliases") or {}
        return aliases.get("champion")

    champion = poll(resolved, "the champion alias to resolve", 60)
    assert champion["modelVersion"] == "rm-v0.0.1" and champion["uri"].startswith("pvc://rm-0-workspace/")
    mv = get_json(kubectl, "-n", namespace, "get", "mv", "rm-v0.0.1")
    assert mv["metadata"]["annotations"]["finetune.dev/aliases"] == "champion"

    # An alias to a version that does not exist is reported, not silently dropped.
    set_aliases(kubectl, namespace, "rm", '{"champion": "9.9.9"}')

    def unresolved() -> Any:
        conditions = (registered_model(kubectl, namespace, "rm").get("status") or {}).get("conditions") or []
        return next((c for c in conditions if c["type"] == "AliasesResolved" and c["status"] == "False"), None)

    condition = poll(unresolved, "AliasesResolved False", 60)
    assert "alias champion names version 9.9.9, which is not registered" in condition["message"]
    poll(
        lambda: (
            "finetune.dev/aliases"
            not in (get_json(kubectl, "-n", namespace, "get", "mv", "rm-v0.0.1")["metadata"].get("annotations") or {})
            or None
        ),
        "the old champion's annotation to go",
        60,
    )

    # Alias names are checked at apply time.
    with pytest.raises(AssertionError, match=r"spec\.aliases: Invalid value.*alias names are DNS-1123 labels"):
        set_aliases(kubectl, namespace, "rm", '{"Champion": "0.0.1"}')

    # Deleting the jobs leaves the registry alone.
    kubectl("-n", namespace, "delete", "ftj", "rm-0", "rm-1", "--wait=true")
    assert registered_model(kubectl, namespace, "rm")["status"]["versionCount"] == 2


def job_events(kubectl: Kubectl, namespace: str, job: str, reason: str) -> list[str]:
    selector = f"involvedObject.kind=FineTuningJob,involvedObject.name={job},reason={reason}"
    items = get_json(kubectl, "-n", namespace, "get", "events", "--field-selector", selector)["items"]
    return [str(event["message"]) for event in items]


def test_promote_to_moves_the_alias_forward_only_and_once_under_races(
    kubectl: Kubectl, kube: client.ApiClient, namespace: str, operator_process: OperatorProcess
) -> None:
    apply(kubectl, namespace, sessions_config_map())
    output = {"modelName": "pm", "promoteTo": "champion"}
    apply(kubectl, namespace, gpu_job("pm-0", model="pm", run_for="1s", output=output))
    wait_status(kubectl, namespace, "pm-0", phase_is("Completed"), "Completed", 120, operator_process)
    assert registered_model(kubectl, namespace, "pm")["spec"]["aliases"] == {"champion": "0.0.1"}
    assert job_events(kubectl, namespace, "pm-0", "Promoted") == ["alias champion of model pm now names 0.0.1"]

    # Eight writers promoting the same version (replicas, retries): the resourceVersion check lets exactly one
    # move the alias. Then eight different versions at once: the highest ends up named, whatever the order.
    registrar = Registrar(Kube(kube), lambda: datetime.now(UTC))
    with ThreadPoolExecutor(max_workers=8) as pool:
        same = list(pool.map(lambda _: registrar.promote(namespace, "pm", "champion", "0.0.5"), range(8)))
    assert sum(1 for promotion in same if promotion and promotion.moved) == 1, same
    with ThreadPoolExecutor(max_workers=8) as pool:
        racing = list(pool.map(lambda n: registrar.promote(namespace, "pm", "champion", f"0.1.{n}"), range(8)))
    assert registered_model(kubectl, namespace, "pm")["spec"]["aliases"] == {"champion": "0.1.7"}
    assert "0.1.7" in [promotion.version for promotion in racing if promotion and promotion.moved], racing

    # A job whose version is lower than the champion's registers but leaves the alias alone, and says so.
    apply(kubectl, namespace, gpu_job("pm-1", model="pm", run_for="1s", output=output))
    wait_status(kubectl, namespace, "pm-1", phase_is("Completed"), "Completed", 120, operator_process)
    assert registered_model(kubectl, namespace, "pm")["spec"]["aliases"] == {"champion": "0.1.7"}
    assert job_events(kubectl, namespace, "pm-1", "NotPromoted") == [
        "alias champion of model pm stays at 0.1.7, higher than 0.0.2"
    ]

    # An alias name that is not a DNS-1123 label is refused at apply, naming the field.
    bad = gpu_job("pm-2", model="pm", output={"modelName": "pm", "promoteTo": "Champion"})
    with pytest.raises(AssertionError, match=r"spec\.output\.promoteTo"):
        apply(kubectl, namespace, bad)
