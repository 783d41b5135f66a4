"""The layers run one way: risk/ is the library and imports no top-level script, and no project module is
part of an import cycle, counting every import (inside functions and under TYPE_CHECKING too)."""
from __future__ import annotations

import ast
from pathlib import Path

from conftest import REPO

SCRIPTS = {p.stem for p in REPO.glob("*.py") if "." not in p.stem}  # gunicorn.conf.py is no module


def module_name(path: Path) -> str:
    """risk/ledger/files.py -> risk.ledger.files; a package is its __init__.py (risk/ledger/__init__.py)."""
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


LIBRARY_PATHS = {module_name(p): p for p in (REPO / "risk").rglob("*.py") if module_name(p) != "risk"}
LIBRARY = set(LIBRARY_PATHS)


def imported(path: Path) -> set[str]:
    """The project modules `path` imports anywhere in its body."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
    return found & (SCRIPTS | LIBRARY)


def graph() -> dict[str, set[str]]:
    modules = {**{name: REPO / f"{name}.py" for name in SCRIPTS}, **LIBRARY_PATHS}
    return {name: imported(path) - {name} for name, path in modules.items()}


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in sorted(edges[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while (top := stack.pop()) != node:
                component.append(top)
            if component:
                found.append(sorted([node, *component]))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def test_the_library_imports_no_top_level_script() -> None:
    upward = {name: sorted(targets & SCRIPTS) for name, targets in graph().items() if name in LIBRARY}
    assert {name: targets for name, targets in upward.items() if targets} == {}


def test_no_project_module_is_in_an_import_cycle() -> None:
    assert cycles(graph()) == []


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_the_import_reader_sees_imports_inside_functions_and_type_checking(tmp_path: Path) -> None:
    path = tmp_path / "m.py"
    path.write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from app import create_app\n"
                    "def f():\n    import training\n    from risk import ledger\n", encoding="utf-8")
    assert imported(path) == {"app", "training", "risk.ledger"}


def test_the_feature_names_are_written_only_in_the_contract() -> None:
    """Tests, benches and the library take the columns from risk.contract; only the contract, the shipped data
    and the docs spell the features out (a fourth feature is one SCHEMA line)."""
    from risk import contract

    spelled = []
    for folder in ("risk", "tests", "bench"):
        for path in sorted((REPO / folder).rglob("*.py")):
            text = path.read_text(encoding="utf-8")
            if path.name != "contract.py" and any(name in text for name in contract.FEATURES):
                spelled.append(str(path.relative_to(REPO)))
    spelled += [p.name for p in REPO.glob("*.py") if any(n in p.read_text(encoding="utf-8") for n in contract.FEATURES)]
    assert spelled == []
