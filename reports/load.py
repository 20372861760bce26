"""Read a sweep's results (results.csv / results.parquet, per_class_iou.csv) into typed frames."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np
import pandas as pd

from bench.errors import UserError, one_line
from bench.results.schema import (
    BOOL, CONFIG, FLOAT, INT, PER_CLASS_COLUMNS, PER_CLASS_CSV, RESULT_COLUMNS, RESULTS_CSV, RESULTS_PARQUET,
    columns_of_type, compile_setting,
)

# Without these a report means nothing; every other schema column is optional (absent -> NaN / "").
REPORT_REQUIRED = ["status", "dataset", "backbone", "head", "seed", "miou"]
CHECK_REQUIRED = REPORT_REQUIRED + ["stem", "output_stride", "iterations", "crop", "batch_size",
                                    "eval_scales", "eval_flip"]

NUMERIC = columns_of_type(FLOAT) | columns_of_type(INT)  # read as floats: NaN where a value is absent
BOOLEAN = columns_of_type(BOOL)
STATUSES = ("completed", "failed", "running", "pending")
# The most trials a results table may hold. One row is one trained model, and the report reads each trial's own
# files (metrics.jsonl, per_image.npz): a real sweep holds hundreds of rows, far below this. A longer table is refused
# after reading MAX_ROWS + 1 rows, so memory stays bounded whatever the file's size (docs/reports.md).
MAX_ROWS = 20_000
MAX_PER_CLASS_ROWS = MAX_ROWS * 256  # per_class_iou.csv: one row per class per trial


@dataclass
class Results:
    trials: pd.DataFrame  # one row per trial, every RESULT_COLUMNS column present
    per_class: Optional[pd.DataFrame]  # long format, or None when per_class_iou.csv is absent
    sweep_dir: Path  # trial_dir paths are relative to this
    source: Path  # the file read
    absent_columns: list[str]  # schema columns the file did not have

    def config_columns(self) -> list[str]:
        """Columns that define a model: every config column except the seed, plus extra `cfg.*` sweep axes."""
        extra = sorted(c for c in self.trials.columns if c.startswith("cfg."))
        return [c for c in CONFIG if c != "seed"] + extra


def resolve_results_file(path: Path) -> Path:
    path = Path(path)
    if not path.exists():
        raise UserError(f"{path}: no such file or directory")
    if path.is_dir():
        for name in (RESULTS_CSV, RESULTS_PARQUET):
            if (path / name).is_file():
                return path / name
        raise UserError(f"{path}: no results.csv or results.parquet in this directory")
    if path.suffix not in (".csv", ".parquet"):
        raise UserError(f"{path}: expected a sweep directory, a .csv or a .parquet results file")
    return path


def _to_bool(value) -> bool:
    if value is None or value is pd.NA or (isinstance(value, float) and np.isnan(value)):
        return False
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    text = str(value).strip().lower()
    if text in ("true", "1", "yes", "1.0"):
        return True
    if text in ("false", "0", "no", "", "nan", "none", "0.0"):
        return False
    raise ValueError(value)


def _normalise(df: pd.DataFrame, source: Path) -> pd.DataFrame:
    df = df.copy()
    for col in df.columns:
        if col in NUMERIC:
            converted = pd.to_numeric(df[col].replace("", np.nan), errors="coerce")
            bad = converted.isna() & df[col].notna() & (df[col].astype(str).str.strip() != "")
            if bad.any():
                raise UserError(f"{source}: column {col!r} has non-numeric value {df[col][bad].iloc[0]!r}")
            df[col] = converted.astype(float)
        elif col in BOOLEAN:
            try:
                df[col] = df[col].map(_to_bool).astype(bool)
            except ValueError as exc:
                raise UserError(f"{source}: column {col!r} has non-boolean value {exc.args[0]!r}") from None
        else:
            df[col] = df[col].astype(object).where(df[col].notna(), "").astype(str)
    return df


def read_results(path: Path, required: list[str] = REPORT_REQUIRED) -> Results:
    source = resolve_results_file(path)
    try:
        if source.suffix == ".parquet":
            import pyarrow.parquet as pq

            too_many(source, pq.ParquetFile(source).metadata.num_rows)
            raw = pd.read_parquet(source)
        else:
            raw = pd.read_csv(source, dtype=str, keep_default_na=False, nrows=MAX_ROWS + 1)
            too_many(source, len(raw))
    except (ValueError, OSError, pd.errors.ParserError) as exc:
        raise UserError(f"{source}: cannot be read as a results table ({one_line(exc)})") from None
    return results_from_frame(raw, source, source.parent, _read_per_class(source.parent / PER_CLASS_CSV),
                              required)


def results_from_frame(raw: pd.DataFrame, source: Path, sweep_dir: Path, per_class: Optional[pd.DataFrame],
                       required: list[str] = REPORT_REQUIRED) -> Results:
    """Typed Results from a frame of raw (string or native) values in the results schema."""
    missing = [c for c in required if c not in raw.columns]
    if missing:
        raise UserError(f"{source}: missing required column(s): {', '.join(missing)}")
    absent = [c for c in RESULT_COLUMNS if c not in raw.columns]
    df = _normalise(raw, source)
    for col in absent:
        df[col] = np.nan if col in NUMERIC else (False if col in BOOLEAN else "")
    try:
        df["compile"] = df["compile"].map(compile_setting)  # also results written while it was a boolean column
    except ValueError as exc:
        raise UserError(f"{source}: column 'compile' has unknown value {exc.args[0]!r} (known: false, true, eval)") \
            from None
    unknown = sorted(set(df["status"]) - set(STATUSES))
    if unknown:
        raise UserError(f"{source}: column 'status' has unknown value {unknown[0]!r} (known: {', '.join(STATUSES)})")
    if "trial_id" in absent:
        df["trial_id"] = [f"row{i}" for i in range(len(df))]
    return Results(df, per_class, sweep_dir, source, absent)


def too_many(source, rows: int, limit: int = MAX_ROWS) -> None:
    if rows > limit:
        raise UserError(f"{source}: more than {limit:,} rows; a results table of up to {limit:,} trials can be "
                        f"reported (split it, e.g. by dataset)")


def _read_per_class(path: Path) -> Optional[pd.DataFrame]:
    if not path.is_file():
        return None
    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=False, nrows=MAX_PER_CLASS_ROWS + 1)
    except (ValueError, OSError, pd.errors.ParserError) as exc:
        raise UserError(f"{path}: cannot be read as a per-class table ({one_line(exc)})") from None
    too_many(path, len(df), MAX_PER_CLASS_ROWS)
    missing = [c for c in ("trial_id", "class_index", "class_name", "iou") if c not in df.columns]
    if missing:
        raise UserError(f"{path}: missing required column(s): {', '.join(missing)}")
    for col in ("class_index", "iou", "seed"):
        if col in df.columns:
            df[col] = pd.to_numeric(df[col].replace("", np.nan), errors="coerce")
    return df[[c for c in PER_CLASS_COLUMNS if c in df.columns]]
