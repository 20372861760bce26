"""CPU latency pooled over fresh processes (bench.measure.fresh_processes): the process count, the pooling, the
standard-error rule that adds processes and marks a row noisy, and that every child is gone afterwards."""
import math
import os
import statistics
import subprocess
import sys
from pathlib import Path

import numpy as np
import psutil
import pytest
import torch

from bench.measure import ModelToMeasure, measure_model, measure_models
from bench.measure.fresh_processes import LatencyJob, pooled_latencies, pooled_latency, relative_se
from bench.noise_rule import noise_reason
from tests.measure.tiny_models import TinySegmentor

ROOT = Path(__file__).resolve().parents[2]


def _images():
    return torch.randn(1, 3, 16, 24, generator=torch.Generator().manual_seed(0))


def test_relative_se_is_the_standard_error_of_the_mean_over_the_mean():
    medians = [98.4, 102.4, 112.9]
    expected = np.std(medians, ddof=1) / math.sqrt(3) / np.mean(medians)
    assert relative_se(medians) == pytest.approx(expected, rel=1e-12)
    assert relative_se([5.0]) is None and relative_se([4.0, 4.0]) == 0.0


def _children() -> set[int]:
    """Every child of this process, zombies included (a child never waited for stays one)."""
    return {c.pid for c in psutil.Process().children(recursive=True)}


def test_pools_the_runs_of_each_process_and_leaves_no_child():
    before = _children()
    stats = pooled_latency(TinySegmentor().eval(), _images(), warmup=1, runs=4, rounds=1, processes=2,
                           se_threshold=1.0)  # a loose limit: exactly the 2 processes asked for
    assert stats.processes == 2 and len(stats.process_medians_ms) == 2
    assert stats.runs == len(stats.times_ms) == 8
    assert stats.median_ms == statistics.median(stats.times_ms) and stats.min_ms == min(stats.times_ms)
    assert stats.process_medians_ms == [statistics.median(stats.times_ms[:4]), statistics.median(stats.times_ms[4:])]
    assert stats.rel_se == relative_se(stats.process_medians_ms)
    assert stats.threads == torch.get_num_threads() and stats.timer == "perf_counter"
    assert _children() <= before


def test_an_imprecise_pool_gets_more_processes_then_is_marked_noisy():
    # A limit of 0 cannot be met by real timings: processes are added up to the maximum and the row is noisy.
    stats = pooled_latency(TinySegmentor().eval(), _images(), warmup=0, runs=3, rounds=1, processes=2,
                           max_processes=3, se_threshold=0.0)
    assert stats.processes == 3 and stats.noisy


def test_the_warning_says_which_rule_marked_the_row():
    assert noise_reason({"latency_se_pct": 7.2, "latency_processes": 6}) == (
        "the standard error of its 6 processes' medians is 7.2% of their mean (limit 3.5%)")
    assert noise_reason({"latency_se_pct": 1.0, "latency_processes": 3}) == "IQR above 10% of the median in every round"
    assert noise_reason({"latency_se_pct": None, "latency_processes": 0}) == "IQR above 10% of the median in every round"


def test_measure_model_records_the_processes_and_their_standard_error():
    rec = measure_model(TinySegmentor(), input_size=(16, 24), warmup=1, runs=3, memory=False, processes=2)
    assert rec["latency_processes"] >= 2 and rec["latency_runs"] == 3 * rec["latency_processes"]
    assert rec["latency_se_pct"] is not None and rec["latency_se_pct"] >= 0
    in_process = measure_model(TinySegmentor(), input_size=(16, 24), warmup=1, runs=3, memory=False)
    assert in_process["latency_processes"] == 0 and in_process["latency_se_pct"] is None
    assert in_process["latency_runs"] == 3


SCRIPT_WITHOUT_MAIN_GUARD = """
from bench.config.model import ModelConfig
from bench.measure import ModelToMeasure, measure_model, measure_models
from bench.models import build_segmentor
model = build_segmentor(ModelConfig(num_classes=3, backbone={"name": "resnet18", "width": 0.25},
                                    head={"name": "fpn", "channels": 8, "scale_channels": 8}))
record = measure_model(model, input_size=(32, 32), warmup=0, runs=2, processes=2, max_processes=2)
print(record["latency_processes"], record["peak_mem_mb"] is not None)
"""


def test_a_script_without_a_main_guard_read_from_stdin_measures_in_fresh_processes(tmp_path):
    """multiprocessing's spawn re-imports the parent's main module in the child: from stdin it found no file, and a
    script without `if __name__ == "__main__"` started processes while still bootstrapping. Neither is in the way now."""
    out = subprocess.run([sys.executable, "-"], input=SCRIPT_WITHOUT_MAIN_GUARD, capture_output=True, text=True,
                         cwd=tmp_path, timeout=300, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == ["2", "True"]


def test_several_models_pools_are_interleaved_process_by_process():
    """A B, A B, then only the model whose pool may still grow (an SE limit of 0 is never met: each pool grows to its
    max_processes), so a drift of the host's speed falls on every model alike."""
    a = LatencyJob(TinySegmentor().eval(), _images(), warmup=0, runs=2, rounds=1, processes=2, max_processes=3)
    b = LatencyJob(TinySegmentor().eval(), _images(), warmup=0, runs=2, rounds=1, processes=2, max_processes=2)
    stats_a, stats_b = pooled_latencies([a, b], se_threshold=0.0)
    assert (stats_a.processes, stats_b.processes) == (3, 2) and stats_a.noisy and stats_b.noisy
    order = sorted([(c["started"], "a") for c in a.children] + [(c["started"], "b") for c in b.children])
    assert [who for _, who in order] == ["a", "b", "a", "b", "a"]
    assert stats_a.times_ms == [t for c in a.children for t in c["times_ms"]]


def test_measure_models_gives_each_model_its_own_record_in_order():
    small = TinySegmentor().eval()
    large = TinySegmentor().train()
    specs = [ModelToMeasure(small, (16, 24), warmup=0, runs=2, memory=False, processes=1),
             ModelToMeasure(large, (32, 48), warmup=0, runs=2, memory=False, processes=1)]
    first, second = measure_models(specs)
    assert (first["measure_input"], second["measure_input"]) == ("16x24", "32x48")
    assert second["gmacs"] == pytest.approx(4 * first["gmacs"])  # the same convolutions on 4x the pixels
    assert first["latency_processes"] == second["latency_processes"] == 1
    assert first["measure_started_at"] < second["measure_started_at"] < first["measure_finished_at"]
    assert not small.training and large.training  # each model's mode is put back
