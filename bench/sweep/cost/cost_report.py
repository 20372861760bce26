"""The cost part of `sweep --dry-run`: per-model costs from --calibrate or an earlier sweep, then the table."""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

from bench.sweep.cost import estimate
def dry_run_concurrency(sweep, max_concurrent: Optional[int]) -> int:
    """What the runner would use on the embedded Ray of this machine (bench.sweep.driver.runner)."""
    import os

    if max_concurrent or sweep.section.max_concurrent:
        return int(max_concurrent or sweep.section.max_concurrent)
    res = sweep.section.resources
    per_trial = res.cpus * res.workers + (0.01 if res.workers > 1 else 0)
    return max(1, int(float(os.cpu_count() or 1) // per_trial))


def collect_costs(sweep, sweep_dir: Path, calibrate_iters: Optional[int], note=None) -> dict[str, estimate.ModelCost]:
    """An earlier sweep's records in `sweep_dir` where they exist; with --calibrate every model of an unfinished trial is
    calibrated here and now instead (that beats a record taken under other conditions)."""
    costs = estimate.from_records(sweep_dir, sweep.trials)
    if calibrate_iters is not None:
        from bench.sweep.cost.calibrate import calibrate
        from bench.sweep.folder import layout, records

        todo = [t for t in sweep.trials if records.read_done(layout.trial_dir(Path(sweep_dir), t.config_hash)) is None]
        costs.update(calibrate(todo, calibrate_iters, note=note))
    return costs


def print_costs(sweep, sweep_dir: Path, calibrate_iters: Optional[int], max_concurrent: Optional[int],
                stream=None) -> dict:
    stream = stream or sys.stdout
    concurrency = dry_run_concurrency(sweep, max_concurrent)
    def note(line: str) -> None:
        print(f"[{sweep.name}] {line}", file=sys.stderr, flush=True)

    costs = collect_costs(sweep, sweep_dir, calibrate_iters, note=note)
    overheads = estimate.Overheads()
    if calibrate_iters is not None:
        from bench.sweep.cost.calibrate import measure_overheads

        overheads = measure_overheads(note)
    result = estimate.estimate(sweep, sweep_dir, costs, concurrency, overheads)
    print("", file=stream)
    print(estimate.cost_table(result), file=stream)
    return result


def run_estimates(sweep, sweep_dir: Path) -> dict[str, float]:
    """{config hash: estimated wall s} for the progress line's projection, from an earlier sweep's records only
    (a run never calibrates); trials without one are projected from the trials finished so far."""
    try:
        costs = estimate.from_records(sweep_dir, sweep.trials)
    except OSError:
        return {}
    return {t.config_hash: estimate.trial_wall_s(t.config, t.resources, costs[k])
            for t in sweep.trials if (k := estimate.cost_key(t.config)) in costs}
