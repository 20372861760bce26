"""Is the latency drift per process or in time? Processes alive at once take turns timing the same models.

    python -m perf.host_drift [--seconds 480] [--models resnet18,resnet50] [--per-model 2] [--runs 3]
                                    [--threads 2] [--input 256x512] [--out DIR]

`--per-model` fresh processes per model (the demo's experiment, backbone swapped, half width, IFA), all alive at once,
each warmed up; then they take turns of `--runs` timed runs, one at a time, for `--seconds`. If each process had a
speed of its own, the processes of one model would disagree while each stayed steady; if the host's speed moves in
time, they agree with each other and move together. Prints, and writes to DIR/host_drift.json:
- each process's median;
- per model, the medians of 10-s blocks, their coefficient of variation and their correlation at lags of 10, 20 and
  30 s (how long a stretch of the host's speed lasts);
- the coefficient of variation of the ratio of two models' 10-s medians (how far a comparison within one stretch
  moves);
- per window length (20, 40, 60, 90 s), the coefficient of variation of the window's median across windows (what a
  pool spanning that long can promise).
Run it on an idle machine. docs/performance.md, "Round 6", has its results.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch

from bench.config import ExperimentConfig, read_yaml
from bench.measure.processes.fresh_processes import TurnTimer
from bench.measure.processes.isolated import FreshProcess
from bench.models import build_segmentor

ROOT = Path(__file__).resolve().parents[1]
BLOCK_S = 10.0


def _model(backbone: str):
    doc = read_yaml(ROOT / "experiments/synthetic.yaml")
    doc.pop("sweep", None)
    doc["model"]["backbone"]["name"] = backbone
    torch.manual_seed(0)
    return build_segmentor(ExperimentConfig.model_validate(doc).model).eval()


def _cv(values: list[float]) -> float | None:
    return statistics.stdev(values) / statistics.fmean(values) * 100 if len(values) > 1 else None


def _lag(values: list[float], k: int) -> float | None:
    if len(values) <= k + 2:
        return None
    try:
        return statistics.correlation(values[:-k], values[k:])
    except statistics.StatisticsError:  # constant series
        return None


def analyse(turns: list[dict], models: list[str]) -> dict:
    """The statistics named in the module's docstring, from turns {"model", "proc", "at" (s), "times_ms"}."""
    blocks: dict[str, dict[int, list[float]]] = {m: {} for m in models}
    for t in turns:
        blocks[t["model"]].setdefault(int(t["at"] // BLOCK_S), []).extend(t["times_ms"])
    common = sorted(set.intersection(*(set(b) for b in blocks.values())))
    medians = {m: [statistics.median(blocks[m][i]) for i in common] for m in models}
    out: dict = {"processes": {}, "models": {}}
    for proc in sorted({t["proc"] for t in turns}):
        mine = [x for t in turns if t["proc"] == proc for x in t["times_ms"]]
        model = next(t["model"] for t in turns if t["proc"] == proc)
        out["processes"][str(proc)] = {"model": model, "median_ms": round(statistics.median(mine), 2)}
    end = max(t["at"] for t in turns)
    for m in models:
        windows = {}
        for length in (20, 40, 60, 90):
            meds = [statistics.median([x for t in turns if t["model"] == m and a <= t["at"] < a + length
                                       for x in t["times_ms"]])
                    for a in range(0, int(end - length) + 1, length)]
            windows[str(length)] = {"windows": len(meds), "cv_pct": _cv(meds)}
        out["models"][m] = {"block_medians_ms": [round(v, 1) for v in medians[m]], "block_cv_pct": _cv(medians[m]),
                            "block_lag_corr": {f"{k * BLOCK_S:g}s": _lag(medians[m], k) for k in (1, 2, 3)},
                            "window_cv_pct": windows}
    if len(models) >= 2:
        ratio = [b / a for a, b in zip(medians[models[0]], medians[models[1]])]
        out["ratio"] = {"of": f"{models[1]}/{models[0]}", "cv_pct": _cv(ratio)}
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=480.0)
    ap.add_argument("--models", default="resnet18,resnet50", help="backbones, comma-separated")
    ap.add_argument("--per-model", type=int, default=2, help="fresh processes per model, all alive at once")
    ap.add_argument("--runs", type=int, default=3, help="timed runs per turn")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--input", default="256x512")
    ap.add_argument("--out", default="runs/bench-host-drift")
    args = ap.parse_args(argv)

    torch.set_num_threads(args.threads)
    h, w = (int(v) for v in args.input.split("x"))
    images = (torch.randn(1, 3, h, w, generator=torch.Generator().manual_seed(0)),)
    models = args.models.split(",")
    procs, turns = [], []
    try:
        for _ in range(args.per_model):
            for m in models:
                proc = FreshProcess(TurnTimer, (_model(m), images, 3), what="latency", timeout_s=600, serve=True)
                procs.append((m, proc))
                proc.answer()
        start = time.monotonic()
        while time.monotonic() - start < args.seconds:
            for i, (m, proc) in enumerate(procs):
                at = time.monotonic() - start
                turns.append({"model": m, "proc": i, "at": at, "times_ms": proc.call(args.runs)["times_ms"]})
    finally:
        for _, proc in procs:
            proc.close()
    result = {"seconds": args.seconds, "per_model": args.per_model, "runs": args.runs, "threads": args.threads,
              "input": args.input, **analyse(turns, models)}
    out = (ROOT / args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    (out / "host_drift.json").write_text(json.dumps({**result, "turns": turns}) + "\n")
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
