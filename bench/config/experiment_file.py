"""An experiment file read for train, eval, sweep and measure: bases merged (bench/config/inherit.py), `--set
KEY.PATH=VALUE` overrides applied (bench/config/overrides.py), validated. Errors name the file, or the --set, that
set the bad value, and unknown keys of a --set get a "did you mean"."""
from __future__ import annotations

import copy
import difflib
from pathlib import Path

from bench.config.overrides import apply_override, parse_override
from bench.errors import UserError


def read_config_data(path: Path, overrides: list[str]) -> tuple[dict, dict[str, str]]:
    """The file's mapping (bases merged) with the overrides applied, and where each key came from."""
    from bench.config.inherit import key_sources, read_with_bases

    data, provenance = read_with_bases(path)
    for text in overrides:
        key, value = parse_override(text)
        apply_override(data, key, value)
        parts = key.split(".")
        for i in range(1, len(parts)):  # mappings the --set created
            provenance.setdefault(".".join(parts[:i]), f"--set {key}")
        provenance[key] = f"--set {key}"
        provenance.update(key_sources(value, f"--set {key}", key))
    return data, provenance


def validate_experiment(data: dict, provenance: dict[str, str], path: Path, overrides: list[str]):
    """ExperimentConfig of `data`; a bad value's error names the file or --set that set it, and an unknown
    key of a --set gets the closest known keys."""
    from pydantic import ValidationError

    from bench.config import ExperimentConfig
    from bench.config.inherit import source_of
    from bench.config.loading import error_key, format_validation_error, refuse_non_text_keys

    refuse_non_text_keys(data, str(path))
    try:
        return ExperimentConfig.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        key = error_key(first, data)
        source = source_of(key, provenance, str(path))
        if source.startswith("--set") and first["type"] == "extra_forbidden":
            hint = unknown_key_hint(key, data, overrides)
            if hint:
                raise UserError(f"{source}: {hint}") from None
        raise UserError(format_validation_error(exc, source, data)) from None


def unknown_key_hint(key: str, data: dict, overrides: list[str]) -> str | None:
    """'unknown key X; did you mean Y?' from the keys a valid config has at that level (defaults included)."""
    from bench.config import ExperimentConfig

    known_data = copy.deepcopy(data)
    parts = key.split(".")
    _drop(known_data, parts)
    try:
        known = ExperimentConfig.model_validate(known_data).model_dump()
    except Exception:  # noqa: BLE001 - other errors too: no hint, the plain message stands
        return None
    cur = known
    for i, part in enumerate(parts):
        if not isinstance(cur, dict):
            return None
        if part not in cur:
            close = difflib.get_close_matches(part, [str(k) for k in cur], n=3, cutoff=0.6)
            prefix = ".".join(parts[:i])
            names = [f"{prefix}.{c}" if prefix else c for c in close]
            where = prefix or "the top level"
            tail = (f"did you mean {' or '.join(names)}?" if names
                    else f"known keys at {where}: {', '.join(sorted(map(str, cur)))}")
            return f"unknown key {'.'.join(parts[:i + 1])!r}; {tail}"
        cur = cur[part]
    return None


def _drop(data: dict, parts: list[str]) -> None:
    cur = data
    for part in parts[:-1]:
        cur = cur.get(part) if isinstance(cur, dict) else None
        if cur is None:
            return
    if isinstance(cur, dict):
        cur.pop(parts[-1], None)


def load_experiment(path: Path, overrides: list[str]):
    """The validated ExperimentConfig of `path` (bases merged, `sweep:` dropped) with the overrides applied."""
    data, provenance = read_config_data(Path(path), overrides)
    data.pop("sweep", None)  # a sweep's experiment file: its base experiment
    return validate_experiment(data, provenance, Path(path), overrides)
