"""An experiment's resolved config as YAML, each key annotated with where its value comes from: the file of the
`base:` chain that set it last, the `--set` that overrode it, or "default" (the config models' default). What
`ifa-bench config` prints; the text loads back (it is YAML) to the same config."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from bench.config.experiment_file import read_config_data, validate_experiment

DEFAULT = "default"


def _has(data: Any, parts: list[str]) -> bool:
    for part in parts:
        if not isinstance(data, dict) or part not in data:
            return False
        data = data[part]
    return True


def _scalar(value: Any) -> str:
    """A value as one line of YAML flow text (a one-item flow list, unwrapped: no document end marker)."""
    return yaml.safe_dump([value], default_flow_style=True, width=10**6).strip()[1:-1]


def _shown(path: str) -> str:
    try:
        return str(Path(path).resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return path


def resolved_lines(path: Path, overrides: list[str]) -> list[str]:
    """The resolved experiment (bases merged, overrides applied, defaults filled in, validated) as commented YAML."""
    data, provenance = read_config_data(Path(path), overrides)
    sweep = data.pop("sweep", None)
    cfg = validate_experiment(data, provenance, Path(path), overrides)
    rows: list[tuple[str, str]] = []  # (YAML text of the line, source or "" for a mapping's line)

    def walk(value: dict, prefix: list[str], indent: int) -> None:
        for key, item in value.items():
            parts = [*prefix, key]
            pad = "  " * indent
            if isinstance(item, dict) and item:
                rows.append((f"{pad}{key}:", ""))
                walk(item, parts, indent + 1)
                continue
            source = provenance.get(".".join(parts), DEFAULT) if _has(data, parts) else DEFAULT
            rows.append((f"{pad}{key}: {_scalar(item)}", source if source == DEFAULT else
                         source if source.startswith("--set") else _shown(source)))

    walk(cfg.model_dump(mode="json"), [], 0)
    width = max(len(text) for text, _ in rows) + 2
    lines = [f"# {_shown(str(path))} resolved: bases merged, --set applied, defaults filled in; each key's source "
             f"on its right"]
    lines += [f"{text.ljust(width)}# {source}" if source else text for text, source in rows]
    if sweep is not None:
        lines.append(f"# sweep: section not shown (`ifa-bench sweep {_shown(str(path))} --dry-run` lists its trials)")
    return lines
