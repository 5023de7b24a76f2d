"""Every YAML file of the repository is read as the API server reads it: a repeated key is an error."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

import strictyaml

ROOT = Path(__file__).resolve().parents[2]


def tracked_yaml_files() -> list[Path]:
    listed = subprocess.run(
        ["git", "-C", str(ROOT), "ls-files", "*.yaml", "*.yml"], capture_output=True, text=True, check=True
    )
    return [ROOT / name for name in listed.stdout.split()]


def test_a_repeated_key_is_an_error_at_any_depth() -> None:
    with pytest.raises(strictyaml.DuplicateKeyError, match="duplicate key 'tolerations'"):
        strictyaml.load("spec:\n  resources:\n    tolerations: []\n    tolerations: [a]\n")
    assert list(strictyaml.load_all("a: 1\n---\na: 2\n")) == [{"a": 1}, {"a": 2}]


@pytest.mark.parametrize("path", tracked_yaml_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_yaml_file_has_no_repeated_keys(path: Path) -> None:
    list(strictyaml.load_all(path.read_text()))  # raises DuplicateKeyError on a repeated key
