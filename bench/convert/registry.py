"""Checkpoint formats other than the project's own, mapped onto the project's state_dict layout.

Each format module (bench/convert/<format>.py) registers one Converter:
- `detect(state_dict) -> bool`: whether a raw state_dict is in that format;
- `convert(state_dict, model_cfg) -> state_dict`: the project's keys and shapes, strict: every source key is
  accounted for, and unmapped or missing keys raise UserError naming them.
`ifa-bench convert`, `eval`, `measure` and `train --init` all go through `to_project()`.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Callable

from bench.errors import UserError

PROJECT = "ifa-bench"


@dataclass(frozen=True)
class Converter:
    name: str
    detect: Callable[[dict], bool]
    convert: Callable[[dict, object], dict]  # (source state_dict, bench.config.model.ModelConfig) -> project state_dict


FORMATS: dict[str, Converter] = {}
_MODULES = ("bench.convert.release", "bench.convert.mmseg")


def register(converter: Converter) -> Converter:
    FORMATS[converter.name] = converter
    return converter


def _load_formats() -> None:
    for name in _MODULES:
        try:
            importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise


def detect_format(state_dict: dict) -> str:
    _load_formats()
    hits = [c.name for c in FORMATS.values() if c.detect(state_dict)]
    if len(hits) > 1:
        raise UserError(f"checkpoint matches several formats: {', '.join(sorted(hits))}; name one with --format")
    return hits[0] if hits else PROJECT


def to_project(state_dict: dict, model_cfg, fmt: str = "auto") -> dict:
    _load_formats()
    fmt = detect_format(state_dict) if fmt == "auto" else fmt
    if fmt == PROJECT:
        return state_dict
    if fmt not in FORMATS:
        known = ", ".join(sorted([PROJECT, *FORMATS]))
        raise UserError(f"unknown checkpoint format {fmt!r} (known: {known})")
    return FORMATS[fmt].convert(state_dict, model_cfg)
