"""The dev tooling's one layering rule: bench/ may use hack/, hack/ never imports bench/.

hack/ holds what the tests, the demo and the benchmarks all build on (the local cluster, the session corpus
generator); bench/ holds measurements nothing else should depend on. import-linter only sees installed
packages and hack/'s scripts are not modules (make-sample-sessions.py), so the rule is checked on the source.
"""

from __future__ import annotations

import ast
from pathlib import Path

HACK = Path(__file__).resolve().parents[2] / "hack"
FORBIDDEN = "bench"


def imported_modules(source: str) -> list[str]:
    """Every module an `import` or `from ... import` statement in `source` names (relative ones as written)."""
    names: list[str] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.append(node.module)
    return names


def bench_imports(source: str) -> list[str]:
    return [name for name in imported_modules(source) if name.split(".")[0] == FORBIDDEN]


def test_hack_never_imports_bench() -> None:
    files = sorted(HACK.rglob("*.py"))
    assert len(files) > 5, "hack/ moved? this test would check nothing"
    offenders = {str(path.relative_to(HACK)): found for path in files if (found := bench_imports(path.read_text()))}
    assert offenders == {}, f"hack/ must not import bench/ (move what both need into hack/): {offenders}"


def test_the_check_sees_every_form_of_import() -> None:
    source = (
        "import bench\nimport bench.curation.cache as cache\nfrom bench.curation import run\n"
        "def later():\n    from bench.scale import run\n"
        "import benchmark\nfrom localcluster import kwok\nfrom . import bench\n"
    )
    assert bench_imports(source) == ["bench", "bench.curation.cache", "bench.curation", "bench.scale"]
