"""Accuracy against IFA's query resolution (eval.ifa_query_stride): mIoU and boundary IoU, and GMACs where measured,
one line per model, drawn only when the models of a dataset differ in the query stride."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from reports.aggregate import display_label, distinguishing_columns, model_label
from reports.figures.plots import _interval_err, _legend, _save, miou_axis_label, plt
from reports.figures.style import PAPER_DOUBLE, Preset, Style, model_styles, paper_fonts

STRIDE_COLUMNS = ("ifa_query_stride", "ifa_query")


def resolution_data(models: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """One row per (model, query stride) with a completed mIoU: `model` (the label without the query columns),
    query_stride, resolution (1 / stride), miou/boundary_iou mean and std, miou_ci_low/high, gmacs, n. Empty when
    fewer than two strides are present."""
    columns = ["model", "name", "method", "label", "query_stride", "resolution", "miou_mean", "miou_std", "miou_ci_low",
               "miou_ci_high", "boundary_iou_mean", "boundary_iou_std", "gmacs", "n"]
    if "ifa_query_stride" not in models or models.empty:
        return pd.DataFrame(columns=columns)
    stride = pd.to_numeric(models["ifa_query_stride"].replace("", np.nan), errors="coerce")
    done = models[stride.notna() & models["miou_mean"].notna()]
    stride = stride[done.index]
    if stride.nunique() < 2:
        return pd.DataFrame(columns=columns)
    base = [c for c in distinguishing_columns(models, keys) if c not in STRIDE_COLUMNS]

    def col(name):
        return done[name].astype(float).to_numpy() if name in done else np.full(len(done), np.nan)

    data = pd.DataFrame({
        "model": [model_label(r, base) for _, r in done.iterrows()],
        "name": [display_label(r, base) for _, r in done.iterrows()],
        "method": done["method"].to_numpy() if "method" in done else [model_label(r, base) for _, r in done.iterrows()],
        "label": done["label"].to_numpy(),
        "query_stride": stride.astype(int).to_numpy(),
        "resolution": 1.0 / stride.to_numpy(),
        "miou_mean": col("miou_mean"), "miou_std": col("miou_std"),
        "miou_ci_low": col("miou_ci_low"), "miou_ci_high": col("miou_ci_high"),
        "boundary_iou_mean": col("boundary_iou_mean"), "boundary_iou_std": col("boundary_iou_std"),
        "gmacs": col("gmacs"), "n": done["n"].to_numpy(),
    }, columns=columns)
    return data.sort_values(["model", "query_stride"], ascending=[True, False], kind="stable").reset_index(drop=True)


def _panels(data: pd.DataFrame) -> list[tuple[str, str, str]]:
    panels = [("miou_mean", "miou_std", "mIoU (%)"), ("boundary_iou_mean", "boundary_iou_std", "boundary IoU (%)")]
    if np.isfinite(data["gmacs"]).any():
        panels.append(("gmacs", "", "GMACs (fvcore)"))
    return panels


def _stride_text(stride: int) -> str:
    return "1/1 (label)" if stride == 1 else f"1/{stride}"


def plot_resolution(data: pd.DataFrame, path: Path, styles: dict[str, Style] | None = None,
                    protocol: str = "", conditions: str = "", preset: Preset = PAPER_DOUBLE) -> Path:
    """Panels against the query resolution (log2 axis, 1/4 .. 1/1 of the label size): mIoU (error bars: the
    95% bootstrap interval where present, else ± std over seeds), boundary IoU (± std over seeds) and GMACs (at
    the measurement input `conditions`: GMACs do not depend on threads or device). One colour and marker per model;
    `protocol` goes in the x-axis title. No title: the caption names the figure."""
    styles = styles or model_styles(data["model"], data["method"] if "method" in data else None)
    panels = _panels(data)
    strides = sorted(set(data["query_stride"]), reverse=True)
    with paper_fonts(preset):
        fig, axes = plt.subplots(1, len(panels), figsize=(preset.width, preset.height), layout="constrained",
                                 squeeze=False)
        handles = {}
        for ax, (mean, std, ylabel) in zip(axes.flat, panels):
            bars = set()
            for model, rows in data.groupby("model", sort=False):
                style = styles[model]
                rows = rows.sort_values("resolution")
                yerr = None
                if mean == "miou_mean":
                    errs = [_interval_err(r) for _, r in rows.iterrows()]
                    if all(e is not None for e in errs):
                        yerr = np.hstack(errs)
                        bars.add("ci")
                if yerr is None and std and np.isfinite(rows[std]).any():
                    yerr = rows[std].fillna(0).to_numpy()
                    bars.add("std")
                name = rows["name"].iloc[0] if "name" in rows else model
                line = ax.errorbar(rows["resolution"], rows[mean], yerr=yerr, fmt="-" + style.marker,
                                   color=style.color, capsize=2, markersize=4, linewidth=1.0, elinewidth=0.8,
                                   label=name)
                handles.setdefault(model, line)
            ax.set_xscale("log", base=2)
            ax.set_xticks([1.0 / s for s in strides], [_stride_text(s) for s in strides])
            ax.minorticks_off()
            ax.margins(x=0.12, y=0.12)
            ax.set_xlabel("IFA query resolution" + (f"\n{protocol}" if protocol else ""))
            if mean == "gmacs":
                ylabel += f"\n{conditions}" if conditions else ""
            elif mean == "miou_mean":
                ylabel = miou_axis_label(data["n"]) + {
                    frozenset(): "", frozenset({"std"}): "\nbars: ± std over seeds",
                    frozenset({"ci"}): "\nbars: 95% bootstrap interval",
                    frozenset({"ci", "std"}): "\nbars: 95% interval, else ± std",
                }[frozenset(bars)]
            elif (data["n"] > 1).any():
                ylabel += ", mean ± std over seeds"
            ax.set_ylabel(ylabel)
            ax.grid(True, alpha=0.3, linewidth=0.5)
        _legend(fig, [handles[m] for m in dict.fromkeys(data["model"])], preset)
        return _save(fig, path)
