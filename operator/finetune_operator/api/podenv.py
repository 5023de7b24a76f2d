"""`spec.env` and `spec.envFrom`: environment for the curation and training containers (tracking tokens,
proxies, CA bundles, ...), as literal values or references to Secret and ConfigMap keys.

Names the operator sets itself are refused at apply time: the job config and termination-log paths, the
distributed-training variables torchrun sets, the per-use S3 credentials, and `KUBERNETES_*`. `envFrom`
cannot be checked at apply time (the keys are in the referenced object); Kubernetes gives explicit `env`
entries precedence over `envFrom`, and the operator's own entries are explicit, so they always win.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field, field_validator, model_validator

from finetune_operator.api.base import ApiModel, cel
from finetune_operator.api.objectstore import DNS1123_SUBDOMAIN_PATTERN, SECRET_KEY_PATTERN

ENV_NAME_PATTERN = r"^[-._a-zA-Z][-._a-zA-Z0-9]*$"
OPERATOR_ENV_NAMES = (
    "HOME",
    "HF_HUB_OFFLINE",
    "PYTHONUNBUFFERED",
    "RANK",
    "LOCAL_RANK",
    "WORLD_SIZE",
    "LOCAL_WORLD_SIZE",
    "MASTER_ADDR",
    "MASTER_PORT",
    "NODE_RANK",
)
OPERATOR_ENV_PREFIXES = ("FINETUNE_", "KUBERNETES_")


RESERVED_MESSAGE = (
    "is set by the operator and cannot be overridden (FINETUNE_*, KUBERNETES_*, HOME, HF_HUB_OFFLINE, "
    "PYTHONUNBUFFERED and the distributed-training variables)"
)


def _reserved_rule() -> dict[str, Any]:
    names = ", ".join(f"'{name}'" for name in OPERATOR_ENV_NAMES)
    prefixes = " || ".join(f"self.name.startsWith('{prefix}')" for prefix in OPERATOR_ENV_PREFIXES)
    return cel(f"!(self.name in [{names}]) && !({prefixes})", f"spec.env name {RESERVED_MESSAGE}", ".name")


def is_operator_owned(name: str) -> bool:
    return name in OPERATOR_ENV_NAMES or name.startswith(OPERATOR_ENV_PREFIXES)


class KeySelector(ApiModel):
    """One key of a Secret or ConfigMap in the job's namespace."""

    name: str = Field(pattern=DNS1123_SUBDOMAIN_PATTERN, max_length=253)
    key: str = Field(pattern=SECRET_KEY_PATTERN, max_length=253)
    optional: bool | None = None
    """Start the pod even when the object or key is missing."""


class EnvVarSource(ApiModel):
    """Exactly one of secretKeyRef or configMapKeyRef."""

    model_config = {
        "json_schema_extra": {
            "x-kubernetes-validations": [
                cel(
                    "has(self.secretKeyRef) != has(self.configMapKeyRef)",
                    "valueFrom needs exactly one of secretKeyRef or configMapKeyRef",
                )
            ]
        }
    }

    secret_key_ref: KeySelector | None = None
    config_map_key_ref: KeySelector | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> EnvVarSource:
        if (self.secret_key_ref is None) == (self.config_map_key_ref is None):
            raise ValueError("valueFrom needs exactly one of secretKeyRef or configMapKeyRef")
        return self


class EnvVar(ApiModel):
    """An environment variable: a literal value or a reference."""

    model_config = {
        "json_schema_extra": {
            "x-kubernetes-validations": [
                _reserved_rule(),
                cel("!(has(self.value) && has(self.valueFrom))", "give value or valueFrom, not both"),
            ]
        }
    }

    name: str = Field(pattern=ENV_NAME_PATTERN, max_length=253)
    value: str | None = Field(default=None, max_length=32768)
    value_from: EnvVarSource | None = None

    @field_validator("name")
    @classmethod
    def _not_operator_owned(cls, name: str) -> str:
        if is_operator_owned(name):
            raise ValueError(f"spec.env name {name} {RESERVED_MESSAGE}")
        return name

    @model_validator(mode="after")
    def _one_value(self) -> EnvVar:
        if self.value is not None and self.value_from is not None:
            raise ValueError("give value or valueFrom, not both")
        return self


class ObjectRef(ApiModel):
    name: str = Field(pattern=DNS1123_SUBDOMAIN_PATTERN, max_length=253)
    optional: bool | None = None


class EnvFromSource(ApiModel):
    """Every key of a Secret or ConfigMap as a variable (optionally prefixed); exactly one of the two."""

    model_config = {
        "json_schema_extra": {
            "x-kubernetes-validations": [
                cel(
                    "has(self.secretRef) != has(self.configMapRef)",
                    "envFrom needs exactly one of secretRef or configMapRef",
                )
            ]
        }
    }

    prefix: str | None = Field(default=None, pattern=ENV_NAME_PATTERN, max_length=253)
    secret_ref: ObjectRef | None = None
    config_map_ref: ObjectRef | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> EnvFromSource:
        if (self.secret_ref is None) == (self.config_map_ref is None):
            raise ValueError("envFrom needs exactly one of secretRef or configMapRef")
        return self
