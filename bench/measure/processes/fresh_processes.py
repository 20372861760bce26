"""CPU latency timed in fresh processes that take turns over a span of time, pooled.

Why: on these 2-vCPU virtual machines the host's speed moves in stretches of seconds to tens of seconds, by about
10% (one standard deviation of 10-second medians) and by up to 40% for a minute, and every process on the machine
moves with it. Measured (docs/performance.md, "Round 6"; perf/host_drift.py): four processes timing the same
model in turns of five runs agreed with each other within 7% while all four went from 80 to 105 ms and back;
10-second medians of two models moved together (the ratio of their latencies varied 3-4% where each varied 9-12%);
blocks 20 s or more apart were not correlated. A latency taken in a few seconds is therefore one draw of the host's
speed, however small its IQR, and two sweeps agree only as far as each pool spans enough independent stretches.

Rule: the pool runs in slots. In each slot every model gets one fresh process (a new interpreter,
bench.measure.processes.isolated, given a pickled copy of the model, trained weights included, and the input), started and
warmed up one after another; then the models take turns, `runs` timed runs each, until the slot has lasted
`span_s / processes` seconds (at least one turn). A pool spans at least `processes` slots and `span_s` seconds. Its
precision is the relative standard error of the mean over BLOCK_S-second blocks of the pool's time (the median of
each block's runs; blocks that long are nearly independent), or, for a pool shorter than two blocks, over its
processes' medians (which cannot see the drift). While a model's exceeds SE_THRESHOLD, every model gets another
slot (they keep sharing the same stretches of time), until each is under it or at its `max_processes` (default
MAX_PROCESSES_FACTOR x `processes`); a row is `noisy` when it still exceeds it.

A pool may be given a time bound (`max_s`, the sweep's measure.max_phase_s): it then stops at the first round of
turns that ends after the bound, and every model not yet done by the rule above is marked noisy with the bound as
the reason (its `bound_s`). A pool can thus run over its bound by one round of turns and its processes' start-ups.

SE_THRESHOLD is 3.5% because two independent results, each with that standard error, differ by less than
1.96 x sqrt(2) x 3.5% = 9.7% in 95% of cases: the 10% that two sweeps measuring the same model must agree within.
"""
from __future__ import annotations

import math
import statistics
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from bench.config.experiment import MAX_PROCESSES_FACTOR
from bench.measure.processes.isolated import FreshProcess
from bench.measure.latency import LatencyStats, iqr, loadavg, percentile, spread_of, time_cpu_runs
from bench.measure.noise_rule import BLOCK_S, NOISE_THRESHOLD, SE_THRESHOLD

TIMEOUT_S = 1800.0


def relative_se(medians: list[float]) -> float | None:
    """Standard error of the mean of `medians` over their mean; None for fewer than two."""
    if len(medians) < 2:
        return None
    mean = statistics.fmean(medians)
    return statistics.stdev(medians) / math.sqrt(len(medians)) / mean if mean > 0 else 0.0


class TurnTimer:
    """In the fresh process: warms the model up once, then each call times `runs` runs of it."""

    def __init__(self, model: nn.Module, inputs: tuple, warmup: int):
        self.model, self.inputs = model, inputs
        with torch.inference_mode():
            for _ in range(warmup):
                model(*inputs)

    def __call__(self, runs: int) -> dict:
        with torch.inference_mode():
            times = time_cpu_runs(self.model, self.inputs, runs)
        return {"times_ms": times, "threads": torch.get_num_threads()}


@dataclass
class LatencyJob:
    """One model's share of a pool (pooled_latencies); `turns` fills in as it is timed."""
    model: nn.Module
    inputs: Any
    warmup: int = 3
    runs: int = 10
    processes: int = 3
    max_processes: int | None = None
    span_s: float = 0.0
    turns: list[dict] = field(default_factory=list)  # {"at": s since the pool began, "duration_s", "slot", "times_ms"}
    threads: int | None = None
    load_before: float | None = None
    load_after: float | None = None
    cut_s: float | None = None  # the time bound that stopped this model's pool before it was done

    def slots(self) -> int:
        return len({t["slot"] for t in self.turns})

    def slot_medians(self) -> list[float]:
        by_slot: dict[int, list[float]] = {}
        for t in self.turns:
            by_slot.setdefault(t["slot"], []).extend(t["times_ms"])
        return [statistics.median(v) for _, v in sorted(by_slot.items())]

    def span(self) -> float:
        if not self.turns:
            return 0.0
        last = self.turns[-1]
        return last["at"] + last["duration_s"] - self.turns[0]["at"]

    def block_medians(self) -> list[float]:
        """The medians of the pool's runs in equal blocks of its time, each at least BLOCK_S long."""
        n = int(self.span() // BLOCK_S)
        if n < 2:
            return []
        start, length = self.turns[0]["at"], self.span() / n
        blocks: list[list[float]] = [[] for _ in range(n)]
        for t in self.turns:
            blocks[min(int((t["at"] - start) / length), n - 1)].extend(t["times_ms"])
        return [statistics.median(b) for b in blocks if b]

    def rel_se(self) -> float | None:
        blocks = self.block_medians()
        return relative_se(blocks) if len(blocks) >= 2 else relative_se(self.slot_medians())

    def limit(self) -> int:
        return max(self.processes, self.max_processes if self.max_processes is not None
                   else MAX_PROCESSES_FACTOR * self.processes)

    def done(self, se_threshold: float) -> bool:
        if self.slots() < self.processes or self.span() < self.span_s:
            return False
        se = self.rel_se()
        return se is None or se <= se_threshold or self.slots() >= self.limit()


def pooled_latencies(jobs: list[LatencyJob], *, se_threshold: float = SE_THRESHOLD, timeout_s: float = TIMEOUT_S,
                     max_s: float | None = None, on_slot=None, process=FreshProcess,
                     clock=time.monotonic) -> list[LatencyStats]:
    """CPU latency of several models by the module's rule. Every model takes turns in every slot until every model
    is done (one whose pool is precise goes on while another's is not), so all of them sample the same stretches of
    the host's speed and a slow stretch cannot favour one of them. `max_s`: the pool's time bound (module
    docstring); `on_slot(slot, jobs)`: called after every slot (progress). `process` starts a model's process for a
    slot (FreshProcess's signature and methods) and `clock` tells the time: the tests of the pool's scheduling give
    an in-process stand-in and a clock it advances."""
    for job in jobs:
        if job.processes < 1:
            raise ValueError(f"latency: processes must be at least 1, got {job.processes}")
        job.inputs = (job.inputs,) if isinstance(job.inputs, torch.Tensor) else tuple(job.inputs)
    if not jobs:
        return []
    start = clock()
    slot = 0
    while True:
        _slot(jobs, slot, start, timeout_s, max_s, process, clock)
        slot += 1
        if on_slot is not None:
            on_slot(slot, jobs)
        if all(job.done(se_threshold) for job in jobs):
            break
        if max_s is not None and clock() - start >= max_s:
            for job in jobs:
                if not job.done(se_threshold):
                    job.cut_s = max_s
            break
    return [_stats(job, se_threshold) for job in jobs]


def _slot(jobs: list[LatencyJob], slot: int, start: float, timeout_s: float, max_s: float | None, process,
          clock) -> None:
    """One fresh process per job, started and warmed up one after another (never while another times), then turns
    until each model's own turns of the slot have lasted its share of the span."""
    length = max(job.span_s / job.processes for job in jobs)
    before = [len(job.turns) for job in jobs]  # where each model's turns of this slot begin
    with ExitStack() as stack:
        procs = []
        for job in jobs:
            if job.load_before is None:
                job.load_before = loadavg()
            proc = stack.enter_context(process(TurnTimer, (job.model, job.inputs, job.warmup), what="latency",
                                               timeout_s=timeout_s, serve=True))
            proc.answer()
            procs.append(proc)
        while True:
            for job, proc in zip(jobs, procs):
                at = clock()
                out = proc.call(job.runs)
                job.turns.append({"at": at - start, "duration_s": clock() - at, "slot": slot,
                                  "times_ms": out["times_ms"]})
                job.threads = out["threads"]
                job.load_after = loadavg()
            if max_s is not None and clock() - start >= max_s:  # the bound: pooled_latencies marks it
                break
            if all(job.turns[-1]["at"] + job.turns[-1]["duration_s"] - job.turns[first]["at"] >= length
                   for job, first in zip(jobs, before)):
                break


def _stats(job: LatencyJob, se_threshold: float) -> LatencyStats:
    times = [t for turn in job.turns for t in turn["times_ms"]]
    se = job.rel_se()
    noisy = se > se_threshold if se is not None else spread_of(times) > NOISE_THRESHOLD
    noisy = noisy or job.cut_s is not None
    return LatencyStats(
        median_ms=statistics.median(times), p90_ms=percentile(times, 90), mean_ms=statistics.fmean(times),
        std_ms=statistics.stdev(times) if len(times) > 1 else 0.0, min_ms=min(times), max_ms=max(times),
        runs=len(times), warmup=job.warmup, device="cpu", timer="perf_counter", threads=job.threads,
        times_ms=times, iqr_ms=iqr(times), noisy=noisy, rounds=1, loadavg_before=job.load_before,
        loadavg_after=job.load_after, processes=job.slots(), process_medians_ms=job.slot_medians(), rel_se=se,
        span_s=job.span(), blocks=len(job.block_medians()), bound_s=job.cut_s,
    )


def pooled_latency(model: nn.Module, inputs: Any, *, warmup: int = 3, runs: int = 10, processes: int = 3,
                   max_processes: int | None = None, span_s: float = 0.0, se_threshold: float = SE_THRESHOLD,
                   timeout_s: float = TIMEOUT_S, process=FreshProcess, clock=time.monotonic) -> LatencyStats:
    """CPU latency of `model(*inputs)` by the module's rule. `runs` of the result counts every timed run of every
    turn; processes, process_medians_ms, rel_se, span_s and blocks are filled in. `process`, `clock`: as for
    pooled_latencies."""
    job = LatencyJob(model, inputs, warmup=warmup, runs=runs, processes=processes, max_processes=max_processes,
                     span_s=span_s)
    return pooled_latencies([job], se_threshold=se_threshold, timeout_s=timeout_s, process=process, clock=clock)[0]
