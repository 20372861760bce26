"""The layers of bench/sweep: folder < spec < tasks < cost < driver (driver/cluster is part of driver). A module
imports only from its own subpackage or a lower one, at the top or inside a function alike, and no modules import
each other in a circle. Imports are read with `ast`, so nothing is imported to check them."""
import ast
from pathlib import Path

import pytest

SWEEP = Path(__file__).resolve().parents[2] / "bench" / "sweep"
LAYERS = ("folder", "spec", "tasks", "cost", "driver")


def _module_name(path: Path, root: Path) -> str:
    rel = path.relative_to(root.parent.parent).with_suffix("")
    parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
    return ".".join(parts)


def imports_of(path: Path, root: Path) -> list[tuple[int, str]]:
    """(line, imported module) of every import in the file, wherever it stands; `from a import b` counts as
    a.b when a.b is a module of the sweep package, else as a."""
    module = _module_name(path, root)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[:len(anchor) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            for alias in node.names:
                full = f"{base}.{alias.name}"
                found.append((node.lineno, full if _is_module(full, root) else base))
    return found


def _is_module(name: str, root: Path) -> bool:
    if not name.startswith("bench.sweep"):
        return False
    path = root.parent.parent.joinpath(*name.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def layer_of(module: str) -> str | None:
    parts = module.split(".")
    return parts[2] if len(parts) > 2 and parts[:2] == ["bench", "sweep"] and parts[2] in LAYERS else None


def sweep_graph(root: Path = SWEEP) -> dict[str, set[str]]:
    """{module: sweep modules it imports} of every module under bench/sweep."""
    graph = {}
    for path in sorted(root.rglob("*.py")):
        graph[_module_name(path, root)] = {name for _, name in imports_of(path, root)
                                           if name.startswith("bench.sweep.")}
    return graph


def upward_imports(root: Path = SWEEP) -> list[str]:
    bad = []
    for path in sorted(root.rglob("*.py")):
        mine = layer_of(_module_name(path, root))
        if mine is None:
            continue
        for line, name in imports_of(path, root):
            theirs = layer_of(name)
            if theirs is not None and LAYERS.index(theirs) > LAYERS.index(mine):
                bad.append(f"{path.relative_to(root)}:{line}: {mine} imports {name} ({theirs} is above {mine})")
    return bad


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every import circle among the modules of `graph` (as one path through it), found by depth-first search."""
    found, state = [], {}

    def visit(node: str, stack: list[str]) -> None:
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in graph:
                continue
            if state.get(nxt) == "open":
                found.append(stack[stack.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt, stack)
        stack.pop()
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node, [])
    return found


def _package_graph(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    """The layers' graph: an edge between two subpackages when a module of one imports a module of the other."""
    packages: dict[str, set[str]] = {layer: set() for layer in LAYERS}
    for module, names in graph.items():
        mine = layer_of(module)
        for name in names:
            theirs = layer_of(name)
            if mine and theirs and theirs != mine:
                packages[mine].add(theirs)
    return packages


def test_no_module_imports_a_higher_layer():
    assert upward_imports() == []


def test_no_import_circle_between_modules_or_layers():
    graph = sweep_graph()
    assert circles(graph) == []
    assert circles(_package_graph(graph)) == []


def test_every_module_is_in_a_layer():
    stray = [m for m in sweep_graph() if m not in ("bench.sweep",) and layer_of(m) is None]
    assert stray == []


@pytest.mark.parametrize("where, code", [
    ("folder/planted.py", "from bench.sweep.spec import trials\n"),
    ("tasks/planted.py", "def f():\n    from bench.sweep.driver.table import build_rows\n"),
    ("spec/planted.py", "def f():\n    import bench.sweep.cost.estimate\n"),
])
def test_a_planted_upward_import_is_found(tmp_path, where, code):
    tree = tmp_path / "bench" / "sweep"
    for layer in LAYERS:
        (tree / layer).mkdir(parents=True)
        (tree / layer / "__init__.py").write_text("")
    (tree / "__init__.py").write_text("")
    (tree / where).write_text(code)
    bad = upward_imports(tree)
    assert len(bad) == 1 and where in bad[0], bad


def test_a_circle_is_found():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert circles(graph) == [["a", "b", "c", "a"]]
    assert circles({"a": {"b"}, "b": set()}) == []
