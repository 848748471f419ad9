"""Imports flow one way: no module imports a layer above its own (the package docstring's map)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "netfly_batch"

# Lowest first. A module may import its own group and any group of a lower layer; groups
# of one layer are peers that must not import each other.
LAYERS: list[set[str]] = [
    {"core"},
    {"wire"},
    {"http"},
    {"batch", "providers", "simulator"},
    {"outputs"},
    {"face"},
]
# Top-level modules, grouped: the core below everything, the face above everything.
TOP_LEVEL = {
    "errors": "core",
    "settings": "core",
    "results": "core",
    "durations": "core",
    "cli": "face",
    "api": "face",
    "__init__": "face",
    "__main__": "face",
}


def group_of(module: str) -> str:
    """`netfly_batch.http.client` -> `http`; `netfly_batch.errors` -> `core`."""
    parts = module.split(".")
    first = parts[1] if len(parts) > 1 else "__init__"
    return TOP_LEVEL.get(first, first)


def layer_of(group: str) -> int:
    for rank, groups in enumerate(LAYERS):
        if group in groups:
            return rank
    raise AssertionError(f"module group {group!r} is in no layer of LAYERS: add it")


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported_modules(path: Path, root: Path) -> list[tuple[int, str]]:
    """(line, absolute module) of every import of the package by one file, including
    those inside functions and under TYPE_CHECKING."""
    name = module_name(path, root)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join([*base, *([node.module] if node.module else [])])
            else:
                target = node.module or ""
            if node.module is None:  # `from . import a`: each name may be a module
                found += [(node.lineno, f"{target}.{alias.name}") for alias in node.names]
            else:
                found.append((node.lineno, target))
    return [(line, module) for line, module in found if module.split(".")[0] == root.name]


def upward_imports(root: Path) -> list[str]:
    """Every import in the package at `root` that breaks the layering, as text."""
    problems = []
    for path in sorted(root.rglob("*.py")):
        importer = module_name(path, root)
        mine = group_of(importer)
        for line, module in imported_modules(path, root):
            theirs = group_of(module)
            if theirs == mine or layer_of(theirs) < layer_of(mine):
                continue
            problems.append(
                f"{path.relative_to(root.parent)}:{line}: {mine} imports "
                f"{module} ({theirs} is not below {mine})"
            )
    return problems


def test_no_module_imports_a_layer_above_its_own():
    """Imports go down the layers (cli -> outputs -> batch -> http -> wire -> core)."""
    assert upward_imports(PACKAGE) == []


@pytest.mark.parametrize(
    ("where", "line"),
    [
        ("wire/sse.py", "from ..batch import ledger\n"),
        ("http/client.py", "from netfly_batch.cli import main\n"),
        ("batch/plan.py", "from ..providers import FreeNetfly\n"),
        ("errors.py", "def f():\n    from .wire import answer\n"),
    ],
    ids=["wire up to batch", "absolute, http up to cli", "peer to peer", "core, in a function"],
)
def test_the_check_finds_an_upward_import(tmp_path, where, line):
    """The check itself can fail: an import that goes up (or across) is reported."""
    root = tmp_path / "netfly_batch"
    for relative in (
        "__init__.py",
        "errors.py",
        "wire/__init__.py",
        "wire/sse.py",
        "wire/answer.py",
        "http/__init__.py",
        "http/client.py",
        "batch/__init__.py",
        "batch/plan.py",
        "batch/ledger.py",
        "providers/__init__.py",
        "cli/__init__.py",
    ):
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        (root / relative).write_text("")
    assert upward_imports(root) == []
    (root / where).write_text(line)
    (problem,) = upward_imports(root)
    assert problem.startswith(f"netfly_batch/{where}:")
