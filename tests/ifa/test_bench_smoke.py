"""`python -m perf.run --smoke` end to end: outputs exist and hold consistent numbers."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.timeout(180)
def test_bench_smoke(tmp_path):
    out = tmp_path / "bench"
    env = {**os.environ, "OMP_NUM_THREADS": "2", "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-m", "perf.run", "--smoke", "--out", str(out)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=170)
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads((out / "bench.json").read_text())
    assert result["smoke"] is True and result["environment"]["threads"] == 2
    assert result["gemm_rate_gmac_per_s"] > 0.1
    records = {(r["group"], r["spec"]["formulation"] if "formulation" in r["spec"] else r["spec"]["kind"],
                r["spec"]["dtype"], bool(r["spec"].get("channels_last"))): r for r in result["records"]}
    ref = records[("infer_cityscapes_b1", "reference", "fp32", False)]
    fused = records[("infer_cityscapes_b1", "fused", "fp32", False)]
    for r in (ref, fused):
        assert r["runs"] == len(r["times_ms"]) == len(r["cpu_times_ms"]) >= 1 and r["median_ms"] > 0
        assert r["median_cpu_ms"] > 0
        assert r["peak_mb"] > 0 and r["method"].startswith(("rss_", "cuda_"))
        assert 0 < r["fraction_of_gemm"] == pytest.approx(r["gmacs"] / (r["median_ms"] / 1e3) / result["gemm_rate_gmac_per_s"])
    # fvcore MACs: the fused formulation does fewer for the same head (64x128 input: 16x32 queries)
    assert fused["gmacs"] < 0.7 * ref["gmacs"]
    assert ref["gmacs"] == pytest.approx(0.461, rel=0.02)  # 512 queries x 779,008 + reductions + BatchNorm
    ratio = next(r for r in result["ratios"] if r["group"] == "infer_cityscapes_b1" and r["dtype"] == "fp32")
    assert ratio["speedup"] == pytest.approx(ref["median_ms"] / fused["median_ms"])
    assert ratio["memory_ratio"] == pytest.approx(fused["peak_mb"] / ref["peak_mb"])
    # every planned group ran
    groups = {r["group"] for r in result["records"]}
    assert {"gemm_start", "infer_cityscapes_b2", "train_crop_b2", "query_full_label_b1", "variants_cityscapes_b1",
            "models_b1"} <= groups
    assert ("variants_cityscapes_b1", "fused", "bf16", False) in records
    assert ("variants_cityscapes_b1", "fused", "fp32", True) in records
    assert {t["target"] for t in result["targets"]} and len(result["targets"]) == 6
    md = (out / "bench.md").read_text()
    assert "IFA head fused inference 64x128 b1 fp32" in md and "Measured GEMM rate" in md
    assert not list(out.glob(".bench.*"))  # no temp files left
