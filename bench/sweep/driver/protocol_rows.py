"""Results rows of a sweep with `evaluate:`: one row per (trial, protocol) instead of one per trial.

A protocol row is its trial's row (identity, config, measurement, training columns) with the protocol's own
evaluation: `protocol`, the eval_* columns, miou/macc/aacc/boundary_iou and the interval, from the protocol's done
record (bench/sweep/tasks/eval_tasks.py). Its trial_id is `<trial_id>@<protocol>` (unique, as reports require) and its
trial_dir is the protocol's folder, which holds its per_image.npz, so intervals work per row.
Status: the trial's while it is not completed; then the evaluation's (completed, failed, running, pending).
"""
from __future__ import annotations

from pathlib import Path

from bench.files.json_records import read_json
from bench.config import ExperimentConfig
from bench.results.schema import INTERVALS, METRICS
from bench.sweep.folder import layout, records
from bench.sweep.tasks.eval_tasks import protocols_of

PROTOCOL_COLUMN = "protocol"
EVAL_COLUMNS = ("eval_mode", "eval_scales", "eval_flip", "ifa_query")
SEP = "@"


def _eval_columns(eval_cfg) -> dict:
    return {"eval_mode": eval_cfg.mode, "eval_scales": ",".join(str(float(s)) for s in eval_cfg.scales),
            "eval_flip": eval_cfg.flip, "ifa_query": eval_cfg.ifa_query}


def _row(payload: dict, trial_row: dict, proto, cfg) -> tuple[dict, list[dict]]:
    trial_dir = Path(payload["trial_dir"])
    protocol_dir = layout.eval_dir(trial_dir, proto.name)
    row = dict(trial_row)
    folder = protocol_dir.relative_to(Path(payload["sweep_dir"]))
    row.update(trial_id=f"{trial_row['trial_id']}{SEP}{proto.name}", trial_dir=folder.as_posix(),
               **{PROTOCOL_COLUMN: proto.name})
    row.update(_eval_columns(proto.eval_config(cfg, f"sweep.evaluate {proto.name!r}")))
    for k in METRICS + INTERVALS:
        row[k] = None
    if trial_row["status"] != "completed":
        return row, []
    done = records.read_eval_done(trial_dir, proto.name)
    if done is not None:
        metrics = done["metrics"]
        for k in METRICS + INTERVALS:
            row[k] = metrics.get(k)
        row.update({k: metrics[k] for k in EVAL_COLUMNS if k in metrics})
        row["finished_at"] = done.get("finished_at")
        per_class = [
            {"trial_id": row["trial_id"], "config_hash": row["config_hash"], "dataset": row["dataset"],
             "backbone": row["backbone"], "head": row["head"], "seed": row["seed"], "class_index": i,
             "class_name": name, "iou": iou}
            for i, (name, iou) in enumerate((metrics.get("per_class_iou") or {}).items())
        ]
        return row, per_class
    failure = records.read_failure(protocol_dir)
    if failure and failure.get("final"):
        row.update(status="failed", error=failure.get("error", "evaluation failed"))
    else:
        attempts = (read_json(protocol_dir / layout.ATTEMPTS) or {}).get("count", 0)
        row["status"] = "running" if attempts else "pending"
    row["finished_at"] = None
    return row, []


def expand(payloads: list[dict], rows: list[dict], per_class: list[dict]) -> tuple[list[dict], list[dict]]:
    """Replace the row of every trial with protocols by its protocol rows (rows are in payload order)."""
    out_rows = []
    with_protocols = {p["config_hash"] for p in payloads if p.get("protocols")}
    out_pc = [pc for pc in per_class if pc["config_hash"] not in with_protocols]
    for payload, row in zip(payloads, rows):
        if payload["config_hash"] not in with_protocols:
            out_rows.append(row)
            continue
        if payload.get("checkpoint"):  # eval-only: nothing to train, so the trial part is complete
            row = {**row, "status": "completed", "error": ""}
        cfg = ExperimentConfig.model_validate(payload["cfg"])
        for proto in protocols_of(payload):
            r, pc = _row(payload, row, proto, cfg)
            out_rows.append(r)
            out_pc.extend(pc)
    return out_rows, out_pc
