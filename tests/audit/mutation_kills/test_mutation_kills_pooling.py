"""Kill tests for bench/measure/processes/fresh_processes.py (issue 32's mutation pass): the pool's statistics at
their boundaries (a span of exactly two blocks, a standard error equal to the limit, a pool exactly at its process
count or span), the result's fields, the refusals, and the real process and clock by default (fresh processes timing
a tiny model). The pool's scheduling: tests/measure/test_pool_scheduling.py."""
import statistics
import time

import pytest
import torch

from bench.measure.processes import fresh_processes as fp
from bench.measure.processes.fresh_processes import LatencyJob, relative_se
from tests.measure.tiny_models import TinySegmentor


def _job(**kw) -> LatencyJob:
    return LatencyJob(model=None, inputs=(), **kw)


def _turn(at, ms, slot, duration=1.0):
    return {"at": at, "duration_s": duration, "slot": slot, "times_ms": list(ms)}


def test_relative_se_without_a_positive_mean():
    assert relative_se([0.0, 0.0]) == 0.0 and relative_se([-1.0, -3.0]) == 0.0
    assert relative_se([]) is None
    assert relative_se([1.0, 3.0]) == pytest.approx(statistics.stdev([1.0, 3.0]) / 2 ** 0.5 / 2.0)
    assert relative_se([0.25, 0.75]) == pytest.approx(statistics.stdev([0.25, 0.75]) / 2 ** 0.5 / 0.5)  # under 1 ms


def test_slots_span_and_medians():
    job = _job()
    assert job.span() == 0.0 and job.slots() == 0 and job.slot_medians() == [] and job.block_medians() == []
    job.turns = [_turn(5.0, [3.0, 1.0], 1), _turn(6.0, [10.0], 0), _turn(7.0, [2.0], 1, duration=0.5)]
    assert job.slots() == 2 and job.slot_medians() == [10.0, 2.0]  # by slot number, not by time
    assert job.span() == 7.0 + 0.5 - 5.0


def test_blocks_at_exactly_two_and_the_last_turn():
    job = _job()
    # 40 s exactly: two blocks of 20 s; the turn that starts at the very end goes into the last block
    job.turns = [_turn(0.0, [1.0], 0), _turn(19.0, [2.0], 0), _turn(20.0, [30.0], 0), _turn(39.0, [40.0], 0)]
    assert job.span() == 40.0 and job.block_medians() == [1.5, 35.0]
    assert job.rel_se() == relative_se([1.5, 35.0])  # two blocks are enough, though all in one slot
    job.turns[-1]["duration_s"] = 0.999  # 39.999 s: one block, so no block medians
    assert job.block_medians() == []
    job.turns = [_turn(0.0, [1.0], 0), _turn(59.0, [9.0], 1)]  # three blocks, the middle one empty
    assert job.block_medians() == [1.0, 9.0]
    assert job.rel_se() == relative_se([1.0, 9.0])
    job.turns = [_turn(100.0, [1.0], 0), _turn(139.0, [5.0], 0)]  # blocks are counted from the first turn
    assert job.block_medians() == [1.0, 5.0]
    job.turns = [_turn(0.0, [1.0], 0), _turn(40.0, [5.0], 0, duration=0.0)]  # a turn at the very end: last block
    assert job.block_medians() == [1.0, 5.0]


def test_the_process_limit():
    assert _job(processes=3).limit() == 3 * fp.MAX_PROCESSES_FACTOR
    assert _job(processes=3, max_processes=5).limit() == 5
    assert _job(processes=3, max_processes=2).limit() == 3
    assert _job(processes=3, max_processes=0).limit() == 3


def test_done_at_its_boundaries():
    job = _job(processes=2, span_s=2.0, max_processes=3)
    job.turns = [_turn(0.0, [100.0], 0)]
    assert not job.done(1.0)  # one slot of two
    job.turns = [_turn(0.0, [100.0], 0), _turn(1.0, [100.0], 1)]
    assert job.span() == 2.0 and job.done(1.0)  # exactly the processes and exactly the span
    job.span_s = 2.5
    assert not job.done(1.0)
    job.span_s = 0.0
    job.turns = [_turn(0.0, [100.0], 0), _turn(1.0, [300.0], 1)]
    se = job.rel_se()
    assert job.done(se) and not job.done(se * 0.999)  # the limit itself is precise enough
    job.turns.append(_turn(2.0, [100.0], 2))
    assert job.slots() == 3 and job.done(0.0)  # at max_processes
    one = _job(processes=1)
    one.turns = [_turn(0.0, [5.0, 7.0], 0)]
    assert one.rel_se() is None and one.done(0.0)  # nothing to judge: done


def test_the_result_fields():
    job = _job(warmup=2, processes=2, max_processes=2)
    job.turns = [_turn(0.0, [10.0, 12.0], 0), _turn(1.0, [11.0, 30.0], 1)]
    job.threads, job.load_before, job.load_after = 3, 1.5, 2.5
    s = fp._stats(job, 1.0)
    times = [10.0, 12.0, 11.0, 30.0]
    assert s.times_ms == times and s.runs == 4 and s.warmup == 2 and s.threads == 3
    assert s.median_ms == statistics.median(times) and s.mean_ms == statistics.fmean(times)
    assert s.std_ms == statistics.stdev(times) and (s.min_ms, s.max_ms) == (10.0, 30.0)
    assert s.p90_ms == fp.percentile(times, 90) and s.iqr_ms == fp.iqr(times)
    assert (s.device, s.timer, s.rounds) == ("cpu", "perf_counter", 1)
    assert (s.loadavg_before, s.loadavg_after) == (1.5, 2.5)
    assert s.processes == 2 and s.process_medians_ms == [11.0, 20.5] and s.rel_se == relative_se([11.0, 20.5])
    assert s.span_s == 2.0 and s.blocks == 0 and s.bound_s is None
    assert not s.noisy and fp._stats(job, s.rel_se).noisy is False and fp._stats(job, s.rel_se * 0.999).noisy
    job.cut_s = 7.0
    cut = fp._stats(job, 1.0)
    assert cut.noisy and cut.bound_s == 7.0
    job.turns = [_turn(0.0, [10.0, 12.0], 0)]  # two runs have a standard deviation
    assert fp._stats(job, 1.0).std_ms == statistics.stdev([10.0, 12.0])


def test_one_process_is_judged_by_its_spread():
    job = _job(processes=1)
    job.turns = [_turn(0.0, [10.0], 0)]
    s = fp._stats(job, 0.0)
    assert s.std_ms == 0.0 and s.rel_se is None and not s.noisy  # a single run: no spread
    job.turns = [_turn(0.0, [10.0, 10.0, 10.0, 20.0, 20.0], 0)]
    assert fp._stats(job, 0.0).noisy  # IQR above 10% of the median
    job.turns = [_turn(0.0, [100.0, 100.0, 100.0, 101.0, 100.0], 0)]
    assert not fp._stats(job, 0.0).noisy
    job.turns = [_turn(0.0, [90.0, 100.0, 110.0], 0)]
    assert fp.spread_of([90.0, 100.0, 110.0]) == fp.NOISE_THRESHOLD and not fp._stats(job, 0.0).noisy  # exactly 10%


def test_refusals_and_an_empty_pool():
    with pytest.raises(ValueError) as err:
        fp.pooled_latencies([_job(processes=1), _job(processes=0)])
    assert str(err.value) == "latency: processes must be at least 1, got 0"
    assert fp.pooled_latencies([]) == []


def test_the_real_process_and_clock_by_default():
    """`process` and `clock` default to FreshProcess (TurnTimer in a new interpreter) and time.monotonic, in both
    functions: one fresh process each. The scheduling itself is checked in process (tests/measure/test_pool_scheduling.py)."""
    images = torch.randn(1, 3, 16, 24, generator=torch.Generator().manual_seed(0))
    began = time.monotonic()
    s = fp.pooled_latency(TinySegmentor().eval(), images, warmup=0, runs=2, processes=1)
    job = LatencyJob(TinySegmentor().eval(), images, warmup=0, runs=2, processes=1)
    (t,) = fp.pooled_latencies([job])
    for stats in (s, t):
        assert stats.runs == 2 and stats.processes == 1 and stats.threads == torch.get_num_threads()
        assert all(ms > 0 for ms in stats.times_ms) and stats.span_s > 0
    assert 0 < job.turns[0]["at"] < time.monotonic() - began  # seconds of time.monotonic since the pool began
