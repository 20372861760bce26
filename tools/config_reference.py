"""Writes docs/generated/config_reference.md: every key of an experiment file, from the pydantic models (bench/config/experiment.py,
bench/config/model.py) with its type, default, allowed range and unit, and the comment beside it in the source.

    python -m tools.config_reference            # rewrite docs/generated/config_reference.md
    python -m tools.config_reference --check    # exit 1 if the committed file is not current (tests/config run it)
"""
from __future__ import annotations

import argparse
import inspect
import re
import sys
from pathlib import Path
from typing import Union, get_args, get_origin

from pydantic import BaseModel
from pydantic_core import PydanticUndefined

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "generated" / "config_reference.md"

# units by key name (the models store plain numbers)
UNITS = [
    (re.compile(r"(^|_)s$"), "seconds"), (re.compile(r"_mb$"), "MiB"), (re.compile(r"^lr$|^min_lr$"), "learning rate"),
    (re.compile(r"iters$|^iterations$|_every$"), "iterations"), (re.compile(r"size$|crop_size$"), "pixels (H, W)"),
    (re.compile(r"^mean$|^std$"), "pixel values 0-255 (R, G, B)"), (re.compile(r"_ratio$|_thresh$|^weight$"), "fraction"),
    (re.compile(r"^width$"), "x the standard channel widths"), (re.compile(r"^scales$|scale_range$"), "x the input size"),
]
HEADER = """# Config reference

Every key of an experiment file (`experiments/*.yaml`), generated from the config models by
`python -m tools.config_reference` (do not edit by hand; `tests/config/test_config_reference.py` checks it is current).
`ifa-bench config EXP.yaml` prints one experiment's resolved values and which file set each. Keys are strict: an
unknown key is an error that names it. A `sweep:` section is described in docs/sweeps.md, `base:` inheritance in
docs/training.md.
"""


def _type(annotation) -> str:
    origin = get_origin(annotation)
    if origin is Union:
        args = [a for a in get_args(annotation) if a is not type(None)]
        inner = " or ".join(_type(a) for a in args)
        return f"{inner} or null" if len(args) < len(get_args(annotation)) else inner
    if origin is not None and getattr(origin, "__name__", "") == "Literal" or str(origin) == "typing.Literal":
        return " \\| ".join(f"`{a}`" for a in get_args(annotation))
    if origin in (tuple, list):
        args = [a for a in get_args(annotation) if a is not Ellipsis]
        return f"list of {_type(args[0])}" if args else "list"
    if origin is not None and get_args(annotation):  # Annotated[int, ...] (PositiveInt)
        return _type(get_args(annotation)[0])
    return getattr(annotation, "__name__", str(annotation))


def _bounds(field) -> str:
    parts = []
    for m in field.metadata:
        for name, sign in (("gt", ">"), ("ge", ">="), ("lt", "<"), ("le", "<=")):
            v = getattr(m, name, None)
            if v is not None:
                parts.append(f"{sign} {v:g}" if isinstance(v, (int, float)) else f"{sign} {v}")
    if "PositiveInt" in str(field.annotation) or "Gt(gt=0)" in str(field.annotation):
        parts.append("> 0")
    return ", ".join(dict.fromkeys(parts))


def _default(field) -> str:
    if field.default is PydanticUndefined and field.default_factory is None:
        return "required"
    value = field.default_factory() if field.default is PydanticUndefined else field.default
    if isinstance(value, BaseModel):
        return ""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (tuple, list)):
        return "[" + ", ".join(str(v) for v in value) + "]"
    return f"{value:g}" if isinstance(value, float) else str(value)


def _comments(model: type[BaseModel]) -> dict[str, str]:
    """The comment beside each field in the model's source: after it on its line, or on the lines just above."""
    lines = inspect.getsource(model).splitlines()
    out, above = {}, []
    for line in lines[1:]:
        stripped = line.strip()
        if stripped.startswith("#"):
            above.append(stripped.lstrip("# ").strip())
            continue
        m = re.match(r"\s+(\w+)\s*:", line)
        if m and m.group(1) in model.model_fields:
            after = line.split("  # ", 1)[1].strip() if "  # " in line else ""
            out[m.group(1)] = " ".join(above + ([after] if after else []))
        above = []
    return out


def _unit(name: str) -> str:
    return next((unit for pattern, unit in UNITS if pattern.search(name)), "")


def _models(annotation) -> list[type[BaseModel]]:
    args = get_args(annotation)
    if get_origin(annotation) is not None and args:
        return [m for a in args for m in _models(a)]
    return [annotation] if isinstance(annotation, type) and issubclass(annotation, BaseModel) else []


def _section(model: type[BaseModel], prefix: str, title: str, out: list[str]) -> None:
    comments = _comments(model)
    rows, nested = [], []
    for name, field in model.model_fields.items():
        subs = _models(field.annotation)
        if subs:
            nested.append((name, subs))
            continue
        note = comments.get(name, "").replace("|", "\\|")
        rows.append(f"| `{prefix}{name}` | {_type(field.annotation)} | {_default(field)} | {_bounds(field)} | "
                    f"{_unit(name)} | {note} |")
    if rows:
        out += [f"## {title}", "", "| key | type | default | allowed | unit | notes |", "|---|---|---|---|---|---|",
                *rows, ""]
    for name, subs in nested:
        for sub in subs:
            tag = sub.model_fields.get("name")
            which = f" (name: {tag.default})" if len(subs) > 1 and tag is not None else ""
            _section(sub, f"{prefix}{name}.", f"`{prefix}{name}`{which}", out)


def render() -> str:
    from bench.config import ExperimentConfig

    out = [HEADER]
    _section(ExperimentConfig, "", "top level", out)
    return "\n".join(out).rstrip() + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if docs/generated/config_reference.md is not current")
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        current = OUT.read_text() if OUT.is_file() else ""
        if current != text:
            print(f"{OUT.relative_to(ROOT)} is not current: run `python -m tools.config_reference`", file=sys.stderr)
            return 1
        return 0
    OUT.write_text(text)
    print(f"wrote {OUT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
