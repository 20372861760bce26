"""The closing summary's table of completed rows: a disabled measurement reads "off" and a missing value "—",
never NaN (measure.enabled: false turns off GMACs, parameters and latency; measure.latency: false the latency)."""
from __future__ import annotations

import pandas as pd

from bench.results.text_table import text_table

MISSING, OFF = "—", "off"
_COST = ("gmacs", "params_m")
_LATENCY = ("latency_ms_median",)


def _known(value) -> bool:
    return not pd.isna(value)  # None, NaN and pandas' NA are all unknown


def _disabled(column: str, measure: dict) -> bool:
    if column in _COST + _LATENCY and not measure.get("enabled", True):
        return True
    return column in _LATENCY and not measure.get("latency", True)


def cell(column: str, value, measure: dict) -> str:
    if _known(value):
        return f"{value:.2f}" if isinstance(value, float) else str(value)
    return OFF if _disabled(column, measure) else MISSING


def completed_table(done, columns: list[str], measure_by_trial: dict[str, dict]) -> str:
    """`done`: the completed rows (a DataFrame); `measure_by_trial`: trial_id -> its config's measure section."""
    rows = [[cell(c, r[c], measure_by_trial.get(r["trial_id"], {})) for c in columns]
            for r in done.to_dict("records")]
    return text_table(columns, rows)
