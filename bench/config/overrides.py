"""`KEY.PATH=VALUE` overrides on a raw config mapping, for every layer that reads configs (commands, sweeps).
Reading an experiment file with them ("did you mean" included) is bench/config/experiment_file.py; the --set
option itself is bench/commands/values.py."""
from __future__ import annotations

import copy
from typing import Any

from bench.errors import UserError


def parse_override(text: str) -> tuple[str, Any]:
    import yaml

    from bench.config.loading import parse_yaml  # the project's one loader (safe, duplicate keys refused)

    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or not key or any(not part for part in key.split(".")):
        raise UserError(f"--set: expected KEY.PATH=VALUE, got {text!r}")
    try:
        value = parse_yaml(raw, f"--set {key}={raw}") if raw.strip() else ""
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
