"""YAML -> typed config, with errors that name the file and the key path."""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from bench.errors import UserError

M = TypeVar("M", bound=BaseModel)


def _key_path(loc: tuple) -> str:
    parts = []
    for item in loc:
        if isinstance(item, bool) or item is None:  # a YAML 1.1 `true:`/`yes:`/`null:` key, not a list index
            parts.append(("." if parts else "") + ("null" if item is None else str(item).lower()))
        elif isinstance(item, int):
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


def _non_text_key(data: Any, loc: tuple = ()) -> tuple | None:
    """The location of the first mapping key that is not text (YAML 1.1 reads `true:`, `yes:`, `null:`, `1:` as
    a boolean, null or number), or None."""
    if isinstance(data, dict):
        for key, value in data.items():
            if not isinstance(key, str):
                return loc + (key,)
            found = _non_text_key(value, loc + (key,))
            if found:
                return found
    elif isinstance(data, list):
        for i, value in enumerate(data):
            found = _non_text_key(value, loc + (i,))
            if found:
                return found
    return None


def refuse_non_text_keys(data: Any, source: str) -> None:
    bad = _non_text_key(data)
    if bad is not None:
        key = bad[-1]
        shown = "null" if key is None else str(key).lower() if isinstance(key, bool) else str(key)
        where = f"{_key_path(bad[:-1])}: " if bad[:-1] else ""
        raise UserError(f"{source}: {where}key {shown!r} is not text ({type(key).__name__} in YAML 1.1); config keys "
                        f"are names, quote it if it is one")


def validate(model_cls: type[M], data: Any, source: str = "<config>") -> M:
    refuse_non_text_keys(data, source)
    try:
        return model_cls.model_validate(data)
    except ValidationError as exc:
        raise UserError(format_validation_error(exc, source, data)) from None


# Bounds checked before the tree is built: a file nested deeper, or whose aliases expand to more nodes, is refused
# in one line at once (an alias bomb, 9 levels of 9 aliases, would otherwise take minutes and gigabytes).
MAX_DEPTH = 64
MAX_NODES = 200_000

# The YAML accepted is YAML 1.1 as PyYAML's SafeLoader reads it, with three refusals (docs/configuration.md):
# duplicate keys, and integers that YAML 1.1 and YAML 1.2 read differently: sexagesimal (`1:30` is 90 in 1.1, a
# string in 1.2) and leading-zero octal (`010` is 8 in 1.1, 10 elsewhere).
_SEXAGESIMAL = re.compile(r"[-+]?[0-9][0-9_]*(:[0-5]?[0-9])+(\.[0-9_]*)?")
_OCTAL = re.compile(r"[-+]?0[0-7_]+")


class AmbiguousNumberError(yaml.YAMLError):
    def __init__(self, text: str, value, line: int):
        kind = "a sexagesimal number" if ":" in text else "an octal number"
        super().__init__(f"line {line}: {text!r} is {kind} in YAML 1.1 ({value}) but not in YAML 1.2; quote it "
                         f"(\"{text}\") if it is text, or write {value}")


class UniqueKeyLoader(yaml.SafeLoader):
    """yaml.SafeLoader that refuses a mapping with the same key twice (PyYAML keeps the last one silently), and
    numbers that YAML 1.1 and 1.2 read differently (sexagesimal, leading-zero octal)."""

    def construct_yaml_int(self, node):
        value = super().construct_yaml_int(node)
        text = str(node.value)
        if _SEXAGESIMAL.fullmatch(text) or _OCTAL.fullmatch(text):
            raise AmbiguousNumberError(text, value, node.start_mark.line + 1)
        return value

    def construct_yaml_float(self, node):
        value = super().construct_yaml_float(node)
        if _SEXAGESIMAL.fullmatch(str(node.value)):
            raise AmbiguousNumberError(str(node.value), value, node.start_mark.line + 1)
        return value

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


UniqueKeyLoader.add_constructor("tag:yaml.org,2002:int", UniqueKeyLoader.construct_yaml_int)
UniqueKeyLoader.add_constructor("tag:yaml.org,2002:float", UniqueKeyLoader.construct_yaml_float)


def _check_depth(text: str, source: str) -> None:
    """Nesting depth from the event stream (PyYAML's parser is iterative; its composer would recurse). Flow
    brackets are counted on the text first: PyYAML's scanner is quadratic in open brackets (`[` x 10000)."""
    depth, line, quote = 0, 1, ""
    for char in re.sub(r"(?m)(^|\s)#.*$", "", text):
        if quote:
            quote = "" if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char in "[{":
            depth += 1
            if depth > MAX_DEPTH:
                raise UserError(f"{source}: line {line}: nested more than {MAX_DEPTH} levels deep; a config needs "
                                f"far fewer")
        elif char in "]}":
            depth = max(0, depth - 1)
        elif char == "\n":
            line += 1
    depth = 0
    for event in yaml.parse(text, Loader=yaml.SafeLoader):
        if isinstance(event, yaml.CollectionStartEvent):
            depth += 1
            if depth > MAX_DEPTH:
                raise UserError(f"{source}: line {event.start_mark.line + 1}: nested more than {MAX_DEPTH} levels "
                                f"deep; a config needs far fewer")
        elif isinstance(event, yaml.CollectionEndEvent):
            depth -= 1


def _check_size(node, source: str) -> None:
    """The number of nodes the tree would have with every alias expanded, and how deep it would nest, counted on the
    graph (each node once): an alias inside itself, more than MAX_NODES values or more than MAX_DEPTH levels (aliases
    of aliases nest deeper than the text shows) are refused."""
    sizes: dict[int, tuple[int, int]] = {}  # node -> (values, levels) once expanded
    open_: set[int] = set()  # nodes being counted: meeting one again is an alias inside itself (`x: &x {<<: *x}`)

    def size(n) -> tuple[int, int]:
        if id(n) in sizes:
            return sizes[id(n)]
        where = f"{source}: line {n.start_mark.line + 1}"
        if id(n) in open_:
            raise UserError(f"{where}: an alias refers to the value that holds it (a recursive alias); a config "
                            f"cannot be infinite")
        open_.add(id(n))
        children = []
        if isinstance(n, yaml.SequenceNode):
            children = [size(child) for child in n.value]
        elif isinstance(n, yaml.MappingNode):
            children = [size(part) for pair in n.value for part in pair]
        open_.discard(id(n))
        total, levels = 1 + sum(c[0] for c in children), 1 + max((c[1] for c in children), default=0)
        if total > MAX_NODES:
            raise UserError(f"{where}: its aliases expand to more than {MAX_NODES:,} values (an alias bomb?); a config "
                            f"needs far fewer")
        if levels > MAX_DEPTH:
            raise UserError(f"{where}: its aliases nest more than {MAX_DEPTH} levels deep; a config needs far fewer")
        sizes[id(n)] = total, levels
        return sizes[id(n)]

    size(node)


def parse_yaml(text: str, source: str = "<yaml>") -> Any:
    """YAML text -> Python values through the project's one loader (safe, duplicate keys and ambiguous numbers
    refused, depth and alias expansion bounded before anything is built)."""
    try:
        _check_depth(text, source)
        loader = UniqueKeyLoader(text)
        try:
            node = loader.get_single_node()
            if node is None:
                return None
            _check_size(node, source)
            return loader.construct_document(node)
        finally:
            loader.dispose()
    except (DuplicateKeyError, AmbiguousNumberError) as exc:
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
