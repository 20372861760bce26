"""`sweep --dry-run [--calibrate N]`: resources and device-hour estimates per trial and for the sweep (no Ray)."""
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

from bench.cli import main
from bench.sweep.cost import estimate
from bench.sweep.spec.trials import Resources, load_sweep
from tests.sweep.conftest import TINY_HEADS, tiny_experiment, write_spec

REPO = Path(__file__).resolve().parents[3]


def _spec(tmp_path, data_root, resources=None, seeds=(0,), heads=("ifa", "fpn")):
    return write_spec(tmp_path / "s.yaml", tiny_experiment(data_root, iterations=6, checkpoint_every=3), {
        "name": "cost", "axes": {"head": [TINY_HEADS[h] for h in heads], "seed": list(seeds)},
        "resources": resources or {"cpus": 1},
    })


def test_dry_run_without_a_source_prints_resources_and_no_estimate(tmp_path, data_root, capsys):
    spec = _spec(tmp_path, data_root, resources={"cpus": 2, "workers": 2, "placement": "SPREAD"})
    assert main(["sweep", str(spec), "--dry-run", "--out", str(tmp_path / "out"), "--max-concurrent", "1"]) == 0
    out = capsys.readouterr().out
    cost = out.split("\n\n", 1)[1]
    lines = cost.splitlines()
    assert lines[0].split() == ["trial_id", "resources", "wall", "device-hours", "estimate", "from"]
    assert len(lines) == 4  # header, 2 trials, the sweep line
    for line in lines[1:3]:
        assert "2 CPU x 2 workers (SPREAD)" in line and "no estimate (use --calibrate N)" in line
    assert lines[3] == "sweep: no estimate for every trial (use --calibrate N); concurrency 1"
    assert not (tmp_path / "out").exists()


def test_calibrate_needs_dry_run(tmp_path, data_root, capsys):
    spec = _spec(tmp_path, data_root)
    assert main(["sweep", str(spec), "--calibrate", "3", "--out", str(tmp_path / "out")]) == 2
    assert capsys.readouterr().err.strip() == (
        "ifa-bench sweep: error: --calibrate: only with --dry-run (it estimates the sweep instead of running it)")
    assert not (tmp_path / "out").exists()


@pytest.mark.timeout(120)
def test_calibrate_estimates_every_trial_writes_nothing_and_starts_no_ray(tmp_path, data_root):
    spec = _spec(tmp_path, data_root, seeds=(0, 1), heads=("ifa",))  # 2 trials, 1 distinct model: calibrated once
    out = tmp_path / "out"
    script = textwrap.dedent(f"""
        import sys
        from bench.cli import main
        rc = main(["sweep", {str(spec)!r}, "--dry-run", "--calibrate", "3", "--out", {str(out)!r},
                   "--max-concurrent", "2"])
        print("RAY_IMPORTED", "ray" in sys.modules)
        sys.exit(rc)
    """)
    proc = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=110)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip().endswith("RAY_IMPORTED False")  # no Ray started: it was never even imported
    assert proc.stderr.count("[cost] calibrated synthetic-") == 1, proc.stderr  # per distinct model, not per seed
    assert "[cost] process start-up (torch, Ray Tune, engine imports): " in proc.stderr
    assert not out.exists()  # calibration wrote nothing into --out
    rows = [ln for ln in proc.stdout.split("\n\n", 1)[1].splitlines() if ln.startswith("synthetic-")]
    assert len(rows) == 2
    walls = []
    for row in rows:
        assert "1 CPU" in row and "calibrated (1 timed it)" in row and "CPU-h" in row
        walls.append(row.split("1 CPU", 1)[1].split()[0])  # the wall time ("0m12s")
    assert walls[0] == walls[1] != "-"  # the seeds share their model's calibration
    total = [ln for ln in proc.stdout.splitlines() if ln.startswith("sweep: ")][0]
    assert "at concurrency 2" in total and "for 1 model," in total and "CPU-h" in total
    assert total.endswith("(measured)")


def test_estimate_from_an_earlier_sweeps_records(tmp_path, data_root, capsys):
    """A trial trained into the sweep folder's layout (the real engine) is the source for its model's other
    seed too; the other model has no source."""
    from bench.engine.trainer import train_experiment
    from bench.files.output_guard import SWEEP_MARKER, mark
    from bench.sweep.folder import layout, records
    spec = _spec(tmp_path, data_root, seeds=(0, 1))
    sweep = load_sweep(spec)
    out = tmp_path / "out"
    first = sweep.trials[0]
    tdir = layout.trial_dir(out, first.config_hash)
    records.bump_attempts(tdir, {"train_started_at": "2026-01-01T00:00:00.000000+00:00",
                                 "train_finished_at": "2026-01-01T00:00:30.000000+00:00"})
    final = train_experiment(first.config, tdir, progress=False)
    mark(out, SWEEP_MARKER, sweep.name + "\n")  # what the sweep that wrote these records leaves (output_guard)

    cost = estimate.cost_from_trial_dir(tdir)
    iters = [json.loads(ln) for ln in (tdir / "metrics.jsonl").read_text().splitlines()]
    train = [r for r in iters if r["kind"] == "train"]
    assert cost.s_per_iter == pytest.approx((train[-1]["time_s"] - train[1]["time_s"]) / (6 - 2))
    assert cost.val_images == 3 and cost.eval_s_per_image == pytest.approx(final["eval_time_s"] / 3)
    assert cost.setup_s == pytest.approx(30 - train[-1]["time_s"] - final["eval_time_s"], abs=1e-3)

    assert main(["sweep", str(spec), "--dry-run", "--out", str(out)]) == 0
    rows = {ln.split()[0]: ln for ln in capsys.readouterr().out.split("\n\n", 1)[1].splitlines()[1:5]}
    ifa0, ifa1 = sweep.trials[0].trial_id, sweep.trials[1].trial_id
    assert sweep.trials[1].config.model.head.name == "ifa" and sweep.trials[1].config.seed == 1
    for row in (rows[ifa0], rows[ifa1]):
        assert row.endswith(f"earlier sweep ({first.config_hash})")
    fpn = [r for k, r in rows.items() if "-fpn-" in k]
    assert len(fpn) == 2 and all("no estimate" in r for r in fpn)


def test_trial_and_sweep_arithmetic():
    assert estimate.makespan([30.0, 10.0, 10.0, 10.0], 2) == 30.0
    assert estimate.makespan([10.0, 10.0, 10.0], 1) == 30.0
    assert estimate.makespan([10.0, 20.0, 5.0], 2) == 20.0  # the third starts when the first slot frees at 10

    from bench.config import ExperimentConfig

    cfg = ExperimentConfig.model_validate(tiny_experiment(Path("/nonexistent"), iterations=10, checkpoint_every=4))
    cfg = cfg.model_copy(update={"train": cfg.train.model_copy(update={"eval_every": 3})})
    cost = estimate.ModelCost(s_per_iter=2.0, setup_s=5.0, checkpoint_s=1.0, eval_s_per_image=0.5, val_images=4)
    # 3 checkpoints (4, 8, 10), evaluations at 3, 6, 9 and the final one
    want = estimate.TRIAL_STARTUPS * 3.0 + 5.0 + 10 * 2.0 + 3 * 1.0 + 4 * 4 * 0.5
    assert estimate.trial_wall_s(cfg, Resources(cpus=1), cost, estimate.Overheads(3.0)) == pytest.approx(want)
    assert estimate.trial_wall_s(cfg, Resources(cpus=1, workers=2), cost, estimate.Overheads(3.0)) == pytest.approx(
        want - 10 * 2.0 / 2 - 4 * 4 * 0.5 / 2)
    assert estimate.device_unit(Resources(cpus=4, gpus=1, workers=2)) == (2.0, "GPU-h")
    assert estimate.device_unit(Resources(cpus=3, workers=2)) == (6.0, "CPU-h")
    # seeds and schedule share a calibration; the model does not
    other_seed = cfg.model_copy(update={"seed": 7, "train": cfg.train.model_copy(update={"iterations": 99})})
    assert estimate.cost_key(other_seed) == estimate.cost_key(cfg)
    other_lr = cfg.model_copy(update={"train": cfg.train.model_copy(update={"batch_size": 4})})
    assert estimate.cost_key(other_lr) != estimate.cost_key(cfg)


def test_an_in_process_or_cuda_measurement_is_estimated_at_two_rounds_at_least(tmp_path, data_root):
    """processes 0 (and CUDA) settle only after two agreeing rounds (bench.measure.latency), so the estimate counts
    warm-up + 2 x runs forwards; a pool counts warm-up and one turn per process, grown as the pool is expected to
    grow where it can (bench/measure/processes/fresh_processes.py)."""
    from bench.config.experiment_file import load_experiment

    experiment = tiny_experiment(data_root, iterations=6, checkpoint_every=3)
    path = tmp_path / "e.yaml"
    path.write_text(yaml.safe_dump(experiment))
    cost, none = estimate.ModelCost(s_per_iter=1.0, forward_s=1.0), estimate.Overheads(startup_s=0.0)
    cfg = load_experiment(path, ["measure.processes=0", "measure.warmup=3", "measure.runs=10"])
    assert estimate.measure_s(cfg, cost, none) == pytest.approx(none.measure_s + 2 + 3 + 2 * 10)
    # one process over a span shorter than two 20-s blocks has no standard error, so it never grows ...
    cfg = load_experiment(path, ["measure.processes=1", "measure.span_s=30", "measure.warmup=3", "measure.runs=10"])
    assert estimate.measure_s(cfg, cost, none) == pytest.approx(none.measure_s + 2 + 3 + 10)
    assert estimate.measure_span_s(cfg) == 30.0
    # ... over two blocks or more it has one (over the blocks) and grows like any pool: 2.8x, at most 4 processes
    cfg = load_experiment(path, ["measure.processes=1", "measure.span_s=60", "measure.warmup=3", "measure.runs=10"])
    factor = estimate.EXPECTED_POOL_FACTOR
    assert estimate.measure_s(cfg, cost, none) == pytest.approx(none.measure_s + 2 + factor * (3 + 10))
    assert estimate.measure_span_s(cfg) == pytest.approx(60.0 * factor)
    # a pool's growth makes it span about EXPECTED_PRECISE_SPAN_S: one that asks for more than that does not grow
    cfg = load_experiment(path, ["measure.processes=3", "measure.span_s=240", "measure.warmup=3", "measure.runs=10"])
    assert estimate.EXPECTED_PRECISE_SPAN_S < 240
    assert estimate.measure_s(cfg, cost, none) == pytest.approx(none.measure_s + 2 + 3 * (3 + 10))
    assert estimate.measure_span_s(cfg) == 240.0
    cfg = load_experiment(path, ["measure.processes=3", "measure.span_s=60"])  # 2.8x, as fitted at 60 s
    assert estimate.measure_span_s(cfg) == pytest.approx(estimate.EXPECTED_PRECISE_SPAN_S)
    # on CUDA there is no pool, whatever measure.processes says, and the warm-up and rounds have least times
    cfg = load_experiment(path, ["measure.processes=3", "measure.warmup=3", "measure.runs=10"])
    fast = estimate.ModelCost(s_per_iter=1.0, forward_s=0.005)
    assert estimate.measure_s(cfg, fast, none, "cuda") == pytest.approx(none.measure_s + 2 * 0.005 + 1.0 + 2 * 0.25)
    assert estimate.measure_span_s(cfg, "cuda") == 0.0 and estimate.measure_span_s(cfg, "cpu") > 0
