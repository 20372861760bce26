"""Plots (matplotlib Agg + seaborn). Each `*_data` function returns the frame its plot draws, so that the numbers
behind a figure can be checked and are written beside it as CSV."""
from __future__ import annotations

import io
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

from reports.figures.style import (  # noqa: E402
    PAPER_DOUBLE, PAPER_SINGLE, PUBLISHED_MARKERS, Preset, Style, model_styles, paper_fonts,
)
from reports.pareto import pareto_mask  # noqa: E402
from reports.ranking import cost_ties, latency_half_width, ranks, tied_with  # noqa: E402

COSTS = {
    "gmacs": "GMACs (fvcore)",
    "latency_ms_median": "latency (ms), median",
}
FORMATS = ("png", "pdf", "svg")  # the PNG at 300 dpi; PDF and SVG are vector
DPI = 300
matplotlib.rcParams.update({"pdf.fonttype": 42, "ps.fonttype": 42, "svg.fonttype": "none"})  # editable text
LINE_IN = 0.165  # one legend row at the paper fonts, inches


def tradeoff_data(models: pd.DataFrame, cost: str) -> pd.DataFrame:
    """label, name (as papers write it), method, cost and its interval half-width (latency: half the IQR of the
    timing runs; GMACs: none), mIoU mean/std/n, its 95% bootstrap interval (ci_low/ci_high, NaN where none), the
    noisy-latency mark, and by the rules of reports/ranking.py: `ranked` (noisy latencies are not), `cost_rank`
    (tied costs share one; 0 unranked), `tied_with` (the ranked models whose cost ties with this one) and `pareto`
    (on the frontier of the ranked models, max mIoU, min cost, ties respected)."""
    def column(name, default=np.nan):
        return models[name].to_numpy() if name in models else np.full(len(models), default)

    labels = models["label"].to_numpy()
    names = column("name", "")
    names = np.where(pd.Series(names).fillna("").astype(str) != "", names, labels)
    data = pd.DataFrame({
        "label": labels,
        "name": names,
        "method": column("method", None) if "method" in models else names,
        "cost": models[cost].astype(float).to_numpy(),
        "miou_mean": models["miou_mean"].astype(float).to_numpy(),
        "miou_std": models["miou_std"].astype(float).to_numpy(),
        "n": models["n"].to_numpy(),
        "device": models["device"].to_numpy(),
        "noisy": column("latency_noisy", False).astype(bool) if cost != "gmacs" else False,
        "ci_low": column("miou_ci_low").astype(float),
        "ci_high": column("miou_ci_high").astype(float),
    })
    data["cost_err"] = np.nan if cost == "gmacs" else latency_half_width(column("latency_ms_iqr").astype(float))
    data = data[np.isfinite(data["cost"]) & np.isfinite(data["miou_mean"])].reset_index(drop=True)
    data["ranked"] = ~data["noisy"].astype(bool)
    ranked_cost = np.where(data["ranked"], data["cost"], np.nan)
    tied = cost_ties(cost, ranked_cost, data["cost_err"])
    data["cost_rank"] = ranks(ranked_cost, tied)
    data["tied_with"] = [", ".join(t) for t in tied_with(data["name"], tied)]
    data["pareto"] = pareto_mask(ranked_cost, data["miou_mean"], tied)
    return data


def _finite(value) -> float | None:
    return float(value) if value is not None and np.isfinite(value) and value > 0 else None


def miou_axis_label(n) -> str:
    """"mIoU (%)", with "mean over N seeds" only where some model has more than one."""
    n = [int(v) for v in n if pd.notna(v)]
    if not n or max(n) <= 1:
        return "mIoU (%)"
    if len(set(n)) == 1:
        return f"mIoU (%), mean of {n[0]} seeds"
    return "mIoU (%), mean over seeds (n: table)"


def plot_tradeoff(data: pd.DataFrame, cost: str, path: Path, published: pd.DataFrame | None = None,
                  styles: dict[str, Style] | None = None, xlabel: str | None = None,
                  preset: Preset = PAPER_DOUBLE) -> Path:
    """mIoU against a cost, in the `preset` size (no title: the caption names the figure). Each model is a marker
    in its method's colour and shape, named in the legend beside the axes (double column) or below them (single
    column); published points are grey shapes, also named there. Error bars (mIoU): the 95% bootstrap interval over
    val images where the row has one (capped), the std over seeds where several seeds ran (capped when there is no
    interval, a thick uncapped bar beside one). Horizontal bars (latency): the IQR of the timing runs, the interval
    whose overlap makes a tie. Noisy latencies are hollow, marked †, and on no frontier. The legend says what each
    bar and mark is."""
    styles = styles or model_styles(data["label"], data["method"] if "method" in data else None)
    with paper_fonts(preset):
        fig, ax = plt.subplots(figsize=(preset.width, preset.height), layout="constrained")
        handles = []
        drawn = set()
        for _, row in data.iterrows():
            style = styles[row["label"]]
            interval = _interval_err(row)
            std = _finite(row["miou_std"])
            xerr = _finite(row["cost_err"])
            bars = ax.errorbar(row["cost"], row["miou_mean"], yerr=interval if interval is not None else std,
                               xerr=xerr, fmt=style.marker, color=style.color, capsize=2, elinewidth=0.8,
                               markersize=5, markerfacecolor="white" if row["noisy"] else style.color,
                               markeredgecolor="black" if row["pareto"] else style.color, markeredgewidth=0.9,
                               alpha=0.9, label=row.get("name", row["label"]) + (" †" if row["noisy"] else ""))
            handles.append(bars)
            drawn.add("ci" if interval is not None else "std" if std is not None else None)
            drawn.add("iqr" if xerr is not None else None)
            drawn.add("noisy" if row["noisy"] else None)
            if interval is not None and std is not None:
                ax.errorbar(row["cost"], row["miou_mean"], yerr=std, fmt="none", ecolor=style.color, elinewidth=3,
                            alpha=0.4, capsize=0)
                drawn.add("std_beside_ci")
        handles += _error_bar_key(drawn)
        ranked = data[data["ranked"]] if "ranked" in data else data
        front = data[data["pareto"]].sort_values("cost", kind="stable")
        fx, fy = front["cost"].to_numpy(), front["miou_mean"].to_numpy()
        if len(fx):
            # extend the last step to the costliest ranked model: the best mIoU reachable at any cost up to there
            fx, fy = np.append(fx, max(fx[-1], ranked["cost"].max())), np.append(fy, fy[-1])
            handles += ax.plot(fx, fy, drawstyle="steps-post", color="black", linestyle="--", linewidth=0.8,
                               label="Pareto frontier (black edge: on it)")
        if published is not None and len(published):
            single = preset is PAPER_SINGLE  # one column has no room to name each: one entry for them all
            for i, (_, row) in enumerate(published.reset_index(drop=True).iterrows()):
                point = ax.scatter(row["cost"], row["miou"], marker=PUBLISHED_MARKERS[i % len(PUBLISHED_MARKERS)],
                                   color="0.35", s=25, linewidths=0.9, label=f"published: {row['label']}")
                if not single:
                    handles.append(point)
            if single:
                handles.append(ax.scatter([], [], marker="x", color="0.35", s=25, linewidths=0.9,
                                          label=f"grey: {len(published)} published rows (named in the CSV)"))
        costs = pd.concat([data["cost"], published["cost"] if published is not None else pd.Series(dtype=float)])
        if len(costs) and costs.min() > 0 and costs.max() / costs.min() > 20:
            ax.set_xscale("log")
        ax.margins(x=0.08, y=0.1)
        ax.set_xlabel(_wrap(xlabel or COSTS.get(cost, cost), preset))
        ax.set_ylabel(miou_axis_label(data["n"]))
        ax.grid(True, alpha=0.3, linewidth=0.5)
        _legend(fig, handles, preset)
        return _save(fig, path)


def _wrap(text: str, preset: Preset) -> str:
    """An axis title on two lines, broken at the comma nearest its middle, where one line would not fit the width."""
    if len(text) * 0.5 * preset.font / 72 < preset.width - 0.6 or ", " not in text:
        return text
    cuts = [i for i in range(len(text)) if text.startswith(", ", i)]
    cut = min(cuts, key=lambda i: abs(i - len(text) / 2))
    return text[:cut + 1] + "\n" + text[cut + 2:]


def _interval_err(row) -> np.ndarray | None:
    """[[below], [above]] the mean for errorbar's yerr, from the row's ci_low/ci_high; None without both."""
    low, high, mean = (float(row.get(k, np.nan)) for k in ("ci_low", "ci_high", "miou_mean"))
    if not (np.isfinite(low) and np.isfinite(high) and np.isfinite(mean)):
        return None
    return np.array([[max(mean - low, 0.0)], [max(high - mean, 0.0)]])


def _error_bar_key(drawn: set) -> list:
    """Legend entries saying what the bars and marks are."""
    from matplotlib.lines import Line2D

    key = []
    if "ci" in drawn:
        key.append(Line2D([], [], color="0.3", marker="|", markersize=6, linestyle="-", linewidth=0.8,
                          label="vertical bar: 95% bootstrap interval (val images)"))
    if "std_beside_ci" in drawn:
        key.append(Line2D([], [], color="0.3", linewidth=3, alpha=0.4, label="thick bar: ± std over seeds"))
    if "std" in drawn:
        key.append(Line2D([], [], color="0.3", marker="|", markersize=6, linestyle="-", linewidth=0.8,
                          label="vertical bar" + (" (no interval)" if "ci" in drawn else "") + ": ± std over seeds"))
    if "iqr" in drawn:
        key.append(Line2D([], [], color="0.3", marker="|", markersize=6, linestyle="-", linewidth=0.8,
                          label="horizontal bar: IQR of the timing runs"))
    if "noisy" in drawn:
        key.append(Line2D([], [], color="0.3", marker="o", markersize=5, markerfacecolor="white", linestyle="none",
                          label="hollow, †: noisy latency, not ranked"))
    return key


def _legend(fig, handles, preset: Preset) -> None:
    """A compact legend that never makes the axes shorter than itself: beside the axes at double-column width,
    below them in as many columns as fit at single-column width; the figure grows to keep the axes at least as
    tall as the legend."""
    if not handles:
        return
    font = matplotlib.rcParams["legend.fontsize"]
    longest = max(len(h.get_label()) for h in handles)
    entry_in = 0.35 + longest * 0.52 * font / 72  # handle + text at about half an em per character
    width, height = fig.get_size_inches()
    axes_min = LINE_IN * (len(handles) if preset is not PAPER_SINGLE else 0) + 0.15
    if preset is PAPER_SINGLE:
        ncol = max(1, min(len(handles), int((width - 0.1) // entry_in)))
        rows = -(-len(handles) // ncol)
        legend_in = LINE_IN * rows + 0.1
        axes_in = max(height - 0.55, legend_in)  # 0.55: the x axis's ticks and title
        fig.set_size_inches(width, axes_in + 0.55 + legend_in)
        fig.legend(handles=handles, loc="outside lower center", ncol=ncol, frameon=False, handletextpad=0.4,
                   columnspacing=1.0, handlelength=1.5)
    else:
        fig.set_size_inches(width, max(height, axes_min + 0.55))
        fig.legend(handles=handles, loc="outside right upper", ncol=1, frameon=False, handletextpad=0.4,
                   handlelength=1.5, borderaxespad=0.2)


def plot_per_class(table: pd.DataFrame, path: Path, preset: Preset = PAPER_DOUBLE) -> Path:
    """Heatmap of a classes x models IoU table (percent), at the preset's width (taller with more classes)."""
    with paper_fonts(preset):
        h = max(2.0, 0.16 * len(table) + 1.4)
        fig, ax = plt.subplots(figsize=(preset.width, min(h, 9.0)), layout="constrained")
        sns.heatmap(table, annot=table.size <= 400, fmt=".1f", cmap="viridis", vmin=0, vmax=100, ax=ax,
                    cbar_kws={"label": "IoU (%), mean over seeds"}, annot_kws={"fontsize": preset.tick})
        ax.set_xlabel("")
        ax.set_ylabel("")
        plt.setp(ax.get_xticklabels(), rotation=30, ha="right")
        plt.setp(ax.get_yticklabels(), rotation=0)
        return _save(fig, path)


def curves_data(trials: pd.DataFrame, models: pd.DataFrame, sweep_dir: Path) -> tuple[pd.DataFrame, list[str]]:
    """Long frame (label, trial_id, seed, status, kind, iter, value) from each trial's metrics.jsonl: from train
    records kind "loss" (the weighted total) and one kind per loss term ("loss_main", "loss_aux", ...), from
    eval records kind "miou". Also returns notes on unreadable files."""
    label_of = {tid: m["label"] for _, m in models.iterrows() for tid in m["trial_ids"].split(",")}
    name_of = {tid: m.get("name") or m["label"] for _, m in models.iterrows() for tid in m["trial_ids"].split(",")}
    rows, notes, missing = [], [], []
    for _, t in trials[trials["trial_id"].isin(label_of)].iterrows():
        if not t["trial_dir"]:
            continue
        path = Path(t["trial_dir"])
        path = (path if path.is_absolute() else sweep_dir / path) / "metrics.jsonl"
        if not path.is_file():
            if t["status"] in ("completed", "failed"):
                missing.append(f"{t['trial_id']}: no metrics.jsonl at {path}")
            continue
        for lineno, line in enumerate(path.read_text().splitlines(), 1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                notes.append(f"{path}:{lineno}: not JSON, skipped")
                continue
            if rec.get("iter") is None:
                continue
            if rec.get("kind") == "train":
                values = {k: v for k, v in rec.items() if (k == "loss" or k.startswith("loss_"))}
            elif rec.get("kind") == "eval":
                values = {"miou": rec.get("miou")}
            else:
                continue
            for kind, value in values.items():
                if isinstance(value, (int, float)):
                    rows.append(dict(label=label_of[t["trial_id"]], name=name_of[t["trial_id"]],
                                     trial_id=t["trial_id"], seed=t["seed"],
                                     status=t["status"], kind=kind, iter=int(rec["iter"]), value=float(value)))
    if len(missing) > 3:  # one note, not one per trial
        missing = [f"{len(missing)} trials have no metrics.jsonl ({missing[0]}, ...)"]
    columns = ["label", "name", "trial_id", "seed", "status", "kind", "iter", "value"]
    return pd.DataFrame(rows, columns=columns), missing + notes


def curve_panels(data: pd.DataFrame) -> list[str]:
    """The panels drawn: each loss term (the main term first: it is the same cross-entropy for every head,
    so it compares heads; the total does not, since OCR and the auxiliary heads add their own terms), the
    total only for records without terms, and eval mIoU only where some trial has more than one eval point."""
    kinds = list(dict.fromkeys(data["kind"]))
    terms = sorted((k for k in kinds if k.startswith("loss_")), key=lambda k: (k != "loss_main", k))
    panels = terms or (["loss"] if "loss" in kinds else [])
    evals = data[data["kind"] == "miou"]
    if len(evals) and evals.groupby("trial_id")["iter"].nunique().max() > 1:
        panels.append("miou")
    return panels


def _panel_label(kind: str) -> str:
    if kind == "miou":
        return "eval mIoU (%)"
    if kind == "loss":
        return "training loss (weighted total)"
    term = kind.removeprefix("loss_")
    return "main loss (CE, all heads)" if term == "main" else f"{term} loss (unweighted)"


def plot_curves(data: pd.DataFrame, path: Path, styles: dict[str, Style] | None = None,
                preset: Preset = PAPER_DOUBLE) -> Path:
    """One panel per curve kind (curve_panels), one line per trial, at the preset's width; no title."""
    panels = curve_panels(data) or ["loss"]
    styles = styles or model_styles(data["label"])
    cols = min(len(panels), 3)
    rows = -(-len(panels) // cols)
    with paper_fonts(preset):
        fig, axes = plt.subplots(rows, cols, figsize=(preset.width, preset.height * rows), layout="constrained",
                                 squeeze=False)
        handles = {}
        for ax, kind in zip(axes.flat, panels):
            sub = data[data["kind"] == kind]
            for trial_id, t in sub.groupby("trial_id", sort=False):
                t = t.sort_values("iter")
                label = t["label"].iloc[0]
                style = styles[label]
                name = t["name"].iloc[0] if "name" in t else label
                (line,) = ax.plot(t["iter"], t["value"], color=style.color, linewidth=0.9, alpha=0.9,
                                  marker=style.marker if kind == "miou" else None, markersize=3, label=name)
                handles.setdefault(label, line)
            values = sub["value"][sub["value"] > 0]
            if kind != "miou" and len(values) and values.max() / values.min() > 10:
                ax.set_yscale("log")  # early spikes would flatten the rest of the curves
            ax.set_xlabel("iteration")
            ax.set_ylabel(_panel_label(kind))
            ax.grid(True, alpha=0.3, linewidth=0.5)
        for ax in list(axes.flat)[len(panels):]:
            ax.set_visible(False)
        _legend(fig, [handles[k] for k in styles if k in handles], preset)
        return _save(fig, path)


def _save(fig, path: Path) -> Path:
    """path.png at 300 dpi, with path.pdf and path.svg beside it. Returns the PNG's path."""
    from bench.files.atomic import write_bytes

    path = Path(path)
    for fmt in FORMATS:
        buf = io.BytesIO()
        fig.savefig(buf, format=fmt, dpi=DPI)
        write_bytes(path.with_suffix("." + fmt), buf.getvalue())
    plt.close(fig)
    return path.with_suffix(".png")
