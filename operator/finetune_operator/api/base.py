"""Shared pieces of the API models: camelCase wire names, strict objects, reusable field types."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field
from pydantic.alias_generators import to_camel

GROUP = "finetune.dev"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"

# Kubernetes resource.Quantity, as the API server's own regex spells it.
QUANTITY_PATTERN = (
    r"^(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))"
    r"(([KMGTPE]i)|[numkMGTPE]|([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$"
)
DNS1123_LABEL_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
# Semantic Versioning 2.0.0, the regex published with the spec (no leading "v").
DIGEST_PATTERN = r"^sha256:[0-9a-f]{64}$"
SEMVER_PATTERN = (
    r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?"
    r"(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$"
)


def _quantity_to_str(value: Any) -> Any:
    # YAML users write `cpu: 4`; the API server accepts ints and strings for quantities.
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return value


# The Field comes before the validator: pydantic drops the pattern from the JSON schema (and so from the
# CRD) when a BeforeValidator precedes it, although it still validates.
Quantity = Annotated[
    str,
    Field(pattern=QUANTITY_PATTERN, max_length=64, json_schema_extra={"x-kubernetes-int-or-string": True}),
    BeforeValidator(_quantity_to_str),
]


# A quantity above zero: no sign, and a mantissa with a non-zero digit (a zero CPU, memory or volume size is
# refused on the pod or claim, or makes no sense). An int form (`cpu: 0`) is checked by `minimum`.
POSITIVE_QUANTITY_PATTERN = (
    r"^\+?(([0-9]*[1-9][0-9]*(\.[0-9]*)?)|([0-9]*\.[0-9]*[1-9][0-9]*))"
    r"(([KMGTPE]i)|[numkMGTPE]|([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$"
)
PositiveQuantity = Annotated[
    str,
    Field(
        pattern=POSITIVE_QUANTITY_PATTERN,
        max_length=64,
        json_schema_extra={"x-kubernetes-int-or-string": True, "minimum": 1},
    ),
    BeforeValidator(_quantity_to_str),
]

PARENT_SEGMENT_MESSAGE = "must not contain '..' segments (a path stays inside its volume or image folder)"


def _no_parent_segments(path: str) -> str:
    if ".." in path.split("/"):
        raise ValueError(PARENT_SEGMENT_MESSAGE)
    return path


# A path on a volume: '..' segments are refused (they could reach outside the mounted claim's folder).
VolumePath = Annotated[
    str,
    Field(
        min_length=1,
        max_length=4096,
        json_schema_extra={
            "x-kubernetes-validations": [
                {"rule": "!self.matches('(^|/)[.][.](/|$)')", "message": PARENT_SEGMENT_MESSAGE}
            ]
        },
    ),
    AfterValidator(_no_parent_segments),
]


# An RFC 3339 date-time (metav1.Time): the API server refuses anything else in a field of this type.
DateTime = Annotated[str, Field(max_length=64, json_schema_extra={"format": "date-time"})]


class ApiModel(BaseModel):
    """Base of every API object: camelCase on the wire, unknown fields rejected."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        use_attribute_docstrings=True,
    )

    def to_wire(self) -> dict[str, Any]:
        """The object as the API server stores it: camelCase, unset optional fields left out."""
        return self.model_dump(by_alias=True, exclude_none=True, mode="json")


class StatusModel(ApiModel):
    """Status objects tolerate fields written by newer operators (forward compatible reads)."""

    model_config = ConfigDict(extra="ignore")


def cel(rule: str, message: str, field_path: str | None = None) -> dict[str, Any]:
    """One `x-kubernetes-validations` entry."""
    entry: dict[str, Any] = {"rule": rule, "message": message}
    if field_path:
        entry["fieldPath"] = field_path
    return entry
