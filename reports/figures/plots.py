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

from reports.pareto import frontier_steps, pareto_mask  # noqa: E402
from reports.figures.style import PUBLISHED_MARKERS, Style, model_styles  # noqa: E402

COSTS = {
    "gmacs": "GMACs (fvcore)",
    "latency_ms_median": "latency, median (ms)",
}
FORMATS = ("png", "pdf", "svg")  # the PNG at 300 dpi; PDF and SVG are vector
DPI = 300
matplotlib.rcParams.update({"pdf.fonttype": 42, "ps.fonttype": 42, "svg.fonttype": "none"})  # editable text


def tradeoff_data(models: pd.DataFrame, cost: str) -> pd.DataFrame:
    """label, cost and its error, mIoU mean/std/n, its 95% bootstrap interval (ci_low/ci_high, NaN where none), the
    noisy-latency mark and whether the model is on the Pareto frontier (max mIoU, min cost). The cost's error bar: for latency the spread over seeds (sample std)
    where several seeds were timed, else half the interquartile range of the timing runs."""
    def column(name, default=np.nan):
        return models[name].to_numpy() if name in models else np.full(len(models), default)

    data = pd.DataFrame({
        "label": models["label"].to_numpy(),
        "cost": models[cost].astype(float).to_numpy(),
        "miou_mean": models["miou_mean"].astype(float).to_numpy(),
        "miou_std": models["miou_std"].astype(float).to_numpy(),
        "n": models["n"].to_numpy(),
        "device": models["device"].to_numpy(),
        "noisy": column("latency_noisy", False).astype(bool) if cost != "gmacs" else False,
        "ci_low": column("miou_ci_low").astype(float),
        "ci_high": column("miou_ci_high").astype(float),
    })
    if cost == "gmacs":
        data["cost_err"] = np.nan  # deterministic
    else:
        seed_std = column("latency_ms_seed_std").astype(float)
        half_iqr = column("latency_ms_iqr").astype(float) / 2
        data["cost_err"] = np.where(np.isfinite(seed_std) & (seed_std > 0), seed_std, half_iqr)
    data = data[np.isfinite(data["cost"]) & np.isfinite(data["miou_mean"])].reset_index(drop=True)
    data["pareto"] = pareto_mask(data["cost"], data["miou_mean"])
    return data


def _finite(value) -> float | None:
    return float(value) if value is not None and np.isfinite(value) and value > 0 else None


def plot_tradeoff(data: pd.DataFrame, cost: str, path: Path, title: str,
                  published: pd.DataFrame | None = None, styles: dict[str, Style] | None = None,
                  xlabel: str | None = None) -> Path:
    """mIoU against a cost. Each model is a coloured marker named in the legend below the axes (no text in
    the axes, so nothing overlaps at any number of models); published points are grey shapes, also named
    there. Error bars (mIoU): the 95% bootstrap interval over val images where the row has one (capped), the
    std over seeds where several seeds ran (capped when there is no interval, a thick uncapped bar beside one);
    the legend says which. The cost's error from `tradeoff_data`."""
    styles = styles or model_styles(data["label"])
    fig, ax = plt.subplots(figsize=(7.0, 4.2), layout="constrained")
    handles = []
    drawn = set()
    for _, row in data.iterrows():
        style = styles[row["label"]]
        name = f"{row['label']} (n={row['n']})" + (" † noisy latency" if row["noisy"] else "")
        interval = _interval_err(row)
        std = _finite(row["miou_std"])
        bars = ax.errorbar(row["cost"], row["miou_mean"], yerr=interval if interval is not None else std,
                           xerr=_finite(row["cost_err"]), fmt=style.marker, color=style.color, capsize=3,
                           markersize=7, markerfacecolor="white" if row["noisy"] else style.color,
                           markeredgecolor="black" if row["pareto"] else style.color, markeredgewidth=1.2,
                           label=name)
        handles.append(bars)
        drawn.add("ci" if interval is not None else "std" if std is not None else None)
        if interval is not None and std is not None:
            ax.errorbar(row["cost"], row["miou_mean"], yerr=std, fmt="none", ecolor=style.color, elinewidth=4,
                        alpha=0.4, capsize=0)
            drawn.add("std_beside_ci")
    handles += _error_bar_key(drawn)
    fx, fy = frontier_steps(data["cost"], data["miou_mean"])
    if len(fx):
        # extend the last step to the costliest model: the best mIoU reachable at any cost up to there
        fx, fy = np.append(fx, max(fx[-1], data["cost"].max())), np.append(fy, fy[-1])
        handles += ax.plot(fx, fy, drawstyle="steps-post", color="black", linestyle="--", linewidth=1,
                           label="Pareto frontier (black edge: on it)")
    if published is not None and len(published):
        for i, (_, row) in enumerate(published.reset_index(drop=True).iterrows()):
            handles.append(ax.scatter(row["cost"], row["miou"], marker=PUBLISHED_MARKERS[i % len(PUBLISHED_MARKERS)],
                                      color="0.35", s=60, linewidths=1.3,
                                      label=f"published: {row['label']}"))
    costs = pd.concat([data["cost"], published["cost"] if published is not None else pd.Series(dtype=float)])
    if len(costs) and costs.min() > 0 and costs.max() / costs.min() > 20:
        ax.set_xscale("log")
    ax.margins(x=0.08, y=0.1)
    ax.set_xlabel(xlabel or COSTS.get(cost, cost))
    ax.set_ylabel("mIoU (%), mean over seeds" if "ci" in drawn else "mIoU (%), mean ± std over seeds")
    ax.set_title(title, fontsize=10)
    ax.grid(True, alpha=0.3)
    _legend_below(fig, handles)
    return _save(fig, path)


def _interval_err(row) -> np.ndarray | None:
    """[[below], [above]] the mean for errorbar's yerr, from the row's ci_low/ci_high; None without both."""
    low, high, mean = (float(row.get(k, np.nan)) for k in ("ci_low", "ci_high", "miou_mean"))
    if not (np.isfinite(low) and np.isfinite(high) and np.isfinite(mean)):
        return None
    return np.array([[max(mean - low, 0.0)], [max(high - mean, 0.0)]])


def _error_bar_key(drawn: set) -> list:
    """Legend entries saying what the mIoU error bars are."""
    from matplotlib.lines import Line2D

    key = []
    if "ci" in drawn:
        key.append(Line2D([], [], color="0.3", marker="|", markersize=9, linestyle="-",
                          label="capped bar: 95% bootstrap interval over val images"))
    if "std_beside_ci" in drawn:
        key.append(Line2D([], [], color="0.3", linewidth=4, alpha=0.4, label="thick bar: ± std over seeds"))
    if "std" in drawn:
        key.append(Line2D([], [], color="0.3", marker="|", markersize=9, linestyle="-",
                          label="capped bar" + (" (no interval)" if "ci" in drawn else "") + ": ± std over seeds"))
    return key


def _legend_below(fig, handles) -> None:
    """The legend under the axes; the figure grows by its height, so the axes keep theirs at any count."""
    if not handles:
        return
    longest = max(len(h.get_label()) for h in handles)
    ncol = 1 if longest > 48 else 2 if longest > 28 else 3
    rows = -(-len(handles) // ncol)
    width, height = fig.get_size_inches()
    fig.set_size_inches(width, height + 0.17 * rows + 0.1)
    fig.legend(handles=handles, loc="outside lower center", ncol=ncol, fontsize=7.5, frameon=False,
               handletextpad=0.4, columnspacing=1.2)


def plot_per_class(table: pd.DataFrame, path: Path, title: str) -> Path:
    """Heatmap of a classes x models IoU table (percent)."""
    h = max(2.5, 0.32 * len(table) + 1.5)
    w = max(5.0, 1.1 * len(table.columns) + 2.5)
    fig, ax = plt.subplots(figsize=(min(w, 18), min(h, 24)), layout="constrained")
    sns.heatmap(table, annot=table.size <= 400, fmt=".1f", cmap="viridis", vmin=0, vmax=100, ax=ax,
                cbar_kws={"label": "IoU (%)"}, annot_kws={"fontsize": 7})
    ax.set_xlabel("")
    ax.set_ylabel("")
    ax.set_title(title, fontsize=10)
    plt.setp(ax.get_xticklabels(), rotation=30, ha="right", fontsize=8)
    plt.setp(ax.get_yticklabels(), rotation=0, fontsize=8)
    return _save(fig, path)


def curves_data(trials: pd.DataFrame, models: pd.DataFrame, sweep_dir: Path) -> tuple[pd.DataFrame, list[str]]:
    """Long frame (label, trial_id, seed, status, kind, iter, value) from each trial's metrics.jsonl: from train
    records kind "loss" (the weighted total) and one kind per loss term ("loss_main", "loss_aux", ...), from
    eval records kind "miou". Also returns notes on unreadable files."""
    label_of = {tid: m["label"] for _, m in models.iterrows() for tid in m["trial_ids"].split(",")}
    rows, notes = [], []
    for _, t in trials[trials["trial_id"].isin(label_of)].iterrows():
        if not t["trial_dir"]:
            continue
        path = Path(t["trial_dir"])
        path = (path if path.is_absolute() else sweep_dir / path) / "metrics.jsonl"
        if not path.is_file():
            if t["status"] in ("completed", "failed"):
                notes.append(f"{t['trial_id']}: no metrics.jsonl at {path}")
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
                    rows.append(dict(label=label_of[t["trial_id"]], trial_id=t["trial_id"], seed=t["seed"],
                                     status=t["status"], kind=kind, iter=int(rec["iter"]), value=float(value)))
    columns = ["label", "trial_id", "seed", "status", "kind", "iter", "value"]
    return pd.DataFrame(rows, columns=columns), notes


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
    return "main loss (cross-entropy, all heads)" if term == "main" else f"{term} loss (unweighted)"


def plot_curves(data: pd.DataFrame, path: Path, title: str, styles: dict[str, Style] | None = None) -> Path:
    panels = curve_panels(data) or ["loss"]
    styles = styles or model_styles(data["label"])
    cols = min(len(panels), 3)
    rows = -(-len(panels) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.2 * rows + 0.6), layout="constrained",
                             squeeze=False)
    handles = {}
    for ax, kind in zip(axes.flat, panels):
        sub = data[data["kind"] == kind]
        for trial_id, t in sub.groupby("trial_id", sort=False):
            t = t.sort_values("iter")
            label = t["label"].iloc[0]
            style = styles[label]
            (line,) = ax.plot(t["iter"], t["value"], color=style.color, linewidth=1.2, alpha=0.9,
                              marker=style.marker if kind == "miou" else None, markersize=4, label=label)
            handles.setdefault(label, line)
        values = sub["value"][sub["value"] > 0]
        if kind != "miou" and len(values) and values.max() / values.min() > 10:
            ax.set_yscale("log")  # early spikes would flatten the rest of the curves
        ax.set_xlabel("iteration")
        ax.set_ylabel(_panel_label(kind), fontsize=9)
        ax.grid(True, alpha=0.3)
    for ax in list(axes.flat)[len(panels):]:
        ax.set_visible(False)
    fig.suptitle(title + " (one line per trial)", fontsize=10)
    _legend_below(fig, [handles[k] for k in styles if k in handles])
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
