"""`sweep --remeasure noisy|all`: which stored models are measured again, and the completed rows that take the new
record (nothing deleted). The bound (measure.max_phase_s) is not part of the measurement's key or the trial's hash."""
import copy
import json
import subprocess
import sys
from pathlib import Path

import pytest

from bench.errors import UserError
from bench.sweep.folder import layout, records
from bench.sweep.spec.payload import trial_payload
from bench.sweep.spec.trials import load_sweep
from bench.sweep.tasks import measurement
from tests.sweep.conftest import tiny_experiment, write_spec

ROOT = Path(__file__).resolve().parents[3]


def _payloads(tmp_path, data_root):
    spec = write_spec(tmp_path / "s.yaml", tiny_experiment(data_root), {
        "name": "re", "axes": {"head": ["ifa", "fpn"], "seed": [0, 1]}, "resources": {"cpus": 1}})
    sweep = load_sweep(spec)
    return [trial_payload(t, tmp_path / "out", sweep.name) for t in sweep.trials]


def _record(key, noisy, median):
    return {"measure_key": key, "latency_noisy": noisy, "latency_ms_median": median, "gmacs": 1.0, "threads": 1}


def test_remeasure_selects_missing_noisy_or_all(tmp_path, data_root):
    payloads = _payloads(tmp_path, data_root)
    out = tmp_path / "out"
    keys = list(dict.fromkeys(measurement.measure_key(p) for p in payloads))
    assert len(keys) == 2  # two models, two seeds each
    first, todo, kept = measurement.to_measure(payloads, out)
    assert [k for k, _ in todo] == keys and kept == {}
    records.write_measurement(out, keys[0], _record(keys[0], True, 10.0))
    records.write_measurement(out, keys[1], _record(keys[1], False, 20.0))
    assert [k for k, _ in measurement.to_measure(payloads, out)[1]] == []
    assert [k for k, _ in measurement.to_measure(payloads, out, "noisy")[1]] == [keys[0]]
    assert set(measurement.to_measure(payloads, out, "noisy")[2]) == {keys[1]}
    assert [k for k, _ in measurement.to_measure(payloads, out, "all")[1]] == keys
    with pytest.raises(UserError, match="--remeasure: expected one of noisy, all"):
        measurement.to_measure(payloads, out, "some")


def test_rewrite_done_rows_takes_the_new_record_and_keeps_the_rest(tmp_path, data_root):
    payloads = _payloads(tmp_path, data_root)
    done_p, pending_p = payloads[0], payloads[2]
    trial_dir = Path(done_p["trial_dir"])
    trial_dir.mkdir(parents=True)
    row = {"status": "completed", "miou": 42.0, "latency_ms_median": 10.0, "latency_noisy": True, "threads": 1}
    (trial_dir / layout.RESULT).write_text(json.dumps({"row": row, "per_class_iou": []}))
    key = measurement.measure_key(done_p)
    new = _record(key, False, 12.5)
    n = measurement.rewrite_done_rows(payloads, tmp_path / "out", {key: new, measurement.measure_key(pending_p): new})
    assert n == 1  # the pending trial has no row to rewrite; it will take the record when it trains
    again = records.read_done(trial_dir)["row"]
    assert again["latency_ms_median"] == 12.5 and again["latency_noisy"] is False and again["miou"] == 42.0
    assert json.loads((trial_dir / layout.MEASURE).read_text()) == new
    assert not Path(pending_p["trial_dir"], layout.RESULT).exists()


def test_the_bound_is_in_neither_the_measure_key_nor_the_config_hash(tmp_path, data_root):
    p = _payloads(tmp_path, data_root)[0]
    bounded = copy.deepcopy(p)
    bounded["cfg"]["measure"]["max_phase_s"] = 30.0
    assert measurement.measure_key(bounded) == measurement.measure_key(p)
    from bench.config import ExperimentConfig

    cfg = ExperimentConfig.model_validate(p["cfg"])
    assert cfg.measure.max_phase_s is None and cfg.config_hash() == p["config_hash"]


def test_remeasure_refuses_dry_run():
    proc = subprocess.run([sys.executable, "-m", "bench.cli", "sweep", "experiments/synthetic.yaml", "--dry-run",
                           "--remeasure", "noisy"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and proc.stderr.strip() == (
        "ifa-bench sweep: error: --remeasure: not with --dry-run, --checkpoints or --storage")
