"""Writes small sweep directories in the results schema (bench/results/schema.py) with known numbers.

Written with the csv/json modules, not with the code under test, so the tests' expectations are independent.
"""
from __future__ import annotations

import csv
import json
import math
from pathlib import Path

from bench.results.schema import PER_CLASS_COLUMNS, RESULT_COLUMNS

CLASSES = ["road", "building", "car", "sky"]
# Columns the measurement issue adds to results.csv; written only when a trial sets them (older results lack them).
MEASURE_EXTRA = ["measure_batch", "measure_dtype", "measure_threads", "measure_device", "measure_device_name",
                 "measure_node", "latency_ms_min", "latency_ms_iqr", "latency_runs", "latency_noisy",
                 "loadavg_before", "loadavg_after"]


def trial(dataset="synthetic", head="ifa", backbone="resnet18", seed=0, status="completed", miou=None, **kw):
    spec = dict(
        dataset=dataset, head=head, backbone=backbone, seed=seed, status=status, miou=miou,
        stem="standard", output_stride=32, formulation="fused" if head == "ifa" else "", iterations=100,
        batch_size=8, crop="64x64", num_classes=len(CLASSES), eval_mode="whole", eval_scales="1.0",
        eval_flip=False, ifa_query="upsample" if head == "ifa" else "", error="",
        boundary_iou=None, gmacs=None, params_m=None, latency_ms_median=None, peak_mem_mb=None,
        class_iou=None,
    )
    spec.update(kw)
    return spec


def default_trials() -> list[dict]:
    """A partial synthetic sweep: 5 models x 3 seeds with failures, a pending, a running and a missing trial."""
    m = dict(gmacs=10.0, params_m=5.0, latency_ms_median=50.0, peak_mem_mb=300.0)
    r = dict(gmacs=14.0, params_m=5.0, latency_ms_median=80.0, peak_mem_mb=400.0)
    f = dict(gmacs=12.0, params_m=6.0, latency_ms_median=45.0, peak_mem_mb=250.0)
    p = dict(gmacs=20.0, params_m=9.0, latency_ms_median=40.0, peak_mem_mb=500.0)
    return [
        trial(head="ifa", seed=0, miou=60.0, boundary_iou=40.0, class_iou=[90, 50, 40, 60], **m),
        trial(head="ifa", seed=1, miou=62.0, boundary_iou=42.0, class_iou=[92, 52, 42, 62], **m),
        trial(head="ifa", seed=2, miou=61.0, boundary_iou=44.0, class_iou=[91, 51, 41, 61], **m),
        trial(head="ifa", formulation="reference", seed=0, miou=60.5, boundary_iou=40.0, **r),
        trial(head="ifa", formulation="reference", seed=1, miou=61.5, boundary_iou=41.0, **r),
        trial(head="ifa", formulation="reference", seed=2, miou=61.0, boundary_iou=42.0, **r),
        trial(head="fpn", seed=0, miou=55.0, boundary_iou=30.0, class_iou=[85, 45, 30, 60], **f),
        trial(head="fpn", seed=1, miou=57.0, boundary_iou=31.0, class_iou=[87, 47, 32, 62], **f),
        trial(head="fpn", seed=2, status="failed", error="RuntimeError: loss is NaN at iteration 40"),
        trial(head="ppm", seed=0, miou=58.0, boundary_iou=33.0, **p),
        trial(head="ppm", seed=1, miou=59.0, boundary_iou=35.0, **p),
        # ppm seed 2: no row at all (missing)
        trial(head="ocr", seed=0, status="failed", error="MemoryError: cannot allocate 4.0 GiB"),
        trial(head="ocr", seed=1, status="pending"),
        trial(head="ocr", seed=2, status="running"),
    ]


def write_sweep(root: Path, trials: list[dict], *, per_class=True, curves=True, name="fixture") -> Path:
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    rows, class_rows = [], []
    extra = [c for c in MEASURE_EXTRA if c not in RESULT_COLUMNS and any(c in t for t in trials)]
    extra += sorted({k for t in trials for k in t if k.startswith("cfg.")})
    for i, t in enumerate(trials):
        tid = f"t{i:03d}"
        tdir = f"trials/{tid}"
        row = {c: "" for c in RESULT_COLUMNS + extra}
        row.update({k: ("" if v is None else v) for k, v in t.items() if k in RESULT_COLUMNS + extra})
        row.update(trial_id=tid, config_hash=f"h{i:011d}", sweep_name=name, attempts=1, trial_dir=tdir,
                   eval_flip=str(bool(t["eval_flip"])))
        if t["status"] == "completed":
            row.update(macc=t["miou"] + 5, aacc=t["miou"] + 20, device="cpu", device_name="fixture-cpu",
                       torch_version="2.13.0", ray_version="2.60.0", dtype="float32", threads=2,
                       python_version="3.11.0", hostname="fixture", train_time_s=12.5,
                       measure_input=t.get("measure_input", "64x64"), finished_at="2026-11-23T21:00:00Z")
        rows.append(row)
        if per_class and t["status"] == "completed" and t.get("class_iou"):
            for ci, (cname, iou) in enumerate(zip(CLASSES, t["class_iou"])):
                class_rows.append(dict(trial_id=tid, config_hash=row["config_hash"], dataset=t["dataset"],
                                       backbone=t["backbone"], head=t["head"], seed=t["seed"],
                                       class_index=ci, class_name=cname, iou=iou))
        if curves and t["status"] in ("completed", "failed", "running"):
            (root / tdir).mkdir(parents=True, exist_ok=True)
            last = 100 if t["status"] == "completed" else 40
            with open(root / tdir / "metrics.jsonl", "w") as fh:
                for it in range(10, last + 1, 10):
                    fh.write(json.dumps(dict(kind="train", iter=it, loss=loss_at(it, t["seed"]), lr=0.01,
                                             time_s=0.1)) + "\n")
                    if it % 50 == 0 and t["status"] == "completed":
                        fh.write(json.dumps(dict(kind="eval", iter=it, miou=t["miou"] * it / 100)) + "\n")
    _write_csv(root / "results.csv", RESULT_COLUMNS + extra, rows)
    if per_class:
        _write_csv(root / "per_class_iou.csv", PER_CLASS_COLUMNS, class_rows)
    return root


def loss_at(iteration: int, seed: int) -> float:
    return 2.0 * math.exp(-iteration / 50) + 0.01 * seed


def _write_csv(path, columns, rows):
    with open(path, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=columns)
        w.writeheader()
        w.writerows(rows)


LONG_BACKBONES = ["resnet18", "resnet50", "resnet101"]
LONG_HEADS = ["ifa", "fpn", "ppm", "ocr"]


def twelve_model_trials(seeds=(0, 1, 2)) -> list[dict]:
    """A Cityscapes-shaped sweep: 3 backbones x 4 heads, long labels (several varying columns), 3 seeds, costs
    that crowd together the way real heads on one backbone do; latency noisy for one model."""
    rows = []
    for b, backbone in enumerate(LONG_BACKBONES):
        for h, head in enumerate(LONG_HEADS):
            for seed in seeds:
                rows.append(trial(
                    dataset="cityscapes", head=head, backbone=backbone, seed=seed, stem="v1c", crop="512x1024",
                    output_stride=8 if head in ("ppm", "ocr") else 32, num_classes=19, iterations=80000,
                    ifa_query="upsample" if head == "ifa" else "",
                    miou=70.0 + 2.5 * b + 0.8 * h + 0.3 * seed, boundary_iou=45.0 + b + 0.2 * seed,
                    gmacs=180.0 * (1 + b) + 15.0 * h, params_m=25.0 + 20 * b + 2 * h,
                    latency_ms_median=300.0 * (1 + b) + 30.0 * h + 5.0 * seed, peak_mem_mb=900.0 + 300 * b,
                    latency_ms_iqr=12.0, latency_noisy=(b == 2 and head == "ocr"),
                    measure_batch=1, measure_dtype="float32", measure_threads=2, measure_device="cpu",
                    measure_input="1024x2048", class_iou=[90 - h, 70 + b, 80, 85],
                    **{"cfg.model.backbone.width": 0.5 if b < 2 else 1.0,
                       "cfg.model.head.channels": 256 if head == "ifa" else 512}))
    return rows
