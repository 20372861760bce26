"""GPU latencies of IFA's fused formulation, set by hand, carry a note pointing to the reference formulation
(bench/measure/ifa_on_gpu.py), in the measure command and in a sweep's measurement phase; nothing is said on CPU, for
other heads, for the reference formulation or for `auto` (the default), which runs the reference one on a GPU."""
from bench.measure.ifa_on_gpu import FUSED_ON_GPU, fused_on_gpu_note
from bench.sweep.tasks import measurement
def test_only_fused_ifa_on_a_gpu_gets_the_note():
    assert fused_on_gpu_note({"name": "ifa", "formulation": "fused"}, "cuda") == FUSED_ON_GPU
    assert fused_on_gpu_note({"name": "ifa"}, "cuda") is None  # the default, auto, runs the reference one there
    assert fused_on_gpu_note({"name": "ifa", "formulation": "auto"}, "cuda") is None
    assert fused_on_gpu_note({"name": "ifa", "formulation": "auto"}, "cpu") is None
    assert fused_on_gpu_note({"name": "ifa", "formulation": "reference"}, "cuda") is None
    assert fused_on_gpu_note({"name": "ifa", "formulation": "fused"}, "cpu") is None
    assert fused_on_gpu_note({"name": "fpn"}, "cuda") is None


def test_a_gpu_sweeps_measurement_phase_prints_it(tmp_path, monkeypatch, capsys):
    """run_phase on a GPU sweep's payloads; the Ray parts (node, reservation, task) replaced by their results."""
    payload = {"trial_id": "t0", "resources": {"cpus": 2, "gpus": 1, "workers": 1},
               "cfg": {"model": {"head": {"name": "ifa", "formulation": "fused"}}, "measure": {}, "train": {"device": "auto"}, "eval": {}}}
    rec = {"latency_ms_median": 20.0, "latency_ms_min": 19.0, "latency_ms_iqr": 0.5, "latency_runs": 50}
    monkeypatch.setattr(measurement, "pick_node", lambda cpus, gpus: {"NodeManagerAddress": "127.0.0.1"})

    class Held:
        def __enter__(self):
            return None, {"CPU": 2, "GPU": 1}

        def __exit__(self, *exc):
            return False

    monkeypatch.setattr(measurement, "reserved_node", lambda node, kind, timeout: Held())
    monkeypatch.setattr(measurement, "measure_in", lambda pg, bundle, todo, run_timeout_s, **_: [rec for _ in todo])
    measurement.run_phase([payload], tmp_path, "s")
    assert f"note: {FUSED_ON_GPU}" in capsys.readouterr().out
    for formulation in ("reference", "auto"):
        payload["cfg"]["model"]["head"]["formulation"] = formulation
        measurement.run_phase([payload], tmp_path / formulation, "s")
        assert "note:" not in capsys.readouterr().out
