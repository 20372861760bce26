"""What `check` refuses in a results table before comparing: impossible mIoU values, and the same trial twice.

A row read twice (a results.csv concatenated with itself, a trial appended again) must not count as two seeds.
"""
from __future__ import annotations

import math

import pandas as pd

from bench.errors import UserError
from reports.load import Results


def _where(results: Results, index: int, row: pd.Series) -> str:
    line = f"row {index + 1}" if results.source.suffix == ".parquet" else f"line {index + 2}"  # +1: the header
    return f"{results.source}: {line} (trial {row['trial_id']})"


def check_miou_values(results: Results) -> None:
    """Completed rows need a finite mIoU in [0, 100]; a NaN (not evaluated) is left to the check's verdicts."""
    df = results.trials
    for index, row in df.iterrows():
        value = row["miou"]
        if isinstance(value, float) and math.isnan(value):
            continue
        if not math.isfinite(value) or not 0 <= value <= 100:
            raise UserError(f"{_where(results, index, row)}: miou {value!r} is not a percentage in [0, 100]")


def drop_repeated_trials(results: Results) -> tuple[Results, int]:
    """Keep one copy of rows that repeat a trial exactly; refuse a trial id whose repeated rows disagree."""
    df = results.trials
    if "trial_id" in results.absent_columns:
        keep = ~df.drop(columns=["trial_id"]).duplicated(keep="first")  # the ids were made up per row
    else:
        repeated = df[df.duplicated(subset=["trial_id"], keep=False)]
        for trial_id, rows in repeated.groupby("trial_id", sort=False):
            if len(rows.drop_duplicates()) > 1:
                index = rows.index[1]
                raise UserError(f"{_where(results, index, df.loc[index])}: trial {trial_id!r} appears again with "
                                f"different values")
        keep = ~df.duplicated(subset=["trial_id"], keep="first")
    dropped = int((~keep).sum())
    if not dropped:
        return results, 0
    trials = df[keep].reset_index(drop=True)
    return Results(trials, results.per_class, results.sweep_dir, results.source, results.absent_columns), dropped
