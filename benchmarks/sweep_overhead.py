"""Ray overhead of a sweep: one-trial `ifa-bench sweep` vs `ifa-bench train` + a measurement, same config and threads.

    python -m benchmarks.sweep_overhead [--config experiments/synthetic.yaml] [--threads 2] [--set KEY=VALUE ...]
                                        [--out DIR] [--order sweep-first|direct-first]

Each side is a fresh process, timed end to end (wall clock, from spawn to exit), as a user would run it:
  direct: `ifa-bench train CONFIG --set train.threads=T`, then the measurement the sweep takes, in a fresh process
          (`ifa-bench measure --config`);
  sweep:  `ifa-bench sweep` on the same config with a one-trial `sweep:` section, resources {cpus: T}, which trains
          with T threads and runs the measurement phase (embedded Ray started and stopped by the command).
overhead = sweep / direct - 1; overhead_without_measurement = (sweep - its measurement phase) / train - 1, since
either side's measurement pool can need more processes than the other's. Writes DIR/sweep_overhead.json
(atomically). Load averages before/after are recorded: on a shared machine the two sides see different load, so
repeat the run on an idle machine to quote it.
"""
from __future__ import annotations

import argparse
import json
import os
import re
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


def _load() -> float:
    return round(os.getloadavg()[0], 2)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--config", default="experiments/synthetic.yaml")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override, both sides")
    ap.add_argument("--out", default="runs/bench-sweep-overhead")
    ap.add_argument("--order", choices=["sweep-first", "direct-first"], default="direct-first")
    args = ap.parse_args(argv)

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
    experiment = out / "experiment.yaml"
    experiment.write_text(yaml.safe_dump(doc, sort_keys=False))
    sweep_doc = dict(doc, sweep={"name": "overhead", "axes": {"seed": [doc.get("seed", 0)]},
                                 "resources": {"cpus": args.threads}, "max_failures": 0})
    sweep_yaml = out / "sweep.yaml"
    sweep_yaml.write_text(yaml.safe_dump(sweep_doc, sort_keys=False))

    # Data is generated once before either side, so neither pays for it.
    from bench.config import ExperimentConfig
    from bench.data import build_dataset

    cfg = ExperimentConfig.model_validate(doc)
    os.chdir(ROOT)
    for split in dict.fromkeys((cfg.data.train_split, cfg.data.val_split)):
        build_dataset(cfg.data, split)

    result = {"config": args.config, "threads": args.threads, "overrides": args.set, "order": args.order,
              "python": sys.version.split()[0], "cpu_count": os.cpu_count()}

    def direct():
        with tempfile.TemporaryDirectory(dir=out) as tmp:
            result["load_before_direct"] = _load()
            train = _run(CLI + ["train", str(experiment), "--out", f"{tmp}/run", "--no-progress"], out / "train.log")
            measure = _run(_measure_cmd(experiment, args.threads), out / "measure.log")
            result["load_after_direct"] = _load()
        result.update(train_s=round(train, 2), measure_s=round(measure, 2), direct_s=round(train + measure, 2))

    def sweep():
        with tempfile.TemporaryDirectory(dir=out) as tmp:
            result["load_before_sweep"] = _load()
            wall = _run(CLI + ["sweep", str(sweep_yaml), "--out", f"{tmp}/sweep"], out / "sweep.log")
            result["load_after_sweep"] = _load()
            rows = list(Path(tmp, "sweep").glob("results.csv"))
            result["sweep_status"] = rows[0].read_text().splitlines()[1].split(",")[3] if rows else "missing"
        result["sweep_s"] = round(wall, 2)

    for side in ((direct, sweep) if args.order == "direct-first" else (sweep, direct)):
        side()
    result["overhead_pct"] = round((result["sweep_s"] / result["direct_s"] - 1) * 100, 1)
    # The measurement's own length varies with how many processes its pool needed (bench/measure/fresh_processes.py),
    # on either side: the overhead of everything else is the sweep less its measurement phase against the training.
    phase = _phase_s(out / "sweep.log")
    if phase is not None:
        result["sweep_measure_s"] = phase
        rest = (result["sweep_s"] - phase) / result["train_s"] - 1
        result["overhead_without_measurement_pct"] = round(rest * 100, 1)
    tmp = out / "sweep_overhead.json.tmp"
    tmp.write_text(json.dumps(result, indent=1) + "\n")
    tmp.replace(out / "sweep_overhead.json")
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
