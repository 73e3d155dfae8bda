"""The package's shape, as docs/ARCHITECTURE.md draws it: which part may import which, and the size limits that keep
every file and function readable. Reads the source with `ast`; imports nothing of obliviate."""
import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "obliviate"
# part -> the parts it may import (itself always). A part is the first name under obliviate/ ("files" is files.py).
ALLOWED = {
    "kernels": set(),
    "files": set(),
    "locks": {"files"},
    "data": {"files", "locks"},
    "models": {"files", "locks", "kernels"},
    "train": {"files", "locks", "kernels", "models", "data"},
    "eval": {"files", "locks", "kernels", "models", "data"},
    "recipes": {"files", "locks", "models", "data", "train", "eval", "sweep"},
    "sweep": {"files", "locks", "models", "data", "train", "eval"},
    "bench": {"files", "locks", "kernels", "models", "data", "train", "eval"},
    "cli": {"files", "locks", "kernels", "models", "data", "train", "eval", "recipes", "sweep", "bench"},
}
MAX_FILE_LINES = 400
MAX_FUNCTION_LINES = 60


def part_of(path: Path) -> str:
    rel = path.relative_to(PACKAGE)
    return rel.parts[0].removesuffix(".py") if len(rel.parts) > 1 or rel.name != "__init__.py" else "__init__"


def obliviate_imports(tree: ast.AST) -> list[tuple[int, str]]:
    """(line, part) of every `obliviate.<part>` import anywhere in the module (functions included)."""
    out = []
    for node in ast.walk(tree):
        names = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module] if node.module != "obliviate" else [f"obliviate.{a.name}" for a in node.names]
        for name in names:
            if name.startswith("obliviate."):
                out.append((node.lineno, name.split(".")[1]))
    return out


def sources():
    return sorted(PACKAGE.rglob("*.py"))


def test_every_part_is_known():
    parts = {part_of(p) for p in sources()} - {"__init__"}
    assert parts <= set(ALLOWED), f"parts without import rules: {sorted(parts - set(ALLOWED))}"


@pytest.mark.parametrize("path", sources(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_follow_the_architecture(path):
    part = part_of(path)
    if part == "__init__":
        return  # the lazy public API names modules as strings only
    tree = ast.parse(path.read_text(encoding="utf-8"))
    bad = [f"line {line}: imports obliviate.{target}" for line, target in obliviate_imports(tree)
           if target != part and target not in ALLOWED[part] and target != "__version__"]
    assert not bad, f"{path.relative_to(PACKAGE)} ({part} may import {sorted(ALLOWED[part]) or 'nothing'}): {bad}"


def test_forbidden_import_is_caught():
    """The rule checker itself: an eval module importing training code is reported."""
    tree = ast.parse("def f():\n    from obliviate.train.loop import train\n")
    assert obliviate_imports(tree) == [(2, "train")]


@pytest.mark.parametrize("path", sources(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_files_and_functions_stay_small(path):
    text = path.read_text(encoding="utf-8")
    lines = len(text.splitlines())
    assert lines <= MAX_FILE_LINES, f"{path.relative_to(PACKAGE)}: {lines} lines"
    long = [f"{node.name} ({node.end_lineno - node.lineno + 1} lines)" for node in ast.walk(ast.parse(text))
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
            and node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES]
    assert not long, f"{path.relative_to(PACKAGE)}: functions over {MAX_FUNCTION_LINES} lines: {long}"
