"""S3-compatible object storage in the FineTuningJob API: session sources (`spec.dataset.source.s3`), base models
(`spec.baseModel.s3`) and model stores (`spec.output.s3`).

Only references to credentials live here (a Secret's name and which of its keys hold what): the values reach
the pods that need them as `secretKeyRef` environment variables and are never copied into the job's
ConfigMap, status, Events or logs. Without `secretRef` the pods use the default credential chain (IRSA,
GKE/Azure workload identity, instance profiles).
"""

from __future__ import annotations

from pydantic import Field

from finetune_operator.api.base import ApiModel

# Bucket names per the S3 naming rules (3-63 characters, lowercase, digits, dots, hyphens).
S3_URI_PATTERN = r"^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/.*)?$"
DNS1123_SUBDOMAIN_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
SECRET_KEY_PATTERN = r"^[-._a-zA-Z0-9]+$"


class S3SecretRef(ApiModel):
    """A Secret in the job's namespace holding S3 credentials; the key names default to the AWS variable names."""

    name: str = Field(pattern=DNS1123_SUBDOMAIN_PATTERN, max_length=253)
    """Name of the Secret."""
    access_key_id_key: str = Field(default="AWS_ACCESS_KEY_ID", pattern=SECRET_KEY_PATTERN, max_length=253)
    """Key holding the access key id."""
    secret_access_key_key: str = Field(default="AWS_SECRET_ACCESS_KEY", pattern=SECRET_KEY_PATTERN, max_length=253)
    """Key holding the secret access key."""
    session_token_key: str = Field(default="AWS_SESSION_TOKEN", pattern=SECRET_KEY_PATTERN, max_length=253)
    """Key holding a session token, used when the Secret has it (temporary credentials)."""


class S3Access(ApiModel):
    """Where an S3-compatible service is and how to sign in to it."""

    uri: str = Field(pattern=S3_URI_PATTERN, max_length=2048)
    endpoint: str | None = Field(default=None, pattern=r"^https?://[^\s/]+(/.*)?$", max_length=2048)
    """Endpoint URL of an S3-compatible service (MinIO, Ceph, R2, ...); AWS S3 when unset."""
    region: str | None = Field(default=None, pattern=r"^[a-z0-9-]+$", max_length=64)
    """Region of the bucket (default us-east-1)."""
    secret_ref: S3SecretRef | None = None
    """Credentials; without it the pods use the default credential chain (IRSA / workload identity)."""


class S3SessionSource(S3Access):
    """Session logs in a bucket: `uri` is s3://bucket/prefix/glob (e.g. s3://logs/sessions/2026-11/*.jsonl.gz);
    without a wildcard it is a key or a folder prefix. Needs s3:ListBucket on the bucket and s3:GetObject on the keys.
    """

    uri: str = Field(pattern=S3_URI_PATTERN, max_length=2048)
    """s3://bucket/prefix with an optional glob (*, ?, [...], ** across folders)."""


class S3ModelStore(S3Access):
    """A model store in a bucket: the final model and adapter are copied to `<uri>/<modelName>/<version>/` with a
    `SHA256SUMS` file (uploaded last), whose digest the ModelVersion records. Needs only s3:PutObject there."""

    uri: str = Field(pattern=S3_URI_PATTERN, max_length=2048)
    """s3://bucket/prefix (a folder; no wildcards)."""


class S3BaseModel(S3Access):
    """A base model in a bucket: the Hugging Face format folder (config.json, safetensors, tokenizer) under `uri`.
    Rank 0 of the training pods downloads it into the workspace (`base-model/`), verified by size and ETag; a
    restarted pod resumes instead of starting over. Needs s3:ListBucket on the prefix and s3:GetObject under it."""

    uri: str = Field(pattern=S3_URI_PATTERN, max_length=2048)
    """s3://bucket/prefix of the folder (no wildcards)."""
