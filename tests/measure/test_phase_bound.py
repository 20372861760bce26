"""The measurement phase's time bound (measure.max_phase_s) and progress: a pool that hits the bound stops at the
next round of turns and marks the models it cut short noisy, with the bound as the reason; every slot reports a
progress line per model (process, running median, standard error)."""
import time

import torch

from bench.measure.model import ModelToMeasure, measure_models
from bench.measure.noise_rule import noise_reason
from bench.measure.processes.fresh_processes import LatencyJob, pooled_latencies
from bench.sweep.tasks.measurement import progress_line
from tests.measure.tiny_models import TinySegmentor


def _images():
    return torch.randn(1, 3, 16, 24, generator=torch.Generator().manual_seed(0))


def test_a_bound_stops_the_pool_and_marks_it_noisy_with_the_reason():
    seen = []
    jobs = [LatencyJob(TinySegmentor().eval(), _images(), warmup=1, runs=3, processes=3, span_s=600)]
    t0 = time.monotonic()
    (lat,) = pooled_latencies(jobs, max_s=0.5, on_slot=lambda slot, js: seen.append(progress_line("tiny", slot, js[0])))
    assert time.monotonic() - t0 < 120  # not the 600-s span: one slot of process start-ups at most
    assert lat.noisy and lat.bound_s == 0.5 and lat.processes == 1 and lat.span_s < 600
    assert len(seen) == 1 and seen[0].startswith("tiny: process 1, median so far ") and " ms, SE -, " in seen[0]
    assert seen[0].endswith(" of 600 s")


def test_a_pool_done_within_its_bound_is_not_cut():
    specs = [ModelToMeasure(TinySegmentor(), input_size=(16, 24), warmup=1, runs=2, processes=1, span_s=0,
                            memory=False)]
    lines = []
    (rec,) = measure_models(specs, max_pool_s=600, on_slot=lambda slot, js: lines.append(slot))
    assert rec["latency_bound_s"] is None and lines == [1]
    assert "max_phase_s" not in noise_reason(rec)


def test_the_reason_names_the_bound():
    row = {"latency_bound_s": 60.0, "latency_processes": 2, "latency_span_s": 58.4, "latency_se_pct": None}
    reason = noise_reason(row)
    assert "measure.max_phase_s = 60 s" in reason and "after 2 processes over 58 s" in reason
    assert "after 1 process over" in noise_reason({**row, "latency_processes": 1})
