"""Where and how the job's pods run: compute, node placement, tolerations, extra pod labels and annotations.

Everything here ends up in a pod template the operator creates long after the job was applied. What the API
server would refuse there (a malformed label key, a reserved prefix, an inconsistent toleration, a zero
quantity) is refused here at apply time instead, by the same syntax rules (apimachinery's validation regexes),
so a job never waits on a child that can never be created.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator

from finetune_operator.api.base import DNS1123_LABEL_PATTERN, ApiModel, PositiveQuantity, cel

# A qualified name (label and annotation keys, nodeSelector keys, toleration keys): an optional DNS-1123
# subdomain prefix and "/", then a name of alphanumerics, "-", "_" and "." that starts and ends alphanumeric.
_SUBDOMAIN = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*"
_NAME = r"[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?"
KEY_SHAPE = rf"^({_SUBDOMAIN}/)?{_NAME}$"
# Extended resources (GPUs) are always domain-qualified: an unqualified name is refused on the pod.
EXTENDED_RESOURCE_PATTERN = rf"^{_SUBDOMAIN}/{_NAME}$"
KEY_LENGTHS = r"^([^/]{1,253}/)?[^/]{1,63}$"  # prefix at most 253 characters, name at most 63
LABEL_VALUE_PATTERN = r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$"
KEY_MESSAGE = (
    "keys must be qualified names: an optional DNS subdomain prefix (at most 253 characters) and '/', then at "
    "most 63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit"
)
# Set on the pods by the operator (finetune.dev/) or by the Job controller, which refuses a template that
# carries them with other values.
RESERVED_KEY_PREFIXES = ("finetune.dev/", "batch.kubernetes.io/")
RESERVED_KEYS = ("controller-uid", "job-name")
RESERVED_MESSAGE = "keys finetune.dev/*, batch.kubernetes.io/*, controller-uid and job-name are set by the operator"
# 64 entries of a 317-byte key and a 3584-byte value stay under 256 KiB, the API server's limit on a pod's
# annotations altogether (counted in bytes): a spec within these bounds cannot be refused for its total size.
MAX_ANNOTATIONS = 64
MAX_ANNOTATION_VALUE = 3584
ANNOTATION_BYTES_MESSAGE = f"annotations: each value at most {MAX_ANNOTATION_VALUE} bytes (UTF-8)"
POD_ANNOTATIONS_LIMIT = 256 * 1024

LabelValue = Annotated[str, Field(max_length=63, pattern=LABEL_VALUE_PATTERN)]


def key_rules(field: str, reserved: bool = False) -> list[dict[str, Any]]:
    """CEL rules on the keys of the map `field` of the enclosing object (OpenAPI cannot constrain map keys)."""
    shape = f"k.matches('{_cel(KEY_SHAPE)}') && k.matches('{_cel(KEY_LENGTHS)}')"
    rules = [cel(f"!has(self.{field}) || self.{field}.all(k, {shape})", f"{field}: {KEY_MESSAGE}", f".{field}")]
    if reserved:
        prefixes = " || ".join(f"k.startsWith('{prefix}')" for prefix in RESERVED_KEY_PREFIXES)
        names = ", ".join(f"'{name}'" for name in RESERVED_KEYS)
        rule = f"!has(self.{field}) || self.{field}.all(k, !({prefixes} || k in [{names}]))"
        rules.append(cel(rule, f"{field}: {RESERVED_MESSAGE}", f".{field}"))
    return rules


def _cel(pattern: str) -> str:
    """A Python regex as the body of a CEL single-quoted string literal (backslashes doubled)."""
    return pattern.replace("\\", "\\\\")


def check_keys(field: str, keys: Mapping[str, Any] | None, reserved: bool = False) -> None:
    """The pydantic side of `key_rules`: raises ValueError naming the first bad key."""
    for key in keys or {}:
        if not (re.fullmatch(KEY_SHAPE, key) and re.fullmatch(KEY_LENGTHS, key)):
            raise ValueError(f"{field} key {key!r}: {KEY_MESSAGE}")
        if reserved and (key.startswith(RESERVED_KEY_PREFIXES) or key in RESERVED_KEYS):
            raise ValueError(f"{field} key {key!r}: {RESERVED_MESSAGE}")


_TOLERATION_RULES = [
    cel(
        "(has(self.key) && self.key != '') || (has(self.operator) && self.operator == 'Exists')",
        "a toleration without a key must use operator Exists (it then tolerates every taint)",
        ".operator",
    ),
    cel(
        "!(has(self.operator) && self.operator == 'Exists' && has(self.value) && self.value != '')",
        "a toleration with operator Exists takes no value",
        ".value",
    ),
    cel(f"!has(self.key) || self.key.matches('{_cel(KEY_LENGTHS)}')", f"key: {KEY_MESSAGE}", ".key"),
    cel(
        "!has(self.tolerationSeconds) || (has(self.effect) && self.effect == 'NoExecute')",
        "tolerationSeconds applies only to effect NoExecute",
        ".tolerationSeconds",
    ),
]


class Toleration(ApiModel):
    """A Kubernetes toleration for the training pods."""

    model_config = {"json_schema_extra": {"x-kubernetes-validations": [*_TOLERATION_RULES]}}

    key: str | None = Field(default=None, max_length=317, pattern=KEY_SHAPE)
    operator: Literal["Exists", "Equal"] | None = None
    value: LabelValue | None = None
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] | None = None
    toleration_seconds: int | None = Field(default=None, ge=0, le=315_360_000)
    """How long a pod stays bound to a node tainted NoExecute (at most ten years)."""

    @model_validator(mode="after")
    def _consistent(self) -> Toleration:
        if self.key is not None and not re.fullmatch(KEY_LENGTHS, self.key):
            raise ValueError(f"key: {KEY_MESSAGE}")
        if not self.key and self.operator != "Exists":
            raise ValueError("a toleration without a key must use operator Exists (it then tolerates every taint)")
        if self.operator == "Exists" and self.value:
            raise ValueError("a toleration with operator Exists takes no value")
        if self.toleration_seconds is not None and self.effect != "NoExecute":
            raise ValueError("tolerationSeconds applies only to effect NoExecute")
        return self


class ResourcesSpec(ApiModel):
    """Compute for the training pods."""

    model_config = {"json_schema_extra": {"x-kubernetes-validations": [*key_rules("nodeSelector")]}}

    gpus: int = Field(default=1, ge=0, le=64)
    """GPUs per training pod (0..64); 0 trains on CPU."""
    nodes: int = Field(default=1, ge=1, le=64)
    """Training pods (1..64), each with `gpus` GPUs, one rank per GPU: more than 1 runs an Indexed Job whose pods
    meet at pod 0 through a headless Service, and needs storage.accessMode ReadWriteMany."""
    gpu_resource_name: str = Field(
        default="nvidia.com/gpu",
        max_length=253,
        pattern=EXTENDED_RESOURCE_PATTERN,
    )
    """Extended resource name of the GPUs, domain-qualified (e.g. nvidia.com/gpu, amd.com/gpu)."""
    cpu: PositiveQuantity | None = None
    """CPU request and limit of the training container (Kubernetes quantity above zero, e.g. 8 or 500m)."""
    memory: PositiveQuantity | None = None
    """Memory request and limit of the training container (Kubernetes quantity above zero, e.g. 64Gi). Unset, the
    container requests an estimate (4 GiB per rank plus 2 GiB per billion parameters of the base model) and has no
    memory limit: a limit at a rough estimate would kill runs that fit their node. Set it, or give the namespace a
    LimitRange, to bound a tenant's training pods."""
    # Maps and lists carry size bounds so the API server's CEL cost estimator accepts the immutability rule
    # that compares the whole resources object.
    node_selector: dict[str, LabelValue] | None = Field(default=None, max_length=64)
    """Node labels the training pods must match (label keys and values)."""
    tolerations: list[Toleration] | None = Field(default=None, max_length=32)
    """Tolerations for tainted GPU nodes."""
    priority_class_name: str | None = Field(default=None, pattern=DNS1123_LABEL_PATTERN, max_length=253)
    """PriorityClass of the training pods (preemption)."""

    @field_validator("node_selector")
    @classmethod
    def _node_selector_keys(cls, value: dict[str, str] | None) -> dict[str, str] | None:
        check_keys("nodeSelector", value)
        return value


class PodMetadata(ApiModel):
    """Extra metadata for the curation and training pods (cost allocation, service-mesh opt-out, ...)."""

    model_config = {
        "json_schema_extra": {
            "x-kubernetes-validations": [
                *key_rules("labels", reserved=True),
                *key_rules("annotations", reserved=True),
                cel(
                    f"!has(self.annotations) || self.annotations.all(k, size(bytes(self.annotations[k])) <= "
                    f"{MAX_ANNOTATION_VALUE})",
                    ANNOTATION_BYTES_MESSAGE,
                    ".annotations",
                ),
            ]
        }
    }

    labels: dict[str, LabelValue] | None = Field(default=None, max_length=64)
    """Labels added to the pods. Keys under finetune.dev/ and batch.kubernetes.io/, controller-uid and job-name
    are the operator's and the Job controller's; the operator's app.kubernetes.io/* labels take precedence."""
    annotations: dict[str, Annotated[str, Field(max_length=MAX_ANNOTATION_VALUE)]] | None = Field(
        default=None, max_length=MAX_ANNOTATIONS
    )
    """Annotations added to the pods (at most 64, values at most 3584 bytes: together always under the API
    server's 256 KiB limit). The same keys as for labels are reserved."""

    @field_validator("labels", "annotations")
    @classmethod
    def _keys(cls, value: dict[str, str] | None) -> dict[str, str] | None:
        check_keys("podMetadata", value, reserved=True)
        return value

    @field_validator("annotations")
    @classmethod
    def _annotation_bytes(cls, value: dict[str, str] | None) -> dict[str, str] | None:
        if any(len(text.encode()) > MAX_ANNOTATION_VALUE for text in (value or {}).values()):
            raise ValueError(ANNOTATION_BYTES_MESSAGE)
        return value
