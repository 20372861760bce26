"""The sweep's own results writer (bench.results.row) produces tables the reports read as intended."""
import pandas as pd
import pytest

from bench.config.experiment import DataConfig, EvalConfig, ExperimentConfig
from bench.config.model import FPNHeadConfig, IFAHeadConfig, ModelConfig
from bench.results.row import base_row, completed_row, per_class_rows, write_tables
from bench.sweep.spec.trials import Resources, TrialSpec
from reports.aggregate import model_table
from reports.regression.check import run_check
from reports.load import CHECK_REQUIRED, read_results
from reports.regression.published import load_published


def _spec(head, seed, dataset="synthetic", **eval_kw):
    cfg = ExperimentConfig(seed=seed, data=DataConfig(dataset=dataset, root="data", crop_size=(64, 64)),
                           model=ModelConfig(num_classes=3, head=head), eval=EvalConfig(**eval_kw))
    return TrialSpec(trial_id=f"{head.name}-{seed}", config_hash=cfg.config_hash(), axis_values={}, config=cfg,
                     resources=Resources(), extra_axes={"train.lr": 0.01})


def test_reports_read_the_sweep_writer(tmp_path):
    measurement = dict(gmacs=3.5, params_m=1.25, latency_ms_median=12.0, peak_mem_mb=float("nan"), device="cpu",
                       torch_version="2.13.0", threads=2, measure_input="64x64")
    rows, per_class = [], []
    for seed, miou in ((0, 40.0), (1, 44.0)):
        final = dict(miou=miou, macc=50.0, aacc=80.0, boundary_iou=20.0, train_time_s=3.0)
        row = completed_row(_spec(IFAHeadConfig(), seed), "compat", final, measurement, {}, attempts=1)
        rows.append(row)
        per_class += per_class_rows(row, {"a": miou - 1, "b": miou, "c": miou + 1})
    rows.append(base_row(_spec(FPNHeadConfig(), 0), "compat", "failed", error="RuntimeError: x", attempts=2))
    rows.append(base_row(_spec(FPNHeadConfig(), 1), "compat", "pending"))
    write_tables(tmp_path, rows, per_class)

    for source in (tmp_path / "results.csv", tmp_path / "results.parquet"):
        results = read_results(source, CHECK_REQUIRED)
        models = model_table(results).set_index("label")
        assert sorted(models.index) == ["fpn resnet50", "ifa resnet50"], source
        ifa = models.loc["ifa resnet50"]
        assert (ifa["n"], ifa["miou_mean"], ifa["miou_std"]) == (2, 42.0, pytest.approx(8 ** 0.5))
        assert ifa["gmacs"] == 3.5 and ifa["device"] == "cpu" and pd.isna(ifa["peak_mem_mb"])
        fpn = models.loc["fpn resnet50"]
        assert fpn["status"] == "0/2 completed; 1 failed; 1 pending"
        assert "cfg.train.lr" in results.config_columns()
        assert results.per_class is not None and len(results.per_class) == 6
        check = run_check(results, load_published())
        assert check.unmatched["reason"].str.contains("on synthetic_val row", regex=False).all()
    from reports.build import build_report

    report = build_report(tmp_path)
    assert report.summaries["synthetic"].set_index("label").loc["ifa resnet50", "miou_mean"] == 42.0
    assert report.per_class["synthetic"]["ifa resnet50"].tolist() == [41.0, 42.0, 43.0]
