"""Plots (matplotlib Agg + seaborn). Each `*_data` function returns the frame its plot draws, so that the numbers
behind a figure can be checked and are written beside it as CSV."""
from __future__ import annotations

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

from reports.pareto import frontier_steps, pareto_mask  # noqa: E402

COSTS = {
    "gmacs": "GMACs (fvcore, batch 1)",
    "latency_ms_median": "latency, median (ms)",
}


def tradeoff_data(models: pd.DataFrame, cost: str) -> pd.DataFrame:
    """label, cost, mIoU mean/std/n and whether the model is on the Pareto frontier (max mIoU, min cost)."""
    data = pd.DataFrame({
        "label": models["label"].to_numpy(),
        "cost": models[cost].astype(float).to_numpy(),
        "miou_mean": models["miou_mean"].astype(float).to_numpy(),
        "miou_std": models["miou_std"].astype(float).to_numpy(),
        "n": models["n"].to_numpy(),
        "device": models["device"].to_numpy(),
    })
    data = data[np.isfinite(data["cost"]) & np.isfinite(data["miou_mean"])].reset_index(drop=True)
    data["pareto"] = pareto_mask(data["cost"], data["miou_mean"])
    return data


def plot_tradeoff(data: pd.DataFrame, cost: str, path: Path, title: str,
                  published: pd.DataFrame | None = None) -> Path:
    fig, ax = plt.subplots(figsize=(7.5, 5.0), dpi=110)
    palette = sns.color_palette("tab10", max(len(data), 1))
    for i, row in data.iterrows():
        ax.errorbar(row["cost"], row["miou_mean"], yerr=0 if np.isnan(row["miou_std"]) else row["miou_std"],
                    fmt="o", color=palette[i % len(palette)], capsize=4, markersize=7,
                    markeredgecolor="black" if row["pareto"] else "none")
        ax.annotate(f"{row['label']} (n={row['n']})", (row["cost"], row["miou_mean"]), textcoords="offset points",
                    xytext=(6, 6), fontsize=8)
    fx, fy = frontier_steps(data["cost"], data["miou_mean"])
    if len(fx):
        # extend the last step to the costliest model: the best mIoU reachable at any cost up to there
        fx, fy = np.append(fx, max(fx[-1], data["cost"].max())), np.append(fy, fy[-1])
        ax.plot(fx, fy, drawstyle="steps-post", color="black", linestyle="--", linewidth=1, label="Pareto frontier")
    if published is not None and len(published):
        ax.scatter(published["cost"], published["miou"], marker="x", color="grey", s=50,
                   label="published (source's own device)")
        for _, row in published.iterrows():
            ax.annotate(row["label"], (row["cost"], row["miou"]), textcoords="offset points", xytext=(5, -10),
                        fontsize=7, color="grey")
    costs = pd.concat([data["cost"], published["cost"] if published is not None else pd.Series(dtype=float)])
    if len(costs) and costs.min() > 0 and costs.max() / costs.min() > 20:
        ax.set_xscale("log")
    ax.margins(x=0.12, y=0.1)
    ax.set_xlabel(COSTS.get(cost, cost))
    ax.set_ylabel("mIoU (%), mean ± std over seeds")
    ax.set_title(title, fontsize=10)
    ax.grid(True, alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    return _save(fig, path)


def plot_per_class(table: pd.DataFrame, path: Path, title: str) -> Path:
    """Heatmap of a classes x models IoU table (percent)."""
    h = max(2.5, 0.32 * len(table) + 1.5)
    w = max(5.0, 1.1 * len(table.columns) + 2.5)
    fig, ax = plt.subplots(figsize=(min(w, 18), min(h, 24)), dpi=110)
    sns.heatmap(table, annot=table.size <= 400, fmt=".1f", cmap="viridis", vmin=0, vmax=100, ax=ax,
                cbar_kws={"label": "IoU (%)"}, annot_kws={"fontsize": 7})
    ax.set_xlabel("")
    ax.set_ylabel("")
    ax.set_title(title, fontsize=10)
    plt.setp(ax.get_xticklabels(), rotation=30, ha="right", fontsize=8)
    plt.setp(ax.get_yticklabels(), rotation=0, fontsize=8)
    fig.tight_layout()
    return _save(fig, path)


def curves_data(trials: pd.DataFrame, models: pd.DataFrame, sweep_dir: Path) -> tuple[pd.DataFrame, list[str]]:
    """Long frame (label, trial_id, seed, status, kind, iter, value) from each trial's metrics.jsonl:
    kind "loss" from train records, "miou" from eval records. Also returns notes on unreadable files."""
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
            kind, value = {"train": ("loss", rec.get("loss")), "eval": ("miou", rec.get("miou"))}.get(
                rec.get("kind"), (None, None))
            if kind and value is not None and rec.get("iter") is not None:
                rows.append(dict(label=label_of[t["trial_id"]], trial_id=t["trial_id"], seed=t["seed"],
                                 status=t["status"], kind=kind, iter=int(rec["iter"]), value=float(value)))
    columns = ["label", "trial_id", "seed", "status", "kind", "iter", "value"]
    return pd.DataFrame(rows, columns=columns), notes


def plot_curves(data: pd.DataFrame, path: Path, title: str) -> Path:
    kinds = [k for k in ("loss", "miou") if (data["kind"] == k).any()]
    fig, axes = plt.subplots(1, len(kinds), figsize=(6.5 * len(kinds), 4.2), dpi=110, squeeze=False)
    ylabels = {"loss": "training loss", "miou": "eval mIoU (%)"}
    for ax, kind in zip(axes[0], kinds):
        sub = data[data["kind"] == kind]
        sns.lineplot(sub, x="iter", y="value", hue="label", units="trial_id", estimator=None, ax=ax,
                     marker="o" if kind == "miou" else None, linewidth=1.2, alpha=0.85)
        values = sub["value"][sub["value"] > 0]
        if kind == "loss" and len(values) and values.max() / values.min() > 10:
            ax.set_yscale("log")  # early spikes would flatten the rest of the curves
        ax.set_xlabel("iteration")
        ax.set_ylabel(ylabels[kind])
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7, title=None)
    fig.suptitle(title + " (one line per trial)", fontsize=10)
    fig.tight_layout()
    return _save(fig, path)


def _save(fig, path: Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path
