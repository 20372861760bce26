"""Tiny real sweeps: synthetic 32x64 data, an eighth-width ResNet-18, a few iterations, a tiny measurement."""
import copy
import json
from pathlib import Path

import pandas as pd
import pytest
import yaml

TINY_HEADS = {
    "ifa": {"name": "ifa", "channels": 16, "mlp": [16, 16], "pe_dim": 8},
    "fpn": {"name": "fpn", "channels": 16, "scale_channels": 8},
    "ppm": {"name": "ppm", "channels": 16, "pool_scales": [1, 2]},
    "ocr": {"name": "ocr", "channels": 16, "key_channels": 8, "region_channels": 8},
}


@pytest.fixture(scope="session")
def data_root(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("sweepdata") / "synthetic"


def tiny_experiment(data_root: Path, iterations: int = 4, checkpoint_every: int = 2, measure: bool = True) -> dict:
    return {
        "name": "tiny",
        "data": {
            "dataset": "synthetic", "root": str(data_root), "generate": True, "synthetic_size": [32, 64],
            "synthetic_train": 6, "synthetic_val": 3, "crop_size": [32, 32], "num_workers": 0,
        },
        "model": {
            "num_classes": 10,
            "backbone": {"name": "resnet18", "width": 0.125},
            "head": dict(TINY_HEADS["ifa"]),
            "aux_head": {"channels": 8},
        },
        "train": {"iterations": iterations, "batch_size": 2, "checkpoint_every": checkpoint_every, "log_every": 1,
                  "threads": 1},
        "eval": {"batch_size": 1},
        "measure": {"enabled": measure, "input_size": [32, 64], "warmup": 0, "runs": 2, "processes": 0},
    }


def write_spec(path: Path, experiment: dict, sweep: dict) -> Path:
    doc = copy.deepcopy(experiment)
    doc["sweep"] = sweep
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


# Hash columns are text: a hash such as "1540982641e3" (seen in CI) would otherwise be read as the number 1.54e12,
# as reports/load.py knows (it reads every column as text).
ID_DTYPES = {"config_hash": str, "measure_key": str, "trial_id": str}


def read_results(out: Path) -> pd.DataFrame:
    csv = pd.read_csv(out / "results.csv", keep_default_na=False, na_values=[""], dtype=ID_DTYPES)
    parquet = pd.read_parquet(out / "results.parquet")
    assert list(csv.columns) == list(parquet.columns)
    assert list(csv["config_hash"]) == list(parquet["config_hash"])
    return csv


def attempts(out: Path, config_hash: str) -> dict:
    return json.loads((out / "trials" / config_hash / "attempts.json").read_text())


def train_iters(out: Path, config_hash: str) -> list[int]:
    lines = (out / "trials" / config_hash / "metrics.jsonl").read_text().splitlines()
    return [r["iter"] for r in map(json.loads, lines) if r.get("kind") == "train"]


@pytest.fixture
def ray_down():
    """Make sure no Ray runtime outlives the test, whatever happened (nor one left by an earlier test)."""
    import ray

    if ray.is_initialized():
        ray.shutdown()
    yield
    if ray.is_initialized():
        ray.shutdown()
