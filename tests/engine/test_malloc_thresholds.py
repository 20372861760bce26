"""bench/host/allocator.py: with malloc's thresholds fixed, memory freed by one step is reused by the next without
page faults (glibc's adaptive thresholds give the heap's top back and fault it in again); a CPU training run sets
them. Each case runs in a fresh interpreter, whose malloc has never been tuned."""
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from bench.host.allocator import _glibc

REPO = Path(__file__).resolve().parents[2]

# A small convolutional training step at 64x64, batch 2: its activations (0.5-1 MiB each) are made and freed every
# step; under glibc's adaptive thresholds about 1,200 pages of them are faulted in again per step.
STEPS = """
import resource, torch
torch.set_num_threads(1)
torch.manual_seed(0)
net = torch.nn.Sequential(torch.nn.Conv2d(3, 32, 3, padding=1), torch.nn.BatchNorm2d(32), torch.nn.ReLU(),
                          torch.nn.Conv2d(32, 32, 3, padding=1), torch.nn.BatchNorm2d(32), torch.nn.ReLU(),
                          torch.nn.Conv2d(32, 8, 1))
x = torch.randn(2, 3, 64, 64)
def step():
    net(x).square().mean().backward()
for _ in range(3):
    step()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(10):
    step()
print((resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 10)
"""


def _faults_per_step(setup: str) -> float:
    code = textwrap.dedent(setup) + STEPS
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=300,
                         env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"})
    assert out.returncode == 0, out.stderr
    return float(out.stdout.strip().splitlines()[-1])


pytestmark = pytest.mark.skipif(_glibc() is None, reason="glibc only")


def test_fixed_thresholds_stop_the_refaulting():
    adaptive = _faults_per_step("")
    fixed = _faults_per_step("from bench.host.allocator import keep_freed_memory\nassert keep_freed_memory()\n")
    assert adaptive > 500, adaptive
    assert fixed < adaptive / 10, (adaptive, fixed)


def test_a_cpu_training_run_fixes_them(tmp_path):
    adaptive = _faults_per_step("")
    fixed = _faults_per_step(f"""
        from bench.engine import train_experiment
        from tests.engine.train_helpers import tiny_config
        train_experiment(tiny_config({str(tmp_path / 'data')!r}, train={{"iterations": 4, "checkpoint_every": 4}}),
                         {str(tmp_path / 'run')!r}, progress=False)
        """)
    assert fixed < adaptive / 10, (adaptive, fixed)
