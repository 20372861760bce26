"""A sweep run with `model.compile: true` against the eager mIoUs of a published file, head by head.

    ifa-bench sweep experiments/synthetic.yaml --out runs/compile-demo --set model.compile=true \\
        --set model.compile_cache=$PWD/runs/compile-cache
    python -m perf.compile_parity runs/compile-demo --against reports/published_demo.yaml --out DIR

Per completed trial: its mIoU, the published eager mIoU it matches (same dataset and head), the difference, and the
time split the engine records in the trial's metrics.jsonl: the first iteration (where torch.compile compiles the
training graph; `first_iter_s`) apart from the steady step time (`window_s / window_iters` over the other
windows), and train_time_s (both, plus checkpoints). Conditions: the trials' commit, torch, threads, host; the load
average when this collector runs (the sweep's own start/end load is the caller's to add). Writes
DIR/compile_parity.json atomically.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

MATCH_KEYS = ("dataset", "head")


def _published(path: Path) -> list[dict]:
    from bench.config.loading import read_yaml

    return [r for r in read_yaml(path)["results"] if r.get("match")]


def _time_split(trial_dir: Path) -> dict:
    records = [json.loads(line) for line in (trial_dir / "metrics.jsonl").read_text().splitlines() if line.strip()]
    train = [r for r in records if r.get("kind") == "train"]
    first = next((r["first_iter_s"] for r in train if "first_iter_s" in r), None)
    window = sum(r["window_s"] for r in train)
    iters = sum(r["window_iters"] for r in train)
    return {"first_iter_s": first, "steady_ms_per_iter": round(1000 * window / iters, 1) if iters else None,
            "steady_iters": iters}


def collect(sweep: Path, against: Path) -> dict:
    import pandas as pd

    published = _published(against)
    rows = pd.read_csv(sweep / "results.csv", keep_default_na=False).to_dict("records")
    out = []
    for row in rows:
        if row["status"] != "completed":
            out.append({"head": row["head"], "status": row["status"], "error": row["error"]})
            continue
        eager = next((p for p in published if all(str(p["match"].get(k)) == str(row[k]) for k in MATCH_KEYS)), None)
        miou = float(row["miou"])
        out.append({
            "head": row["head"], "formulation": row["formulation"], "compile": row["compile"], "seed": row["seed"],
            "miou_compiled": miou, "miou_eager_published": eager and eager["miou_ss"],
            "difference": eager and round(miou - eager["miou_ss"], 2),
            "train_time_s": float(row["train_time_s"]), **_time_split(sweep / row["trial_dir"]),
            "git_commit": row["git_commit"], "git_dirty": row["git_dirty"], "torch_version": row["torch_version"],
            "threads": row["threads"], "device_name": row["device_name"], "finished_at": row["finished_at"],
        })
    return {"sweep": str(sweep), "against": str(against), "rows": out,
            "load_average_at_collection": os.getloadavg(), "cpu_count": os.cpu_count()}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m perf.compile_parity", description=__doc__.splitlines()[0])
    ap.add_argument("sweep", type=Path)
    ap.add_argument("--against", type=Path, default=Path("reports/published_demo.yaml"))
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--note", default="", help="conditions to record with the numbers (load during the run, ...)")
    args = ap.parse_args(argv)
    result = collect(args.sweep, args.against)
    result["note"] = args.note
    for r in result["rows"]:
        if "miou_compiled" not in r:
            print(f"[compile-parity] {r['head']}: {r['status']} {r['error']}")
            continue
        print(f"[compile-parity] {r['head']:4s} compiled {r['miou_compiled']:6.2f}  eager {r['miou_eager_published']}"
              f"  diff {r['difference']:+.2f}  first iteration {r['first_iter_s']} s, steady "
              f"{r['steady_ms_per_iter']} ms/it, train {r['train_time_s']:.0f} s")
    if args.out is not None:
        from bench.files.atomic import write_json

        print(f"[compile-parity] wrote {write_json(args.out / 'compile_parity.json', result)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
