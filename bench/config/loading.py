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
    msg = first["msg"]
    if first["type"] == "extra_forbidden":
        msg = "unknown key"
    elif first["type"] == "missing":
        msg = "required key is missing"
    more = f" (+{len(errors) - 1} more)" if len(errors) > 1 else ""
    return f"{source}: {error_key(first, data)}: {msg}{more}"


def error_key(error: dict, data: Any = None) -> str:
    """The dotted key a pydantic error is about: its location, plus the key a model-level check named."""
    loc = _yaml_loc(tuple(error["loc"]), data)
    if error["type"] in ("bool_not_number", "key_conflict"):  # raised by the model, about one of its keys
        loc += tuple(error["ctx"]["key"].split("."))
    return _key_path(loc)


def validate(model_cls: type[M], data: Any, source: str = "<config>") -> M:
    try:
        return model_cls.model_validate(data)
    except ValidationError as exc:
        raise UserError(format_validation_error(exc, source, data)) from None


class UniqueKeyLoader(yaml.SafeLoader):
    """yaml.SafeLoader that refuses a mapping with the same key twice (PyYAML keeps the last one silently)."""

    def construct_mapping(self, node, deep=False):
        if isinstance(node, yaml.MappingNode):
            seen: dict = {}
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue  # `<<: *anchor` merges are allowed to repeat keys, by design
                key = self.construct_object(key_node, deep=True)
                try:
                    first = seen.get(key)
                except TypeError:
                    continue  # unhashable key: the base class reports it
                if first is not None:
                    raise DuplicateKeyError(key, first, key_node.start_mark.line + 1)
                seen[key] = key_node.start_mark.line + 1
        return super().construct_mapping(node, deep=deep)


class DuplicateKeyError(yaml.YAMLError):
    def __init__(self, key, first_line: int, second_line: int):
        super().__init__(f"duplicate key {key!r} (line {first_line} and line {second_line})")
        self.key, self.first_line, self.second_line = key, first_line, second_line


def parse_yaml(text: str, source: str = "<yaml>") -> Any:
    """YAML text -> Python values through the project's one loader (safe, duplicate keys refused)."""
    try:
        return yaml.load(text, Loader=UniqueKeyLoader)  # noqa: S506 - UniqueKeyLoader is a SafeLoader
    except DuplicateKeyError as exc:
        raise UserError(f"{source}: {exc}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        problem = getattr(exc, "problem", None) or "invalid YAML"
        raise UserError(f"{source}: malformed YAML{where}: {problem}") from None


def _decode(raw: bytes, path: Path) -> str:
    """UTF-8 text, or one line saying what the file is instead (binary, UTF-16/32, another encoding)."""
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise UserError(f"{path}: is UTF-16 or UTF-32 encoded; save it as UTF-8")
    if b"\x00" in raw:
        raise UserError(f"{path}: is a binary file (contains NUL bytes), not a YAML text file")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise UserError(f"{path}: is not UTF-8 text (byte 0x{raw[exc.start]:02x} at offset {exc.start})") from None


def read_yaml(path: str | Path) -> Any:
    """Every YAML file the suite reads comes through here (tests/config/test_one_yaml_loader.py enforces it)."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: no such file")
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise UserError(f"{path}: cannot be read ({exc.strerror})") from None
    return parse_yaml(_decode(raw, path), str(path))


def load_config(model_cls: type[M], path: str | Path) -> M:
    data = read_yaml(path)
    if not isinstance(data, dict):
        raise UserError(f"{path}: expected a mapping at the top level, got {type(data).__name__}")
    return validate(model_cls, data, str(path))
