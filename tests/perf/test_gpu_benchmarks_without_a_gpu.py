"""The GPU-side benchmarks on a machine without CUDA: `make gpu-check` skips with one line and exit 0, writing
nothing; `measure_repeatability --device cuda` writes a sweep that trains and measures on the GPU it asks for."""
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from perf.measure_repeatability import _experiment
from bench.sweep.spec.trials import load_sweep

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.skipif(torch.cuda.is_available(), reason="a CUDA device is present")
def test_gpu_check_skips_cleanly_without_cuda(tmp_path):
    out = tmp_path / "gpu_check.json"
    proc = subprocess.run([sys.executable, "-m", "perf.gpu_check", "--out", str(out)], cwd=REPO,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("gpu-check: skipped: no CUDA device is available") and "Traceback" not in proc.stderr
    assert not out.exists()


def test_repeatability_sweep_on_cuda_requests_the_gpu_and_trains_there(tmp_path):
    trials = load_sweep(_write(tmp_path / "rep.yaml", _experiment(2, [64, 128], 10, 3, 5.0, "cuda"))).trials
    assert [t.resources.gpus for t in trials] == [1, 1] and {t.config.train.device for t in trials} == {"cuda"}
    cpu = _experiment(2, [64, 128], 10, 3, 5.0)
    assert cpu["sweep"]["resources"] == {"cpus": 2} and cpu["train"]["device"] == "cpu"
    reference = load_sweep(_write(tmp_path / "ref.yaml", _experiment(2, [64, 128], 10, 3, 5.0, "cuda", "reference")))
    assert {t.config.model.head.formulation for t in reference.trials} == {"reference"}


def _write(path: Path, doc: dict) -> Path:
    path.write_text(yaml.safe_dump(doc))
    return path
