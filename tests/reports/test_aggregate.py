"""Per-model aggregation over seeds, checked against numbers computed here from the fixture's specs."""
import statistics

import pandas as pd
import pytest

from reports.aggregate import model_table
from reports.load import read_results
from tests.reports.fixture import default_trials, write_sweep


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = write_sweep(tmp_path_factory.mktemp("agg"), default_trials())
    return model_table(read_results(root)).set_index("label")


def _expected(head, formulation=None):
    specs = [t for t in default_trials() if t["head"] == head and t["status"] == "completed"
             and (formulation is None or t["formulation"] == formulation)]
    return [t["miou"] for t in specs], [t["boundary_iou"] for t in specs]


@pytest.mark.parametrize("label,head,formulation", [
    ("ifa resnet18 fused", "ifa", "fused"), ("ifa resnet18 reference", "ifa", "reference"),
    ("fpn resnet18", "fpn", None), ("ppm resnet18", "ppm", None)])
def test_mean_std_n_over_completed_seeds(models, label, head, formulation):
    miou, biou = _expected(head, formulation)
    row = models.loc[label]
    assert row["n"] == len(miou)
    assert row["miou_mean"] == pytest.approx(statistics.mean(miou))
    assert row["miou_std"] == pytest.approx(statistics.stdev(miou))  # sample std (n - 1)
    assert row["boundary_iou_mean"] == pytest.approx(statistics.mean(biou))
    assert row["boundary_iou_std"] == pytest.approx(statistics.stdev(biou))


def test_known_values_and_costs(models):
    assert models.loc["ifa resnet18 fused", "miou_mean"] == pytest.approx(61.0)
    assert models.loc["ifa resnet18 fused", "miou_std"] == pytest.approx(1.0)
    assert models.loc["ifa resnet18 reference", "gmacs"] == 14.0
    assert models.loc["ppm resnet18", "latency_ms_median"] == 40.0
    assert models.loc["fpn resnet18", "device"] == "cpu"


def test_partial_sweep_status(models):
    fpn, ppm, ocr = models.loc["fpn resnet18"], models.loc["ppm resnet18"], models.loc["ocr resnet18"]
    assert (fpn["n"], fpn["n_failed"], fpn["status"]) == (2, 1, "2/3 completed; 1 failed")
    assert (ppm["n"], ppm["missing_seeds"], ppm["status"]) == (2, "2", "2/3 completed; missing seed 2")
    assert ocr["n"] == 0 and pd.isna(ocr["miou_mean"]) and pd.isna(ocr["gmacs"])
    assert ocr["status"] == "0/3 completed; 1 failed; 1 running; 1 pending"
    assert models.loc["ifa resnet18 fused", "status"] == "completed"


def test_single_seed_has_no_std(tmp_path):
    from tests.reports.fixture import trial

    root = write_sweep(tmp_path, [trial(seed=0, miou=50.0), trial(head="fpn", seed=0, miou=40.0)])
    table = model_table(read_results(root)).set_index("label")
    assert table.loc["ifa resnet18", "n"] == 1 and pd.isna(table.loc["ifa resnet18", "miou_std"])


def test_parquet_reads_like_csv(tmp_path):
    root = write_sweep(tmp_path, default_trials())
    csv_models = model_table(read_results(root / "results.csv"))
    raw = pd.read_csv(root / "results.csv")  # parquet with the sweep's nullable dtypes
    raw["error"] = raw["error"].fillna("")
    for col in ("seed", "output_stride", "iterations", "batch_size", "num_classes", "attempts", "threads"):
        raw[col] = raw[col].astype("Int64")
    raw["eval_flip"] = raw["eval_flip"].astype("boolean").where(raw["status"] == "completed", pd.NA)
    raw.to_parquet(tmp_path / "results.parquet")
    (root / "results.csv").unlink()
    pq_models = model_table(read_results(root))
    cols = ["label", "n", "miou_mean", "miou_std", "gmacs", "status"]
    pd.testing.assert_frame_equal(csv_models[cols], pq_models[cols])


def test_extra_sweep_axes_define_models(tmp_path):
    from tests.reports.fixture import trial

    rows = [trial(seed=s, miou=50.0 + s) for s in (0, 1)] + [trial(seed=s, miou=60.0 + s) for s in (0, 1)]
    root = write_sweep(tmp_path, rows)
    df = pd.read_csv(root / "results.csv")
    df["cfg.train.lr"] = [0.01, 0.01, 0.02, 0.02]
    df.to_csv(root / "results.csv", index=False)
    table = model_table(read_results(root)).set_index("label")
    assert sorted(table.index) == ["ifa resnet18 train.lr=0.01", "ifa resnet18 train.lr=0.02"]
    assert table.loc["ifa resnet18 train.lr=0.02", "miou_mean"] == pytest.approx(60.5)
