"""No import circles between the project's modules (issue 26), read from the source with `ast`, no import run.

Every `import` and `from ... import` counts, at module level and inside functions (a lazy import still ties the two
modules together). `from P import N` is an edge to the module P.N when that file exists, else to P. Relative imports
are resolved against the importing file.

Packages: an edge to a package is an edge to its __init__.py, and a package's __init__ importing its own submodules
is an ordinary edge. Python's implicit edge (importing P.M first imports P) is not drawn: with it every __init__ that
re-exports a submodule would be a circle. So `P/__init__.py -> P.M` alone passes, while P.M importing P back (P.M ->
P -> P.M, the partial-initialisation trap) fails like any other circle.
"""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TOP_LEVEL = ("bench", "reports", "ifa", "baselines", "perf", "tools")


def module_files(root: Path, tops=TOP_LEVEL) -> dict[str, Path]:
    """{dotted module name: file} of every .py file under the top-level folders."""
    found = {}
    for top in tops:
        for path in sorted((root / top).rglob("*.py")):
            parts = path.relative_to(root).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            found[".".join(parts)] = path
    return found


def _targets(node: ast.AST, importer: str, is_package: bool, modules: dict[str, Path]) -> list[str]:
    if isinstance(node, ast.Import):
        names = [alias.name for alias in node.names]
    else:
        if node.level:  # relative: from the importer's package, one level up per extra dot
            package = importer.split(".") if is_package else importer.split(".")[:-1]
            base = package[: len(package) - (node.level - 1)]
            prefix = ".".join(base + ([node.module] if node.module else []))
        else:
            prefix = node.module or ""
        names = [f"{prefix}.{alias.name}" if f"{prefix}.{alias.name}" in modules else prefix for alias in node.names]
    out = []
    for name in names:
        while name and name not in modules:  # `import a.b.c` of a name inside a module: the module
            name = name.rpartition(".")[0]
        if name:
            out.append(name)
    return out


def import_graph(root: Path, tops=TOP_LEVEL) -> dict[str, set[str]]:
    """{module: the project modules it imports anywhere in its file}."""
    modules = module_files(root, tops)
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        edges = set()
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                edges.update(_targets(node, name, path.name == "__init__.py", modules))
        edges.discard(name)
        graph[name] = edges
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found = []

    def visit(start: str) -> None:  # iterative: the graph is deep enough for Python's recursion limit to matter
        work = [(start, iter(sorted(graph.get(start, ()))))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            for child in children:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
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

    for name in sorted(graph):
        if name not in index:
            visit(name)
    return sorted(found)


def _describe(component: list[str], graph: dict[str, set[str]]) -> str:
    members = set(component)
    edges = [f"{a} -> {b}" for a in component for b in sorted(graph[a] & members)]
    return "; ".join(edges)


def test_no_import_cycles():
    graph = import_graph(ROOT)
    assert len(graph) > 100, "the graph should hold the whole project"
    found = cycles(graph)
    assert not found, "import circles:\n" + "\n".join(_describe(c, graph) for c in found)


def test_nothing_below_the_commands_imports_them():
    """The CLI is the top layer: only bench/cli.py and the commands themselves import bench.commands."""
    graph = import_graph(ROOT)
    upward = sorted(f"{a} -> {b}" for a, targets in graph.items() for b in targets
                    if b.startswith("bench.commands") and not (a == "bench.cli" or a.startswith("bench.commands")))
    assert not upward, "imports of the commands from below them:\n" + "\n".join(upward)


def _write(root: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def test_a_planted_circle_is_found(tmp_path):
    _write(tmp_path, {
        "pkg/__init__.py": "from pkg.a import f\n",  # the package re-exporting its submodule: not a circle
        "pkg/a.py": "def f():\n    from pkg.sub import b\n",
        "pkg/sub/__init__.py": "",
        "pkg/sub/b.py": "from ..c import g\n",
        "pkg/c.py": "import os\nfrom pkg import a\n",  # closes a -> sub.b -> c -> a
        "pkg/d.py": "from pkg.a import f\n",
    })
    graph = import_graph(tmp_path, ("pkg",))
    assert graph["pkg.sub.b"] == {"pkg.c"}
    assert cycles(graph) == [["pkg.a", "pkg.c", "pkg.sub.b"]]


def test_a_submodule_importing_its_own_package_is_a_circle(tmp_path):
    _write(tmp_path, {"pkg/__init__.py": "from pkg.a import f\n", "pkg/a.py": "from pkg import g\n"})
    assert cycles(import_graph(tmp_path, ("pkg",))) == [["pkg", "pkg.a"]]
