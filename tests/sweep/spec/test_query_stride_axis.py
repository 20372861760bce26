"""eval.ifa_query_stride as a sweep axis (no Ray): IFA trials per stride, one for other heads, the results column,
and the measurement phase's key; and `ifa-bench measure --set eval.ifa_query_stride=...`."""
import json

import pytest
import yaml

from bench.cli import main
from bench.sweep.tasks.measurement import measure_key
from bench.results.row import base_row
from bench.sweep.spec.trials import load_sweep

BASE = {
    "name": "tiny",
    "data": {"dataset": "synthetic", "root": "/tmp/ifa-bench-spec-data", "crop_size": [32, 32]},
    "model": {"num_classes": 3, "backbone": {"name": "resnet18", "width": 0.125},
              "head": {"name": "ifa", "channels": 8, "mlp": [16, 8], "pe_dim": 8}},
    "train": {"iterations": 2},
    "measure": {"input_size": [32, 64], "warmup": 0, "runs": 1, "latency": False},
}


def write(tmp_path, sweep=None):
    doc = {**BASE, **({"sweep": sweep} if sweep else {})}
    path = tmp_path / "exp.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def test_stride_axis_applies_to_ifa_trials_only(tmp_path):
    sweep = load_sweep(write(tmp_path, {"axes": {"head": ["ifa", "fpn"], "eval.ifa_query_stride": [4, 2, 1]}}))
    got = sorted((t.config.model.head.name, str(t.config.eval.ifa_query_stride), t.config.eval.ifa_query)
                 for t in sweep.trials)
    assert got == [("fpn", "None", "upsample"), ("ifa", "1", "label"), ("ifa", "2", "upsample"),
                   ("ifa", "4", "upsample")]
    assert sweep.collapsed == 2 and len({t.config_hash for t in sweep.trials}) == 4
    rows = {(r["head"], r["ifa_query_stride"]) for r in (base_row(t, "s", "pending") for t in sweep.trials)}
    assert rows == {("fpn", ""), ("ifa", "4"), ("ifa", "2"), ("ifa", "1")}
    assert not any(k.startswith("cfg.") for t in sweep.trials for k in base_row(t, "s", "pending"))


def test_measurement_key_follows_the_query_mode():
    cfg = {**json.loads(json.dumps(BASE)), "eval": {}}
    payload = {"cfg": cfg, "resources": {"cpus": 1, "gpus": 0}}

    def key(**ev):
        return measure_key({**payload, "cfg": {**cfg, "eval": ev}})

    assert key() == key(ifa_query="upsample", ifa_query_stride=None)  # the released protocol: the key as before
    assert len({key(), key(ifa_query="upsample", ifa_query_stride=2), key(ifa_query="label")}) == 3
    assert key(ifa_query="label") == key(ifa_query="label", ifa_query_stride=1)


@pytest.mark.slow  # two fvcore traces (the engine test checks 4 > 2 > 1 already)
def test_measure_counts_the_query_stride(tmp_path, capsys):
    path = write(tmp_path)
    gmacs = {}
    for stride in (4, 1):
        code = main(["measure", "--config", str(path), "--set", f"eval.ifa_query_stride={stride}", "--no-latency",
                     "--no-memory", "--format", "json"])
        assert code == 0
        (row,) = json.loads(capsys.readouterr().out)
        assert row["ifa_query_stride"] == stride and row["measure_input"] == "32x64"
        gmacs[stride] = row["gmacs_head"]
    assert gmacs[1] > gmacs[4] > 0


def test_measure_refuses_the_stride_on_another_head(tmp_path, capsys):
    code = main(["measure", "--config", str(write(tmp_path)), "--set", "model.head.name=fpn",
                 "--set", "eval.ifa_query_stride=2", "--no-latency"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "eval.ifa_query_stride: 2: only the IFA head" in err
