"""Issue 13's cost acceptance: `sweep --dry-run --calibrate N` against the sweep it predicts, back to back.

    python -m perf.cost_estimate [--config experiments/synthetic.yaml] [--calibrate 5] [--set KEY=VALUE ...]
                                       [--max-concurrent N] [--out runs/cost-estimate]

1. the dry-run's cost estimate, through the code `ifa-bench sweep --dry-run --calibrate N` runs
   (bench.sweep.cost.cost_report.print_costs, in this process: no Ray), printed as the command prints it;
2. the sweep itself, `ifa-bench sweep CONFIG --out <fresh folder>` in a fresh process, timed from spawn to exit;
3. estimated against actual, per trial (from the trial's start in run_trial to its done record, the span the
   per-trial estimate models) and for the sweep (wall time and device-hours), with the ratio actual / estimate.

Writes <out>/<UTC time>/cost_estimate.json (atomically) beside the sweep folder it ran. Load averages are recorded
before and after each side: on a shared machine rerun it on an idle one before quoting the numbers.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def _actual_trials(sweep_dir: Path, sweep) -> dict[str, float]:
    """config hash -> seconds from the (last) attempt's start to its done record."""
    from bench.sweep.folder import layout
    from bench.files.json_records import read_json
    out = {}
    for t in sweep.trials:
        tdir = layout.trial_dir(sweep_dir, t.config_hash)
        hist = (read_json(tdir / layout.ATTEMPTS) or {}).get("history") or []
        done = tdir / layout.RESULT
        if hist and done.is_file():
            start = datetime.fromisoformat(hist[-1]["started_at"]).timestamp()
            out[t.config_hash] = done.stat().st_mtime - start
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", type=Path, default=Path("experiments/synthetic.yaml"))
    ap.add_argument("--calibrate", type=int, default=5)
    ap.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--max-concurrent", type=int, default=None)
    ap.add_argument("--out", type=Path, default=Path("runs/cost-estimate"))
    args = ap.parse_args(argv)

    from bench.files.atomic import write_text
    from bench.sweep.cost import estimate
    from bench.sweep.cost.cost_report import print_costs
    from bench.sweep.spec.trials import load_sweep

    run_dir = (args.out / datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")).resolve()
    sweep_dir = run_dir / "sweep"
    sweep = load_sweep(args.config, args.overrides)

    load0 = _load()
    t0 = time.perf_counter()
    est = print_costs(sweep, sweep_dir, args.calibrate, args.max_concurrent)
    calib_s = time.perf_counter() - t0
    load1 = _load()

    cmd = [sys.executable, "-m", "bench.cli", "sweep", str(args.config), "--out", str(sweep_dir)]
    cmd += [a for kv in args.overrides for a in ("--set", kv)]
    if args.max_concurrent:
        cmd += ["--max-concurrent", str(args.max_concurrent)]
    run_dir.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    with (run_dir / "sweep.log").open("w") as log:
        proc = subprocess.run(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    sweep_s = time.perf_counter() - t0
    load2 = _load()
    if proc.returncode != 0:
        print(f"the sweep failed (exit {proc.returncode}); see {run_dir / 'sweep.log'}", file=sys.stderr)
        return 1

    actual = _actual_trials(sweep_dir, sweep)
    rows = []
    for tc, t in zip(est["trials"], sweep.trials):
        devices, unit = estimate.device_unit(t.resources)
        got = actual.get(t.config_hash)
        rows.append({"trial_id": tc.trial_id, "estimate_s": tc.wall_s, "actual_s": got,
                     "ratio": got / tc.wall_s if got and tc.wall_s else None,
                     "estimate_device_h": tc.device_hours, "actual_device_h": devices * got / 3600 if got else None,
                     "unit": unit, "source": tc.source})
    total = est["total"]
    actual_dev_h = sum(r["actual_device_h"] or 0.0 for r in rows)
    summary = {
        "estimate_wall_s": total["wall_s"], "actual_wall_s": sweep_s,
        "wall_ratio": sweep_s / total["wall_s"] if total["wall_s"] else None,
        "estimate_trial_device_h": total["trial_device_hours"], "actual_trial_device_h": actual_dev_h,
        "device_h_ratio": actual_dev_h / total["trial_device_hours"] if total["trial_device_hours"] else None,
        "concurrency": total["concurrency"], "unit": total["unit"],
    }
    record = {
        "config": str(args.config), "overrides": args.overrides, "calibrate": args.calibrate,
        "sweep_dir": str(sweep_dir), "calibration_s": calib_s, "trials": rows, "total": summary,
        "estimate": estimate.as_json(est),
        "constants": {"TRIAL_STARTUPS": estimate.TRIAL_STARTUPS, "SWEEP_STARTUPS": estimate.SWEEP_STARTUPS,
                      "MEASURE_STARTUPS": estimate.MEASURE_STARTUPS},
        "loadavg": {"before_calibration": load0, "after_calibration": load1, "after_sweep": load2},
        "cpu_count": os.cpu_count(), "niceness": os.nice(0),
        "at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    write_text(run_dir / "cost_estimate.json", json.dumps(record, indent=1, default=str) + "\n")

    from bench.results.text_table import text_table

    def f(v, fmt="{:.0f}"):
        return "-" if v is None else fmt.format(v)

    print()
    print(text_table(["trial_id", "estimate s", "actual s", "actual/estimate"],
                     [[r["trial_id"], f(r["estimate_s"]), f(r["actual_s"]), f(r["ratio"], "{:.2f}")] for r in rows]))
    print(f"sweep wall: estimate {f(summary['estimate_wall_s'])} s, actual {sweep_s:.0f} s "
          f"(ratio {f(summary['wall_ratio'], '{:.2f}')}); trial {summary['unit']}: estimate "
          f"{summary['estimate_trial_device_h']:.4f}, actual {actual_dev_h:.4f} "
          f"(ratio {f(summary['device_h_ratio'], '{:.2f}')}); calibration took {calib_s:.0f} s")
    print(f"load average: {load0} before calibration, {load1} after it, {load2} after the sweep "
          f"({os.cpu_count()} CPUs, nice {os.nice(0)})")
    print(f"wrote {run_dir / 'cost_estimate.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
