"""Environment the pods get beyond the operator's own: S3 credentials by reference, and the user's spec.env.

Pure builders. Credentials are only ever `secretKeyRef`s to the Secret named by an `s3.secretRef`, given to
the container that uses that bucket (the curation pod for the dataset, the training pods for the base model
and the output), under per-use names the trainer reads (`finetune_trainer.objectstore.client`). The values
stay in the Secret: the job's ConfigMap, status, Events and logs only ever hold the Secret's name.
"""

from __future__ import annotations

from typing import Any

from finetune_operator.api import FineTuningJobSpec
from finetune_operator.api.objectstore import S3Access

Obj = dict[str, Any]

# Must match finetune_trainer.objectstore.client.credential_env_name.
DATASET, BASE_MODEL, OUTPUT = "DATASET", "BASE_MODEL", "OUTPUT"


def s3_credentials(access: S3Access | None, use: str) -> list[Obj]:
    """secretKeyRef variables for one use of a bucket; none without secretRef (the default credential chain)."""
    if access is None or access.secret_ref is None:
        return []
    ref = access.secret_ref
    keys = (
        ("ACCESS_KEY_ID", ref.access_key_id_key, False),
        ("SECRET_ACCESS_KEY", ref.secret_access_key_key, False),
        # Long-lived keys have no session token: the pod must start without it.
        ("SESSION_TOKEN", ref.session_token_key, True),
    )
    return [
        {
            "name": f"FINETUNE_S3_{use}_{field}",
            "valueFrom": {"secretKeyRef": {"name": ref.name, "key": key, **({"optional": True} if optional else {})}},
        }
        for field, key, optional in keys
    ]


def user_env(spec: FineTuningJobSpec) -> list[Obj]:
    """spec.env as container env entries (the API refused every name the operator sets itself)."""
    return [entry.to_wire() for entry in spec.env or []]


def user_env_from(spec: FineTuningJobSpec) -> list[Obj]:
    """spec.envFrom; Kubernetes gives the explicit env entries, the operator's included, precedence over these."""
    return [entry.to_wire() for entry in spec.env_from or []]
