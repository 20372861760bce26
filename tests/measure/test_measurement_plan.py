"""One measurement plan (bench/measure/plan.py): `ifa-bench measure --config X` measures what a sweep of X measures
(the same models, IFA query mode, settings, threads, GMACs and parameters), and the sweep's measurement keys are
the ones they were before the plan existed (stored measurements stay valid)."""
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from bench.config.query_stride import query_mode
from bench.measure.plan import plan
from bench.sweep.spec.payload import trial_payload
from bench.sweep.spec.trials import load_sweep
from bench.sweep.tasks import measurement
from tests.measure.test_measure_command import _run

SYNTHETIC = Path(__file__).resolve().parents[2] / "experiments" / "synthetic.yaml"
IFA_ONLY = ["sweep.axes={}", "model.head.name=ifa"]
SMALL = ["measure.input_size=[64,128]", "measure.latency=false"]


@pytest.mark.parametrize("head, query, stride, mode", [
    ("ifa", "upsample", None, None),  # IFA's own grid, upsampled: the default mode
    ("ifa", "label", None, ("label", None)),
    ("ifa", "label", 1, ("label", None)),  # stride 1 is label resolution, IFA's own query grid
    ("ifa", "upsample", 2, ("upsample", 2)),
    ("fpn", "label", None, None),  # a head that cannot be queried
])
def test_query_mode(head, query, stride, mode):
    assert query_mode(head, query, stride) == mode


@pytest.mark.parametrize("sets, key", [
    ([], "ca141799ee1b"),
    (IFA_ONLY + ["eval.ifa_query_stride=1"], "eee8385b3507"),
    (IFA_ONLY + ["eval.ifa_query=label"], "eee8385b3507"),
    (IFA_ONLY + ["eval.ifa_query_stride=2"], "6a2d6c0d9e24"),
])
def test_sweep_measurement_keys_are_unchanged(tmp_path, sets, key):
    """Keys computed by bench/sweep/tasks/measurement.py before the plan (commit a0b6ab4) for the demo's IFA trial
    (with the demo's measure section as it was then: the defaults; the bound, max_phase_s, is in no key)."""
    then = ["measure.processes=3", "measure.max_processes=null", "measure.span_s=240", "measure.max_phase_s=null"]
    sweep = load_sweep(SYNTHETIC, then + sets)
    ifa = next(t for t in sweep.trials if t.config.model.head.name == "ifa")
    assert measurement.measure_key(trial_payload(ifa, tmp_path, sweep.name)) == key


def _sweep_and_cli(capsys, tmp_path, sets):
    sweep = load_sweep(SYNTHETIC, IFA_ONLY + SMALL + sets)
    (trial,) = sweep.trials
    payload = trial_payload(trial, tmp_path, sweep.name)
    threads = measurement.measure_threads(payload)
    before = torch.get_num_threads()
    try:  # how the sweep's measurement phase measures the model (its Ray task's body, run here)
        (swept,) = measurement._run_measurements([(payload["cfg"], "key")], "cpu", threads, None)
    finally:
        torch.set_num_threads(before)
    argv = ["--config", str(SYNTHETIC), "--format", "json", "--no-memory"]
    for text in IFA_ONLY[1:] + SMALL + sets:
        argv += ["--set", text]
    code, out, err = _run(capsys, *argv)
    assert code == 0, err
    (row,) = json.loads(out)
    return trial, swept, row


@pytest.mark.parametrize("sets, stride", [([], 4), (["eval.ifa_query_stride=1"], 1)])
def test_measure_config_measures_what_the_sweep_measures(capsys, tmp_path, sets, stride):
    trial, swept, row = _sweep_and_cli(capsys, tmp_path, sets)
    (planned,) = plan(trial.config)
    assert planned.settings.input_size == (64, 128) and planned.settings.latency is False
    assert planned.query == (("label", None) if stride == 1 else None)
    assert row["ifa_query_stride"] == stride
    for key in ("gmacs", "gmacs_backbone", "gmacs_head", "params_m", "params_head_m", "measure_input",
                "unsupported_ops", "measure_threads", "latency_ms_median", "measure_device"):
        assert row[key] == swept[key], key
    assert row["measure_threads"] == 1  # the demo's trials reserve 1 CPU: the CLI no longer times at torch's default
    assert row["latency_ms_median"] is None  # measure.latency=false is honoured by both


def test_plan_is_importable_without_torch():
    code = ("import sys; from bench.measure.plan import plan; from bench.config.query_stride import query_mode; "
            "print(sorted(m for m in sys.modules if m == 'torch' or m.startswith('torch.')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "[]", out.stderr[-2000:]
