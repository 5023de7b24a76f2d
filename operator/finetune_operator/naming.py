"""Deterministic names and labels of a job's children (pure).

Names are derived from the job's name alone, so a restarted operator finds, and never duplicates, what an
earlier run created. Kubernetes caps label values and batch Job names at 63 characters: longer names are cut
and suffixed with a short digest so they stay unique and stable.
"""

from __future__ import annotations

import hashlib

LABEL_JOB = "finetune.dev/job"
LABEL_JOB_UID = "finetune.dev/job-uid"
LABEL_COMPONENT = "app.kubernetes.io/component"
LABEL_MODEL = "finetune.dev/model"
LABEL_BASE_MODEL = "finetune.dev/base-model"
LABEL_VERSION = "finetune.dev/version"
MANAGED_BY = "finetune-operator"
MAX_NAME = 63
TRAINER_SUFFIX = "-trainer"


def bounded(value: str, limit: int = MAX_NAME) -> str:
    """`value` if it fits in `limit` characters, else a stable cut with a digest suffix."""
    if len(value) <= limit:
        return value
    digest = hashlib.sha256(value.encode()).hexdigest()[:8]
    return f"{value[: limit - 9].rstrip('-.')}-{digest}"


def label_value(value: str) -> str:
    """A valid label value: at most 63 characters, alphanumeric at both ends, ASCII only (str.isalnum alone
    accepts 中, é or ², which the API server refuses in a label)."""
    cleaned = "".join(ch if (ch.isascii() and ch.isalnum()) or ch in "-_." else "-" for ch in value)
    return bounded(cleaned).strip("-_.")


def workspace_pvc(job: str) -> str:
    return bounded(f"{job}-workspace", 253)


def config_map(job: str) -> str:
    return bounded(f"{job}-config", 253)


def trainer_identity(job: str) -> str:
    """ServiceAccount, Role and RoleBinding of the training pods. Always ends in TRAINER_SUFFIX: the admission
    policy that keeps training pods to their own status fields recognises them by it."""
    return f"{bounded(job, 253 - len(TRAINER_SUFFIX))}{TRAINER_SUFFIX}"


def curation_job(job: str) -> str:
    return bounded(f"{job}-curate")


def training_job(job: str) -> str:
    return bounded(f"{job}-train")


def publish_job(job: str) -> str:
    """The Job copying the trained model to the model store (spec.output.pvc)."""
    return bounded(f"{job}-publish")


def labels(job: str, uid: str, component: str) -> dict[str, str]:
    return {
        "app.kubernetes.io/name": "finetuningjob",
        "app.kubernetes.io/instance": label_value(job),
        "app.kubernetes.io/managed-by": MANAGED_BY,
        "app.kubernetes.io/part-of": MANAGED_BY,
        LABEL_COMPONENT: component,
        LABEL_JOB: label_value(job),
        LABEL_JOB_UID: uid,
    }


def group_job(job: str) -> str:
    """The Indexed Job of a multi-node job. Its pods' hostnames are `<name>-<index>` (at most 63 characters, index
    up to 63), so the name is cut at 60 where a single-pod Job's is cut at 63."""
    return bounded(f"{job}-train", MAX_NAME - 3)


def group_service(job: str) -> str:
    """The headless Service whose name is the pods' DNS subdomain: an RFC 1035 label, so it starts with a letter."""
    name = group_job(job)
    return name if name[0].isalpha() else bounded(f"r{name}")
