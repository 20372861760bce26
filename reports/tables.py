"""Tables from the per-model aggregate: numeric CSV, and Markdown / LaTeX / HTML for reading."""
from __future__ import annotations

import html
import math
import re
from pathlib import Path

import numpy as np
import pandas as pd

from reports.aggregate import distinguishing_columns
from bench.atomic import write_text

DASH = "—"

# numeric CSV columns of the summary table, after the model-distinguishing config columns
SUMMARY_NUMERIC = ["n", "n_trials", "miou_mean", "miou_std", "boundary_iou_mean", "boundary_iou_std", "gmacs",
                   "params_m", "latency_ms_median", "device", "peak_mem_mb", "measure_input", "seeds",
                   "missing_seeds", "status"]
SUMMARY_EXTRA = ["latency_ms_iqr", "latency_noisy", "measure_batch", "measure_dtype", "measure_threads",
                 "measure_device", "measure_device_name"]


def fmt_num(value, digits=2) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return DASH
    return f"{value:.{digits}f}"


def fmt_mean_std(mean, std, digits=2) -> str:
    if mean is None or (isinstance(mean, float) and math.isnan(mean)):
        return DASH
    if std is None or (isinstance(std, float) and math.isnan(std)):
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f} ± {std:.{digits}f}"


def summary_numeric(models: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """The per-dataset summary with raw numbers (one row per model)."""
    shown = distinguishing_columns(models, keys)
    extra = [c for c in SUMMARY_EXTRA if c in models]
    out = models[["label"] + shown + SUMMARY_NUMERIC + extra].copy()
    if "order" in models:  # the sweep's axis order (first appearance in the results)
        out = out.iloc[np.argsort(models["order"].to_numpy(), kind="stable")]
    return out.reset_index(drop=True)


def summary_display(numeric: pd.DataFrame) -> pd.DataFrame:
    """The summary formatted for reading: mIoU as mean ± std over seeds, n, costs; "—" where unknown."""
    def latency(row):
        if isinstance(row["latency_ms_median"], float) and math.isnan(row["latency_ms_median"]):
            return DASH
        return f"{row['latency_ms_median']:.1f}" + (f" ({row['device']})" if row["device"] else "")

    return pd.DataFrame({
        "model": numeric["label"],
        "n": [f"{int(n)}/{int(t) + (len(m.split(',')) if m else 0)}" for n, t, m in
              zip(numeric["n"], numeric["n_trials"], numeric["missing_seeds"])],
        "mIoU (%)": [fmt_mean_std(m, s) for m, s in zip(numeric["miou_mean"], numeric["miou_std"])],
        "boundary IoU (%)": [fmt_mean_std(m, s) for m, s in
                             zip(numeric["boundary_iou_mean"], numeric["boundary_iou_std"])],
        "GMACs": [fmt_num(v) for v in numeric["gmacs"]],
        "params (M)": [fmt_num(v) for v in numeric["params_m"]],
        "latency ms (median)": [latency(r) for _, r in numeric.iterrows()],
        "peak mem (MB)": [fmt_num(v, 0) for v in numeric["peak_mem_mb"]],
        "status": numeric["status"],
    })


def per_class_table(per_class: pd.DataFrame, trials: pd.DataFrame, models: pd.DataFrame) -> pd.DataFrame:
    """Classes x models: IoU (%) of each class, mean over the model's completed seeds."""
    trial_label = {}
    for _, m in models.iterrows():
        for tid in m["trial_ids"].split(","):
            trial_label[tid] = m["label"]
    done = set(trials.loc[trials["status"] == "completed", "trial_id"])
    pc = per_class[per_class["trial_id"].isin(done) & per_class["trial_id"].isin(trial_label)].copy()
    if pc.empty:
        return pd.DataFrame()
    pc["model"] = pc["trial_id"].map(trial_label)
    table = pc.pivot_table(index=["class_index", "class_name"], columns="model", values="iou", aggfunc="mean")
    table = table.reset_index(level="class_index", drop=True)
    table.columns.name = None
    table.index.name = "class"
    order = [label for label in models["label"] if label in table.columns]
    return table[order]


def markdown(df: pd.DataFrame, index: bool = False) -> str:
    """A GitHub-flavoured Markdown table (pipes in cells escaped)."""
    if index:
        df = df.reset_index()
    cells = [[_md_cell(v) for v in row] for row in df.itertuples(index=False)]
    header = [_md_cell(c) for c in df.columns]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in cells]
    return "\n".join(lines) + "\n"


def _md_cell(value) -> str:
    if isinstance(value, float):
        value = DASH if np.isnan(value) else f"{value:.2f}"
    return str(value).replace("|", "\\|").replace("\n", " ")


def latex(df: pd.DataFrame, index: bool = False, caption: str | None = None) -> str:
    """LaTeX tabular via pandas Styler (booktabs rules); text escaped, ± as $\\pm$."""
    shown = df.reset_index() if index else df
    shown = shown.map(lambda v: DASH if isinstance(v, float) and np.isnan(v) else
                      (f"{v:.2f}" if isinstance(v, float) else str(v)))
    styler = shown.style.hide(axis="index").format(escape="latex").format_index(escape="latex", axis=1)
    text = styler.to_latex(hrules=True, caption=_latex_escape(caption) if caption else None)
    return text.replace("±", r"$\pm$").replace("—", "--")


_LATEX_SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
                  "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}


def _latex_escape(text: str) -> str:
    return re.sub(r"[\\&%$#_{}~^]", lambda m: _LATEX_SPECIAL[m.group(0)], text)


def html_table(df: pd.DataFrame, index: bool = False) -> str:
    df = df.reset_index() if index else df
    shown = df.map(lambda v: DASH if isinstance(v, float) and np.isnan(v) else
                   (f"{v:.2f}" if isinstance(v, float) else v))
    return shown.to_html(index=False, escape=True, border=0, classes="tbl", na_rep=DASH)


def write_table(base: Path, numeric: pd.DataFrame, display: pd.DataFrame, *, index=False,
                caption: str | None = None) -> dict[str, Path]:
    """base.csv (numbers), base.md, base.tex, base.html (display). Returns the paths."""
    paths = {ext: base.with_suffix("." + ext) for ext in ("csv", "md", "tex", "html")}
    write_text(paths["csv"], numeric.to_csv(index=index))
    write_text(paths["md"], markdown(display, index=index))
    write_text(paths["tex"], latex(display, index=index, caption=caption))
    write_text(paths["html"], f"<!-- {html.escape(caption or base.name)} -->\n" + html_table(display, index=index))
    return paths
