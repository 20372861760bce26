"""The sweep's measurement phase: one measurement per model, taken alone on a reserved node, never beside training.

Real Ray, real models, real measurement. The end-to-end test is the acceptance scenario of issue 9 at CI size."""
import copy
import json
from datetime import datetime
from pathlib import Path

import pandas as pd
import pytest

from bench.errors import UserError
from bench.measure.conditions import conditions_text
from bench.sweep.folder import layout
from bench.sweep.tasks import measurement
from bench.sweep.driver.runner import run_sweep
from bench.sweep.spec.trials import load_sweep
from bench.sweep.spec.payload import trial_payload
from tests.sweep.conftest import ID_DTYPES, read_results, tiny_experiment, write_spec


def _two_models(tmp_path: Path, data_root: Path, seeds=(0, 1, 2), processes=0, span_s=0, **sweep_kw):
    experiment = tiny_experiment(data_root, iterations=2, checkpoint_every=2)
    experiment["model"]["backbone"] = {"name": "resnet18", "width": 0.5}
    experiment["measure"] = {"input_size": [96, 192], "warmup": 1, "runs": 5, "processes": processes,
                             "span_s": span_s}
    if processes:
        experiment["measure"]["max_processes"] = processes + 1
    spec = write_spec(tmp_path / "s.yaml", experiment, {
        "name": "two-models", "axes": {"backbone": ["resnet18", "resnet50"], "seed": list(seeds)},
        "resources": {"cpus": 1}, "max_failures": 0, **sweep_kw,
    })
    return load_sweep(spec)


def _ts(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


def test_measure_key_ignores_seed_and_training_but_not_model_or_measure_settings(tmp_path, data_root):
    sweep = _two_models(tmp_path, data_root)
    payloads = [trial_payload(t, tmp_path / "out", sweep.name) for t in sweep.trials]
    keys = {(p["cfg"]["model"]["backbone"]["name"], p["cfg"]["seed"]): measurement.measure_key(p) for p in payloads}
    assert keys[("resnet18", 0)] == keys[("resnet18", 1)] == keys[("resnet18", 2)]
    assert keys[("resnet50", 0)] == keys[("resnet50", 2)] != keys[("resnet18", 0)]
    p = payloads[0]
    changed = copy.deepcopy(p)
    changed["cfg"]["train"]["lr"] = 0.5
    changed["cfg"]["train"]["iterations"] = 99
    assert measurement.measure_key(changed) == measurement.measure_key(p)
    for path, value in ((("measure", "input_size"), [64, 64]), (("model", "num_classes"), 3),
                        (("train", "threads"), 2)):
        changed = copy.deepcopy(p)
        changed["cfg"][path[0]][path[1]] = value
        assert measurement.measure_key(changed) != measurement.measure_key(p), path


@pytest.mark.ray
@pytest.mark.timeout(300)
def test_measurement_waits_for_the_whole_node_and_holds_it(tmp_path, data_root, ray_down, capsys):
    import ray

    sweep = _two_models(tmp_path, data_root, seeds=(0, 1))
    out = tmp_path / "out"
    payloads = [trial_payload(t, out, sweep.name) for t in sweep.trials]
    ray.init(num_cpus=2, include_dashboard=False, _node_ip_address="127.0.0.1", log_to_driver=False,
             object_store_memory=128 * 1024**2)

    @ray.remote(num_cpus=1)
    class Trial:  # stands for a trial training on one of the node's two CPUs
        def ping(self):
            return 1

    trial = Trial.remote()
    ray.get(trial.ping.remote(), timeout=60)
    with pytest.raises(UserError, match=r"could not reserve all 2 CPUs of node .* within 2 s"):
        measurement.run_phase(payloads, out, sweep.name, reserve_timeout_s=2)
    assert not list((out / layout.MEASUREMENTS).glob("*.json")) if (out / layout.MEASUREMENTS).exists() else True
    ray.kill(trial)

    # While the reservation is held, a 1-CPU task (a trial) cannot start; it starts once the reservation is released.
    node = measurement.pick_node(1, 0)
    with measurement.reserved_node(node, "cpu", timeout_s=60):
        waiting = ray.remote(num_cpus=1)(lambda: "ran").remote()
        ready, _ = ray.wait([waiting], timeout=3)
        assert not ready
    assert ray.get(waiting, timeout=60) == "ran"

    measured = measurement.run_phase(payloads, out, sweep.name, reserve_timeout_s=60)
    assert len(measured) == 2 and len(list((out / layout.MEASUREMENTS).glob("*.json"))) == 2
    stamps = {k: layout.measurement_path(out, k).stat().st_mtime_ns for k in measured}
    for key, rec in measured.items():
        assert rec["measure_key"] == key and rec["measure_threads"] == 1 and rec["measure_device"] == "cpu"
        assert rec["latency_ms_median"] > 0 and rec["gmacs"] > 0 and rec["measure_node"]
    again = measurement.run_phase(payloads, out, sweep.name)
    assert again == measured
    assert {k: layout.measurement_path(out, k).stat().st_mtime_ns for k in measured} == stamps
    assert "2 model measurements already stored (kept)" in capsys.readouterr().out


@pytest.mark.ray
@pytest.mark.slow
@pytest.mark.timeout(900)
def test_two_models_three_seeds_one_measurement_each_never_beside_training(tmp_path, data_root, ray_down):
    """Issue 9's acceptance: resnet18 and resnet50 (half width) x 3 seeds, 2 trials at a time on 2 cores."""
    sweep = _two_models(tmp_path, data_root, processes=2, span_s=4, max_concurrent=2)
    out = tmp_path / "out"
    run_sweep(sweep, out)
    df = read_results(out)
    assert len(df) == 6 and set(df["status"]) == {"completed"}, df[["trial_id", "status", "error"]]

    # exactly one measurement per model, shared by its seeds
    files = sorted((out / layout.MEASUREMENTS).glob("*.json"))
    assert len(files) == 2
    assert df.groupby("backbone")["measure_key"].nunique().to_dict() == {"resnet18": 1, "resnet50": 1}
    assert df["measure_key"].nunique() == 2 and set(df["measure_key"]) == {f.stem for f in files}
    for _, grp in df.groupby("backbone"):
        for col in ("latency_ms_median", "latency_ms_min", "gmacs", "params_m", "measure_started_at"):
            assert grp[col].nunique() == 1, col
    # timed in 2 fresh processes (one more, its max_processes, while imprecise) over at least 4 s, in turns of 5 runs
    assert df["latency_processes"].between(2, 3).all() and (df["latency_runs"] % 5 == 0).all()
    assert (df["latency_runs"] >= 5 * df["latency_processes"]).all() and (df["latency_span_s"] >= 4).all()
    assert df["latency_se_pct"].notna().all()

    # the cheaper model measures faster: by its fastest run always (load only ever adds time), and by the median
    # whenever neither measurement was flagged noisy (on a loaded CI machine the flag is what tells the two apart)
    per_model = df.groupby("backbone").first()
    assert per_model.loc["resnet18", "gmacs"] < per_model.loc["resnet50", "gmacs"]
    assert per_model.loc["resnet18", "latency_ms_min"] < per_model.loc["resnet50", "latency_ms_min"]
    if not per_model["latency_noisy"].any():
        assert per_model.loc["resnet18", "latency_ms_median"] < per_model.loc["resnet50", "latency_ms_median"]

    # where, when and how: stated in every row
    for _, row in df.iterrows():
        assert row["measure_device"] == "cpu" and row["measure_threads"] == 1 and row["measure_batch"] == 1
        assert row["measure_node"] and row["measure_device_name"] and row["latency_runs"] >= 5 * row["latency_processes"]
        assert conditions_text(row.to_dict()) == "96x192, batch 1, fp32, 1 CPU thread"

    # no measurement ran while a trial was training: compare the recorded intervals
    measured = [(_ts(json.loads(f.read_text())["measure_started_at"]),
                 _ts(json.loads(f.read_text())["measure_finished_at"])) for f in files]
    trained = []
    for h in df["config_hash"]:
        for attempt in json.loads((out / "trials" / h / "attempts.json").read_text())["history"]:
            trained.append((_ts(attempt["train_started_at"]), _ts(attempt["train_finished_at"])))
    assert len(trained) == 6
    for m0, m1 in measured:
        assert m0 < m1
        for t0, t1 in trained:
            assert m1 <= t0 or t1 <= m0, "a measurement overlapped a trial's training"
    results = pd.read_csv(out / "results.csv", dtype=ID_DTYPES)
    assert {"measure_key", "latency_noisy", "loadavg_before", "loadavg_after"} <= set(results.columns)


@pytest.mark.ray
@pytest.mark.slow
@pytest.mark.timeout(300)
def test_sweep_with_address_measures_on_a_worker_node_never_the_cpu_less_head(tmp_path, data_root, ray_down):
    """`--address`: a cluster whose head has no CPUs (docs/sweeps.md) and a 2-CPU worker; one trial."""
    from ray.cluster_utils import Cluster

    experiment = tiny_experiment(data_root, iterations=2, checkpoint_every=2)
    spec = write_spec(tmp_path / "s.yaml", experiment, {"name": "cluster", "axes": {"seed": [0]},
                                                         "resources": {"cpus": 1}, "max_failures": 0})
    sweep = load_sweep(spec)
    out = tmp_path / "out"
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0})
    try:
        worker = cluster.add_node(num_cpus=2)
        cluster.wait_for_nodes()
        run_sweep(sweep, out, address=cluster.address)
    finally:
        cluster.shutdown()
    df = read_results(out)
    assert list(df["status"]) == ["completed"], df[["status", "error"]]
    rec = json.loads(next((out / layout.MEASUREMENTS).glob("*.json")).read_text())
    assert rec["measure_node_id"] == worker.node_id and rec["measure_key"] == df.loc[0, "measure_key"]
    assert df.loc[0, "latency_ms_median"] == pytest.approx(rec["latency_ms_median"])
