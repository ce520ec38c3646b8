"""The package's layers, checked on its source: no import circles, each layer imports only
the layers below it and only through their public ``__init__``, and nothing outside the
library (tests, examples, benchmarks, docs) imports a private name.

Every import counts, a lazy one inside a function too; only imports under
``if TYPE_CHECKING:`` (which never run) are left out of the layer rules."""

from __future__ import annotations

import ast
import re
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "workflows4py"


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """The library modules ``path`` imports when it runs."""
    tree = ast.parse(path.read_text())
    typing_only = {
        id(inner)
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
        for inner in ast.walk(node)
    }
    here = _module_name(path)
    package = here if path.name == "__init__.py" else here.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in typing_only or not isinstance(node, ast.ImportFrom):
            continue
        if node.level:
            base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
            target = f"{base}.{node.module}" if node.module else base
            if node.module is None:  # from . import x
                found.update(f"{base}.{alias.name}" for alias in node.names)
                continue
        else:
            target = node.module or ""
        if target.split(".")[0] == "workflows4py":
            found.add(target)
    return found


def import_graph() -> dict[str, set[str]]:
    modules = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    return {name: {t for t in _imports(path) if t in modules} for name, path in modules.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component: list[str] = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_the_library_has_no_import_circles() -> None:
    graph = import_graph()
    assert len(graph) > 30  # the walk found the package's modules
    assert "workflows4py.definition" in graph["workflows4py.engine._core"]
    assert cycles(graph) == []


# Each layer and the layers it may import (docs/architecture.md draws them). ``_errors`` is
# the root of the exception tree, below every layer.
BELOW: dict[str, set[str]] = {
    "_errors": set(),
    "serialization": {"_errors"},
    "definition": {"_errors", "serialization"},
    "engine": {"_errors", "serialization", "definition"},
    "stores": {"_errors"},
    "runtime": {"_errors", "serialization", "definition", "engine", "stores"},
    "render": {"_errors", "serialization", "definition", "engine"},
    "cli": {"_errors", "definition", "engine", "stores", "runtime", "render", "web"},
    "testing": {"_errors", "definition", "engine", "serialization", "stores", "runtime", "render"},
    "web": {"_errors", "definition", "engine", "serialization", "stores", "runtime", "render"},
    # integrations with other libraries (optional extras): every layer below the command line
    "contrib": {
        "_errors",
        "serialization",
        "definition",
        "engine",
        "stores",
        "runtime",
        "render",
        "testing",
    },
    # the packaged examples are user code: the top level and every layer's package
    "examples": {
        "_errors",
        "serialization",
        "definition",
        "engine",
        "stores",
        "runtime",
        "render",
        "testing",
        "web",
    },
}
EDGES = {"workflows4py", "workflows4py.__main__"}  # the top level re-exports every layer
USERS = {"examples"}  # layers written as a user would: they may import the top level


def _layer(module: str) -> str:
    return module.split(".")[1]


def layer_violations(graph: dict[str, set[str]]) -> list[str]:
    found: list[str] = []
    for module, targets in sorted(graph.items()):
        if module in EDGES:
            continue
        here = _layer(module)
        for target in sorted(targets):
            if target in EDGES:
                if here not in USERS:
                    found.append(f"{module} imports the top level {target}")
                continue
            there = _layer(target)
            if there == here:
                continue
            if there not in BELOW[here]:
                found.append(f"{module} imports {target}, not below layer {here}")
            elif target.count(".") > 1:
                found.append(f"{module} reaches into {target}, not through workflows4py.{there}")
    return found


def test_every_module_belongs_to_a_layer() -> None:
    for module in import_graph():
        if module not in EDGES:
            assert _layer(module) in BELOW, f"{module} is in no layer of BELOW"


def test_each_layer_imports_only_layers_below_it_through_their_packages() -> None:
    assert layer_violations(import_graph()) == []


def test_an_upward_or_private_import_is_found() -> None:
    graph = {
        "workflows4py.definition._wio": {"workflows4py.engine"},
        "workflows4py.runtime._durable": {"workflows4py.stores._sqlite"},
        "workflows4py.stores._sqlite": {"workflows4py"},
        "workflows4py.engine._core": {"workflows4py.engine._progress", "workflows4py._errors"},
    }
    assert layer_violations(graph) == [
        "workflows4py.definition._wio imports workflows4py.engine, not below layer definition",
        "workflows4py.runtime._durable reaches into workflows4py.stores._sqlite, "
        "not through workflows4py.stores",
        "workflows4py.stores._sqlite imports the top level workflows4py",
    ]


ROOT = PACKAGE.parents[1]
OUTSIDE = ["tests", "src/workflows4py/examples", "benchmarks"]


def _private_imports(source: str) -> list[str]:
    """``import``/``from`` statements of ``source`` that name a private library module or name."""
    found: list[str] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and not node.level and node.module:
            parts = node.module.split(".")
            names = [a.name for a in node.names]
        elif isinstance(node, ast.Import):
            parts = [p for a in node.names for p in a.name.split(".")]
            names = []
        else:
            continue
        if parts[0] != "workflows4py":
            continue
        if any(p.startswith("_") for p in parts[1:]) or any(n.startswith("_") for n in names):
            found.append(ast.unparse(node))
    return found


def _doc_samples() -> list[tuple[Path, str]]:
    fence = re.compile(r"```python[^\n]*\n(.*?)```", re.S)
    return [
        (path, sample)
        for path in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
        for sample in fence.findall(path.read_text())
    ]


def test_tests_examples_benchmarks_and_docs_import_only_public_names() -> None:
    offenders: list[str] = []
    for folder in OUTSIDE:
        for path in sorted((ROOT / folder).rglob("*.py")):
            if "typing_cases" in path.parts:
                continue
            offenders += [
                f"{path.relative_to(ROOT)}: {i}" for i in _private_imports(path.read_text())
            ]
    for path, sample in _doc_samples():
        try:
            offenders += [f"{path.relative_to(ROOT)}: {i}" for i in _private_imports(sample)]
        except SyntaxError:
            continue  # a sample that is not meant to parse (a shell session, a fragment)
    assert offenders == []
    assert _private_imports("from workflows4py.stores._sqlite import SqliteStore")
    assert _private_imports("from workflows4py.stores import _SQL")
    assert not _private_imports("from workflows4py.stores import SqliteStore")


def test_a_circle_is_found() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []
