"""Deterministic child names and labels (finetune_operator.naming).

Expected names are spelled out literally (docs/runtime-contract.md's table), and the length rules are checked
against Kubernetes' own validation rules, re-implemented here from the API server's regexes.
"""

from __future__ import annotations

import re

import pytest

from finetune_operator import naming

# apimachinery validation: IsDNS1123Label / IsDNS1123Subdomain / IsValidLabelValue.
DNS1123_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
DNS1123_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
LABEL_VALUE = re.compile(r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?")


def is_label_value(value: str) -> bool:
    return len(value) <= 63 and LABEL_VALUE.fullmatch(value) is not None


def is_job_name(value: str) -> bool:
    """batch/v1 Job names are DNS-1123 subdomains, and at most 63 characters (they become label values)."""
    return len(value) <= 63 and DNS1123_SUBDOMAIN.fullmatch(value) is not None


def is_subdomain(value: str) -> bool:
    return len(value) <= 253 and DNS1123_SUBDOMAIN.fullmatch(value) is not None


def test_short_names_follow_the_runtime_contract() -> None:
    assert naming.workspace_pvc("demo") == "demo-workspace"
    assert naming.config_map("demo") == "demo-config"
    assert naming.trainer_identity("demo") == "demo-trainer"
    assert naming.curation_job("demo") == "demo-curate"
    assert naming.training_job("demo") == "demo-train"


def test_names_are_deterministic() -> None:
    long = "x" * 200
    for builder in (
        naming.workspace_pvc,
        naming.config_map,
        naming.trainer_identity,
        naming.curation_job,
        naming.training_job,
        naming.label_value,
    ):
        assert builder("demo") == builder("demo")
        assert builder(long) == builder(long)


def test_bounded_keeps_short_values() -> None:
    assert naming.bounded("a" * 63) == "a" * 63
    assert naming.bounded("abc", limit=3) == "abc"


def test_bounded_cuts_with_a_digest_suffix() -> None:
    value = "a" * 64
    out = naming.bounded(value)
    assert len(out) == 63
    assert out.startswith("a" * 54 + "-")
    assert re.fullmatch(r"[0-9a-f]{8}", out[-8:])
    assert naming.bounded(value) == out


def test_bounded_never_leaves_a_separator_before_the_digest() -> None:
    # The cut falls right after "-" or ".": they are removed so the name does not get "--" or ".-".
    for separator in "-.":
        value = "a" * 53 + separator + "b" * 20
        out = naming.bounded(value)
        assert len(out) <= 63
        assert separator + "-" not in out
        assert is_job_name(out)


@pytest.mark.parametrize("length", [58, 59, 60, 63, 64, 100, 253])
def test_long_job_names_give_valid_bounded_job_names(length: int) -> None:
    job = ("a-b." * 100)[: length - 1] + "z"
    assert is_subdomain(job)
    for name in (naming.curation_job(job), naming.training_job(job)):
        assert is_job_name(name), name
    for name in (naming.workspace_pvc(job), naming.config_map(job), naming.trainer_identity(job)):
        assert is_subdomain(name), name


def test_long_names_stay_unique() -> None:
    # Same first 60 characters: the cut alone would collide; the digest keeps them apart.
    prefix = "a" * 60
    jobs = [prefix + suffix for suffix in ("one", "two", "three", "-x", "-y")]
    for builder in (naming.curation_job, naming.training_job, naming.label_value):
        names = [builder(job) for job in jobs]
        assert len(set(names)) == len(jobs), builder
        assert all(len(n) <= 63 for n in names)
    # The two workloads of one long-named job never share a name either.
    assert naming.curation_job(jobs[0]) != naming.training_job(jobs[0])
    # Nor does a job whose own name is a cut of another's.
    assert naming.training_job(prefix) != naming.training_job(prefix + "one")


@pytest.mark.parametrize(
    "value",
    [
        *("demo", "a" * 63, "a" * 64, "a." * 40, "x" * 253, "my.job-with.dots", "-leading", "trailing-"),
        # A base model's human-readable name becomes a ModelVersion label: non-ASCII letters and digits too.
        *("Qwen2.5-7B-中文", "café-7b", "x²"),
    ],
)
def test_label_value_is_always_valid(value: str) -> None:
    out = naming.label_value(value)
    assert is_label_value(out), out
    assert out


def test_label_value_keeps_valid_short_values_and_replaces_invalid_characters() -> None:
    assert naming.label_value("demo.v1_a-b") == "demo.v1_a-b"
    assert naming.label_value("Llama 3.1 (8B)/instruct") == "Llama-3.1--8B--instruct"


def test_labels() -> None:
    assert naming.labels("demo", "uid-1", "training") == {
        "app.kubernetes.io/name": "finetuningjob",
        "app.kubernetes.io/instance": "demo",
        "app.kubernetes.io/managed-by": "finetune-operator",
        "app.kubernetes.io/part-of": "finetune-operator",
        "app.kubernetes.io/component": "training",
        "finetune.dev/job": "demo",
        "finetune.dev/job-uid": "uid-1",
    }


def test_labels_of_a_long_job_name_are_valid_label_values() -> None:
    job = "j" * 253
    labels = naming.labels(job, "0b6a4c2e-6a0b-4a43-9c53-1f0e2b1c9d1a", "curation")
    for key, value in labels.items():
        assert is_label_value(value), (key, value)
    assert labels["finetune.dev/job"] == labels["app.kubernetes.io/instance"] == naming.label_value(job)
