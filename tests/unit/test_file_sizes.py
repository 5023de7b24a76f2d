"""Product code stays in small, obvious files: no module over 400 lines (Python or the curation step's Rust
crate), no Python function over 70.

Declarative tables may be long; they are data, not functions, and these limits count only what `ast` calls a
module or a function. Tests, benchmarks and the test-only tooling are not product code.
"""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PRODUCT = (REPO / "operator" / "finetune_operator", REPO / "trainer-image" / "finetune_trainer")
NATIVE = REPO / "trainer-image" / "native" / "src"
MAX_FILE_LINES = 400
MAX_FUNCTION_LINES = 70


def product_files() -> list[Path]:
    files = sorted(path for root in PRODUCT for path in root.rglob("*.py"))
    assert len(files) > 40, "the product packages moved? this test would check nothing"
    return files


def native_files() -> list[Path]:
    files = sorted(NATIVE.rglob("*.rs"))
    assert len(files) > 5, "the native crate moved? this test would check nothing"
    return files


def long_functions(source: str, limit: int) -> list[tuple[str, int]]:
    return [
        (node.name, node.end_lineno - node.lineno + 1)
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and node.end_lineno is not None
        and node.end_lineno - node.lineno + 1 > limit
    ]


def test_no_product_file_is_over_the_limit() -> None:
    files = [*product_files(), *native_files()]
    long = {str(p.relative_to(REPO)): n for p in files if (n := len(p.read_text().splitlines())) > MAX_FILE_LINES}
    assert long == {}, f"split these modules (at most {MAX_FILE_LINES} lines): {long}"


def test_no_product_function_is_over_the_limit() -> None:
    long = {
        str(path.relative_to(REPO)): found
        for path in product_files()
        if (found := long_functions(path.read_text(), MAX_FUNCTION_LINES))
    }
    assert long == {}, f"split these functions (at most {MAX_FUNCTION_LINES} lines): {long}"


def test_the_function_check_counts_whole_definitions() -> None:
    body = "\n".join(f"    x{i} = {i}" for i in range(70))
    assert long_functions(f"def short():\n{body[: body.rindex(chr(10))]}\n", 70) == []
    assert long_functions(f"async def long():\n{body}\n", 70) == [("long", 71)]
