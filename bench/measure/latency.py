"""Inference latency: warm-up runs, then N timed runs of `model(*inputs)` under torch.inference_mode().

CUDA: one pair of torch.cuda.Events per run on the current stream, synchronised before the first and after the
last run (so queued work never leaks into a timing). CPU: time.perf_counter around each call, which is
synchronous there; the intra-op thread count is recorded because it decides CPU latency."""
from __future__ import annotations

import statistics
import time
from dataclasses import dataclass, field
from typing import Any, Sequence

import torch
from torch import nn


@dataclass(frozen=True)
class LatencyStats:
    median_ms: float
    p90_ms: float
    mean_ms: float
    std_ms: float  # sample standard deviation (0 for a single run)
    min_ms: float
    max_ms: float
    runs: int
    warmup: int
    device: str
    timer: str  # "cuda_event" | "perf_counter"
    threads: int  # torch.get_num_threads() at measurement time
    times_ms: list[float] = field(repr=False, default_factory=list)


def device_of(inputs: Sequence[Any], model: nn.Module | None = None) -> torch.device:
    """The device the work runs on: the first tensor input's, else the model's first parameter's, else CPU."""
    for x in inputs:
        if isinstance(x, torch.Tensor):
            return x.device
    if model is not None:
        for p in model.parameters():
            return p.device
    return torch.device("cpu")


def percentile(values: Sequence[float], q: float) -> float:
    """Linear-interpolation percentile (numpy's default method), q in [0, 100]."""
    ordered = sorted(values)
    if not ordered:
        raise ValueError("percentile of no values")
    pos = (len(ordered) - 1) * q / 100.0
    lo = int(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def _time_cuda(model, inputs, runs: int, device: torch.device) -> list[float]:
    starts = [torch.cuda.Event(enable_timing=True) for _ in range(runs)]
    ends = [torch.cuda.Event(enable_timing=True) for _ in range(runs)]
    torch.cuda.synchronize(device)
    for start, end in zip(starts, ends):
        start.record()
        model(*inputs)
        end.record()
    torch.cuda.synchronize(device)
    return [s.elapsed_time(e) for s, e in zip(starts, ends)]


def _time_cpu(model, inputs, runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        model(*inputs)
        times.append((time.perf_counter() - t0) * 1000.0)
    return times


def measure_latency(model: nn.Module, inputs: Any, *, warmup: int = 3, runs: int = 10) -> LatencyStats:
    if runs < 1 or warmup < 0:
        raise ValueError(f"latency: need runs >= 1 and warmup >= 0 (got runs={runs}, warmup={warmup})")
    inputs = (inputs,) if isinstance(inputs, torch.Tensor) else tuple(inputs)
    device = device_of(inputs, model)
    with torch.inference_mode():
        for _ in range(warmup):
            model(*inputs)
        if device.type == "cuda":
            with torch.cuda.device(device):
                times = _time_cuda(model, inputs, runs, device)
            timer = "cuda_event"
        else:
            times = _time_cpu(model, inputs, runs)
            timer = "perf_counter"
    return LatencyStats(
        median_ms=statistics.median(times),
        p90_ms=percentile(times, 90),
        mean_ms=statistics.fmean(times),
        std_ms=statistics.stdev(times) if len(times) > 1 else 0.0,
        min_ms=min(times),
        max_ms=max(times),
        runs=runs,
        warmup=warmup,
        device=str(device),
        timer=timer,
        threads=torch.get_num_threads(),
        times_ms=times,
    )
