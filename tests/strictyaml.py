"""YAML as the API server reads it: a mapping that repeats a key is an error, not "the last one wins".

PyYAML's safe_load keeps the last of duplicate keys silently, so a manifest with `env:` twice would pass a test
and then be refused by `kubectl apply` (strict field validation) or, worse, apply the wrong value. Tests read
every manifest through these functions.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import yaml


class DuplicateKeyError(yaml.constructor.ConstructorError):
    pass


class StrictLoader(yaml.SafeLoader):
    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)  # type: ignore[no-untyped-call]
            if key in seen:
                raise DuplicateKeyError(
                    "while constructing a mapping", node.start_mark, f"found duplicate key {key!r}", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def load(text: str) -> Any:
    return yaml.load(text, Loader=StrictLoader)


def load_all(text: str) -> Iterator[Any]:
    return yaml.load_all(text, Loader=StrictLoader)
