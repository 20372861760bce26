"""One results schema: bench/results/schema.py types every column once; the writer stores those types and the
reports read them back as those types."""
import numpy as np
import pandas as pd

from bench.config.experiment import DataConfig, ExperimentConfig
from bench.config.model import ModelConfig
from bench.measure.model import MEASUREMENT_KEYS
from bench.results.row import completed_row, write_tables
from bench.results.schema import (BOOL, COLUMN_TYPES, FLOAT, INT, MEASUREMENTS, RESULT_COLUMNS, SWEEP_MEASUREMENTS,
                                  TEXT)
from bench.sweep.spec.trials import Resources, TrialSpec
from reports.load import read_results

SAMPLE = {FLOAT: 1.5, INT: 2, BOOL: True, TEXT: "x"}


def _row():
    cfg = ExperimentConfig(data=DataConfig(dataset="synthetic", root="data", crop_size=(64, 64)),
                           model=ModelConfig(num_classes=3))
    trial = TrialSpec(trial_id="t0", config_hash=cfg.config_hash(), axis_values={}, config=cfg,
                      resources=Resources(), extra_axes={})
    measurement = {k: SAMPLE[COLUMN_TYPES[k]] for k in MEASUREMENTS}
    final = {"miou": 40.0, "train_time_s": 3.0}
    return completed_row(trial, "types", final, measurement, {"threads": 2}, attempts=1)


def test_every_column_is_typed_and_the_measured_keys_are_the_schemas():
    assert set(COLUMN_TYPES) == set(RESULT_COLUMNS)
    assert sorted(MEASUREMENT_KEYS + SWEEP_MEASUREMENTS) == sorted(MEASUREMENTS)
    assert "unsupported_ops" in MEASUREMENTS and COLUMN_TYPES["unsupported_ops"] == TEXT


def test_writer_and_reader_use_the_schema_types(tmp_path):
    written = write_tables(tmp_path, [_row()], [])
    stored = pd.read_parquet(tmp_path / "results.parquet")
    for frame in (written, stored):
        for col, kind in COLUMN_TYPES.items():
            if kind == TEXT:
                assert all(isinstance(v, str) for v in frame[col]), col
            else:
                assert str(frame[col].dtype) == kind, (col, kind)
    for source in ("results.csv", "results.parquet"):
        trials = read_results(tmp_path / source).trials
        for col, kind in COLUMN_TYPES.items():
            value = trials[col].iloc[0]
            if kind in (FLOAT, INT):
                assert trials[col].dtype == np.float64, (source, col)
            elif kind == BOOL:
                assert trials[col].dtype == bool, (source, col)
            else:
                assert isinstance(value, str), (source, col)
        assert trials["latency_noisy"].iloc[0] and trials["measure_threads"].iloc[0] == 2.0
        assert trials["unsupported_ops"].iloc[0] == "x" and trials["gmacs"].iloc[0] == 1.5


def test_compile_column_reads_every_setting_and_the_boolean_column_of_earlier_results(tmp_path):
    import pytest

    from bench.errors import UserError

    write_tables(tmp_path, [_row()], [])
    assert read_results(tmp_path / "results.csv").trials["compile"].iloc[0] == "false"
    raw = pd.read_csv(tmp_path / "results.csv", keep_default_na=False)
    for written, read in (("True", "true"), ("False", "false"), ("eval", "eval"), ("true", "true")):
        raw.assign(compile=written).to_csv(tmp_path / "results.csv", index=False)
        assert read_results(tmp_path / "results.csv").trials["compile"].iloc[0] == read, written
    raw.drop(columns="compile").to_csv(tmp_path / "results.csv", index=False)  # before the column existed
    assert read_results(tmp_path / "results.csv").trials["compile"].iloc[0] == "false"
    raw.assign(compile="head").to_csv(tmp_path / "results.csv", index=False)
    with pytest.raises(UserError, match="column 'compile' has unknown value 'head'"):
        read_results(tmp_path / "results.csv")
