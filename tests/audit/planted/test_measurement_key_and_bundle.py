"""The measurement key and the measurement's reservation, without Ray (issue 32, rows "the measurement key" and
"the measurement bundle"). Before these tests only Ray tests reached the reservation, and no test varied the
device of a payload."""
from pathlib import Path

import pytest

from bench.config import ExperimentConfig
from bench.sweep.spec.trials import Resources
from bench.sweep.tasks import measurement
from tests.sweep.conftest import tiny_experiment


def _payload(gpus: float, cpus: float = 2, device: str = "auto") -> dict:
    raw = tiny_experiment(Path("/nonexistent"))
    raw["train"]["device"] = device
    cfg = ExperimentConfig.model_validate(raw)
    return {"cfg": cfg.model_dump(mode="json"), "resources": Resources(cpus=cpus, gpus=gpus).model_dump()}


def test_a_gpu_trial_and_a_cpu_trial_of_one_model_have_different_measurement_keys():
    """Catches: the device left out of measure_key (a GPU sweep over a folder measured on CPU would reuse the CPU
    latencies). Same model, same measure settings, same thread count (train.threads 1): only the device differs."""
    cpu, gpu = _payload(gpus=0), _payload(gpus=1)
    assert measurement.measure_threads(cpu) == measurement.measure_threads(gpu) == 1
    assert (measurement.device_kind(cpu), measurement.device_kind(gpu)) == ("cpu", "cuda")
    assert measurement.measure_key(gpu) != measurement.measure_key(cpu)
    # a trial that holds a GPU but pins train.device cpu is measured on CPU: it shares the CPU measurement
    pinned = _payload(gpus=1, device="cpu")
    assert measurement.device_kind(pinned) == "cpu"
    assert measurement.measure_key(pinned) == measurement.measure_key(cpu)


@pytest.mark.parametrize("kind, cpus", [("cpu", 8.0), ("cuda", 16.0), ("cpu", 1.0)])
def test_the_reservation_holds_every_cpu_of_the_node(kind, cpus):
    """Catches: the reservation (node_bundle) leaving one CPU free, or any CPU, so that a trial could train beside
    the measurement (before, only a Ray test noticed). The bundle must ask for every CPU the node has, be pinned to
    that node, and hold one GPU exactly for a CUDA measurement."""
    node = {"NodeID": "n1", "Alive": True, "NodeManagerAddress": "10.1.2.3",
            "Resources": {"CPU": cpus, "GPU": 2.0, "node:10.1.2.3": 1.0, "memory": 1e9}}
    bundle = measurement.node_bundle(node, kind)
    want = {"CPU": cpus, "node:10.1.2.3": 0.001, **({"GPU": 1} if kind == "cuda" else {})}
    assert bundle == want
