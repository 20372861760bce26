"""`build_report`: tables, plots, report.md and index.html for one sweep (complete or partial)."""
from __future__ import annotations

import os
import re
import shutil
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Optional, Sequence

from bench.results.csv_export import csv_text
from bench.errors import UserError

import pandas as pd

from reports.figures import plots
from reports.aggregate import common_settings, model_table
from bench.files.atomic import make_temp_dir, write_text
from bench.files.output_guard import REPORT_MARKER, mark
from reports.regression.check import CheckResult, rule_text, run_check
from reports.conditions import shared_conditions
from reports.document import Document
from reports.load import STATUSES, Results
from reports.sources import read_sources
from reports.mapping import DATASETS, METRICS
from reports.regression.published import load_published
from reports.figures.style import PAPER_SINGLE, Style, model_styles
from reports.ranking import RULES
from reports.tables import (
    DASH, fmt_mean_std, per_class_table, summary_display, summary_numeric, write_table,
)

BOLD_RULE = ("bold: the best value and every value tied with it (GMACs, params within 0.5%; latencies whose "
             "median ± IQR/2 intervals overlap; noisy latencies not ranked)")
ENV_COLUMNS = ["device", "device_name", "torch_version", "ray_version", "dtype", "threads", "python_version",
               "hostname"]


@dataclass
class Report:
    out_dir: Path
    results: Results
    models: pd.DataFrame
    summaries: dict[str, pd.DataFrame] = field(default_factory=dict)  # dataset -> numeric summary
    per_class: dict[str, pd.DataFrame] = field(default_factory=dict)  # dataset -> classes x models
    plot_data: dict[str, pd.DataFrame] = field(default_factory=dict)  # plot name -> the frame it draws
    plots: dict[str, Path] = field(default_factory=dict)  # plot name -> PNG
    status_counts: dict[str, int] = field(default_factory=dict)
    not_completed: pd.DataFrame = field(default_factory=pd.DataFrame)
    environment: pd.DataFrame = field(default_factory=pd.DataFrame)
    notes: list[str] = field(default_factory=list)
    checks: dict[str, CheckResult] = field(default_factory=dict)
    styles: dict[str, Style] = field(default_factory=dict)  # model label -> colour and marker, every plot
    conditions: dict[str, str] = field(default_factory=dict)  # dataset -> measurement conditions phrase


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", str(text)).strip("_") or "x"


def build_report(source: Path | Sequence[Path], out_dir: Optional[Path] = None,
                 published: Optional[Path] = None, ci: Optional[float] = None) -> Report:
    """Read the sweeps and train run folders at `source` (one path or several) and write the report to `out_dir`
    (default <sweep>/report for one source; required for several), replacing it whole."""
    sources = [source] if isinstance(source, (str, Path)) else list(source)
    if len(sources) > 1 and out_dir is None:
        raise UserError("several sweeps or runs: say where the combined report goes with --out DIR")
    results = read_sources(sources)
    out_dir = Path(out_dir) if out_dir else results.sweep_dir / "report"
    pub_rows = load_published(published) if published else None
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = make_temp_dir(f".{out_dir.name}.", out_dir.parent)
    try:
        report = _build(results, tmp, pub_rows, ci)
        mark(tmp, REPORT_MARKER)  # a later report may replace this folder, and nothing else (output_guard)
        _swap_into_place(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    report.out_dir = out_dir
    report.plots = {k: out_dir / p.relative_to(tmp) for k, p in report.plots.items()}
    return report


def _swap_into_place(tmp: Path, out_dir: Path) -> None:
    old = None
    if out_dir.exists():
        old = out_dir.with_name(f".{out_dir.name}.old-{os.getpid()}")
        os.replace(out_dir, old)
    os.replace(tmp, out_dir)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _build(results: Results, out: Path, pub_rows: Optional[list[dict]], ci: Optional[float] = None) -> Report:
    trials = results.trials
    models = model_table(results) if len(trials) else pd.DataFrame()
    if len(models):
        models = models.sort_values("order", kind="stable").reset_index(drop=True)
    report = Report(out, results, models)
    report.styles = model_styles(models["label"], models["method"]) if len(models) else {}
    keys = results.config_columns()
    sweep_name = ", ".join(sorted({s for s in trials["sweep_name"] if s})) or results.sweep_dir.name
    doc = Document(f"Sweep report: {sweep_name}")

    # --- overview and status
    counts = {s: int((trials["status"] == s).sum()) for s in STATUSES}
    counts["missing"] = int(sum(len(m.split(",")) for m in models.get("missing_seeds", []) if m))
    report.status_counts = counts
    doc.para(f"Results: {results.source} · generated {datetime.now(timezone.utc):%Y-%m-%d %H:%M UTC} · "
             f"{len(trials)} trials, {len(models)} models.")
    doc.heading(2, "Status")
    doc.table(pd.DataFrame([counts]))
    report.not_completed = _not_completed(trials, models)
    if len(report.not_completed):
        doc.para("Trials without a result (failed with their error; running, pending, or missing seeds):")
        doc.table(report.not_completed)
        write_text(out / "tables" / "status.csv", csv_text(report.not_completed, index=False))
    if results.absent_columns:
        report.notes.append(f"{results.source.name} lacks columns {', '.join(results.absent_columns)} "
                            f"(shown as —)")
    doc.heading(2, "Environment")
    report.environment = _environment(trials)
    if len(report.environment):
        doc.table(report.environment)
    else:
        doc.para("No completed trial recorded its environment.", note=True)

    if len(models):
        doc.heading(2, "Highlights")
        doc.bullets(_highlights(models))
        doc.para(RULES, css="rules")

    # --- per dataset
    pub_frame = _published_points(pub_rows) if pub_rows else None
    for dataset in (list(dict.fromkeys(models["dataset"])) if len(models) else []):
        _dataset_section(doc, report, dataset, keys, out, pub_frame)

    # --- published comparison
    if pub_rows is not None:
        _published_section(doc, report, pub_rows, ci)

    if report.notes:
        doc.heading(2, "Notes")
        doc.bullets(report.notes)
    write_text(out / "report.md", doc.markdown())
    write_text(out / "index.html", doc.html())
    return report


def _highlights(models: pd.DataFrame) -> list[str]:
    """Per dataset: the best mIoU, and the Pareto-optimal models by GMACs and by latency with their ties
    (reports/ranking.py); noisy latencies are named apart and never among them."""
    lines = []
    for dataset, ms in models.groupby("dataset", sort=True):
        done = ms.dropna(subset=["miou_mean"])
        if done.empty:
            lines.append(f"{dataset}: no completed trial yet")
            continue
        best = done[done["miou_mean"] == done["miou_mean"].max()]
        text = ", ".join(f"{_name(r)} {fmt_mean_std(r['miou_mean'], r['miou_std'])} (n={r['n']})"
                         for _, r in best.iterrows())
        lines.append(f"{dataset}: best mIoU: {text}")
        for cost, name in (("gmacs", "GMACs"), ("latency_ms_median", "latency")):
            data = plots.tradeoff_data(ms, cost)
            if data.empty:
                continue
            noisy = ", ".join(data.loc[~data["ranked"], "name"])
            if not data["ranked"].any():
                lines.append(f"{dataset}: no {name} ranking: every latency is noisy ({noisy})")
                continue
            lines.append(f"{dataset}: Pareto-optimal by {name}: " + frontier_text(data))
            if noisy:
                lines.append(f"{dataset}: not ranked by {name} (noisy): {noisy}")
    return lines


def _name(row) -> str:
    return row.get("name") or row["label"]


def frontier_text(data: pd.DataFrame) -> str:
    """'A, B (tied with C)': the frontier in cost order, each with the ranked models its cost ties with."""
    front = data[data["pareto"]].sort_values("cost", kind="stable")
    return ", ".join(r["name"] + (f" (tied with {r['tied_with']})" if r["tied_with"] else "")
                     for _, r in front.iterrows())


def _not_completed(trials: pd.DataFrame, models: pd.DataFrame) -> pd.DataFrame:
    label_of = {tid: m["label"] for _, m in models.iterrows() for tid in m["trial_ids"].split(",")}
    rows = [dict(dataset=t["dataset"], model=label_of.get(t["trial_id"], ""), seed=t["seed"], status=t["status"],
                 trial_id=t["trial_id"], attempts=t["attempts"], error=t["error"])
            for _, t in trials[trials["status"] != "completed"].iterrows()]
    for _, m in models.iterrows():
        for seed in filter(None, m["missing_seeds"].split(",")):
            rows.append(dict(dataset=m["dataset"], model=m["label"], seed=float(seed), status="missing",
                             trial_id="", attempts=float("nan"), error="no row in the results"))
    df = pd.DataFrame(rows, columns=["dataset", "model", "seed", "status", "trial_id", "attempts", "error"])
    df["seed"] = df["seed"].map(lambda s: "" if pd.isna(s) else str(int(s)))
    df["attempts"] = df["attempts"].map(lambda s: "" if pd.isna(s) else str(int(s)))
    order = {s: i for i, s in enumerate(("failed", "running", "pending", "missing"))}
    return df.sort_values(["status", "dataset", "model", "seed"], key=lambda c: c.map(order) if c.name == "status"
                          else c, kind="stable").reset_index(drop=True)


def _environment(trials: pd.DataFrame) -> pd.DataFrame:
    done = trials[trials["status"] == "completed"]
    if done.empty:
        return pd.DataFrame()
    env = done[ENV_COLUMNS].copy()
    env["threads"] = env["threads"].map(lambda v: "" if pd.isna(v) else str(int(v)))
    return env.groupby(ENV_COLUMNS, dropna=False).size().reset_index(name="trials")


def _cost_note(conditions: str, shared: bool, display: pd.DataFrame) -> str | None:
    """What a summary table's own files say of its costs: the measurement conditions and the noisy mark."""
    parts = []
    if conditions:
        parts.append(f"Costs measured at {conditions}" + ("" if shared else " (differs between models)"))
    if "latency (ms)" in display and display["latency (ms)"].astype(str).str.endswith("†").any():
        parts.append("† latency noisy: do not rank on it")
    if display.attrs.get("bold"):
        parts.append(BOLD_RULE)
    return "; ".join(parts) or None


def _dataset_section(doc: Document, report: Report, dataset: str, keys: list[str], out: Path,
                     pub_frame: Optional[pd.DataFrame]) -> None:
    slug = _slug(dataset)
    models = report.models[report.models["dataset"] == dataset].reset_index(drop=True)
    doc.heading(2, f"Dataset: {dataset}")
    common = common_settings(models, keys)
    if common:
        doc.para("Common settings: " + ", ".join(f"{k}={v}" for k, v in common.items()))
    measured = models.dropna(subset=["gmacs"]) if "gmacs" in models else models
    conditions, shared = shared_conditions([r.to_dict() for _, r in measured.iterrows()])
    report.conditions[dataset] = conditions
    if conditions:
        doc.para(f"Measured at: {conditions}" + ("" if shared else " (differs between models: compare costs "
                                                  "only between models measured alike)"), css="conditions")
        if not shared:
            report.notes.append(f"{dataset}: models were measured under different conditions ({conditions})")

    numeric = summary_numeric(models, keys)
    report.summaries[dataset] = numeric
    display = summary_display(numeric)
    paths = write_table(out / "tables" / f"summary_{slug}", numeric, display, caption=f"{dataset}: models",
                        note=_cost_note(conditions, shared, display))
    doc.heading(3, "Models")
    doc.para("mIoU and boundary IoU: mean ± sample std over completed seeds; 95% interval: the bootstrap interval "
             "of the mIoU over val images (of the mean over seeds; bench/engine/evaluation/bootstrap.py), where the "
             "trials saved per-image statistics; n = completed / expected seeds. "
             "Costs: median over completed trials, GMACs by fvcore, all measured under the conditions above; "
             "† marks a latency whose timing runs stayed noisy. Bold: " + BOLD_RULE.removeprefix("bold: ") + ". "
             "Rows in the sweep's axis order.", note=True)
    doc.table(display)
    doc.links([(p.name, str(p.relative_to(out))) for p in paths.values()])

    doc.heading(3, "Accuracy vs cost")
    rankings = []
    for cost in plots.COSTS:
        kind = "gmacs" if cost == "gmacs" else "latency"
        name = f"tradeoff_{kind}_{slug}"
        data = plots.tradeoff_data(models, cost)
        report.plot_data[name] = data
        dropped = sorted(set(models["label"]) - set(data["label"]))
        dropped = [n for label, n in zip(models["label"], models.get("name", models["label"])) if label in dropped]
        pub = None
        if pub_frame is not None:
            pub = pub_frame[pub_frame["dataset_key"] == dataset]
            if cost == "latency_ms_median":
                pub = pub.dropna(subset=["cost"])
                if len(pub) and len(data):
                    report.notes.append(f"{dataset}: published points on the latency plot are 1000/fps from the "
                                        "source's own device (mmsegmentation: V100, batch 1), not comparable "
                                        "with latencies measured here except as orders of magnitude")
            else:
                if len(pub) and len(data):
                    report.notes.append(f"{dataset}: published rows give no GMACs; not drawn on the GMACs plot")
                pub = None
            if pub is not None and pub.empty:
                pub = None
            if not (pub_frame["dataset_key"] == dataset).any() and cost == "gmacs":
                report.notes.append(f"{dataset}: no published rows for this dataset")
        if data.empty:
            doc.para(f"{plots.COSTS[cost]}: no model has both this cost and a completed mIoU.", note=True)
            continue
        rankings.append((kind, data))
        write_text(out / "plots" / f"{name}.csv", csv_text(data, index=False))
        if pub is not None:
            write_text(out / "plots" / f"{name}_published.csv", csv_text(pub, index=False))
        device_set = {d.strip() for ds in data["device"] for d in ds.split(",") if d.strip()}
        devices = ", ".join(sorted(device_set))
        if cost == "latency_ms_median" and len(device_set) > 1:
            report.notes.append(f"{dataset}: latencies were measured on several devices ({devices}); compare "
                                "them only within one device")
        title = f"{dataset}: mIoU vs {'GMACs' if cost == 'gmacs' else 'latency'}"
        if cost == "gmacs":  # GMACs depend on the input only, not on threads, dtype or device
            size = gmacs_conditions(measured)
            xlabel = "GMACs (fvcore)" + (f", {size}" if size else "")
        else:
            xlabel = "latency (ms), median" + (
                f", {conditions}" if conditions and shared else " (conditions differ: see the table)" if conditions
                else "")
        report.plots[name] = plots.plot_tradeoff(data, cost, out / "plots" / f"{name}.png", pub,
                                                 styles=report.styles, xlabel=xlabel)
        plots.plot_tradeoff(data, cost, out / "plots" / f"{name}_column.png", pub, styles=report.styles,
                            xlabel=xlabel, preset=PAPER_SINGLE)
        doc.image(f"plots/{name}.png", title, caption=_tradeoff_caption(title, data, cost),
                  extra=[("single-column PDF", f"plots/{name}_column.pdf")])
        doc.para(_frontier_note(data, cost) + (f" Not drawn (no completed mIoU or no {kind}): "
                                               f"{', '.join(dropped)}." if dropped else ""), note=True)
    if rankings:
        ranking = ranking_table(rankings)
        doc.heading(3, "Ranking")
        doc.para("Ranks by cost (1 = cheapest) with ties shared, and whether the model is on the Pareto frontier "
                 "(max mIoU, min cost). " + RULES, note=True)
        doc.table(ranking)
        write_text(out / "tables" / f"ranking_{slug}.csv", csv_text(ranking, index=False))

    _resolution_section(doc, report, models, keys, out, slug, dataset, conditions if shared else "")

    doc.heading(3, "Per-class IoU")
    pc = (per_class_table(report.results.per_class, report.results.trials, models)
          if report.results.per_class is not None else pd.DataFrame())
    if pc.empty:
        doc.para("No per-class IoU for this dataset (per_class_iou.csv absent or without completed trials).",
                 note=True)
    else:
        report.per_class[dataset] = pc
        write_table(out / "tables" / f"per_class_{slug}", pc, pc, index=True, caption=f"{dataset}: per-class IoU")
        name = f"per_class_{slug}"
        report.plot_data[name] = pc
        report.plots[name] = plots.plot_per_class(pc.rename(columns=_names_of(models)), out / "plots" / f"{name}.png")
        doc.image(f"plots/{name}.png", f"{dataset} per-class IoU",
                  caption=f"{dataset}: per-class IoU (%)" + (", mean over seeds" if (models["n"] > 1).any() else ""))
        without = [label for label in models["label"] if label not in pc.columns]
        if without:
            doc.para(f"No per-class IoU for: {', '.join(without)}.", note=True)
        doc.table(pc.map(lambda v: f"{v:.1f}" if pd.notna(v) else "—"), index=True)

    doc.heading(3, "Training curves")
    sub_trials = report.results.trials[report.results.trials["dataset"] == dataset]
    curves, notes = plots.curves_data(sub_trials, models, report.results.sweep_dir)
    report.notes += notes
    if curves.empty:
        doc.para("No training records (metrics.jsonl) found for this dataset.", note=True)
    else:
        name = f"curves_{slug}"
        report.plot_data[name] = curves
        write_text(out / "plots" / f"{name}.csv", csv_text(curves, index=False))
        report.plots[name] = plots.plot_curves(curves, out / "plots" / f"{name}.png", styles=report.styles)
        doc.image(f"plots/{name}.png", f"{dataset} training curves",
                  caption=f"{dataset}: training curves, one line per trial")


def _names_of(models: pd.DataFrame) -> dict[str, str]:
    return dict(zip(models["label"], models["name"])) if "name" in models else {}


def gmacs_conditions(models: pd.DataFrame) -> str:
    """What GMACs depend on: the measurement input (and batch), shared by these models; "" when unknown or not
    shared. Threads, dtype and device change latency, not GMACs."""
    phrases = set()
    for _, r in models.iterrows():
        size, batch = str(r.get("measure_input") or ""), str(r.get("measure_batch") or "")
        phrases.add(", ".join(p for p in (f"input {size}" if size else "", f"batch {batch}" if batch else "") if p))
    return phrases.pop() if len(phrases) == 1 else ""


def _tradeoff_caption(title: str, data: pd.DataFrame, cost: str) -> str:
    """What the figure shows and what every bar and mark is, for the report's caption."""
    parts = [f"{title}."]
    if data["ci_low"].notna().any():
        parts.append("Vertical bars: 95% bootstrap interval of the mIoU over val images.")
    elif (data["n"] > 1).any():
        parts.append("Vertical bars: ± std of the mIoU over seeds.")
    if cost != "gmacs" and data["cost_err"].notna().any():
        parts.append("Horizontal bars: the IQR of the timing runs (median ± IQR/2); overlapping bars are tied.")
    if data["noisy"].any():
        parts.append("Hollow markers (†): noisy latencies, not ranked.")
    if data["pareto"].any():
        parts.append("Dashed staircase and black edges: the Pareto frontier, ties respected.")
    return " ".join(parts)


def _frontier_note(data: pd.DataFrame, cost: str) -> str:
    what = "GMACs" if cost == "gmacs" else "latency"
    noisy = data[~data["ranked"]]["name"].tolist()
    if not data["ranked"].any():
        return f"No {what} frontier: every latency is noisy (not ranked: {', '.join(noisy)})."
    text = f"Pareto frontier (max mIoU, min {what}; ties respected): {frontier_text(data)}."
    if noisy:
        text += f" Not ranked (noisy latency): {', '.join(noisy)}."
    return text


def ranking_table(rankings: list[tuple[str, pd.DataFrame]]) -> pd.DataFrame:
    """One row per model: its rank by each cost (ties share a rank; "—" unranked, "noisy" for a noisy latency) and
    whether it is on that cost's frontier."""
    rows: dict[str, dict] = {}
    for kind, data in rankings:
        for _, r in data.iterrows():
            row = rows.setdefault(r["label"], {"model": r["name"]})
            rank = f"{int(r['cost_rank'])}" if r["cost_rank"] else ("noisy" if r["noisy"] else DASH)
            what = "GMACs" if kind == "gmacs" else kind
            row[f"{what} rank"] = rank + (" (tied)" if r["tied_with"] and r["cost_rank"] else "")
            row[f"{what} frontier"] = "yes" if r["pareto"] else ""
            if r["tied_with"] and r["cost_rank"]:
                row[f"{what} tied with"] = r["tied_with"]
    table = pd.DataFrame(list(rows.values())).fillna("")
    return table


def _resolution_section(doc: Document, report: Report, models: pd.DataFrame, keys: list[str], out: Path, slug: str,
                        dataset: str, conditions: str) -> None:
    """Accuracy against IFA's query resolution, when the models differ in it (reports/figures/plot_resolution.py)."""
    from reports.figures.plot_resolution import plot_resolution, resolution_data

    data = resolution_data(models, keys)
    if data.empty:
        return
    name = f"resolution_{slug}"
    report.plot_data[name] = data
    write_text(out / "plots" / f"{name}.csv", csv_text(data, index=False))
    done = models[models["label"].isin(data["label"])]
    protocol = ", ".join(f"{c}={v}" for c, v in common_settings(done, keys).items()
                         if c in ("eval_mode", "eval_scales", "eval_flip"))
    doc.heading(3, "Accuracy vs IFA query resolution")
    title = f"{dataset}: accuracy vs IFA query resolution"
    report.plots[name] = plot_resolution(data, out / "plots" / f"{name}.png",
                                         styles=model_styles(data["model"], data["method"]), protocol=protocol,
                                         conditions=gmacs_conditions(done))
    doc.image(f"plots/{name}.png", title, caption=title)
    doc.para("IFA queried on the 1/stride grid of the label and upsampled bilinearly to it (eval.ifa_query_stride; "
             "1 = label resolution, 4 = the released protocol). GMACs: the whole model with the head queried at "
             "that stride of the measurement input.", note=True)


def _published_points(rows: list[dict]) -> pd.DataFrame:
    recs = []
    for r in rows:
        if r["kind"] != "published" or not isinstance(r.get("miou_ss"), (int, float)):
            continue
        fps = r.get("fps")
        label = f"{r['method']} {r['backbone']} {r['match']['crop'] or ''}".strip()
        recs.append(dict(dataset_key=r["match"]["dataset"], label=label,
                         miou=float(r["miou_ss"]), cost=1000.0 / fps if fps else float("nan"),
                         source=r["source"]))
    return pd.DataFrame(recs, columns=["dataset_key", "label", "miou", "cost", "source"])


def _published_section(doc: Document, report: Report, pub_rows: list[dict], ci: Optional[float] = None) -> None:
    doc.heading(2, "Against published numbers")
    doc.para("Mean over seeds per model vs the published row the mapping in reports/mapping.py matches "
             "(see docs/reports.md). Default tolerance ±1.0 mIoU; `ifa-bench check` gives the exit code and "
             "takes other tolerances.", note=True)
    doc.para("Check rule: " + rule_text(1.0, ci) + (
        f" (`ifa-bench report --ci {ci:g}`, as `ifa-bench check --ci {ci:g}`)." if ci is not None else
        " (`ifa-bench report --ci 95` applies the interval rule of `ifa-bench check --ci 95` instead)."),
        css="check-rule")
    frames = []
    for metric in METRICS:
        result = run_check(report.results, pub_rows, metric=metric, ci=ci)
        report.checks[metric] = result
        if len(result.matched):
            m = result.matched
            frames.append(pd.DataFrame({
                "metric": metric, "dataset": m["dataset"], "model": m["label"], "n": m["n"],
                "reproduced": m["reproduced"].round(2), "published": m["published"], "delta": m["delta"].round(2),
                **({"interval": [f"[{lo:.2f}, {hi:.2f}]" if pd.notna(lo) else "—"
                                 for lo, hi in zip(m["ci_low"], m["ci_high"])]} if ci is not None else {}),
                "verdict": m["verdict"], "kind": m["kind"],
                "published as": m["published_method"] + " " + m["published_backbone"], "source": m["source"]}))
    if frames:
        table = pd.concat(frames, ignore_index=True)
        doc.table(table)
        write_text(report.out_dir / "tables" / "published_check.csv", csv_text(table, index=False))
    else:
        doc.para("No model of this sweep matches a published row.", note=True)
    unmatched = report.checks["miou_ss"].unmatched
    if len(unmatched):
        doc.para(f"{len(unmatched)} model(s) have no single-scale published counterpart:")
        doc.bullets([f"{r['dataset']}: {r['label']}: {r['reason']}" for _, r in unmatched.iterrows()])
    mapped = sorted(set(DATASETS))
    doc.para(f"Datasets with published rows: {', '.join(mapped)}.", note=True)
