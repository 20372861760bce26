"""Tables from the per-model aggregate: numeric CSV, and Markdown / LaTeX / HTML for reading."""
from __future__ import annotations

import html
import math
import re
from pathlib import Path

import numpy as np
import pandas as pd

from reports.aggregate import distinguishing_columns
from bench.results.csv_export import csv_text
from bench.files.atomic import write_text

DASH = "—"

# numeric CSV columns of the summary table, after the model-distinguishing config columns
SUMMARY_NUMERIC = ["n", "n_trials", "miou_mean", "miou_std", "boundary_iou_mean", "boundary_iou_std", "gmacs",
                   "params_m", "latency_ms_median", "device", "peak_mem_mb", "measure_input", "seeds",
                   "missing_seeds", "status", "miou_ci_low", "miou_ci_high"]
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


def fmt_interval(low, high, digits=2) -> str:
    """" [low, high]" (the 95% bootstrap interval appended to a value), or "" when there is none."""
    if any(v is None or not np.isfinite(float(v)) for v in (low, high)):
        return ""
    return f" [{low:.{digits}f}, {high:.{digits}f}]"


def _ci(numeric: pd.DataFrame, column: str) -> pd.Series:
    return numeric[column] if column in numeric else pd.Series(np.nan, index=numeric.index)


def summary_numeric(models: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """The per-dataset summary with raw numbers (one row per model)."""
    shown = distinguishing_columns(models, keys)
    extra = [c for c in SUMMARY_EXTRA if c in models]
    protocol = [c for c in PROTOCOL_COLUMNS if c not in shown]  # to pair single- with multi-scale rows
    out = models[["label"] + shown + protocol + SUMMARY_NUMERIC + extra].copy()
    if "order" in models:  # the sweep's axis order (first appearance in the results)
        out = out.iloc[np.argsort(models["order"].to_numpy(), kind="stable")]
    return pair_protocols(out.reset_index(drop=True))


def summary_display(numeric: pd.DataFrame) -> pd.DataFrame:
    """The summary formatted for reading: mIoU as mean ± std over seeds, n, costs; "—" where unknown."""
    def latency(row):
        if isinstance(row["latency_ms_median"], float) and math.isnan(row["latency_ms_median"]):
            return DASH
        return f"{row['latency_ms_median']:.1f}" + (" †" if _truthy(row.get("latency_noisy")) else "")

    paired = "miou_ms_flip_mean" in numeric
    table = pd.DataFrame({
        "model": numeric["label"],
        "n": [f"{int(n)}/{int(t) + (len(m.split(',')) if m else 0)}" for n, t, m in
              zip(numeric["n"], numeric["n_trials"], numeric["missing_seeds"])],
        "mIoU (%)": [fmt_mean_std(m, s) + (fmt_interval(lo, hi) if fmt_mean_std(m, s) != DASH else "")
                     for m, s, lo, hi in zip(numeric["miou_mean"], numeric["miou_std"], _ci(numeric, "miou_ci_low"),
                                             _ci(numeric, "miou_ci_high"))],
        "boundary IoU (%)": [fmt_mean_std(m, s) for m, s in
                             zip(numeric["boundary_iou_mean"], numeric["boundary_iou_std"])],
        "GMACs": [fmt_num(v) for v in numeric["gmacs"]],
        "params (M)": [fmt_num(v) for v in numeric["params_m"]],
        "latency (ms)": [latency(r) for _, r in numeric.iterrows()],
        "peak mem (MiB)": [fmt_num(v, 0) for v in numeric["peak_mem_mb"]],
    })
    if paired:
        table = table.rename(columns={"mIoU (%)": "mIoU ss (%)"})
        table.insert(3, "mIoU ms+flip (%)", [fmt_mean_std(m, s) for m, s in
                                             zip(numeric["miou_ms_flip_mean"], numeric["miou_ms_flip_std"])])
    return table


PROTOCOL_COLUMNS = ("eval_scales", "eval_flip")


def pair_protocols(numeric: pd.DataFrame) -> pd.DataFrame:
    """Single-scale and multi-scale+flip rows of the same model side by side: the single-scale row gains
    `miou_ms_flip_mean/std` from its partner, the partner row goes, and labels drop the protocol. Unchanged when
    no model has both."""
    from reports.aggregate import model_label
    from reports.mapping import protocol_of

    if not all(c in numeric for c in PROTOCOL_COLUMNS) or numeric.empty:
        return numeric
    protocol = [protocol_of(s, str(f) == "True") for s, f in zip(numeric["eval_scales"], numeric["eval_flip"])]
    shown = [c for c in numeric.columns if c in _config_columns(numeric) and c not in PROTOCOL_COLUMNS]
    key = numeric[shown].astype(str).agg("|".join, axis=1)
    ms = {k: i for k, i, p in zip(key, numeric.index, protocol) if p == "miou_ms_flip"}
    pairs = {i: ms[k] for k, i, p in zip(key, numeric.index, protocol) if p == "miou_ss" and k in ms}
    if not pairs:
        return numeric
    out = numeric.copy()
    out["miou_ms_flip_mean"] = np.nan
    out["miou_ms_flip_std"] = np.nan
    for ss, partner in pairs.items():
        out.loc[ss, ["miou_ms_flip_mean", "miou_ms_flip_std"]] = numeric.loc[partner, ["miou_mean", "miou_std"]].to_numpy()
    for i, p in zip(numeric.index, protocol):  # multi-scale only: its number goes in its own column
        if p == "miou_ms_flip" and i not in pairs.values():
            out.loc[i, ["miou_ms_flip_mean", "miou_ms_flip_std"]] = numeric.loc[i, ["miou_mean", "miou_std"]].to_numpy()
            out.loc[i, ["miou_mean", "miou_std"]] = np.nan
    out = out.drop(index=list(pairs.values()))
    label_cols = [c for c in shown if c != "label"]
    by_index = dict(zip(numeric.index, protocol))
    out["label"] = [model_label(r, label_cols) if by_index[i] else r["label"] for i, r in out.iterrows()]
    return out.reset_index(drop=True)


def _config_columns(numeric: pd.DataFrame) -> set:
    from bench.results.schema import CONFIG

    return set(CONFIG) | {c for c in numeric.columns if c.startswith("cfg.")}


def _truthy(value) -> bool:
    return str(value).strip().lower() in ("true", "1", "1.0", "yes")


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
    return md_text(str(value)).replace("|", "\\|").replace("\n", " ")


def md_text(text: str) -> str:
    """Text for Markdown with its HTML characters escaped: a result name holding `<script>` shows as text in every
    Markdown viewer (the HTML report escapes through jinja2)."""
    return html.escape(str(text), quote=False)


_NUMERIC_CELL = re.compile(r"^[-+−]?\d[\d.,]*(\s*±\s*\d[\d.,]*)?(\s*\[[-+−]?\d[\d.]*,\s*[-+−]?\d[\d.]*\])?"
                           r"(\s*[†*])?$|^/?\d+/\d+$")


def numeric_columns(df: pd.DataFrame) -> list[bool]:
    """Per column: True when every known cell is a number ("61.00", "61.00 ± 1.00", "61.00 [60.10, 61.90]", "2/3",
    "50.0 †")."""
    flags = []
    for col in df.columns:
        cells = [_text(v) for v in df[col]]
        known = [c for c in cells if c not in (DASH, "")]
        flags.append(bool(known) and all(_NUMERIC_CELL.match(c) for c in known))
    return flags


def _text(value) -> str:
    if isinstance(value, float):
        return DASH if np.isnan(value) else f"{value:.2f}"
    return str(value)


def latex(df: pd.DataFrame, index: bool = False, caption: str | None = None) -> str:
    """A booktabs tabular: text columns left-aligned, number columns right-aligned (r), so decimal points line
    up at a fixed number of decimals; text escaped, ± as $\\pm$, the noisy mark † as \\dag."""
    shown = df.reset_index() if index else df
    align = "".join("r" if num else "l" for num in numeric_columns(shown))
    shown = shown.map(_text)
    styler = shown.style.hide(axis="index").format(escape="latex").format_index(escape="latex", axis=1)
    text = styler.to_latex(hrules=True, column_format=align, caption=_latex_escape(caption) if caption else None)
    return text.replace("±", r"$\pm$").replace("—", "--").replace("†", r"\dag{}")


_LATEX_SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
                  "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}


def _latex_escape(text: str) -> str:
    return re.sub(r"[\\&%$#_{}~^]", lambda m: _LATEX_SPECIAL[m.group(0)], text)


def html_table(df: pd.DataFrame, index: bool = False, caption: str | None = None) -> str:
    """The table as HTML from reports/templates/table.html.j2; number columns right-aligned."""
    from reports.templates import render

    shown = df.reset_index() if index else df
    return render("table.html.j2", columns=[str(c) for c in shown.columns], numeric=numeric_columns(shown),
                  rows=[[_text(v) for v in row] for row in shown.itertuples(index=False)], caption=caption)


def write_table(base: Path, numeric: pd.DataFrame, display: pd.DataFrame, *, index=False,
                caption: str | None = None, note: str | None = None) -> dict[str, Path]:
    """base.csv (numbers), base.md, base.tex, base.html (display). Returns the paths. `note` (e.g. the conditions
    the costs were measured under) travels with each readable file, so a table copied into a paper keeps it: the
    LaTeX and HTML captions, a line under the Markdown table. The CSV states them in its own columns."""
    paths = {ext: base.with_suffix("." + ext) for ext in ("csv", "md", "tex", "html")}
    full = ". ".join(t for t in (caption, note) if t) or None
    write_text(paths["csv"], csv_text(numeric, index=index))
    write_text(paths["md"], markdown(display, index=index) + (f"\n{md_text(note)}\n" if note else ""))
    write_text(paths["tex"], latex(display, index=index, caption=full))
    write_text(paths["html"], f"<!-- {html.escape(caption or base.name)} -->\n"
               + html_table(display, index=index, caption=note and full))
    return paths
