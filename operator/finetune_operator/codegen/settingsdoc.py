"""The operator's settings table in docs/install.md, from `finetune_operator.config` (names, defaults, docstrings)."""

from __future__ import annotations

import ast
import dataclasses
import inspect
import itertools

from finetune_operator import config


def _docstrings() -> dict[str, str]:
    """Attribute docstrings of `config.Settings` (the string literal after each field), by field name."""
    tree = ast.parse(inspect.getsource(config.Settings))
    body = tree.body[0].body  # type: ignore[attr-defined]
    docs: dict[str, str] = {}
    for field, after in itertools.pairwise(body):
        named = isinstance(field, ast.AnnAssign) and isinstance(field.target, ast.Name)
        if named and isinstance(after, ast.Expr) and isinstance(after.value, ast.Constant):
            docs[field.target.id] = " ".join(str(after.value.value).split())
    return docs


def _default(value: object) -> str:
    if value == ():
        return "empty (all)"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"  # as the variable is spelled
    return f"`{value}`"


def settings_table() -> str:
    docs = _docstrings()
    rows = ["| variable | default | meaning |", "|---|---|---|"]
    for field in dataclasses.fields(config.Settings):
        rows.append(
            f"| `{config.ENV_VARIABLES[field.name]}` | {_default(field.default)} | {docs.get(field.name, '')} |"
        )
    return "\n".join(rows)
