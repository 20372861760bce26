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
    names = [c for c in ("name", "method") if c in models]
    out = models[["label"] + names + shown + protocol + SUMMARY_NUMERIC + extra].copy()
    if "order" in models:  # the sweep's axis order (first appearance in the results)
        out = out.iloc[np.argsort(models["order"].to_numpy(), kind="stable")]
    return pair_protocols(out.reset_index(drop=True))


def summary_display(numeric: pd.DataFrame) -> pd.DataFrame:
    """The summary formatted for reading: the model as papers name it, n, mIoU as mean ± std over seeds with its 95%
    interval in a column of its own (when some model has one), costs; "—" where unknown. The best value of each
    ranked column is bold, every model tied with it too (reports/ranking.py); `attrs["bold"]` lists those cells
    as (row, column) for the renderers."""
    def latency(row):
        if isinstance(row["latency_ms_median"], float) and math.isnan(row["latency_ms_median"]):
            return DASH
        return f"{row['latency_ms_median']:.1f}" + (" †" if _truthy(row.get("latency_noisy")) else "")

    paired = "miou_ms_flip_mean" in numeric
    lows, highs = _ci(numeric, "miou_ci_low"), _ci(numeric, "miou_ci_high")
    names = numeric["name"] if "name" in numeric else numeric["label"]
    table = pd.DataFrame({
        "model": names.to_numpy(),
        "n": [f"{int(n)}/{int(t) + (len(m.split(',')) if m else 0)}" for n, t, m in
              zip(numeric["n"], numeric["n_trials"], numeric["missing_seeds"])],
        "mIoU (%)": [fmt_mean_std(m, s) for m, s in zip(numeric["miou_mean"], numeric["miou_std"])],
        "95% interval": [fmt_interval(lo, hi).strip() or DASH for lo, hi in zip(lows, highs)],
        "boundary IoU (%)": [fmt_mean_std(m, s) for m, s in
                             zip(numeric["boundary_iou_mean"], numeric["boundary_iou_std"])],
        "GMACs": [fmt_num(v) for v in numeric["gmacs"]],
        "params (M)": [fmt_num(v) for v in numeric["params_m"]],
        "latency (ms)": [latency(r) for _, r in numeric.iterrows()],
        "peak mem (MiB)": [fmt_num(v, 0) for v in numeric["peak_mem_mb"]],
    })
    if not (np.isfinite(lows.astype(float)) & np.isfinite(highs.astype(float))).any():
        table = table.drop(columns="95% interval")
    if paired:
        table = table.rename(columns={"mIoU (%)": "mIoU ss (%)"})
        table.insert(3, "mIoU ms+flip (%)", [fmt_mean_std(m, s) for m, s in
                                             zip(numeric["miou_ms_flip_mean"], numeric["miou_ms_flip_std"])])
    table.attrs["bold"] = best_cells(numeric, table)
    return table


def best_cells(numeric: pd.DataFrame, display: pd.DataFrame) -> set[tuple[int, str]]:
    """(row, display column) of the best value of each ranked column and of every value tied with it: mIoU and
    boundary IoU highest (tied only when equal), GMACs and params lowest within 0.5%, latency lowest by interval
    overlap among the latencies that are not noisy."""
    from reports.ranking import cost_ties, latency_half_width, ranks

    def float_column(name):
        return numeric[name].astype(float).to_numpy() if name in numeric else np.full(len(numeric), np.nan)

    cells = set()
    miou = "mIoU ss (%)" if "mIoU ss (%)" in display else "mIoU (%)"
    for column, values, tied, lower in (
            (miou, float_column("miou_mean"), None, False),
            ("boundary IoU (%)", float_column("boundary_iou_mean"), None, False),
            ("GMACs", float_column("gmacs"), cost_ties("gmacs", float_column("gmacs")), True),
            ("params (M)", float_column("params_m"), cost_ties("params_m", float_column("params_m")), True)):
        cells |= {(i, column) for i in np.flatnonzero(ranks(values, tied, lower_is_better=lower) == 1)}
    noisy = np.array([_truthy(v) for v in numeric.get("latency_noisy", pd.Series(False, index=numeric.index))])
    latency = np.where(noisy, np.nan, float_column("latency_ms_median"))
    tied = cost_ties("latency_ms_median", latency, latency_half_width(float_column("latency_ms_iqr")))
    cells |= {(i, "latency (ms)") for i in np.flatnonzero(ranks(latency, tied) == 1)}
    return {(int(i), c) for i, c in cells if c in display}


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
    if "name" in out:  # the name less its protocol words (its method and backbone need columns not kept here)
        out["name"] = [_without_words(r["name"], model_label(r, list(PROTOCOL_COLUMNS))) if by_index[i] else r["name"]
                       for i, r in out.iterrows()]
    return out.reset_index(drop=True)


def _without_words(text: str, words: str) -> str:
    parts = text.split(" ")
    for word in words.split():
        if word in parts:
            parts.remove(word)
    return " ".join(parts)


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
    """A GitHub-flavoured Markdown table: number columns right-aligned, the best values (`attrs["bold"]`) bold,
    and every cell neutralised: HTML escaped (a name such as `<img onerror=...>` shows as text), pipes and links
    escaped, newlines flattened."""
    bold = df.attrs.get("bold", set())
    if index:
        df = df.reset_index()
    numeric = numeric_columns(df)
    cells = [[_md_cell(v, (i, c) in bold) for c, v in zip(df.columns, row)]
             for i, row in enumerate(df.itertuples(index=False))]
    header = [_md_cell(c) for c in df.columns]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("--:" if num else "---" for num in numeric) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in cells]
    return "\n".join(lines) + "\n"


def _md_cell(value, bold: bool = False) -> str:
    """HTML escaped; backslash, pipe and the `](` of a link or image escaped; one line."""
    text = md_text(_text(value)).replace("\n", " ").replace("\r", " ")
    text = text.replace("\\", "\\\\").replace("|", "\\|").replace("](", "]\\(")
    return f"**{text}**" if bold and text != DASH else text


def md_text(text: str) -> str:
    """Text for Markdown with its HTML characters escaped: a result name holding `<script>` shows as text in every
    Markdown viewer (the HTML report escapes through jinja2)."""
    return html.escape(str(text), quote=False)


_NUMERIC_CELL = re.compile(r"^[-+−]?\d[\d.,]*(\s*±\s*\d[\d.,]*)?(\s*\[[-+−]?\d[\d.]*,\s*[-+−]?\d[\d.]*\])?"
                           r"(\s*[†*])?$|^/?\d+/\d+$|^\[[-+−]?\d[\d.]*,\s*[-+−]?\d[\d.]*\]$")


def numeric_columns(df: pd.DataFrame) -> list[bool]:
    """Per column: True when every known cell is a number ("61.00", "61.00 ± 1.00", "[60.10, 61.90]", "2/3",
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


_S_NUMBER = re.compile(r"^([-+−]?\d+)(?:\.(\d+))?(?:\s*±\s*(\d+)(?:\.(\d+))?)?(\s*†)?$")


def _s_format(cells: list[str]) -> str | None:
    """siunitx table-format for a column of numbers ("61.00", "61.00 ± 1.00", "50.0 †"), None when some known cell
    is no such number (the column is then a right-aligned text column)."""
    known = [c for c in cells if c not in (DASH, "")]
    matches = [_S_NUMBER.match(c) for c in known]
    if not known or not all(matches):
        return None
    whole = max(len(m.group(1).lstrip("-+−")) for m in matches)
    sign = "-" if any(m.group(1)[0] in "-−" for m in matches) else ""
    dec = max(len(m.group(2) or "") for m in matches)
    fmt = f"{sign}{whole}.{dec}" if dec else f"{sign}{whole}"
    if any(m.group(3) for m in matches):
        u_whole = max(len(m.group(3) or "") for m in matches)
        u_dec = max(len(m.group(4) or "") for m in matches)
        fmt += f" +- {u_whole}.{u_dec}" if u_dec else f" +- {u_whole}"
    return fmt


def latex(df: pd.DataFrame, index: bool = False, caption: str | None = None, label: str | None = None) -> str:
    """A booktabs table, \\centering, with \\caption and \\label: text columns left-aligned; number columns as
    siunitx S columns (table-format from the numbers, "± std" as a separate uncertainty), so decimal points line
    up; intervals and counts right-aligned text; the best values (`attrs["bold"]`) in bold; text escaped, † as
    \\dag. Needs \\usepackage{booktabs,siunitx} and \\sisetup{separate-uncertainty, detect-weight, mode=match}
    (the file's first comment says so)."""
    bold = df.attrs.get("bold", set())
    shown = df.reset_index() if index else df
    columns = [str(c) for c in shown.columns]
    texts = [[_text(v) for v in row] for row in shown.itertuples(index=False)]
    numeric = numeric_columns(shown)
    formats = [_s_format([r[j] for r in texts]) if numeric[j] else None for j in range(len(columns))]
    spec = "".join(f"S[table-format={f}]" if f else "r" if num else "l" for f, num in zip(formats, numeric))
    head = [("{" + _latex_escape(c) + "}") if f else _latex_escape(c) for c, f in zip(columns, formats)]
    body = []
    for i, row in enumerate(texts):
        cells = []
        for j, cell in enumerate(row):
            strong = (i, columns[j]) in bold and cell != DASH
            cells.append(_latex_cell(cell, formats[j] is not None, strong))
        body.append(" & ".join(cells) + r" \\")
    lines = [r"% \usepackage{booktabs,siunitx}; \sisetup{separate-uncertainty, detect-weight, mode=match}",
             r"\begin{table}", r"\centering"]
    if caption:
        lines.append(r"\caption{" + _latex_escape(caption) + "}")
    if label:
        lines.append(r"\label{" + re.sub(r"[^A-Za-z0-9:_.-]", "-", label) + "}")
    lines += [r"\begin{tabular}{" + spec + "}", r"\toprule", " & ".join(head) + r" \\", r"\midrule", *body,
              r"\bottomrule", r"\end{tabular}", r"\end{table}"]
    return "\n".join(lines) + "\n"


def _latex_cell(cell: str, s_column: bool, strong: bool) -> str:
    if cell in (DASH, ""):
        return "{--}" if s_column else "--"
    if s_column:
        m = _S_NUMBER.match(cell)
        number = m.group(1).replace("−", "-") + (f".{m.group(2)}" if m.group(2) else "")
        if m.group(3):
            number += r" \pm " + m.group(3) + (f".{m.group(4)}" if m.group(4) else "")
        return (r"\bfseries " if strong else "") + number + (r"{\dag}" if m.group(5) else "")
    text = _latex_escape(cell)
    return r"\textbf{" + text + "}" if strong else text


_LATEX_SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
                  "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
                  "<": r"\textless{}", ">": r"\textgreater{}"}


def _latex_escape(text: str) -> str:
    """LaTeX's special characters escaped; ± as $\\pm$, the noisy mark † as \\dag, — as --."""
    text = re.sub(r"[\\&%$#_{}~^<>]", lambda m: _LATEX_SPECIAL[m.group(0)], str(text))
    return text.replace("±", r"$\pm$").replace("†", r"\dag{}").replace("—", "--")


def html_table(df: pd.DataFrame, index: bool = False, caption: str | None = None) -> str:
    """The table as HTML from reports/templates/table.html.j2 (autoescaped); number columns right-aligned, the best
    values (`attrs["bold"]`) bold."""
    from reports.templates import render

    bold = df.attrs.get("bold", set())
    shown = df.reset_index() if index else df
    columns = [str(c) for c in shown.columns]
    return render("table.html.j2", columns=columns, numeric=numeric_columns(shown),
                  rows=[[(_text(v), (i, c) in bold) for c, v in zip(columns, row)]
                        for i, row in enumerate(shown.itertuples(index=False))], caption=caption)


def write_table(base: Path, numeric: pd.DataFrame, display: pd.DataFrame, *, index=False,
                caption: str | None = None, note: str | None = None) -> dict[str, Path]:
    """base.csv (numbers, formula-like text neutralised), base.md, base.tex, base.html (display). Returns the paths.
    `note` (e.g. the conditions the costs were measured under, the tie rule) travels with each readable file, so a
    table copied into a paper keeps it: the LaTeX and HTML captions, a line under the Markdown table. The CSV states
    them in its own columns. The LaTeX \\label is tab:<file name>."""
    paths = {ext: base.with_suffix("." + ext) for ext in ("csv", "md", "tex", "html")}
    full = ". ".join(t for t in (caption, note) if t) or None
    write_text(paths["csv"], csv_text(numeric, index=index))
    write_text(paths["md"], markdown(display, index=index) + (f"\n{_md_cell(note)}\n" if note else ""))
    write_text(paths["tex"], latex(display, index=index, caption=full, label=f"tab:{base.name}"))
    write_text(paths["html"], f"<!-- {html.escape(caption or base.name).replace('--', '- -')} -->\n"
               + html_table(display, index=index, caption=note and full))
    return paths
