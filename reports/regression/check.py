"""The regression check: reproduced mIoU (mean over seeds per model) against published rows.

A model matches a published row when the mapping in reports/mapping.py (through the rows' `match` keys) gives the
same dataset, head, backbone (name, stem, output stride) and schedule (iterations, crop, batch size where the
source states it), and the model was evaluated with the metric's protocol.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

import pandas as pd

from bench.engine.evaluation.bootstrap import Interval
from bench.results.text_table import text_table

from bench.errors import UserError
from reports.aggregate import model_table
from reports.load import Results
from reports.mapping import DATASETS, HEADS, METRICS, parse_scales, protocol_of

MODEL_COLUMNS = ["dataset", "head", "backbone", "stem", "output_stride", "iterations", "crop", "batch_size"]


@dataclass
class CheckResult:
    metric: str
    tolerance: float
    min_seeds: int
    matched: pd.DataFrame  # one row per (model, published row) pair
    unmatched: pd.DataFrame  # models with no published row, and why
    exit_code: int  # 1 when a counted row is outside tolerance or has too few seeds
    ci: Optional[float] = None  # the --ci level, when the interval rule was used


def _fmt(v) -> str:
    if isinstance(v, float):
        if math.isnan(v):
            return ""
        return str(int(v)) if v.is_integer() else f"{v:g}"
    return "" if v is None else str(v)


def _same(published_value, ours) -> bool:
    """A key the source does not state (None) matches anything."""
    return published_value is None or _fmt(published_value) == _fmt(ours)


def run_check(results: Results, published: list[dict], *, metric="miou_ss", tolerance=1.0, min_seeds=1,
              include_reproductions=False, ci: Optional[float] = None) -> CheckResult:
    """ci: a confidence level (e.g. 95). A row then fails only when the published value lies outside the model's
    bootstrap interval over val images widened by the tolerance on both sides (reports/regression/intervals.py)."""
    if metric not in METRICS:
        raise UserError(f"--metric: unknown metric {metric!r} (known: {', '.join(METRICS)})")
    if not math.isfinite(tolerance) or tolerance < 0:
        raise UserError(f"--tolerance: must be a finite number >= 0, got {tolerance}")
    models = model_table(results)
    matched, unmatched = [], []
    for _, m in models.iterrows():
        base = {"label": m["label"], **{c: _fmt(m[c]) for c in MODEL_COLUMNS}}
        base.update(eval_mode=m["eval_mode"], eval_scales=",".join(f"{s:g}" for s in parse_scales(m["eval_scales"])),
                    eval_flip=bool(m["eval_flip"]), n=int(m["n"]), status=m["status"])
        rows, reason = _candidates(m, published, metric)
        if not rows:
            unmatched.append({**base, "reason": reason})
            continue
        interval = None
        if ci is not None:
            from reports.regression.intervals import model_interval

            interval = model_interval(results, str(m["trial_ids"]).split(","), ci)
        for p in rows:
            counts = p["kind"] == "published" or include_reproductions
            reproduced = float(m["miou_mean"])
            delta = reproduced - float(p[metric])
            if interval is None:
                within = not math.isnan(delta) and abs(delta) <= tolerance + 1e-9
            elif isinstance(interval, str):
                within = False
            else:
                within = interval.contains(float(p[metric]), widen=tolerance + 1e-9)
            enough = m["n"] >= min_seeds
            verdict = "ok" if within and enough else (
                f"too few seeds ({int(m['n'])} < {min_seeds})" if not enough else
                (interval if isinstance(interval, str) else "outside tolerance"))
            matched.append({
                **base, "reproduced": reproduced, "reproduced_std": float(m["miou_std"]),
                "published": float(p[metric]), "delta": delta, "within_tolerance": within,
                "verdict": verdict if counts else f"context only ({verdict})", "counts": counts,
                "kind": p["kind"], "published_method": p["method"], "published_backbone": p["backbone"],
                "published_dataset": p["dataset"], "source": p["source"],
                "assumed": p["match"].get("assumed", ""),
                "ci_low": interval.low if isinstance(interval, Interval) else math.nan,
                "ci_high": interval.high if isinstance(interval, Interval) else math.nan,
            })
    matched_df = pd.DataFrame(matched, columns=_MATCHED_COLUMNS)
    unmatched_df = pd.DataFrame(unmatched, columns=_UNMATCHED_COLUMNS)
    matched_df["counts"] = matched_df["counts"].astype(bool)
    matched_df["within_tolerance"] = matched_df["within_tolerance"].astype(bool)
    failing = matched_df[matched_df["counts"] & (matched_df["verdict"] != "ok")]
    return CheckResult(metric, tolerance, min_seeds, matched_df, unmatched_df, 1 if len(failing) else 0, ci)


_BASE = ["label"] + MODEL_COLUMNS + ["eval_mode", "eval_scales", "eval_flip", "n", "status"]
_MATCHED_COLUMNS = _BASE + ["reproduced", "reproduced_std", "published", "delta", "within_tolerance", "verdict",
                            "counts", "kind", "published_method", "published_backbone", "published_dataset",
                            "source", "assumed", "ci_low", "ci_high"]
_UNMATCHED_COLUMNS = _BASE + ["reason"]


def _candidates(m: pd.Series, published: list[dict], metric: str) -> tuple[list[dict], str]:
    """Published rows this model matches, or ([], the reason it matches none)."""
    protocol = protocol_of(m["eval_scales"], bool(m["eval_flip"]))
    if protocol != metric:
        return [], (f"evaluated at scales {m['eval_scales'] or '?'} with flip={bool(m['eval_flip'])}, "
                    f"not the {metric} protocol")
    if m["dataset"] not in DATASETS:
        return [], f"no published rows for dataset {m['dataset']!r}"
    if m["head"] not in HEADS:
        return [], f"no published method mapped to head {m['head']!r}"
    what = f"{HEADS[m['head']]} on {DATASETS[m['dataset']]}"
    rows = [p for p in published if p["match"]["dataset"] == m["dataset"] and p["match"]["head"] == m["head"]]
    if not rows:
        return [], f"no published {what} row"
    bb = f"{m['backbone']} ({m['stem'] or '?'} stem, OS{_fmt(m['output_stride'])})"
    rows = [p for p in rows if p["match"]["backbone"] is not None and all(
        _same(p["match"][k], m[k]) for k in ("backbone", "stem", "output_stride"))]
    if not rows:
        return [], f"no published {what} row with a backbone mapped to {bb}"
    schedule = f"{_fmt(m['iterations'])} iterations, crop {m['crop'] or '?'}, batch {_fmt(m['batch_size'])}"
    options = sorted({f"{_fmt(p['match']['iterations'])} it/{p['match']['crop']}" for p in rows})
    rows = [p for p in rows if all(_same(p["match"][k], m[k]) for k in ("iterations", "crop", "batch_size"))]
    if not rows:
        return [], f"no published {what} {bb} row with {schedule} (published: {'; '.join(options)})"
    with_metric = [p for p in rows if isinstance(p.get(metric), (int, float))]
    if not with_metric:
        return [], f"the matching published row(s) give no {metric}"
    return with_metric, ""


def _text_table(df: pd.DataFrame) -> str:
    return text_table(list(map(str, df.columns)), [list(row) for row in df.itertuples(index=False)])


def rule_text(tolerance: float, ci: Optional[float]) -> str:
    """The pass rule of a check, in words (the check's output and the report both state it)."""
    if ci is None:
        return f"a row passes when |reproduced - published| <= {tolerance:g}"
    return (f"a row passes when the published value lies inside the {ci:g}% bootstrap interval of the "
            f"reproduced mIoU over val images (mean over seeds), widened by ±{tolerance:g}")


def format_report(result: CheckResult) -> str:
    """Plain-text report printed by `ifa-bench check`."""
    lines = [f"metric {result.metric}, tolerance ±{result.tolerance:g} mIoU points, min seeds {result.min_seeds}",
             "rule: " + rule_text(result.tolerance, result.ci)]
    m = result.matched
    if len(m):
        show = pd.DataFrame({
            "dataset": m["dataset"], "head": m["head"], "backbone": m["backbone"], "stem": m["stem"],
            "OS": m["output_stride"], "iters": m["iterations"], "crop": m["crop"], "eval": m["eval_mode"],
            "n": m["n"],
            "reproduced": [f"{r:.2f}" + ("" if math.isnan(s) else f"±{s:.2f}") if not math.isnan(r) else "—"
                           for r, s in zip(m["reproduced"], m["reproduced_std"])],
            "published": m["published"].map(lambda v: f"{v:.2f}"),
            "delta": m["delta"].map(lambda v: "—" if math.isnan(v) else f"{v:+.2f}"),
            **({"interval": [f"[{lo:.2f}, {hi:.2f}]" if not math.isnan(lo) else "—"
                             for lo, hi in zip(m["ci_low"], m["ci_high"])]} if result.ci is not None else {}),
            "within": m["within_tolerance"].map({True: "yes", False: "no"}),
            "verdict": m["verdict"], "kind": m["kind"],
            "source": m["source"] + " [" + m["published_method"] + " " + m["published_backbone"] + "]",
        })
        lines += ["", "matched:", _text_table(show)]
        assumed = sorted({a for a in m["assumed"] if a})
        lines += [f"note: {a}" for a in assumed]
    else:
        lines += ["", "matched: none (no reproduced row matches a published row)"]
    u = result.unmatched
    if len(u):
        lines += ["", "unmatched reproduced rows:"]
        for _, r in u.iterrows():
            lines.append(f"  {r['dataset']}: {r['label']} (stem {r['stem']}, OS{r['output_stride']}, "
                         f"{r['iterations']} it, crop {r['crop']}, n={r['n']}): {r['reason']}")
    counted = m[m["counts"]]
    bad = counted[counted["verdict"] != "ok"]
    if not len(counted):
        lines += ["", "nothing compared: no reproduced row matches a counted published row"]
        return "\n".join(lines) + "\n"
    lines += ["", f"{'FAIL' if result.exit_code else 'PASS'}: {len(counted) - len(bad)}/{len(counted)} "
                  f"compared rows pass" + (f"; {len(m) - len(counted)} reproduction row(s) shown for context"
                                           if len(m) > len(counted) else "")]
    return "\n".join(lines) + "\n"
