"""CPU latency pooled over fresh processes (bench.measure.processes.fresh_processes): the process count, the pooling, the span
and the turns, the standard-error rule (over blocks of time) that adds processes and marks a row noisy, and that every
child is gone afterwards. The same scheduling in process, with exact times: tests/measure/test_pool_scheduling.py."""
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

from bench.measure.model import ModelToMeasure, measure_model, measure_models
from bench.measure.processes.fresh_processes import LatencyJob, pooled_latencies, pooled_latency, relative_se
from bench.measure.processes.isolated import FreshProcess
from bench.measure.noise_rule import noise_reason
from tests.measure.tiny_models import ExitsOnSecondCall, TinySegmentor

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
    stats = pooled_latency(TinySegmentor().eval(), _images(), warmup=1, runs=4, processes=2,
                           se_threshold=1.0)  # a loose limit and no span: one turn in each of the 2 processes
    assert stats.processes == 2 and len(stats.process_medians_ms) == 2
    assert stats.runs == len(stats.times_ms) == 8
    assert stats.median_ms == statistics.median(stats.times_ms) and stats.min_ms == min(stats.times_ms)
    assert stats.process_medians_ms == [statistics.median(stats.times_ms[:4]), statistics.median(stats.times_ms[4:])]
    assert stats.blocks == 0 and stats.rel_se == relative_se(stats.process_medians_ms)  # shorter than two blocks
    assert stats.threads == torch.get_num_threads() and stats.timer == "perf_counter" and stats.span_s > 0
    assert _children() <= before


def test_an_imprecise_pool_gets_more_processes_then_is_marked_noisy():
    # A limit of 0 cannot be met by real timings: processes are added up to the maximum and the row is noisy.
    stats = pooled_latency(TinySegmentor().eval(), _images(), warmup=0, runs=3, processes=2,
                           max_processes=3, se_threshold=0.0)
    assert stats.processes == 3 and stats.noisy


def _turns(at_and_ms):
    return [{"at": at, "duration_s": 1.0, "slot": int(at // 30), "times_ms": [ms]} for at, ms in at_and_ms]


def test_the_standard_error_is_over_blocks_of_time_when_the_pool_spans_two_or_more():
    """Two processes (slots) whose medians agree can both sit in one slow stretch; blocks of the pool's time see the
    stretch. Here: 60 s of turns, 100 ms for 20 s, 130 ms for 20 s, 100 ms again."""
    job = LatencyJob(TinySegmentor(), _images(), processes=2)
    job.turns = _turns([(t, 100.0 if t < 20 or t >= 40 else 130.0) for t in range(0, 60)])
    assert job.span() == 60.0 and job.block_medians() == [100.0, 130.0, 100.0]  # 3 blocks of 20 s
    assert job.rel_se() == relative_se([100.0, 130.0, 100.0])
    job.turns = _turns([(t, 100.0) for t in range(0, 39)])  # 39 s: one block, so the slots' medians
    assert job.block_medians() == [] and job.rel_se() == 0.0


def test_a_pool_is_done_only_after_its_processes_and_its_span():
    job = LatencyJob(TinySegmentor(), _images(), processes=2, span_s=50.0, max_processes=4)
    job.turns = _turns([(t, 100.0) for t in range(0, 29)])  # one slot, 29 s
    assert not job.done(1.0)
    job.turns = _turns([(t, 100.0) for t in range(0, 45)])  # two slots, 45 s: still short of the span
    assert not job.done(1.0)
    job.turns = _turns([(t, 100.0 + (t // 30) % 2 * 30) for t in range(0, 59)])  # 59 s, but imprecise
    assert not job.done(0.035) and job.done(1.0)
    job.turns = _turns([(t, 100.0 + (t // 30) % 2 * 30) for t in range(0, 120)])  # 4 slots: the limit
    assert job.done(0.035)


def test_a_real_pool_with_a_time_bound_and_progress():
    """Two models, two processes each: a bound of 0 s stops the pool after its first slot, and both are cut. The
    progress callback sees every slot; the load and threads are recorded once per pool."""
    images = _images()
    a = LatencyJob(TinySegmentor().eval(), images, warmup=0, runs=2, processes=2)
    b = LatencyJob(TinySegmentor().eval(), [images], warmup=0, runs=2, processes=1)
    seen = []
    stats_a, stats_b = pooled_latencies([a, b], se_threshold=1.0, max_s=0.0,
                                        on_slot=lambda slot, jobs: seen.append((slot, len(jobs[0].turns))))
    assert seen == [(1, 1)] and isinstance(a.inputs, tuple) and len(a.inputs) == 1 and len(b.inputs) == 1
    assert [t["slot"] for t in a.turns] == [0] and len(a.turns[0]["times_ms"]) == 2
    assert a.cut_s == 0.0 and stats_a.noisy and stats_a.bound_s == 0.0
    assert b.cut_s is None and stats_b.bound_s is None  # one process was all b needed
    assert a.load_before is not None and a.load_after is not None and stats_a.threads == torch.get_num_threads()
    assert 0.0 <= a.turns[0]["at"] < b.turns[0]["at"] and a.turns[0]["duration_s"] > 0

    c = LatencyJob(TinySegmentor().eval(), images, warmup=0, runs=1, processes=2)
    c.load_before = -1.0  # kept from the pool's start: not taken again
    seen.clear()
    (stats_c,) = pooled_latencies([c], se_threshold=1.0, on_slot=lambda slot, jobs: seen.append(slot))
    assert seen == [1, 2] and c.load_before == -1.0 and stats_c.processes == 2 and c.cut_s is None


def test_the_models_of_a_pool_take_turns_for_the_whole_span():
    a = LatencyJob(TinySegmentor().eval(), _images(), warmup=0, runs=2, processes=1, span_s=2.0)
    b = LatencyJob(TinySegmentor().eval(), _images(), warmup=0, runs=2, processes=1, span_s=2.0)
    stats_a, stats_b = pooled_latencies([a, b], se_threshold=1.0)
    order = [who for _, who in sorted([(t["at"], "a") for t in a.turns] + [(t["at"], "b") for t in b.turns])]
    assert len(order) >= 4 and order == ["a", "b"] * (len(order) // 2)
    assert stats_a.span_s >= 2.0 and stats_b.span_s >= 2.0 and stats_a.processes == stats_b.processes == 1
    assert stats_a.runs == 2 * len(a.turns)


def test_the_warning_says_which_rule_marked_the_row():
    assert noise_reason({"latency_se_pct": 7.2, "latency_processes": 6, "latency_span_s": 131.0}) == (
        "its standard error over 6 processes over 131 s is 7.2% of the mean (limit 3.5%)")
    assert noise_reason({"latency_se_pct": 7.2, "latency_processes": 6}) == (
        "its standard error over 6 processes is 7.2% of the mean (limit 3.5%)")
    assert noise_reason({"latency_se_pct": 1.0, "latency_processes": 3.0}) == (
        "IQR above 10% of the median over its 3 process(es)")
    assert noise_reason({"latency_se_pct": None, "latency_processes": 0}) == (
        "its rounds never settled: IQR above 10% of the median, or two consecutive rounds' medians more than 5% apart")


def test_a_serving_process_that_dies_is_reported_with_its_exit_code_and_reaped():
    before = _children()
    with FreshProcess(ExitsOnSecondCall, (), what="test", timeout_s=60, serve=True) as proc:
        proc.answer()
        assert proc.call(21) == 42
        with pytest.raises(RuntimeError, match=r"test measurement failed: measurement process died \(exit code 3\)"):
            proc.call(1)
    assert _children() <= before


def test_measure_model_records_the_processes_and_their_standard_error():
    rec = measure_model(TinySegmentor(), input_size=(16, 24), warmup=1, runs=3, memory=False, processes=2)
    assert rec["latency_processes"] >= 2 and rec["latency_runs"] == 3 * rec["latency_processes"]
    assert rec["latency_se_pct"] is not None and rec["latency_se_pct"] >= 0
    in_process = measure_model(TinySegmentor(), input_size=(16, 24), warmup=1, runs=3, memory=False)
    assert in_process["latency_processes"] == 0 and in_process["latency_se_pct"] is None
    assert in_process["latency_runs"] == 3


SCRIPT_WITHOUT_MAIN_GUARD = """
from bench.config.model import ModelConfig
from bench.measure.model import ModelToMeasure, measure_model, measure_models
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


def test_every_model_takes_part_in_every_slot_until_all_are_done():
    """a b, a b, a b: b reached its own limit (2 processes) first, but keeps taking turns while a's pool goes on (an
    SE limit of 0 is never met: a grows to its max_processes), so both results cover the same stretches of time."""
    a = LatencyJob(TinySegmentor().eval(), _images(), warmup=0, runs=2, processes=2, max_processes=3)
    b = LatencyJob(TinySegmentor().eval(), _images(), warmup=0, runs=2, processes=2, max_processes=2)
    stats_a, stats_b = pooled_latencies([a, b], se_threshold=0.0)
    assert (stats_a.processes, stats_b.processes) == (3, 3) and stats_a.noisy and stats_b.noisy
    order = sorted([(t["at"], "a", t["slot"]) for t in a.turns] + [(t["at"], "b", t["slot"]) for t in b.turns])
    assert [(who, slot) for _, who, slot in order] == [("a", 0), ("b", 0), ("a", 1), ("b", 1), ("a", 2), ("b", 2)]
    assert stats_a.times_ms == [t for turn in a.turns for t in turn["times_ms"]]


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
