"""A generator of steps does nothing until it is driven: a call whose result is thrown away is a
silent no-op, and one unpacked as if it were the result unpacks the steps. Every call of a function
of steps in the tree is driven (by `finish`, `run_in_slices`, `yield from`) or kept."""

from __future__ import annotations

import ast
import functools
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TREES = ("monitor", "tests", "bench")


def _files() -> Iterator[Path]:
    for tree in TREES:
        yield from (ROOT / tree).rglob("*.py")


@functools.cache
def _parsed(path: Path) -> ast.Module:
    return ast.parse(path.read_text())


def _names_of_steps(files: list[Path]) -> set[str]:
    """Functions of the package annotated to return steps, less names that its other functions share
    (a call by such a name cannot be told apart here)."""
    steps: set[str] = set()
    others: set[str] = set()
    for path in files:
        for node in ast.walk(_parsed(path)):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                returns = ast.unparse(node.returns) if node.returns is not None else ""
                is_steps = isinstance(node, ast.FunctionDef) and returns.startswith("Steps[")
                if path.is_relative_to(ROOT / "monitor"):
                    (steps if is_steps else others).add(node.name)
    return steps - others


def _dropped_call(node: ast.AST) -> ast.Call | None:
    """The call of a statement of its own, or of one unpacked as if it were the result."""
    if isinstance(node, ast.Expr) and isinstance(node.value, ast.Call):
        return node.value
    if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Tuple):
        return node.value if isinstance(node.value, ast.Call) else None
    return None


def _discarded_calls(path: Path, names: set[str]) -> Iterator[str]:
    tree = _parsed(path)
    modules = {a.asname or a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    for node in ast.walk(tree):
        call = _dropped_call(node)
        if call is None:
            continue
        func = call.func
        if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) and func.value.id in modules:
            continue  # json.dump(...), asyncio.run(...): another module's function
        name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
        if name in names:
            yield f"{path.relative_to(ROOT)}:{call.lineno}: {ast.unparse(node)[:80]}"


def test_the_functions_of_steps_are_found() -> None:
    names = _names_of_steps(list(_files()))
    assert {"apply_listing", "publish", "rank"} <= names


def test_no_call_throws_away_a_generator_of_steps() -> None:
    files = list(_files())
    names = _names_of_steps(files)
    assert [line for path in files for line in _discarded_calls(path, names)] == []
