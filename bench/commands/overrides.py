"""`--set KEY.PATH=VALUE` overrides of an experiment config, shared by the commands that read one (train, measure):
one parser, one way to apply a value, the same one-line errors naming the key."""
from __future__ import annotations

import argparse
import copy
from pathlib import Path
from typing import Any

from bench.errors import UserError


def add_set_argument(parser: argparse.ArgumentParser) -> None:
    """`--set` (repeatable) into `args.overrides`."""
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY.PATH=VALUE",
                        help="override a config key, e.g. --set train.iterations=100 --set model.head.name=fpn "
                             "(VALUE is YAML; switching model.head.name resets the head's options to its defaults)")


def parse_override(text: str) -> tuple[str, Any]:
    import yaml

    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or not key or any(not part for part in key.split(".")):
        raise UserError(f"--set: expected KEY.PATH=VALUE, got {text!r}")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        raise UserError(f"--set {key}: value {raw!r} is not valid YAML") from None
    return key, value


def apply_override(data: dict, key: str, value: Any) -> None:
    """Set `key` (dotted) in the raw config mapping. The head is a tagged union: a new `model.head.name`, or a
    `model.head` mapping naming another head, starts from that head's defaults instead of merging."""
    parts = key.split(".")
    cur = data
    for i, part in enumerate(parts[:-1]):
        nxt = cur.setdefault(part, {})
        if not isinstance(nxt, dict):
            raise UserError(f"--set {key}: {'.'.join(parts[:i + 1])} is not a mapping")
        cur = nxt
    last = parts[-1]
    if key == "model.head.name" and cur.get("name", "ifa") != value:
        cur.clear()
    if key == "model.head" and isinstance(value, dict) and isinstance(cur.get("head"), dict):
        old = cur["head"]
        if value.get("name", old.get("name", "ifa")) == old.get("name", "ifa"):
            value = {**old, **value}
    cur[last] = copy.deepcopy(value)


def load_experiment(path: Path, overrides: list[str]):
    """The validated ExperimentConfig of `path` with the --set overrides applied (UserError naming the key)."""
    from bench.config import ExperimentConfig, read_yaml, validate

    data = read_yaml(path)
    if not isinstance(data, dict):
        raise UserError(f"{path}: expected a mapping at the top level, got {type(data).__name__}")
    data.pop("sweep", None)  # a sweep's experiment file: train its base experiment
    for text in overrides:
        apply_override(data, *parse_override(text))
    source = f"{path} (with --set)" if overrides else str(path)
    return validate(ExperimentConfig, data, source)
