"""CPU latency timed in several fresh processes, pooled.

Why: on these 2-vCPU virtual machines the speed of the same model, timed the same way, drifts with time (the host):
on an idle machine fresh processes timing ResNet-18/IFA at 256x512 one after another gave medians from 76 to 124 ms,
consecutive processes agreeing more than distant ones, while each process's own runs agreed within a few percent. So
one process's IQR says nothing about how far the next sweep will land; runs spread over more processes (and so more
time) do (docs/performance.md).

Rule: start `processes` fresh processes ("spawn", each given a pickled copy of the model and input, so trained
weights are timed as they are) one after another, never at the same time, each doing the in-process protocol of
bench.measure.latency (warm-up, timed runs, noisy rounds repeated). The relative standard error of the mean of the
per-process medians is the precision of the result; while it exceeds SE_THRESHOLD another process is added, up to
`max_processes` (default MAX_PROCESSES_FACTOR x `processes`). The row is `noisy` when it still exceeds it, or when
every process stayed noisy by the in-process rule.

SE_THRESHOLD is 3.5% because two independent results, each with that standard error, differ by less than
1.96 x sqrt(2) x 3.5% = 9.7% in 95% of cases: the 10% that two sweeps measuring the same model must agree within.
"""
from __future__ import annotations

import math
import statistics
import time
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from bench.config.experiment import MAX_PROCESSES_FACTOR
from bench.measure.isolated import run_in_fresh_process
from bench.measure.latency import DEFAULT_ROUNDS, LatencyStats, iqr, loadavg, measure_latency, percentile
from bench.noise_rule import SE_THRESHOLD

TIMEOUT_S = 1800.0


def relative_se(medians: list[float]) -> float | None:
    """Standard error of the mean of `medians` over their mean; None for fewer than two."""
    if len(medians) < 2:
        return None
    mean = statistics.fmean(medians)
    return statistics.stdev(medians) / math.sqrt(len(medians)) / mean if mean > 0 else 0.0


def _timings(model, inputs, warmup: int, runs: int, rounds: int) -> dict:
    """In the fresh process: the in-process protocol, returned as plain data."""
    started = time.time()
    stats = measure_latency(model, inputs, warmup=warmup, runs=runs, rounds=rounds)
    return {"started": started, "times_ms": stats.times_ms, "noisy": stats.noisy, "rounds": stats.rounds,
            "timer": stats.timer, "threads": stats.threads, "device": stats.device}


@dataclass
class LatencyJob:
    """One model's share of an interleaved pool (pooled_latencies)."""
    model: nn.Module
    inputs: Any
    warmup: int = 3
    runs: int = 10
    rounds: int = DEFAULT_ROUNDS
    processes: int = 3
    max_processes: int | None = None
    children: list[dict] = field(default_factory=list)
    load_before: float | None = None
    load_after: float | None = None

    def done(self, se_threshold: float) -> bool:
        se = relative_se(self.medians())
        limit = max(self.processes, self.max_processes if self.max_processes is not None
                    else MAX_PROCESSES_FACTOR * self.processes)
        n = len(self.children)
        return n >= self.processes and (se is None or se <= se_threshold or n >= limit)

    def medians(self) -> list[float]:
        return [statistics.median(c["times_ms"]) for c in self.children]


def pooled_latencies(jobs: list[LatencyJob], *, se_threshold: float = SE_THRESHOLD,
                     timeout_s: float = TIMEOUT_S) -> list[LatencyStats]:
    """CPU latency of several models, each pooled over fresh processes by the module's rule, their processes
    interleaved (A B C, A B C, ..., then only the models whose pool is still imprecise), one at a time. The host's
    speed drifts over tens of seconds: measured one model after the other, a slow stretch falls on one model only
    and can invert a ranking; interleaved, every model samples the same stretches, and each model's standard error
    spans the whole time its pool took."""
    for job in jobs:
        if job.processes < 1:
            raise ValueError(f"latency: processes must be at least 1, got {job.processes}")
        job.inputs = (job.inputs,) if isinstance(job.inputs, torch.Tensor) else tuple(job.inputs)
    active = list(jobs)
    while active:
        for job in active:
            if not job.children:
                job.load_before = loadavg()
            job.children.append(run_in_fresh_process(
                _timings, (job.model, job.inputs, job.warmup, job.runs, job.rounds), what="latency",
                timeout_s=timeout_s))
            job.load_after = loadavg()
        active = [job for job in active if not job.done(se_threshold)]
    return [_stats(job, se_threshold) for job in jobs]


def _stats(job: LatencyJob, se_threshold: float) -> LatencyStats:
    children, medians = job.children, job.medians()
    se = relative_se(medians)
    times = [t for c in children for t in c["times_ms"]]
    noisy = (se is not None and se > se_threshold) or all(c["noisy"] for c in children)
    return LatencyStats(
        median_ms=statistics.median(times), p90_ms=percentile(times, 90), mean_ms=statistics.fmean(times),
        std_ms=statistics.stdev(times) if len(times) > 1 else 0.0, min_ms=min(times), max_ms=max(times),
        runs=len(times), warmup=job.warmup, device=children[0]["device"], timer=children[0]["timer"],
        threads=children[0]["threads"], times_ms=times, iqr_ms=iqr(times), noisy=noisy,
        rounds=max(c["rounds"] for c in children), loadavg_before=job.load_before, loadavg_after=job.load_after,
        processes=len(children), process_medians_ms=medians, rel_se=se,
    )


def pooled_latency(model: nn.Module, inputs: Any, *, warmup: int = 3, runs: int = 10, rounds: int = DEFAULT_ROUNDS,
                   processes: int = 3, max_processes: int | None = None, se_threshold: float = SE_THRESHOLD,
                   timeout_s: float = TIMEOUT_S) -> LatencyStats:
    """CPU latency of `model(*inputs)` pooled over fresh processes (the module's rule). `runs` of the result counts
    every kept timed run of every process; processes, process_medians_ms and rel_se are filled in."""
    job = LatencyJob(model, inputs, warmup=warmup, runs=runs, rounds=rounds, processes=processes,
                     max_processes=max_processes)
    return pooled_latencies([job], se_threshold=se_threshold, timeout_s=timeout_s)[0]
