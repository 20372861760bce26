"""What `ifa-bench report` reads: any number of sweep folders (results.csv), results files, and single `train`
run folders (final.json + config.yaml), combined into one Results."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import pandas as pd

from bench.errors import UserError
from bench.results.schema import ENVIRONMENT, RESULT_COLUMNS, RESULTS_CSV, RESULTS_PARQUET
from reports.load import Results, read_results, resolve_results_file, results_from_frame, too_many


def is_run_dir(path: Path) -> bool:
    """A `train` run folder: final.json, and no results table of a sweep."""
    return path.is_dir() and (path / "final.json").is_file() and not any(
        (path / n).is_file() for n in (RESULTS_CSV, RESULTS_PARQUET))


def read_run_dir(path: Path) -> Results:
    """One completed trial from a train run folder (its metrics; it has no cost measurements)."""
    from bench.config import ExperimentConfig, read_yaml, validate
    from bench.files.json_records import read_json
    from bench.results.row import config_columns, ran_columns

    final = read_json(path / "final.json")
    if not isinstance(final, dict):
        raise UserError(f"{path / 'final.json'}: not a JSON object")
    if not (path / "config.yaml").is_file():
        raise UserError(f"{path}: final.json without config.yaml; not a run folder written by `ifa-bench train`")
    cfg = validate(ExperimentConfig, read_yaml(path / "config.yaml"), str(path / "config.yaml"))
    row = {k: None for k in RESULT_COLUMNS}
    row.update(config_columns(cfg))
    row.update(ran_columns(cfg.model.head.name, getattr(cfg.model.head, "formulation", ""), {}, final))
    env = final.get("environment") or {}
    row.update({k: env.get(k) for k in ENVIRONMENT})
    row.update({k: final.get(k) for k in ("miou", "macc", "aacc", "boundary_iou", "train_time_s")})
    row.update(trial_id=path.name, config_hash=final.get("config_hash") or "", sweep_name=cfg.name,
               status="completed", error="", attempts=1, trial_dir=str(path.resolve()))
    raw = pd.DataFrame([row]).astype(object).where(lambda d: d.notna(), "").astype(str)
    per_class = pd.DataFrame(
        [dict(trial_id=path.name, config_hash=row["config_hash"], dataset=row["dataset"], backbone=row["backbone"],
              head=row["head"], seed=row["seed"], class_index=i, class_name=name, iou=iou)
         for i, (name, iou) in enumerate((final.get("per_class_iou") or {}).items())])
    return results_from_frame(raw, path / "final.json", path, per_class if len(per_class) else None)


def read_sources(paths: Sequence[Path]) -> Results:
    """One Results over every path. With several, trial ids get a per-source prefix and trial folders become
    absolute, so rows from different sweeps never collide."""
    paths = [Path(p) for p in paths]
    if not paths:
        raise UserError("no sweep or run folder given")
    parts = [read_run_dir(p) if is_run_dir(p) else _read_sweep(p) for p in paths]
    too_many(", ".join(map(str, paths)), sum(len(p.trials) for p in parts))
    if len(parts) == 1:
        return add_model_options(parts[0])
    trials, per_class, absent = [], [], set(parts[0].absent_columns)
    for i, part in enumerate(parts):
        t = part.trials.copy()
        prefix = f"s{i}:"
        t["trial_dir"] = [str(Path(d) if Path(d).is_absolute() else (part.sweep_dir / d).resolve()) if d else ""
                          for d in t["trial_dir"]]
        t["trial_id"] = prefix + t["trial_id"]
        trials.append(t)
        if part.per_class is not None:
            pc = part.per_class.copy()
            pc["trial_id"] = prefix + pc["trial_id"].astype(str)
            per_class.append(pc)
        absent &= set(part.absent_columns)
    combined = pd.concat(trials, ignore_index=True)
    for col in combined.columns:  # a column only some sources have: empty elsewhere
        if combined[col].dtype == object:
            combined[col] = combined[col].where(combined[col].notna(), "")
    sources = Path(", ".join(str(p.source) for p in parts))
    return add_model_options(Results(combined, pd.concat(per_class, ignore_index=True) if per_class else None,
                                     Path(paths[0]).resolve().parent, sources, sorted(absent)))


# Model options results.csv has no column for (backbone width, head widths, ...), read from each trial's
# config.yaml so that labels can name what varies between models ("fpn resnet18" alone hides width 0.5).
_OPTION_SECTIONS = ("backbone", "head")
_SKIPPED = {"name", "stem", "output_stride", "formulation", "pretrained", "pretrained_strict"}


def add_model_options(results: Results) -> Results:
    """`cfg.model.backbone.<opt>` / `cfg.model.head.<opt>` columns from the trials' config.yaml (where the
    results lack them); values as text, lists joined by "x". Trials without a config.yaml get ""."""
    from bench.config import read_yaml

    trials = results.trials
    found: dict[str, dict[int, str]] = {}
    for i, tdir in zip(trials.index, trials["trial_dir"]):
        if not tdir:
            continue
        path = Path(tdir) if Path(tdir).is_absolute() else results.sweep_dir / tdir
        if not (path / "config.yaml").is_file():
            continue
        try:
            model = (read_yaml(path / "config.yaml") or {}).get("model") or {}
        except UserError:
            continue  # an unreadable trial config only costs the extra columns
        for section in _OPTION_SECTIONS:
            for key, value in (model.get(section) or {}).items():
                if key in _SKIPPED or isinstance(value, dict):
                    continue
                text = "x".join(map(str, value)) if isinstance(value, (list, tuple)) else (
                    "" if value is None else str(value))
                found.setdefault(f"cfg.model.{section}.{key}", {})[i] = text
    for col, values in found.items():
        if col not in trials:
            trials[col] = [values.get(i, "") for i in trials.index]
    return results


def _read_sweep(path: Path) -> Results:
    if path.is_dir() and not any((path / n).is_file() for n in (RESULTS_CSV, RESULTS_PARQUET)):
        raise UserError(f"{path}: neither a sweep folder (no results.csv) nor a train run folder (no final.json)")
    resolve_results_file(path)
    return read_results(path)

