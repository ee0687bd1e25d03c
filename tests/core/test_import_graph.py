"""The import graph, read from the source: arrows point down and nothing imports in a circle.

Layers: the core (``lstmq``) imports neither side; the producer and the worker never import each
other (what both need, such as sending a job's pending documents, lives in the core);
``worker/shapes`` (the world and its oracle) imports nothing from ``worker/ml``; the two model
families under ``worker/ml`` share code only through ``worker/ml`` itself. Imports inside
functions count as arrows too (hiding an arrow in a function does not remove it), and each one
must carry a comment saying why it is there (to keep torch or another heavy dependency out of a
process that does not need it).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.support.processes import ROOT

# Folder of the checkout -> the package it installs as (pyproject's package-dir).
PACKAGES = {
    "lstmq": "lstmq",
    "producer": "lstmq.producer",
    "worker": "lstmq.worker",
    "api": "lstmq.api",
    "bench": "lstmq.bench",
}
CORE = "lstmq"  # lstmq itself, without the sides mapped into it
SIDES = tuple(package for package in PACKAGES.values() if package != CORE)
# (importer prefix, imported prefix): arrows that must not exist.
FORBIDDEN = [
    (CORE, "lstmq.producer"),
    (CORE, "lstmq.worker"),
    (CORE, "lstmq.api"),
    ("lstmq.producer", "lstmq.worker"),
    ("lstmq.worker", "lstmq.producer"),
    ("lstmq.api", "lstmq.worker"),
    ("lstmq.producer", "lstmq.api"),
    ("lstmq.worker", "lstmq.api"),
    ("lstmq.worker.shapes", "lstmq.worker.ml"),
    ("lstmq.worker.ml.generator", "lstmq.worker.ml.classifier"),
    ("lstmq.worker.ml.classifier", "lstmq.worker.ml.generator"),
    # The benches measure every side; nothing but the command table imports them.
    (CORE, "lstmq.bench"),
    ("lstmq.producer", "lstmq.bench"),
    ("lstmq.worker", "lstmq.bench"),
    ("lstmq.api", "lstmq.bench"),
]


def module_name(path: Path) -> str:
    folder, *parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join([PACKAGES[folder], *(parts[:-1] if parts[-1] == "__init__" else parts)])


def project_modules() -> dict[str, Path]:
    found = {}
    for folder in PACKAGES:
        for path in sorted((ROOT / folder).rglob("*.py")):
            if "migrations" not in path.parts:
                found[module_name(path)] = path
    return found


MODULES = project_modules()


def imported(node: ast.AST, importer: str) -> list[str]:
    """Project modules named by one import statement (``from pkg import mod`` resolves to mod)."""
    if isinstance(node, ast.Import):
        names = [alias.name for alias in node.names]
    else:
        base = node.module or ""
        if node.level:  # relative import
            base = ".".join(importer.split(".")[: -node.level] + ([base] if base else []))
        names = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base for alias in node.names]
    return [name for name in names if within(name, CORE) or any(within(name, side) for side in SIDES)]


def arrows(module: str) -> list[tuple[str, ast.stmt, bool]]:
    """(imported module, statement, inside a function) for each project import of ``module``."""
    tree = ast.parse(MODULES[module].read_text())
    out = []

    def visit(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.Import | ast.ImportFrom):
                out.extend((name, child, in_function) for name in imported(child, module))
            visit(child, in_function or isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef))

    visit(tree, False)
    return out


def graph() -> dict[str, set[str]]:
    return {module: {target for target, _, _ in arrows(module) if target in MODULES} for module in MODULES}


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def connect(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in edges.get(node, ()):
            if nxt not in index:
                connect(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            connect(node)
    return found


def within(module: str, prefix: str) -> bool:
    """``module`` is ``prefix`` or below it; the core is lstmq less the sides mapped into it."""
    if prefix == CORE:
        return module.split(".")[0] == CORE and not any(within(module, side) for side in SIDES)
    return module == prefix or module.startswith(prefix + ".")


def test_the_walk_sees_the_packages_and_their_arrows():
    # Guards the tests below against passing on an empty or unreadable graph.
    edges = graph()
    assert {"lstmq.cli", "lstmq.producer.submit", "lstmq.worker.tasks"} <= edges.keys()
    assert "lstmq.errors" in edges["lstmq.producer.submit"]


def test_no_module_imports_in_a_circle():
    assert cycles(graph()) == []


def test_cycle_finder_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


@pytest.mark.parametrize("importer, target", FORBIDDEN)
def test_arrows_point_down(importer, target):
    wrong = sorted(
        (module, name)
        for module in MODULES
        if within(module, importer)
        for name, _, _ in arrows(module)
        if within(name, target)
    )
    assert wrong == []


def test_every_import_inside_a_function_says_why():
    silent = []
    for module, path in MODULES.items():
        lines = path.read_text().splitlines()
        for name, node, in_function in arrows(module):
            around = lines[node.lineno - 2 : node.end_lineno]
            if in_function and not any("#" in line for line in around):
                silent.append(f"{module}:{node.lineno} imports {name}")
    assert sorted(set(silent)) == []
