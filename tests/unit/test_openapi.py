"""The pydantic JSON schema -> structural OpenAPI v3 conversion, on small models made for each rule."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import pytest
from pydantic import BaseModel, Field

from finetune_operator.api.base import ApiModel, Quantity
from finetune_operator.codegen.openapi import structural_schema, walk


class Inner(ApiModel):
    """Inner's own description."""

    size: int = Field(default=1, gt=0, lt=10)


class Outer(ApiModel):
    """Outer."""

    inner: Inner = Field(default_factory=Inner)
    """The field's description wins over the class's."""
    maybe: Inner | None = None
    labels: dict[str, Annotated[str, Field(max_length=5)]] = Field(default_factory=dict, max_length=3)
    quantity: Quantity | None = None
    kind: Literal["Only"] = "Only"
    names: list[str] = Field(default_factory=lambda: ["a"])
    ratio: float = Field(default=0.5, ge=0, le=1)


def test_conversion() -> None:
    schema = structural_schema(Outer)
    props = schema["properties"]
    assert schema["type"] == "object" and "additionalProperties" not in schema and "title" not in schema
    assert props["inner"] == {
        "type": "object",
        "description": "The field's description wins over the class's.",
        "default": {},
        "properties": {
            "size": {
                "type": "integer",
                "default": 1,
                "minimum": 0,
                "exclusiveMinimum": True,
                "maximum": 10,
                "exclusiveMaximum": True,
            }
        },
    }
    assert props["maybe"]["description"] == "Inner's own description."
    assert "default" not in props["maybe"]
    assert props["labels"] == {
        "type": "object",
        "default": {},
        "maxProperties": 3,
        "additionalProperties": {"type": "string", "maxLength": 5},
    }
    assert props["quantity"]["anyOf"] == [{"type": "integer"}, {"type": "string"}]
    assert props["quantity"]["x-kubernetes-int-or-string"] is True and "type" not in props["quantity"]
    assert props["quantity"]["pattern"].startswith("^(\\+|-)?")
    assert props["kind"] == {"type": "string", "enum": ["Only"], "default": "Only"}
    assert props["names"] == {"type": "array", "items": {"type": "string"}, "default": ["a"]}
    assert props["ratio"] == {"type": "number", "default": 0.5, "minimum": 0, "maximum": 1}


def test_walk_names_every_node_with_its_required_flag() -> None:
    nodes = {path: required for path, _, required in walk(structural_schema(Required))}
    assert nodes == {"": False, ".must": True, ".may": False, ".must.size": False, ".tags": False, ".tags[*]": False}


class Required(ApiModel):
    must: Inner
    may: int | None = None
    tags: list[str] = Field(default_factory=list)


class Union(BaseModel):
    value: int | str


class FreeForm(BaseModel):
    value: dict[str, Any]


class Tuple(BaseModel):
    value: tuple[int, str]


@pytest.mark.parametrize(
    ("model", "message"),
    [
        (Union, "unions other than Optional"),
        (FreeForm, "free-form map without x-kubernetes-preserve-unknown-fields"),
        (Tuple, "unsupported JSON schema keyword 'prefixItems'"),
    ],
)
def test_constructs_without_a_structural_schema_raise(model: type[BaseModel], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        structural_schema(model)
