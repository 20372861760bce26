"""Kill tests for bench/sweep/cost/estimate.py (issue 32's mutation pass): the latency pool's expected size at its
boundaries, and the throughput read back from an earlier trial's metrics.jsonl, at exact values."""
import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from bench.sweep.cost import estimate
from bench.measure.noise_rule import BLOCK_S


def _m(processes=3, span_s=0.0, max_processes=None, latency=True):
    return SimpleNamespace(processes=processes, span_s=span_s, max_processes=max_processes, latency=latency)


def test_a_pool_can_grow_with_two_processes_or_two_blocks_of_span():
    assert estimate._pool_can_grow(_m(processes=2))
    assert not estimate._pool_can_grow(_m(processes=1))
    assert estimate._pool_can_grow(_m(processes=1, span_s=2 * BLOCK_S))
    assert not estimate._pool_can_grow(_m(processes=1, span_s=2 * BLOCK_S - 0.5))


def test_expected_slots_at_the_boundaries():
    assert estimate._expected_slots(_m(processes=0, span_s=100)) == 0.0
    assert estimate._expected_slots(_m(processes=1)) == 1.0  # cannot grow
    assert estimate._expected_slots(_m(processes=3)) == pytest.approx(3 * estimate.EXPECTED_POOL_FACTOR)  # 8.4
    assert estimate._expected_slots(_m(processes=3, span_s=1.0)) == 12.0  # 3 x 168, capped at 4 x 3
    assert estimate._expected_slots(_m(processes=3, span_s=60.0)) == pytest.approx(3 * 168 / 60)
    assert estimate._expected_slots(_m(processes=3, span_s=240.0)) == 3.0  # a long span does not shrink the pool
    assert estimate._expected_slots(_m(processes=3, max_processes=5)) == 5.0
    assert estimate.measure_span_s(SimpleNamespace(measure=_m(processes=3, span_s=60.0))) == pytest.approx(168.0)
    assert estimate.measure_span_s(SimpleNamespace(measure=_m(processes=3, span_s=60.0)), device="cuda") == 0.0


def _trial(tmp_path, rows):
    (tmp_path / "metrics.jsonl").write_text("\n".join(r if isinstance(r, str) else json.dumps(r) for r in rows))
    return estimate.cost_from_trial_dir(tmp_path)


def test_bad_lines_are_skipped_and_the_rest_is_read(tmp_path):
    path = tmp_path / "m.jsonl"
    path.write_text('{"a": 1}\nnot json\n[1, 2]\n{"b": 2}\n')
    assert estimate._read_jsonl(path) == [{"a": 1}, {"b": 2}]


def test_throughput_from_an_earlier_trials_metrics(tmp_path):
    noise = [{"kind": "note", "iter": 40, "time_s": 99.0}, {"kind": "train", "iter": "x", "time_s": 1.0},
             {"kind": "train", "iter": 50}, {"kind": "eval", "iter": 30, "eval_time_s": 9.0},
             {"num_images": 7, "eval_time_s": 70.0}]
    three = [{"kind": "train", "iter": 10, "time_s": 5.0}, {"kind": "train", "iter": 20, "time_s": 8.0},
             {"kind": "train", "iter": 30, "time_s": 10.0}, {"kind": "eval", "num_images": 4, "eval_time_s": 2.0}]
    cost = _trial(tmp_path, three + noise)
    assert cost.s_per_iter == pytest.approx(0.2)  # the first interval is warm-up: (10 - 8) / (30 - 20)
    assert (cost.eval_s_per_image, cost.val_images) == (0.5, 4)
    two = _trial(tmp_path, three[:2])
    assert two.s_per_iter == pytest.approx(0.3) and two.eval_s_per_image is None  # (8 - 5) / (20 - 10)
    assert _trial(tmp_path, three[:1]) is None
    assert _trial(tmp_path, [three[0], {"kind": "train", "iter": 10, "time_s": 6.0}]) is None


# --- the sweep's estimate, its table and its JSON, in process on a real sweep spec (nothing trained or measured)

def _sweep(tmp_path, resources=None, heads=("ifa", "fpn"), measure=True, span_s=0.0):
    import yaml
    from bench.sweep.spec.trials import load_sweep
    from tests.sweep.conftest import TINY_HEADS, tiny_experiment, write_spec

    tmp_path.mkdir(parents=True, exist_ok=True)
    experiment = tiny_experiment(Path("/nonexistent"), iterations=10, checkpoint_every=4, measure=measure)
    experiment["train"]["eval_every"] = 5
    experiment["measure"].update(processes=2, span_s=span_s, warmup=1, runs=3)
    spec = write_spec(tmp_path / "s.yaml", experiment, {
        "name": "cost", "axes": {"head": [TINY_HEADS[h] for h in heads], "seed": [0, 1]},
        "resources": resources or {"cpus": 2}})
    assert yaml.safe_load(spec.read_text())["sweep"]["name"] == "cost"
    return load_sweep(spec)


COST = estimate.ModelCost(s_per_iter=1.5, setup_s=2.0, checkpoint_s=0.5, eval_s_per_image=0.25, val_images=3,
                          forward_s=0.2, source="calibrated (test)")


def test_estimate_totals_of_a_sweep(tmp_path):
    import os

    sweep = _sweep(tmp_path)
    over = estimate.Overheads(startup_s=3.0, source="measured")
    costs = {estimate.cost_key(t.config): COST for t in sweep.trials}
    assert len(costs) == 2  # two models, two seeds each
    result = estimate.estimate(sweep, tmp_path / "out", costs, concurrency=3, overheads=over)
    trials, total = result["trials"], result["total"]
    walls = [estimate.trial_wall_s(t.config, t.resources, COST, over) for t in sweep.trials]
    # 10 iterations x 1.5, 3 checkpoints, evaluations at 5 and the final one of 3 images
    assert walls[0] == pytest.approx(2 * 3.0 + 2.0 + 15.0 + 1.5 + 2 * 3 * 0.25)
    assert [t.wall_s for t in trials] == pytest.approx(walls)
    assert [t.device_hours for t in trials] == pytest.approx([2 * w / 3600 for w in walls])
    assert {(t.resources, t.state, t.unit, t.source) for t in trials} == {("2 CPU", "new", "CPU-h", COST.source)}
    assert [t.trial_id for t in trials] == [t.trial_id for t in sweep.trials]
    assert [t.config_hash for t in trials] == [t.config_hash for t in sweep.trials]
    per_model = estimate.measure_s(sweep.trials[0].config, COST, over, "cpu")
    # a pool of 2 grown 2.8x (5.6 processes, each one start-up), 2 forwards, then warm-up 1 + runs 3 per process
    assert per_model == pytest.approx(3.0 + 5.6 * 3.0 + 2 * 0.2 + (1 + 3) * 5.6 * 0.2)
    assert estimate.measure_s(sweep.trials[0].config, estimate.ModelCost(s_per_iter=1.0), over) == 0.0  # no forward
    assert total == pytest.approx({
        "complete": True, "concurrency": 3, "startup_s": 3.0, "startup_source": "measured", "sweep_overhead_s": 12.0,
        "unit": "CPU-h", "trials_wall_s": estimate.makespan(walls, 3), "measure_s": 2 * per_model,
        "measured_models": 2, "trial_device_hours": 2 * sum(walls) / 3600,
        "measure_device_hours": os.cpu_count() * 2 * per_model / 3600,
        "wall_s": 12.0 + 2 * per_model + estimate.makespan(walls, 3),
        "device_hours": 2 * sum(walls) / 3600 + os.cpu_count() * 2 * per_model / 3600})
    assert estimate.makespan(walls, 3) == pytest.approx(2 * walls[0])  # the fourth trial waits for a slot
    as_json = estimate.as_json(result)
    assert as_json["total"] == total and as_json["total"] is not total
    assert as_json["trials"][0] == {"trial_id": trials[0].trial_id, "config_hash": trials[0].config_hash,
                                    "resources": "2 CPU", "state": "new", "wall_s": walls[0],
                                    "device_hours": trials[0].device_hours, "unit": "CPU-h",
                                    "source": COST.source}


def test_estimate_of_done_unknown_and_already_measured_trials(tmp_path):
    from bench.files.atomic import write_json
    from bench.sweep.folder import layout, records
    from bench.sweep.tasks import measurement

    sweep = _sweep(tmp_path, resources={"cpus": 1, "gpus": 1, "workers": 2}, span_s=500.0)
    out = tmp_path / "out"
    done, measured = sweep.trials[0], sweep.trials[2]
    write_json(layout.trial_dir(out, done.config_hash) / layout.RESULT, {"row": {"status": "completed"}})
    payload = {"cfg": measured.config.model_dump(mode="json"), "resources": measured.resources.model_dump()}
    key = measurement.measure_key(payload)
    records.write_measurement(out, key, {"measure_key": key})
    over = estimate.Overheads(startup_s=1.0)
    ifa = {estimate.cost_key(sweep.trials[0].config): COST}  # the fpn trials have no source
    result = estimate.estimate(sweep, out, ifa, concurrency=1, overheads=over)
    states = [(t.state, t.wall_s, t.device_hours, t.source) for t in result["trials"]]
    wall = estimate.trial_wall_s(sweep.trials[1].config, sweep.trials[1].resources, COST, over)
    assert states == [("done", 0.0, 0.0, "done (not rerun)"), ("new", wall, 2 * wall / 3600, COST.source),
                      ("new", None, None, "no estimate (use --calibrate N)"),
                      ("new", None, None, "no estimate (use --calibrate N)")]
    assert {t.unit for t in result["trials"]} == {"GPU-h"}
    total = result["total"]
    assert total["complete"] is False and total["unit"] == "GPU-h" and total["trials_wall_s"] == wall
    assert total["trial_device_hours"] == pytest.approx(2 * wall / 3600)  # the done and unknown trials add nothing
    assert total["device_hours"] == pytest.approx(total["trial_device_hours"] + total["measure_device_hours"])
    assert total["measured_models"] == 1 and total["measure_device_hours"] == pytest.approx(total["measure_s"] / 3600)
    # a GPU trial is measured on CUDA: in process, two rounds, no pool and so no 500-s span (on the CPU: a pool)
    on_cuda = estimate.measure_s(sweep.trials[1].config, COST, over, "cuda")
    assert total["measure_s"] == pytest.approx(on_cuda) and on_cuda < 10
    assert estimate.measure_s(sweep.trials[1].config, COST, over, "cpu") != pytest.approx(on_cuda)
    assert total["wall_s"] == pytest.approx(over.sweep_s + total["measure_s"] + wall)
    assert estimate.cost_table(result).splitlines()[-1] == \
        "sweep: no estimate for every trial (use --calibrate N); concurrency 1"
    # every trial done: nothing to run, no wall time at all
    nothing = estimate.estimate(_sweep(tmp_path / "n", heads=("ifa",)), tmp_path / "n" / "out", {}, 2, over)
    assert nothing["total"]["wall_s"] == 0.0 and nothing["total"]["trials_wall_s"] == 0.0
    assert nothing["total"]["measure_s"] == 0.0 and nothing["total"]["measured_models"] == 0


def test_estimate_without_measurement(tmp_path):
    sweep = _sweep(tmp_path, measure=False)
    costs = {estimate.cost_key(t.config): COST for t in sweep.trials}
    total = estimate.estimate(sweep, tmp_path / "out", costs, 4, estimate.Overheads(2.0))["total"]
    assert total["measure_s"] == 0.0 and total["measured_models"] == 0 and total["measure_device_hours"] == 0.0
    walls = [estimate.trial_wall_s(t.config, t.resources, COST, estimate.Overheads(2.0)) for t in sweep.trials]
    assert total["wall_s"] == pytest.approx(8.0 + max(walls))


def test_the_phase_spans_at_least_its_pools_span(tmp_path):
    """A pool with a long span takes longer than the models' runs: the phase is the longer of the two."""
    sweep = _sweep(tmp_path, heads=("ifa",), span_s=500.0)
    total = estimate.estimate(sweep, tmp_path / "out", {estimate.cost_key(sweep.trials[0].config): COST}, 1,
                              estimate.Overheads(1.0))["total"]
    assert total["measure_s"] == pytest.approx(500.0) and total["measured_models"] == 1


def test_cost_table_in_full():
    trials = [estimate.TrialCost("a-ifa-s0", "h0", "2 CPU", "new", 61.2, 0.034, "CPU-h", "calibrated"),
              estimate.TrialCost("b-fpn-s0", "h1", "2 CPU", "done", 0.0, 0.0, "CPU-h", "done (not rerun)")]
    total = {"complete": True, "concurrency": 2, "startup_s": 4.25, "startup_source": "measured",
             "sweep_overhead_s": 17.0, "unit": "CPU-h", "trials_wall_s": 61.2, "measure_s": 3725.0,
             "measured_models": 1, "trial_device_hours": 0.034, "measure_device_hours": 2.0693,
             "wall_s": 3803.2, "device_hours": 2.1033}
    text = estimate.cost_table({"trials": trials, "total": total}).splitlines()
    assert text[0].split() == ["trial_id", "resources", "wall", "device-hours", "estimate", "from"]
    assert text[1].split() == ["a-ifa-s0", "2", "CPU", "1m02s", "0.034", "CPU-h", "calibrated"]
    assert text[2].split() == ["b-fpn-s0", "2", "CPU", "0m00s", "0.000", "CPU-h", "done", "(not", "rerun)"]
    assert text[3] == ("sweep: 1h03m wall at concurrency 2 (measurement phase 1h02m for 1 model, trials 1m02s, "
                       "Ray start/stop 0m17s); 2.103 CPU-h (0.034 trials + 2.069 measurement); process start-up "
                       "4.2 s (measured)")
    assert text[1].index("1m02s") + len("1m02s") == text[0].index("wall") + len("wall")  # numbers right-aligned
    unknown = estimate.TrialCost("c", "h2", "1 CPU", "new", None, None, "CPU-h", "no estimate")
    assert estimate.cost_table({"trials": [unknown], "total": dict(total, measured_models=2)}).splitlines()[1].split() \
        == ["c", "1", "CPU", "-", "-", "no", "estimate"]
    assert "for 2 models," in estimate.cost_table({"trials": [unknown], "total": dict(total, measured_models=2)})


def test_durations_and_resources_as_shown():
    assert [estimate._hms(s) for s in (None, 0, 0.2, 59.0, 59.2, 60, 3599.5, 3600, 3661, 36000)] == \
        ["-", "0m00s", "0m01s", "0m59s", "1m00s", "1m00s", "1h00m", "1h00m", "1h01m", "10h00m"]
    from bench.sweep.spec.trials import Resources

    assert estimate.resources_text(Resources(cpus=1.5)) == "1.5 CPU"
    assert estimate.resources_text(Resources(cpus=2, gpus=0.5, custom={"node_a": 1, "x": 0.25}, workers=3,
                                             placement="SPREAD")) == "2 CPU 0.5 GPU 1 node_a 0.25 x x 3 workers (SPREAD)"
    assert estimate.resources_text(Resources(cpus=4, workers=1, placement="SPREAD")) == "4 CPU"
    assert estimate.device_unit(Resources(cpus=4, gpus=0.5)) == (0.5, "GPU-h")


# --- an earlier sweep's records as the source (written here as the engine writes them)

def _record(trial_dir, cfg, train_rows, started="2026-01-01T00:00:00+00:00", finished="2026-01-01T00:01:00+00:00"):
    import yaml
    from bench.files.atomic import write_json
    from bench.sweep.folder import layout

    trial_dir.mkdir(parents=True)
    (trial_dir / layout.CONFIG).write_text(yaml.safe_dump(cfg.model_dump(mode="json")))
    (trial_dir / layout.METRICS).write_text("\n".join(json.dumps(r) for r in train_rows) + "\n")
    write_json(trial_dir / layout.ATTEMPTS, {"count": 1, "history": [
        {"train_started_at": started, "train_finished_at": finished}]})


def test_setup_time_from_the_last_attempt(tmp_path):
    from bench.files.atomic import write_json
    from bench.sweep.folder import layout

    rows = [{"kind": "train", "iter": 10, "time_s": 5.0}, {"kind": "train", "iter": 20, "time_s": 8.0},
            {"kind": "train", "iter": 30, "time_s": 10.0}, {"kind": "eval", "num_images": 4, "eval_time_s": 2.0},
            {"kind": "eval", "num_images": 4, "eval_time_s": 3.0}]
    cfg = SimpleNamespace(model_dump=lambda mode: {"name": "x"})
    _record(tmp_path / "t", cfg, rows)
    cost = estimate.cost_from_trial_dir(tmp_path / "t")
    assert cost.setup_s == pytest.approx(60 - 10 - 5) and cost.source == "earlier sweep (t)"
    assert (cost.eval_s_per_image, cost.val_images) == (0.75, 4)  # the last evaluation's
    hist = {"count": 2, "history": [{"train_started_at": "2026-01-01T00:00:00+00:00",
                                     "train_finished_at": "2026-01-01T00:10:00+00:00"},
                                    {"train_started_at": "2026-01-01T00:00:00+00:00",
                                     "train_finished_at": "2026-01-01T00:00:20+00:00"}]}
    write_json(tmp_path / "t" / layout.ATTEMPTS, hist)
    assert estimate.cost_from_trial_dir(tmp_path / "t").setup_s == pytest.approx(20 - 15)  # the last attempt's
    hist["history"][-1]["train_finished_at"] = "2026-01-01T00:00:05+00:00"
    write_json(tmp_path / "t" / layout.ATTEMPTS, hist)
    assert estimate.cost_from_trial_dir(tmp_path / "t").setup_s == 0.0  # never negative
    hist["history"][-1]["train_finished_at"] = "not a time"
    write_json(tmp_path / "t" / layout.ATTEMPTS, hist)
    assert estimate.cost_from_trial_dir(tmp_path / "t").setup_s == 0.0
    hist["history"][-1].pop("train_started_at")
    write_json(tmp_path / "t" / layout.ATTEMPTS, hist)
    assert estimate.cost_from_trial_dir(tmp_path / "t").setup_s == 0.0
    write_json(tmp_path / "t" / layout.ATTEMPTS, {"count": 1, "history": []})
    assert estimate.cost_from_trial_dir(tmp_path / "t").setup_s == 0.0
    assert estimate._iso("2026-01-01T00:00:01+00:00") - estimate._iso("2026-01-01T00:00:00+00:00") == 1.0
    assert estimate._iso(None) is None and estimate._iso("x") is None
    assert estimate._read_jsonl(tmp_path / "absent.jsonl") == []


def test_from_records_picks_each_wanted_models_first_readable_trial(tmp_path):
    sweep = _sweep(tmp_path / "spec")
    ifa, fpn = sweep.trials[0].config, sweep.trials[2].config
    root = tmp_path / "out"
    assert estimate.from_records(root, sweep.trials) == {}  # no trials folder
    rows = [{"kind": "train", "iter": 10, "time_s": 5.0}, {"kind": "train", "iter": 20, "time_s": 9.0}]
    _record(root / "trials" / "a-unreadable", ifa, rows)
    (root / "trials" / "a-unreadable" / "config.yaml").write_text("model: [")
    _record(root / "trials" / "b-too-short", ifa, rows[:1])
    _record(root / "trials" / "c-ifa", ifa, rows)
    _record(root / "trials" / "d-ifa-later", ifa, [rows[0], {"kind": "train", "iter": 20, "time_s": 25.0}])
    _record(root / "trials" / "e-fpn", fpn, rows)
    (root / "trials" / "f-not-a-trial").mkdir()
    found = estimate.from_records(root, sweep.trials)
    assert set(found) == {estimate.cost_key(ifa), estimate.cost_key(fpn)}
    assert found[estimate.cost_key(ifa)].s_per_iter == pytest.approx(0.4)  # c, the first readable one
    assert found[estimate.cost_key(ifa)].source == "earlier sweep (c-ifa)"
    assert found[estimate.cost_key(fpn)].source == "earlier sweep (e-fpn)"
    assert set(estimate.from_records(root, sweep.trials[:2])) == {estimate.cost_key(ifa)}  # only the wanted models


def test_cost_key_ignores_the_name_and_an_eval_term_needs_both_its_numbers(tmp_path):
    sweep = _sweep(tmp_path)
    cfg = sweep.trials[0].config
    assert estimate.cost_key(cfg.model_copy(update={"name": "another-name"})) == estimate.cost_key(cfg)
    assert len(estimate.cost_key(cfg)) == 12
    res, over = sweep.trials[0].resources, estimate.Overheads(0.0)
    no_eval = estimate.trial_wall_s(cfg, res, estimate.ModelCost(s_per_iter=1.0), over)
    assert estimate.trial_wall_s(cfg, res, estimate.ModelCost(s_per_iter=1.0, val_images=3), over) == no_eval
    assert estimate.trial_wall_s(cfg, res, estimate.ModelCost(s_per_iter=1.0, eval_s_per_image=0.5), over) == no_eval


def test_cost_table_columns_aligned_as_numbers_or_text():
    """The wall and device-hours columns right-aligned as numbers, the rest left-aligned text ('-': no estimate)."""
    trials = [estimate.TrialCost("a-ifa-seed0", "h0", "2 CPU 1 GPU", "new", 61.2, 12.345, "GPU-h", "calibrated"),
              estimate.TrialCost("b-fpn", "h1", "2 CPU", "done", 0.0, 0.0, "GPU-h", "done (not rerun)"),
              estimate.TrialCost("c", "h2", "1 CPU", "new", None, None, "GPU-h", "no estimate")]
    assert estimate.cost_table({"trials": trials, "total": {"complete": False, "concurrency": 2}}) == (
        "trial_id     resources     wall  device-hours  estimate from\n"
        "a-ifa-seed0  2 CPU 1 GPU  1m02s  12.345 GPU-h  calibrated\n"
        "b-fpn        2 CPU        0m00s   0.000 GPU-h  done (not rerun)\n"
        "c            1 CPU            -             -  no estimate\n"
        "sweep: no estimate for every trial (use --calibrate N); concurrency 2")


def test_a_model_measured_before_is_not_measured_again(tmp_path):
    from bench.sweep.folder import records
    from bench.sweep.tasks import measurement

    sweep = _sweep(tmp_path, heads=("ifa",))
    out, t = tmp_path / "out", sweep.trials[0]
    costs = {estimate.cost_key(t.config): COST}
    assert estimate.estimate(sweep, out, costs, 1)["total"]["measured_models"] == 1
    key = measurement.measure_key({"cfg": t.config.model_dump(mode="json"), "resources": t.resources.model_dump()})
    records.write_measurement(out, key, {"measure_key": key})
    total = estimate.estimate(sweep, out, costs, 1)["total"]
    assert total["measured_models"] == 0 and total["measure_s"] == 0.0 and total["measure_device_hours"] == 0.0
