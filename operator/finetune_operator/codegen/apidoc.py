"""docs/api.md: the field reference and CEL rules, rendered from the generated CRDs (not typed by hand)."""

from __future__ import annotations

from finetune_operator.api.base import DNS1123_LABEL_PATTERN, QUANTITY_PATTERN, SEMVER_PATTERN
from finetune_operator.codegen.openapi import JsonObject, walk

# Long regexes read better by name; any other pattern is shown as written.
_PATTERN_NAMES = {
    DNS1123_LABEL_PATTERN: "DNS-1123 label",
    SEMVER_PATTERN: "semver 2.0.0",
    QUANTITY_PATTERN: "quantity",
}

_INTRO = """# API reference: finetune.dev/v1alpha1

Generated from the pydantic models in `operator/finetune_operator/api/`, together with `crds/`, by

    {command}            # rewrite crds/*.yaml and this file
    {command} --check    # exit 1 with a diff when they drift from the models

Do not edit: change the models, run the command, commit the result (`tests/unit/test_crd.py` fails on drift).

The API server enforces everything below at apply time: types, bounds, enums and patterns from the OpenAPI
schema, unknown fields are rejected by `kubectl apply` (strict field validation) or pruned, and the CEL rules
(`x-kubernetes-validations`) check what OpenAPI cannot, including immutability on update (`oldSelf`).
"""


def render(crds: list[JsonObject], command: str) -> str:
    sections = [_INTRO.format(command=command)]
    for crd in crds:
        names = crd["spec"]["names"]
        schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
        sections.append(
            f"## {names['kind']}\n\n`kubectl get {names['plural']}` "
            f"(short names: {', '.join(names['shortNames'])}; category: {', '.join(names['categories'])}). "
            f"{schema['description']}\n"
        )
        for part in ("spec", "status"):
            if part in schema["properties"]:
                sections.append(_fields(part, schema["properties"][part]))
        sections.append(_rules(schema))
    return "\n".join(sections)


def _fields(part: str, schema: JsonObject) -> str:
    rows = ["| field | type | default | bounds | description |", "|---|---|---|---|---|"]
    for path, node, required in walk(schema, part):
        if path == part:
            continue
        rows.append(
            f"| `{path}` | {_type(node)}{' (required)' if required else ''} | {_default(node)} | "
            f"{_bounds(node)} | {_cell(node.get('description', ''))} |"
        )
    return f"### {part}\n\n" + "\n".join(rows) + "\n"


def _rules(schema: JsonObject) -> str:
    rows = ["| on (`self`) | reported at | rule | message |", "|---|---|---|---|"]
    for path, node, _ in walk(schema):
        for rule in node.get("x-kubernetes-validations", []):
            reported = f"`{path}{rule['fieldPath']}`" if "fieldPath" in rule else ""
            rows.append(f"| `{path}` | {reported} | `{_cell(rule['rule'])}` | {rule['message']} |")
    return "### CEL rules\n\n" + "\n".join(rows) + "\n"


def _type(node: JsonObject) -> str:
    if node.get("x-kubernetes-int-or-string"):
        return "int or string"
    if node["type"] == "array":
        return f"list of {_type(node['items'])}"
    if node["type"] == "object" and isinstance(node.get("additionalProperties"), dict):
        return f"map of {_type(node['additionalProperties'])}"
    return str(node["type"])


def _default(node: JsonObject) -> str:
    if "default" not in node:
        return ""
    value = node["default"]
    text = "{}" if value == {} else str(value).lower() if isinstance(value, bool) else str(value)
    return f"`{text}`"


def _bounds(node: JsonObject) -> str:
    bounds: list[str] = []
    if "minimum" in node:
        bounds.append(f"{'>' if node.get('exclusiveMinimum') else '>='} {node['minimum']}")
    if "maximum" in node:
        bounds.append(f"{'<' if node.get('exclusiveMaximum') else '<='} {node['maximum']}")
    for key, label in (
        ("minLength", "min length"),
        ("maxLength", "max length"),
        ("minItems", "min items"),
        ("maxItems", "max items"),
        ("maxProperties", "max entries"),
    ):
        if key in node:
            bounds.append(f"{label} {node[key]}")
    if "enum" in node:
        bounds.append("one of " + ", ".join(f"`{value}`" for value in node["enum"]))
    if "pattern" in node:
        pattern = node["pattern"]
        bounds.append(_PATTERN_NAMES.get(pattern, f"`{_cell(pattern)}`"))
    return "; ".join(bounds)


def _cell(text: str) -> str:
    # A bare | ends a Markdown table cell, even inside backticks.
    return text.replace("|", "\\|")
