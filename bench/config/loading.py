"""YAML -> typed config, with errors that name the file and the key path."""
from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from bench.errors import UserError

M = TypeVar("M", bound=BaseModel)


def _key_path(loc: tuple) -> str:
    parts = []
    for item in loc:
        if isinstance(item, int):
            parts.append(f"[{item}]")
        else:
            parts.append(("." if parts else "") + str(item))
    return "".join(parts) or "<root>"


def _yaml_loc(loc: tuple, data: Any) -> tuple:
    """Drop the entries pydantic adds for tagged unions (the tag value), so the path is the YAML path."""
    out, cur = [], data
    for item in loc:
        if isinstance(cur, dict) and item not in cur and item in cur.values():
            continue  # a discriminator tag such as model.head.<"ifa">
        out.append(item)
        if isinstance(cur, dict):
            cur = cur.get(item)
        elif isinstance(cur, (list, tuple)) and isinstance(item, int) and item < len(cur):
            cur = cur[item]
        else:
            cur = None
    return tuple(out)


def format_validation_error(exc: ValidationError, source: str, data: Any = None) -> str:
    """One line: `source: key.path: message` for the first error (+N more)."""
    errors = exc.errors()
    first = errors[0]
    loc = _yaml_loc(tuple(first["loc"]), data)
    msg = first["msg"]
    if first["type"] == "extra_forbidden":
        msg = "unknown key"
    elif first["type"] == "missing":
        msg = "required key is missing"
    more = f" (+{len(errors) - 1} more)" if len(errors) > 1 else ""
    return f"{source}: {_key_path(loc)}: {msg}{more}"


def validate(model_cls: type[M], data: Any, source: str = "<config>") -> M:
    try:
        return model_cls.model_validate(data)
    except ValidationError as exc:
        raise UserError(format_validation_error(exc, source, data)) from None


def read_yaml(path: str | Path) -> Any:
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: no such file")
    try:
        return yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        problem = getattr(exc, "problem", None) or "invalid YAML"
        raise UserError(f"{path}: malformed YAML{where}: {problem}") from None


def load_config(model_cls: type[M], path: str | Path) -> M:
    data = read_yaml(path)
    if not isinstance(data, dict):
        raise UserError(f"{path}: expected a mapping at the top level, got {type(data).__name__}")
    return validate(model_cls, data, str(path))
