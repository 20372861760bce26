"""A real local sweep (embedded Ray, real engine, real models, real measurement), an idempotent rerun, a failure."""
import json
import os

import pandas as pd
import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from bench.results.schema import PER_CLASS_COLUMNS, RESULT_COLUMNS
from bench.sweep.driver.runner import run_sweep
from bench.sweep.spec.trials import load_sweep
from tests.sweep.conftest import ID_DTYPES, TINY_HEADS, attempts, read_results, tiny_experiment, write_spec

pytestmark = [pytest.mark.ray, pytest.mark.slow]

HEADS = ["ifa", "fpn", "ppm", "ocr"]


@pytest.mark.timeout(420)  # measurement phase + 5 trials; the CI machine has 2 cores
def test_local_sweep_writes_complete_table_and_reruns_only_new_trials(tmp_path, data_root, ray_down):
    import ray

    experiment = tiny_experiment(data_root)
    spec = write_spec(tmp_path / "s.yaml", experiment, {
        "name": "local", "axes": {"head": [TINY_HEADS[h] for h in HEADS], "model.head.formulation": ["fused"]},
        "resources": {"cpus": 1}, "max_failures": 0,
    })
    sweep = load_sweep(spec)
    out = tmp_path / "out"
    loopback = os.environ.get("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER")
    run_sweep(sweep, out)
    assert ray.is_initialized() is False  # the embedded Ray stopped with the command
    # ... and its loopback setting with it: left set, it refuses multi-node clusters to this process and its children
    assert os.environ.get("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER") == loopback

    df = read_results(out)
    assert list(df.columns) == RESULT_COLUMNS + ["cfg.model.head.formulation"]
    assert list(df["config_hash"]) == [t.config_hash for t in sweep.trials]
    assert list(df["head"]) == HEADS
    assert set(df["status"]) == {"completed"}, df[["trial_id", "status", "error"]]
    assert (df["error"].isna() | (df["error"] == "")).all()
    assert list(df["cfg.model.head.formulation"].fillna("")) == ["fused", "", "", ""]
    assert list(df["formulation"].fillna("")) == ["fused", "", "", ""]
    assert (df["attempts"] == 1).all() and (df["sweep_name"] == "local").all()
    assert df["miou"].between(0, 100).all() and df["aacc"].between(0, 100).all()
    assert (df["gmacs"] > 0).all() and (df["params_m"] > 0).all() and (df["latency_ms_median"] > 0).all()
    assert (df["gmacs_backbone"] + df["gmacs_head"] <= df["gmacs"] + 1e-9).all()
    assert (df["measure_input"] == "32x64").all() and (df["iterations"] == 4).all()
    assert (df["crop"] == "32x32").all() and (df["device"] == "cpu").all() and (df["ray_version"] == ray.__version__).all()
    # all heads share the backbone: same backbone MACs; the heads differ
    assert df["gmacs_backbone"].nunique() == 1 and df["gmacs_head"].nunique() == 4

    for _, row in df.iterrows():
        tdir = out / row["trial_dir"]
        assert tdir.name == row["config_hash"]
        final = json.loads((tdir / "final.json").read_text())
        assert final["miou"] == pytest.approx(row["miou"])
        evals = [json.loads(x) for x in (tdir / "metrics.jsonl").read_text().splitlines()]
        assert max(r["iter"] for r in evals if r.get("kind") == "train") == 4
        assert (tdir / "config_hash.txt").read_text().strip() == row["config_hash"]
        assert (tdir / "trial.log").read_text().count("attempt 1 on") == 1
        # The project's TensorBoard events, stepped by training iteration (log_every 1, 4 iterations)
        events = EventAccumulator(str(tdir / "tensorboard"))
        events.Reload()
        assert [e.step for e in events.Scalars("train/loss_main")] == [1, 2, 3, 4]
    # ... and none of Tune's (its TBXLoggerCallback steps by report count); its CSV/JSON result files stay.
    tune_trials = [p.parent for p in (out / "tune").rglob("progress.csv")]
    assert len(tune_trials) == 4 and all((p / "result.json").is_file() for p in tune_trials)
    assert list((out / "tune").rglob("events.out.tfevents*")) == []
    assert sorted(p.parent.parent.name for p in (out / "trials").rglob("events.out.tfevents*")) == sorted(
        df["config_hash"])

    pc = pd.read_csv(out / "per_class_iou.csv", dtype=ID_DTYPES)
    assert list(pc.columns) == PER_CLASS_COLUMNS
    assert len(pc) == 4 * 10 and set(pc["class_index"]) == set(range(10))
    for h, grp in pc.groupby("config_hash"):
        final = json.loads((out / "trials" / h / "final.json").read_text())
        assert list(grp["class_name"]) == list(final["per_class_iou"])
        assert grp["iou"].fillna(-1).tolist() == pytest.approx(
            [v if v is not None else -1 for v in final["per_class_iou"].values()], nan_ok=True)

    # Rerun with one extra axis value: only that trial runs; the others keep their records untouched.
    stamps = {h: (out / "trials" / h / "final.json").stat().st_mtime_ns for h in df["config_hash"]}
    wide = dict(TINY_HEADS["fpn"], channels=8)
    write_spec(spec, experiment, {
        "name": "local", "axes": {"head": [TINY_HEADS[h] for h in HEADS] + [wide],
                                  "model.head.formulation": ["fused"]},
        "resources": {"cpus": 1}, "max_failures": 0,
    })
    sweep2 = load_sweep(spec)
    run_sweep(sweep2, out)
    df2 = read_results(out)
    assert len(df2) == 5 and set(df2["status"]) == {"completed"}
    assert list(df2["config_hash"][:4]) == list(df["config_hash"])
    for h in df["config_hash"]:
        assert (out / "trials" / h / "final.json").stat().st_mtime_ns == stamps[h]
        assert attempts(out, h)["count"] == 1
    new = df2.iloc[4]
    assert new["head"] == "fpn" and new["attempts"] == 1 and new["config_hash"] not in stamps
    assert df2.iloc[:4]["miou"].tolist() == pytest.approx(df["miou"].tolist())


@pytest.mark.timeout(180)
def test_failed_trial_is_a_row_with_its_error(tmp_path, data_root, ray_down):
    experiment = tiny_experiment(data_root, measure=False)
    experiment["model"]["num_classes"] = 8  # the synthetic dataset has 10: the engine refuses (a UserError)
    spec = write_spec(tmp_path / "s.yaml", experiment, {"name": "bad", "axes": {"seed": [0]}, "max_failures": 2})
    sweep = load_sweep(spec)
    out = tmp_path / "out"
    run_sweep(sweep, out)
    df = read_results(out)
    assert len(df) == 1
    row = df.iloc[0]
    assert row["status"] == "failed" and row["config_hash"] == sweep.trials[0].config_hash
    assert row["error"].startswith("UserError: model.num_classes: 8") and "10 classes" in row["error"]
    assert row["attempts"] == 1  # bad input is not retried
    assert pd.isna(row["miou"]) and pd.isna(row["gmacs"])
    tdir = out / row["trial_dir"]
    assert json.loads((tdir / "failure.json").read_text())["error"] == row["error"]
    assert not (tdir / "result.json").exists()
