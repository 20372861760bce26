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


@pytest.mark.slow
def test_gpu_check_dry_run_produces_the_whole_table_on_the_cpu(tmp_path):
    """`make gpu-check`'s run end to end, the device swapped for the CPU at small sizes: every part and every
    acceptance check present (their verdicts mean nothing on a CPU)."""
    import json

    out = tmp_path / "dry.json"
    proc = subprocess.run([sys.executable, "-m", "perf.gpu_check", "--dry-run", "--budget", "1000", "--out", str(out)],
                          cwd=REPO, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-2000:]
    table = json.loads(out.read_text())["table"]
    head_rows = [f"{f}_{p}" for p in ("fp32", "tf32", "bf16") for f in ("reference", "fused")]
    assert all("ms" in table["head"][k] and "kernels_per_call" in table["head"][k] for k in head_rows)
    assert all("ms" in table["models"][k] for k in ("ifa_reference", "ifa_fused", "fpn", "ppm", "ocr"))
    assert all("ms" in table["train"][f] for f in ("reference", "fused"))
    assert len(table["acceptance"]) == 10 and "acceptance" in proc.stdout and "Traceback" not in proc.stderr
    assert [c["result"] for c in table["acceptance"]].count("MISSING") == 1  # peak memory: CUDA only


def test_acceptance_checks_issue_27s_limits():
    from perf.gpu_table import acceptance

    def table(scale):
        return {"head": {"reference_fp32": {"ms": 8.0}, "fused_fp32": {"ms": 4.0 * scale, "host_ms_per_call": scale},
                         "reference_bf16": {"ms": 4.0}, "fused_bf16": {"ms": 1.0 * scale},
                         "accuracy": {"fp32": {"rel_diff": 1e-4 * scale, "argmax_agree": 0.9999 / scale},
                                      "bf16": {"rel_diff": 1e-2 * scale, "argmax_agree": 0.995 / scale}}},
                "models": {"ifa_fused": {"ms": 14.0 * scale}, "fpn": {"ms": 14.0}},
                "train": {"reference": {"ms": 150.0, "peak_mib": 1000}, "fused": {"ms": 100.0 * scale,
                                                                                  "peak_mib": 600 * scale}}}

    assert [c["result"] for c in acceptance(table(1.0))] == ["PASS"] * 10  # each at its limit
    assert [c["result"] for c in acceptance(table(1.01))] == ["FAIL"] * 10  # each just past it
    assert {c["result"] for c in acceptance({"head": {}, "models": {}, "train": {}})} == {"MISSING"}
