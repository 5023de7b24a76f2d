"""An S3 client (the MinIO SDK) for one use (dataset, base model, output), with its own credentials when given.

Credentials reach the pod only as environment variables the operator fills from the Secret named by
`secretRef` (`valueFrom.secretKeyRef`: the values are never in the job's ConfigMap, status or Events).
Each use has its own variable names, `FINETUNE_S3_<USE>_ACCESS_KEY_ID` / `_SECRET_ACCESS_KEY` /
`_SESSION_TOKEN`, because the base model and the output may live in different accounts. Without them the
client uses the default chain: the AWS_* variables, then IRSA / workload identity's web identity token
(AWS_WEB_IDENTITY_TOKEN_FILE + AWS_ROLE_ARN), ECS container credentials, an EC2 instance profile.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any
from urllib.parse import urlsplit


class Use(StrEnum):
    DATASET = "DATASET"
    BASE_MODEL = "BASE_MODEL"
    OUTPUT = "OUTPUT"


def credential_env_name(use: Use, field: str) -> str:
    return f"FINETUNE_S3_{use.value}_{field}"


@dataclass(frozen=True, slots=True)
class Endpoint:
    """Where the bucket is served: None for AWS itself; a URL for MinIO, Ceph, R2, GCS interop, ..."""

    url: str | None = None
    region: str | None = None

    def host_and_tls(self) -> tuple[str, bool]:
        if self.url is None:
            return (f"s3.{self.region}.amazonaws.com" if self.region else "s3.amazonaws.com"), True
        parts = urlsplit(self.url)
        return parts.netloc, parts.scheme == "https"


@dataclass(frozen=True, slots=True)
class StaticKeys:
    access_key: str
    secret_key: str
    session_token: str | None = None


def credentials(environ: Mapping[str, str], use: Use) -> StaticKeys | None:
    """`use`'s credentials from the Secret-backed variables; None means the default chain."""
    key_id = environ.get(credential_env_name(use, "ACCESS_KEY_ID"))
    secret = environ.get(credential_env_name(use, "SECRET_ACCESS_KEY"))
    if not key_id or not secret:
        return None
    return StaticKeys(key_id, secret, environ.get(credential_env_name(use, "SESSION_TOKEN")) or None)


def make_client(endpoint: Endpoint, environ: Mapping[str, str], use: Use, *, attempts: int = 5) -> Any:
    """A client whose HTTP layer retries connection errors and 5xx answers itself, with exponential backoff."""
    # Imported here: only jobs with an S3 source or output pay for them.
    import certifi
    import urllib3
    from minio import Minio
    from minio.credentials.providers import ChainedProvider, EnvAWSProvider, IamAwsProvider, StaticProvider

    keys = credentials(environ, use)
    provider = (
        StaticProvider(keys.access_key, keys.secret_key, keys.session_token)
        if keys
        else ChainedProvider([EnvAWSProvider(), IamAwsProvider()])
    )
    http = urllib3.PoolManager(
        timeout=urllib3.Timeout(connect=10, read=60),
        maxsize=4,
        cert_reqs="CERT_REQUIRED",
        ca_certs=os.environ.get("SSL_CERT_FILE") or certifi.where(),
        retries=urllib3.Retry(total=attempts, backoff_factor=0.5, status_forcelist=[500, 502, 503, 504]),
    )
    host, tls = endpoint.host_and_tls()
    return Minio(host, credentials=provider, secure=tls, region=endpoint.region, http_client=http)
