"""A CPU sweep's driver never imports torch: importing it costs the driver about 2 s on 2 cores, which is part of
the sweep's Ray overhead (docs/performance.md, "Ray overhead"). The trials and the measurement task import it;
the driver checks resources, prints measurement lines and unpickles measurement records."""
import pickle
import subprocess
import sys

import torch

from bench.measure.model import measure_model
from bench.models import build_segmentor
from bench.config.model import ModelConfig

DRIVER = """
import pickle, sys
import bench.sweep.driver.runner  # noqa: F401 - the driver's imports are what this checks
from bench.sweep.driver import ray_run
from bench.sweep.tasks.measurement import describe
from bench.sweep.spec.trials import Resources
cpus, gpus = ray_run.local_capacity(Resources(cpus=1))
assert gpus == 0.0, gpus
record = pickle.loads(sys.stdin.buffer.read())
line = describe(record)
assert "noisy" in line and record["torch_version"], line
print(sorted(m for m in sys.modules if m == "torch" or m.startswith("torch.")))
"""


def test_driver_reads_a_measurement_without_importing_torch():
    model = build_segmentor(ModelConfig(num_classes=3, backbone={"name": "resnet18", "width": 0.25},
                                        head={"name": "fpn", "channels": 8, "scale_channels": 8}))
    record = measure_model(model, input_size=(32, 32), device=torch.device("cpu"), warmup=0, runs=2, processes=0)
    record.update(latency_noisy=True, latency_se_pct=9.0, latency_processes=3)  # describe() explains the mark
    out = subprocess.run([sys.executable, "-c", DRIVER], input=pickle.dumps(record), capture_output=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr.decode()[-2000:]
    assert out.stdout.decode().strip() == "[]"


def test_a_gpu_sweep_counts_gpus():
    from bench.sweep.driver.ray_run import local_capacity
    from bench.sweep.spec.trials import Resources

    cpus, gpus = local_capacity(Resources(cpus=1, gpus=1))
    assert cpus >= 1 and gpus == float(torch.cuda.device_count() if torch.cuda.is_available() else 0)
