"""Config inheritance: `base: other.yaml` (or a list of files), relative to the file that names it.

The bases are read first, in order, then the file itself is deep-merged over them: mappings merge key by key,
anything else replaces. `model.head` is a tagged union: a head with another `name` replaces the base's head
instead of merging into it. Cycles are refused. `provenance` maps every dotted key to the file (or `--set`) that
set it, so errors name the file that set the bad value.
"""
from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from bench.config.loading import read_yaml
from bench.errors import UserError

BASE_KEY = "base"
_REPLACED_WHEN_RENAMED = {("model", "head")}  # tagged unions


def read_with_bases(path: str | Path) -> tuple[dict, dict[str, str]]:
    """(merged mapping without `base` keys, provenance: dotted key -> the file that set it)."""
    return _read(Path(path), ())


def _read(path: Path, chain: tuple[Path, ...]) -> tuple[dict, dict[str, str]]:
    real = path.resolve()
    if real in chain:
        cycle = " -> ".join(str(p) for p in (*chain[chain.index(real):], real))
        raise UserError(f"{path}: base: inheritance cycle ({cycle})")
    data = read_yaml(path)
    if not isinstance(data, dict):
        raise UserError(f"{path}: expected a mapping at the top level, got {type(data).__name__}")
    bases = data.pop(BASE_KEY, None)
    if bases is None:
        bases = []
    elif isinstance(bases, str):
        bases = [bases]
    elif not (isinstance(bases, list) and all(isinstance(b, str) for b in bases)):
        raise UserError(f"{path}: base: expected a file name or a list of file names, got {bases!r}")
    merged: dict = {}
    provenance: dict[str, str] = {}
    for name in bases:
        base_path = path.parent / name
        if not base_path.is_file():
            raise UserError(f"{path}: base: {name!r}: no such file ({base_path})")
        base_data, base_prov = _read(base_path, (*chain, real))
        merged = deep_merge(merged, base_data)
        provenance.update(base_prov)
    merged = deep_merge(merged, data)
    provenance.update(key_sources(data, str(path)))
    return merged, provenance


def deep_merge(base: dict, over: dict, _at: tuple = ()) -> dict:
    """A new mapping: `over` merged into `base` (see the module docstring)."""
    out = copy.deepcopy(base)
    for key, value in over.items():
        here = (*_at, key)
        old = out.get(key)
        if isinstance(old, dict) and isinstance(value, dict) and not (
                here in _REPLACED_WHEN_RENAMED and value.get("name", old.get("name")) != old.get("name")):
            out[key] = deep_merge(old, value, here)
        else:
            out[key] = copy.deepcopy(value)
    return out


def key_sources(data: Any, source: str, prefix: str = "") -> dict[str, str]:
    """Every dotted key of `data` (mappings and leaves) -> source."""
    out = {}
    if isinstance(data, dict):
        for key, value in data.items():
            dotted = f"{prefix}.{key}" if prefix else str(key)
            out[dotted] = source
            out.update(key_sources(value, source, dotted))
    return out


def source_of(key_path: str, provenance: dict[str, str], default: str) -> str:
    """The file that set `key_path`, or the nearest enclosing key's; `default` when none did."""
    parts = key_path.split(".") if key_path else []
    while parts:
        found = provenance.get(".".join(parts))
        if found:
            return found
        parts.pop()
    return default
