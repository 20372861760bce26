"""The results table: one row per trial of the spec (completed, failed, running or pending), written atomically."""
from __future__ import annotations

import math
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable

import pandas as pd

from bench.files.atomic import replacing
from bench.config import ExperimentConfig
from bench.config.formulation import hashed_formulation, head_ran_as, trial_device_type
from bench.config.query_stride import QUERY_STRIDE_KEY, effective_query_stride
from bench.results.provenance import provenance
from bench.results.schema import (
    BOOL, COLUMN_TYPES, CONFIG, ENVIRONMENT, FLOAT, IDENTITY, INT, INTERVALS, MEASUREMENTS, METRICS,
    PER_CLASS_COLUMNS, PER_CLASS_CSV, RESULT_COLUMNS, RESULTS_CSV, RESULTS_PARQUET, TIMING, compile_setting,
    trial_rel,
)

CFG_PREFIX = "cfg."


def config_columns(cfg: ExperimentConfig, device_type: str = "cpu") -> dict[str, Any]:
    """The CONFIG columns of a trial whose model runs on `device_type` (where IFA's `auto` is resolved)."""
    head = cfg.model.head
    return {
        "dataset": cfg.data.dataset,
        "backbone": cfg.model.backbone.name,
        "stem": cfg.model.backbone.stem,
        "output_stride": cfg.model.backbone.output_stride,
        "head": head.name,
        "formulation": head_ran_as(head.model_dump(), device_type),
        "seed": cfg.seed,
        "iterations": cfg.train.iterations,
        "batch_size": cfg.train.batch_size,
        "crop": f"{cfg.data.crop_size[0]}x{cfg.data.crop_size[1]}",
        "num_classes": cfg.model.num_classes,
        "eval_mode": cfg.eval.mode,
        "eval_scales": ",".join(str(float(s)) for s in cfg.eval.scales),
        "eval_flip": cfg.eval.flip,
        "ifa_query": cfg.eval.ifa_query,
        "ifa_query_stride": _text(effective_query_stride(cfg)),  # "" for other heads, like formulation
        "compile": compile_setting(cfg.model.compile),
    }


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def _cfg_value(v: Any) -> Any:
    if isinstance(v, (list, tuple)):
        return "x".join(str(x) for x in v)
    if isinstance(v, dict):
        return ",".join(f"{k}={_cfg_value(x)}" for k, x in v.items())
    return v


def base_row(trial, sweep_name: str, status: str, *, error: str = "", attempts: int = 0) -> dict:
    row = {c: None for c in RESULT_COLUMNS}
    row.update(
        trial_id=trial.trial_id, config_hash=trial.config_hash, sweep_name=sweep_name, status=status,
        error=error, attempts=attempts, trial_dir=trial_rel(trial.config_hash),
    )
    row.update(config_columns(trial.config, trial_device_type(trial.config.train.device, trial.resources.gpus)))
    row["ifa_kernels"] = ""  # known once it ran (ran_columns)
    row.update(provenance())
    for key, value in trial.extra_axes.items():
        if key == QUERY_STRIDE_KEY:  # its own column, ifa_query_stride
            continue
        row[CFG_PREFIX + key] = _cfg_value(value)
    return row


def completed_row(trial, sweep_name: str, final: dict, measurement: dict, environment: dict,
                  attempts: int) -> dict:
    row = base_row(trial, sweep_name, "completed", attempts=attempts)
    for k in METRICS + INTERVALS:
        row[k] = final.get(k)
    row["train_time_s"] = final.get("train_time_s")
    row.update(ran_columns(row["head"], row["formulation"], measurement, final))
    row.update(final.get("provenance") or {})  # the code that trained it (a resumed run keeps its own)
    for k in MEASUREMENTS:
        row[k] = measurement.get(k)
    for k in ENVIRONMENT:
        row[k] = measurement.get(k, environment.get(k))
    row["finished_at"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
    return row


def ran_columns(head: str, setting: str, measurement: dict, final: dict) -> dict[str, str]:
    """`formulation` and `ifa_kernels` of a completed row: what the measurement ran, else what training ran (both
    record it, bench.measure.ifa_on_gpu.what_ran), else, for a trial run before they recorded it, what the setting ran
    then (`auto` did not exist: it hashes as, and ran as, "fused"; the kernels were torch's)."""
    if head != "ifa":
        return {"formulation": "", "ifa_kernels": ""}
    ran = next((r for r in (measurement, final) if r.get("formulation")), {})
    return {"formulation": ran.get("formulation") or hashed_formulation(setting),
            "ifa_kernels": ran.get("ifa_kernels") or "torch"}


def per_class_rows(row: dict, per_class: dict[str, float]) -> list[dict]:
    return [
        {
            "trial_id": row["trial_id"], "config_hash": row["config_hash"], "dataset": row["dataset"],
            "backbone": row["backbone"], "head": row["head"], "seed": row["seed"],
            "class_index": i, "class_name": name, "iou": iou,
        }
        for i, (name, iou) in enumerate(per_class.items())
    ]


def _frame(rows: list[dict], extra: Iterable[str]) -> pd.DataFrame:
    columns = RESULT_COLUMNS + sorted(set(extra))
    df = pd.DataFrame(rows, columns=columns)
    for c in columns:
        kind = COLUMN_TYPES.get(c)
        if kind == FLOAT:
            df[c] = pd.to_numeric(df[c], errors="coerce").astype(FLOAT)
        elif c.startswith(CFG_PREFIX):
            values = [v for v in df[c] if v is not None and not (isinstance(v, float) and math.isnan(v))]
            if values and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
                df[c] = pd.to_numeric(df[c], errors="coerce")
            else:
                df[c] = df[c].map(lambda v: "" if v is None else str(v))
        elif kind == INT:
            df[c] = pd.to_numeric(df[c], errors="coerce").astype(INT)
        elif kind == BOOL:
            df[c] = df[c].astype(BOOL)
        else:
            df[c] = df[c].map(lambda v: "" if v is None else str(v))
    return df


def write_tables(sweep_dir: Path, rows: list[dict], per_class: list[dict]) -> pd.DataFrame:
    """results.csv, results.parquet and per_class_iou.csv, each replaced atomically."""
    sweep_dir = Path(sweep_dir)
    sweep_dir.mkdir(parents=True, exist_ok=True)
    extra = {k for r in rows for k in r if k.startswith(CFG_PREFIX) or k == "protocol"}  # protocol: `evaluate:`
    df = _frame(rows, extra)
    with replacing(sweep_dir / RESULTS_CSV) as tmp:
        df.to_csv(tmp, index=False)
    with replacing(sweep_dir / RESULTS_PARQUET) as tmp:
        df.to_parquet(tmp, index=False)
    pc = pd.DataFrame(per_class, columns=PER_CLASS_COLUMNS)
    with replacing(sweep_dir / PER_CLASS_CSV) as tmp:
        pc.to_csv(tmp, index=False)
    return df


__all__ = ["IDENTITY", "CONFIG", "base_row", "completed_row", "per_class_rows", "ran_columns", "write_tables", "TIMING"]
