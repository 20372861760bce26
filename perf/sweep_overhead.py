"""Ray overhead of a sweep: one-trial `ifa-bench sweep` vs `ifa-bench train` + a measurement, same config and threads.

    python -m perf.sweep_overhead [--config experiments/synthetic.yaml] [--threads 2] [--set KEY=VALUE ...]
                                        [--repeats 3] [--growing-pool] [--address ADDR] [--out DIR]

Each side is a fresh process, timed end to end (wall clock, from spawn to exit), as a user would run it:
  direct: `ifa-bench train CONFIG --set train.threads=T`, then the measurement the sweep takes, in a fresh process
          (`ifa-bench measure --config`);
  sweep:  `ifa-bench sweep` on the same config with a one-trial `sweep:` section, resources {cpus: T}, which trains
          with T threads and runs the measurement phase (embedded Ray started and stopped by the command). With
          --address ADDR the sweep joins that running Ray instead (`ifa-bench sweep --address ADDR`): what it adds is
          then Tune and the trial's actor, not Ray's start and stop.
Both sides do the same measurement work: measure.max_processes is set to measure.processes, so neither latency pool
can grow (the rule would grow them by different amounts; --growing-pool keeps the rule and reports the overhead
without the measurement as well).

This VM's speed drifts by 20% or more over minutes, so the same training takes 84 s in one run and 96 s in the next,
and whole-run ratios swing by +-15% (docs/performance.md). The pairs are therefore repeated (--repeats) in
alternating order (direct first, then sweep first, ...), and the figure to quote removes the training itself from
both sides, since each side times its own training loop (final.json's train_time_s, the engine's timer):
  fixed_s = (sweep - the trial's train_time_s) - (direct - train's train_time_s)
is what the sweep adds (Ray's start and stop, Tune, the trial actor's process), measured without the drift of the
training minutes; the sweep's own line "embedded Ray: started in X s, stopped in Y s" gives the part that is Ray's
start and stop (ray_start_s, ray_stop_s). The overhead for a trial whose training takes T seconds is then
fixed_s / (T + the direct side's time outside training), reported for T = 120 (the issue's 2-minute trial) and for
this run's own training. Per pair also: overhead = sweep / direct - 1 (the raw ratio, drift included) and
overhead_without_measurement = (sweep - its measurement phase) / train - 1. Medians over pairs, with ranges.
Writes DIR/sweep_overhead.json (atomically) after every pair. Load averages before/after each side are recorded:
quote only a run on an idle machine.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from bench.config import parse_yaml, read_yaml

ROOT = Path(__file__).resolve().parents[1]
CLI = [sys.executable, "-m", "bench.cli"]


def _run(cmd: list[str], log: Path) -> float:
    t0 = time.perf_counter()
    with log.open("w") as f:
        proc = subprocess.run(cmd, cwd=ROOT, stdout=f, stderr=subprocess.STDOUT)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed (exit {proc.returncode}); see {log}")
    return wall


def _measure_cmd(config: Path, threads: int) -> list[str]:
    return CLI + ["measure", "--config", str(config), "--threads", str(threads)]


def _phase_s(log: Path) -> float | None:
    """The sweep's own figure for its measurement phase ("measurement phase: 20.5 s")."""
    found = re.findall(r"measurement phase: ([0-9.]+) s", log.read_text())
    return float(found[-1]) if found else None


def _ray_times(log: Path) -> tuple[float, float] | None:
    """The sweep's own figures for its embedded Ray ("embedded Ray: started in 4.3 s, stopped in 1.5 s")."""
    found = re.findall(r"embedded Ray: started in ([0-9.]+) s, stopped in ([0-9.]+) s", log.read_text())
    return (float(found[-1][0]), float(found[-1][1])) if found else None


def _load() -> float:
    return round(os.getloadavg()[0], 2)


def _train_time(final: Path) -> float | None:
    """The engine's own timer of its training loop (final.json's train_time_s)."""
    try:
        return float(json.loads(final.read_text())["train_time_s"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _median(values: list[float]) -> float:
    return round(statistics.median(values), 1)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--config", default="experiments/synthetic.yaml")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override, both sides")
    ap.add_argument("--repeats", type=int, default=3, help="pairs, alternating which side runs first")
    ap.add_argument("--growing-pool", action="store_true",
                    help="keep the latency pool's growth rule (each side's pool may then do different work)")
    ap.add_argument("--address", default=None,
                    help="the sweep side joins this running Ray (ifa-bench sweep --address) instead of embedding one")
    ap.add_argument("--out", default="runs/bench-sweep-overhead")
    args = ap.parse_args(argv)
    if args.repeats < 1:
        raise SystemExit("--repeats: must be at least 1")

    out = (ROOT / args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    doc = read_yaml(ROOT / args.config)
    doc.pop("sweep", None)
    doc.setdefault("train", {})["threads"] = args.threads
    for item in args.set:
        key, _, value = item.partition("=")
        node = doc
        *parents, leaf = key.split(".")
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = parse_yaml(value, f"--set {key}")
    from bench.config import ExperimentConfig

    if not args.growing_pool:
        processes = ExperimentConfig.model_validate(doc).measure.processes
        doc.setdefault("measure", {})["max_processes"] = max(1, processes)
    experiment = out / "experiment.yaml"
    experiment.write_text(yaml.safe_dump(doc, sort_keys=False))
    sweep_doc = dict(doc, sweep={"name": "overhead", "axes": {"seed": [doc.get("seed", 0)]},
                                 "resources": {"cpus": args.threads}, "max_failures": 0})
    sweep_yaml = out / "sweep.yaml"
    sweep_yaml.write_text(yaml.safe_dump(sweep_doc, sort_keys=False))

    # Data is generated once before either side, so neither pays for it.
    from bench.data import build_dataset

    cfg = ExperimentConfig.model_validate(doc)
    os.chdir(ROOT)
    for split in dict.fromkeys((cfg.data.train_split, cfg.data.val_split)):
        build_dataset(cfg.data, split)

    result = {"config": args.config, "threads": args.threads, "overrides": args.set, "repeats": args.repeats,
              "address": args.address,
              "measure_max_processes": None if args.growing_pool else cfg.measure.max_processes,
              "python": sys.version.split()[0], "cpu_count": os.cpu_count(), "pairs": []}

    def direct(pair: dict) -> None:
        with tempfile.TemporaryDirectory(dir=out) as tmp:
            pair["load_before_direct"] = _load()
            train = _run(CLI + ["train", str(experiment), "--out", f"{tmp}/run", "--no-progress"], out / "train.log")
            pair["train_loop_s"] = _train_time(Path(tmp, "run", "final.json"))
            measure = _run(_measure_cmd(experiment, args.threads), out / "measure.log")
            pair["load_after_direct"] = _load()
        pair.update(train_s=round(train, 2), measure_s=round(measure, 2), direct_s=round(train + measure, 2))

    def sweep(pair: dict) -> None:
        with tempfile.TemporaryDirectory(dir=out) as tmp:
            pair["load_before_sweep"] = _load()
            address = ["--address", args.address] if args.address else []
            wall = _run(CLI + ["sweep", str(sweep_yaml), "--out", f"{tmp}/sweep", *address], out / "sweep.log")
            pair["load_after_sweep"] = _load()
            rows = list(Path(tmp, "sweep").glob("results.csv"))
            pair["sweep_status"] = rows[0].read_text().splitlines()[1].split(",")[3] if rows else "missing"
            finals = list(Path(tmp, "sweep", "trials").glob("*/final.json"))
            pair["trial_train_loop_s"] = _train_time(finals[0]) if len(finals) == 1 else None
        pair["sweep_s"] = round(wall, 2)
        times = _ray_times(out / "sweep.log")
        if times:
            pair["ray_start_s"], pair["ray_stop_s"] = times

    for i in range(args.repeats):
        pair = {"order": "direct-first" if i % 2 == 0 else "sweep-first"}
        for side in ((direct, sweep) if i % 2 == 0 else (sweep, direct)):
            side(pair)
        pair["overhead_pct"] = round((pair["sweep_s"] / pair["direct_s"] - 1) * 100, 1)
        phase = _phase_s(out / "sweep.log")
        if phase is not None:
            pair["sweep_measure_s"] = phase
            rest = (pair["sweep_s"] - phase) / pair["train_s"] - 1
            pair["overhead_without_measurement_pct"] = round(rest * 100, 1)
        if pair.get("trial_train_loop_s") is not None:
            pair["fixed_s"] = round((pair["sweep_s"] - pair["trial_train_loop_s"])
                                    - (pair["direct_s"] - pair["train_loop_s"]), 2)
            pair["direct_outside_training_s"] = round(pair["direct_s"] - pair["train_loop_s"], 2)
        result["pairs"].append(pair)
        fixed = [p["fixed_s"] for p in result["pairs"] if "fixed_s" in p]
        if fixed:
            outside = _median([p["direct_outside_training_s"] for p in result["pairs"] if "fixed_s" in p])
            own = _median([p["train_loop_s"] for p in result["pairs"] if "fixed_s" in p])
            result.update(fixed_median_s=_median(fixed), fixed_range_s=[min(fixed), max(fixed)],
                          direct_outside_training_median_s=outside, train_loop_median_s=own,
                          projected_overhead_2min_pct=round(_median(fixed) / (120 + outside) * 100, 1),
                          projected_overhead_this_trial_pct=round(_median(fixed) / (own + outside) * 100, 1))
        for key in ("ray_start_s", "ray_stop_s"):
            values = [p[key] for p in result["pairs"] if key in p]
            if values:
                result[key[:-2] + "_median_s"] = _median(values)
        for key in ("overhead_pct", "overhead_without_measurement_pct"):
            values = [p[key] for p in result["pairs"] if key in p]
            if values:
                result[key.replace("_pct", "_median_pct")] = _median(values)
                result[key.replace("_pct", "_range_pct")] = [min(values), max(values)]
        result["overhead_median_s"] = _median([p["sweep_s"] - p["direct_s"] for p in result["pairs"]])
        tmp = out / "sweep_overhead.json.tmp"
        tmp.write_text(json.dumps(result, indent=1) + "\n")
        tmp.replace(out / "sweep_overhead.json")
        print(json.dumps(pair), flush=True)
    print(json.dumps({k: v for k, v in result.items() if k != "pairs"}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
