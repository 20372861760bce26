"""Make mmcv-lite's `mmcv.ops` importable without compiled ops, in the parity venv only (never the project's).

mmseg imports `mmcv.ops` at import time; mmcv-lite ships the Python files but no `_ext` library. Every
`from .x import a, b` of the package's __init__ is wrapped so that a failing import binds a, b to stubs that raise
when called. None of the models compared uses a compiled op, so a stub being called is a parity-check failure.
Idempotent: the original file is kept beside it as __init__.py.orig.
"""
import ast
import shutil
import sys
from pathlib import Path

STUB = '''
def _missing_op(name):
    def stub(*args, **kwargs):
        raise RuntimeError(f"mmcv-lite has no compiled op {name!r}")
    stub.__name__ = name
    return stub
'''


def patch(init: Path) -> None:
    original = init.with_name("__init__.py.orig")
    if not original.exists():
        shutil.copyfile(init, original)
    source = original.read_text()
    tree = ast.parse(source)
    lines = [STUB]
    for node in tree.body:
        text = ast.get_source_segment(source, node)
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            names = [a.asname or a.name for a in node.names]
            body = "\n".join(f"    {n} = _missing_op({n!r})" for n in names)
            lines.append(f"try:\n    {text.replace(chr(10), chr(10) + '    ')}\nexcept (ImportError, OSError):\n{body}")
        else:
            lines.append(text)
    init.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    import importlib.util

    spec = importlib.util.find_spec("mmcv")
    if spec is None:
        sys.exit("mmcv is not installed in this interpreter")
    patch(Path(spec.origin).parent / "ops" / "__init__.py")
    print("patched", Path(spec.origin).parent / "ops" / "__init__.py")
