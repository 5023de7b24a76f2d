"""Pydantic model -> structural OpenAPI v3 schema, as a CustomResourceDefinition's openAPIV3Schema needs it.

Pydantic emits JSON Schema 2020-12; the API server wants a *structural* OpenAPI v3 subset
(https://kubernetes.io/docs/tasks/extend-kubernetes/custom-resources/custom-resource-definitions/#specifying-a-structural-schema):
every node has a `type` (or is `x-kubernetes-int-or-string`), no `$ref`, no `anyOf` except the int-or-string
pair, numeric `exclusiveMinimum` becomes the OpenAPI v3 boolean next to `minimum`, and objects list their
properties without `additionalProperties: false` (unknown fields are pruned, or rejected by strict field
validation). Anything this module does not understand raises, so a new pydantic construct cannot slip into the
CRD half-converted.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import GenerateJsonSchema
from pydantic_core import core_schema

JsonObject = dict[str, Any]

# Keys copied as they are (after their values are converted where they hold schemas).
_PASSTHROUGH = frozenset(
    {
        "type",
        "description",
        "default",
        "enum",
        "pattern",
        "format",
        "minLength",
        "maxLength",
        "minItems",
        "maxItems",
        "minProperties",
        "maxProperties",
        "minimum",
        "maximum",
        "required",
        "x-kubernetes-int-or-string",
        "x-kubernetes-validations",
        "x-kubernetes-preserve-unknown-fields",
        "x-kubernetes-list-type",
        "x-kubernetes-list-map-keys",
        "x-kubernetes-map-type",
    }
)
_DROPPED = frozenset({"title"})
_EXCLUSIVE = {"exclusiveMinimum": "minimum", "exclusiveMaximum": "maximum"}


class _WithFactoryDefaults(GenerateJsonSchema):
    """Emit the defaults of `default_factory` fields, which pydantic leaves out of the schema.

    A nested model's default becomes `{}`: the API server then fills in the nested defaults itself, so a spec
    without `training` still gets `training.epochs: 3`, and the CRD does not repeat every nested default.
    """

    def get_default_value(self, schema: core_schema.WithDefaultSchema) -> Any:
        factory = schema.get("default_factory")
        if factory is None or schema.get("default_factory_takes_data"):
            return super().get_default_value(schema)
        value = factory()  # type: ignore[call-arg]
        return {} if isinstance(value, BaseModel) else value


def structural_schema(model: type[BaseModel]) -> JsonObject:
    """The structural OpenAPI v3 schema of `model`'s wire form (camelCase)."""
    raw = model.model_json_schema(by_alias=True, mode="validation", schema_generator=_WithFactoryDefaults)
    return _convert(raw, raw.get("$defs", {}))


def _convert(node: JsonObject, defs: dict[str, JsonObject]) -> JsonObject:
    node = _inline(node, defs)
    if node.get("x-kubernetes-int-or-string"):
        node = _int_or_string(node)
    out: JsonObject = {}
    for key, value in node.items():
        if key in _DROPPED or (key == "default" and value is None):
            continue
        if key == "description":
            # Docstrings wrap at the source's line length; kubectl explain re-wraps anyway.
            out[key] = " ".join(value.split())
        elif key in _EXCLUSIVE:
            out[_EXCLUSIVE[key]] = value
            out[key] = True
        elif key == "properties":
            out[key] = {name: _convert(child, defs) for name, child in value.items()}
        elif key == "items":
            out[key] = _convert(value, defs)
        elif key == "additionalProperties":
            if isinstance(value, dict) and value:
                out[key] = _convert(value, defs)
            # `false` is what pruning already does; `true`/`{}` comes with preserve-unknown-fields.
            elif value is True and not node.get("x-kubernetes-preserve-unknown-fields"):
                raise ValueError(f"free-form map without x-kubernetes-preserve-unknown-fields: {node}")
        elif key == "const":
            # Literal["x"]: OpenAPI v3.0 has no const; a one-value enum says the same.
            out["enum"] = [value]
        elif key == "anyOf":
            out[key] = value  # only the int-or-string pair survives _inline
        elif key in _PASSTHROUGH:
            out[key] = value
        else:
            raise ValueError(f"unsupported JSON schema keyword {key!r} in {node}")
    if "type" not in out and not out.get("x-kubernetes-int-or-string"):
        raise ValueError(f"schema node without a type: {node}")
    return out


def _inline(node: JsonObject, defs: dict[str, JsonObject]) -> JsonObject:
    """Resolve `$ref` and collapse `anyOf: [X, null]` into X; the outer node's keys (field docstrings) win."""
    node = {k: v for k, v in node.items() if k != "$defs"}
    if "$ref" in node:
        target = defs[node.pop("$ref").removeprefix("#/$defs/")]
        return _inline({**target, **node}, defs)
    if "anyOf" in node and not node.get("x-kubernetes-int-or-string"):
        options = [option for option in node.pop("anyOf") if option != {"type": "null"}]
        if len(options) != 1:
            raise ValueError(f"unions other than Optional[X] have no structural schema: {options}")
        return _inline({**options[0], **node}, defs)
    return node


def _int_or_string(node: JsonObject) -> JsonObject:
    # The API server requires exactly this anyOf (and no type) next to x-kubernetes-int-or-string.
    node = {k: v for k, v in node.items() if k != "type"}
    node["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    return node


def walk(schema: JsonObject, path: str = "", required: bool = False) -> list[tuple[str, JsonObject, bool]]:
    """Every node of a structural schema: (path such as `.training.epochs` or `.x[*]`, node, required)."""
    nodes = [(path, schema, required)]
    for name, child in sorted(schema.get("properties", {}).items()):
        nodes += walk(child, f"{path}.{name}", name in schema.get("required", []))
    if "items" in schema:
        nodes += walk(schema["items"], f"{path}[*]")
    if isinstance(schema.get("additionalProperties"), dict):
        nodes += walk(schema["additionalProperties"], f"{path}.*", False)
    return nodes


__all__ = ["JsonObject", "structural_schema", "walk"]
