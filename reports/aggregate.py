"""Per-model aggregation over seeds: a model is every config column except the seed."""
from __future__ import annotations

import numpy as np
import pandas as pd

from reports.conditions import CONDITION_COLUMNS
from reports.load import STATUSES, Results
from reports.names import backbone_name, method_name

# Columns always shown to tell models apart, even when constant; other config columns only when they vary.
ALWAYS_SHOWN = ["head", "backbone"]
PLAIN_LABEL = {"head", "backbone", "formulation"}  # shown bare in labels; others as name=value


EMPTY_COLUMNS = (
    ["n", "n_trials"] + [f"n_{s}" for s in STATUSES] + ["seeds", "missing_seeds", "status"]
    + [f"{m}_{a}" for m in ("miou", "boundary_iou", "macc", "aacc") for a in ("mean", "std")]
    + ["miou_ci_low", "miou_ci_high", "gmacs", "gmacs_backbone", "gmacs_head", "params_m", "latency_ms_median", "latency_ms_p90", "peak_mem_mb",
       "train_time_s", "device", "device_name", "measure_input", "trial_ids", "label", "order", "latency_ms_iqr",
       "latency_ms_seed_std", "latency_noisy", "dtype", "threads", "name", "method"] + CONDITION_COLUMNS[1:])


def _fmt_key(value) -> str:
    if isinstance(value, float):
        if np.isnan(value):
            return ""
        return str(int(value)) if value.is_integer() else f"{value:g}"
    return str(value)


def _median(series: pd.Series) -> float:
    series = series.dropna()
    return float(series.median()) if len(series) else np.nan


def _mean_std(series: pd.Series) -> tuple[float, float]:
    series = series.dropna()
    mean = float(series.mean()) if len(series) else np.nan
    std = float(series.std(ddof=1)) if len(series) > 1 else np.nan  # sample std over seeds
    return mean, std


def _numeric(frame: pd.DataFrame, col: str) -> pd.Series:
    """A column as floats; absent in older results -> empty."""
    if col not in frame:
        return pd.Series(dtype=float)
    return pd.to_numeric(frame[col].replace("", np.nan), errors="coerce")


def _truthy(value) -> bool:
    return str(value).strip().lower() in ("true", "1", "1.0", "yes")


def _status_text(counts: dict, n_trials: int, missing_seeds: list) -> str:
    parts = []
    if counts["completed"] == n_trials and not missing_seeds:
        return "completed"
    parts.append(f"{counts['completed']}/{n_trials + len(missing_seeds)} completed")
    parts += [f"{counts[s]} {s}" for s in STATUSES[1:] if counts[s]]
    if missing_seeds:
        parts.append("missing seed " + ",".join(_fmt_key(s) for s in missing_seeds))
    return "; ".join(parts)


def model_table(results: Results) -> pd.DataFrame:
    """One row per (dataset, model): n (completed seeds), mean and sample std over seeds, measurements, status.

    Metrics and measurements come from completed trials only. Measurements are the median over those trials.
    A seed run for some model of a dataset but absent for this one is listed as missing.
    """
    df = results.trials.reset_index(drop=True)
    keys = results.config_columns()
    seeds_by_dataset = {d: sorted(g["seed"].dropna().unique()) for d, g in df.groupby("dataset")}
    rows = []
    for key_values, g in df.groupby(keys, dropna=False, sort=True):
        rec = dict(zip(keys, key_values))
        done = g[g["status"] == "completed"]
        counts = {s: int((g["status"] == s).sum()) for s in STATUSES}
        present = set(g["seed"].dropna())
        missing = [s for s in seeds_by_dataset.get(rec["dataset"], []) if s not in present]
        done_seeds = done.dropna(subset=["miou"])["seed"]
        rec.update(
            n=int(done["miou"].notna().sum()),
            n_trials=len(g),
            **{f"n_{s}": counts[s] for s in STATUSES},
            seeds=",".join(_fmt_key(s) for s in sorted(done_seeds)),
            missing_seeds=",".join(_fmt_key(s) for s in missing),
            status=_status_text(counts, len(g), missing),
        )
        for metric in ("miou", "boundary_iou", "macc", "aacc"):
            rec[f"{metric}_mean"], rec[f"{metric}_std"] = _mean_std(done[metric])
        rec["miou_ci_low"], rec["miou_ci_high"] = _miou_interval(results, done)
        for col in ("gmacs", "gmacs_backbone", "gmacs_head", "params_m", "latency_ms_median", "latency_ms_p90",
                    "peak_mem_mb", "train_time_s"):
            rec[col] = _median(done[col])
        rec["device"] = ", ".join(sorted({d for d in done["device"] if d}))
        rec["device_name"] = ", ".join(sorted({d for d in done["device_name"] if d}))
        rec["order"] = int(g.index.min())  # first appearance in the results: the sweep's axis order
        for col in ["measure_input", "dtype", "threads"] + CONDITION_COLUMNS[1:]:
            values = done[col] if col in done else pd.Series(dtype=object)
            rec[col] = ", ".join(sorted({_fmt_key(v) for v in values if _fmt_key(v) not in ("", "nan")}))
        rec["latency_ms_iqr"] = _median(_numeric(done, "latency_ms_iqr"))
        rec["latency_ms_seed_std"] = _mean_std(_numeric(done, "latency_ms_median"))[1]
        rec["latency_noisy"] = bool(done["latency_noisy"].map(_truthy).any()) if "latency_noisy" in done else False
        rec["trial_ids"] = ",".join(g["trial_id"])
        rows.append(rec)
    if not rows:
        return pd.DataFrame(columns=keys + EMPTY_COLUMNS)
    table = pd.DataFrame(rows)
    table["label"] = ""
    table["name"] = ""
    table["method"] = [method_name(h, _fmt_key(f)) for h, f in zip(table["head"], table["formulation"])]
    for dataset, idx in table.groupby("dataset").groups.items():
        shown = distinguishing_columns(table.loc[idx], keys)
        table.loc[idx, "label"] = [model_label(r, shown) for _, r in table.loc[idx].iterrows()]
        table.loc[idx, "name"] = [display_label(r, shown) for _, r in table.loc[idx].iterrows()]
    return table


def _miou_interval(results: Results, done: pd.DataFrame) -> tuple[float, float]:
    """The 95% bootstrap interval of the model's mIoU: the trial's own columns for one seed; for several, the
    interval of their mean from the trials' per_image.npz (reports/regression/intervals.py); NaN where there is none."""
    low, high = _numeric(done, "miou_ci_low").dropna(), _numeric(done, "miou_ci_high").dropna()
    with_miou = done.dropna(subset=["miou"])
    if len(with_miou) == 1:
        return (float(low.iloc[0]), float(high.iloc[0])) if len(low) and len(high) else (np.nan, np.nan)
    if len(with_miou) == 0 or not hasattr(results, "sweep_dir"):
        return np.nan, np.nan
    from reports.regression.intervals import model_interval

    interval = model_interval(results, list(with_miou["trial_id"]), 95.0)
    return (np.nan, np.nan) if isinstance(interval, str) else (float(interval.low), float(interval.high))


def distinguishing_columns(models: pd.DataFrame, keys: list[str]) -> list[str]:
    """head, backbone, and every other config column with more than one non-empty value among these models.

    Head-specific columns (formulation, ifa_query) are empty for other heads; that alone does not tell models
    apart. Should labels still collide, every column that varies at all is added.
    """
    candidates = [c for c in keys if c not in ALWAYS_SHOWN and c != "dataset"]
    values = {c: models[c].map(_fmt_key) for c in candidates}
    def varies(c):
        if c.startswith("cfg."):  # an option: named only where it tells apart models of one head
            return values[c].groupby(models["head"]).nunique().max() > 1
        return values[c][values[c] != ""].nunique() > 1

    shown = ALWAYS_SHOWN + [c for c in candidates if varies(c)]
    labels = [model_label(r, shown) for _, r in models.iterrows()]
    if len(set(labels)) < len(labels):
        shown = ALWAYS_SHOWN + [c for c in candidates if values[c].nunique() > 1]
    if "ifa_query" in shown and "ifa_query_stride" in shown:  # the stride says it (1 = label) when it suffices
        fewer = [c for c in shown if c != "ifa_query"]
        if len({model_label(r, fewer) for _, r in models.iterrows()}) == len(models):
            shown = fewer
    return shown


# Compact label forms for config columns (others appear as name=value).
_LABEL_FORMS = {
    "stem": "{}-stem", "output_stride": "OS{}", "iterations": "{}it", "crop": "{}", "batch_size": "bs{}",
    "eval_scales": "scales={}", "ifa_query": "query={}", "ifa_query_stride": "query-stride={}", "eval_mode": "{}-eval", "num_classes": "{}cls",
}


def model_label(row: pd.Series, shown: list[str]) -> str:
    """Short model name from the columns that tell it apart, e.g. "ifa resnet50 deep-stem OS32 37200it"."""
    parts = []
    for col in shown:
        value = _fmt_key(row[col])
        if value == "":
            continue
        if col in PLAIN_LABEL:
            parts.append(value)
        elif col == "eval_flip":
            parts.append("flip" if value == "True" else "no-flip")
        elif col in _LABEL_FORMS:
            parts.append(_LABEL_FORMS[col].format(value))
        else:  # a sweep axis by dotted key: its last two parts say what it is ("backbone.width=0.5")
            parts.append(f"{'.'.join(col.removeprefix('cfg.').split('.')[-2:])}={value}")
    return " ".join(parts)


def display_label(row: pd.Series, shown: list[str]) -> str:
    """The model as papers name it (reports/names.py), then what else tells it apart: "IFA (fused) ResNet-50
    deep-stem OS8"."""
    stem = _fmt_key(row.get("stem", ""))
    parts = [method_name(row["head"], _fmt_key(row.get("formulation", ""))),
             backbone_name(_fmt_key(row["backbone"]), stem)]
    if "stem" in shown and stem not in ("", "deep"):
        parts.append(f"{stem}-stem")
    rest = model_label(row, [c for c in shown if c not in ("head", "formulation", "backbone", "stem")])
    return " ".join(parts + ([rest] if rest else []))


def common_settings(models: pd.DataFrame, keys: list[str]) -> dict[str, str]:
    """Config columns with one value across these models (shown once above the table)."""
    shown = distinguishing_columns(models, keys)
    common = {}
    for c in keys:
        values = [v for v in models[c].map(_fmt_key).unique() if v != ""]
        if c != "dataset" and c not in shown and len(values) == 1:
            set_for = sorted(set(models.loc[models[c].map(_fmt_key) != "", "head"]))
            partial = len(set_for) < models["head"].nunique()
            if c.startswith("cfg.model."):  # options read from trial configs: short names, shared ones only
                if not partial:
                    common[".".join(c.split(".")[-2:])] = values[0]
                continue
            common[c] = values[0] + (f" ({'/'.join(set_for)} only)" if partial else "")
    return common
