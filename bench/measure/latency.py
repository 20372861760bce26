"""Inference latency: warm-up runs, then N timed runs of `model(*inputs)` under torch.inference_mode().

CUDA: one pair of torch.cuda.Events per run on the current stream, synchronised before the first and after the
last run (so queued work never leaks into a timing). CPU: time.perf_counter around each call, which is
synchronous there; the intra-op thread count is recorded because it decides CPU latency.

Noise rule: a round of N timed runs is noisy when its IQR is more than NOISE_THRESHOLD (10%) of its median. With
`rounds` > 1 the timing goes on, round after round, until it has *settled*: two consecutive rounds are both steady
and their medians are within SETTLE_TOLERANCE (5%) of each other; the later of the two is reported. A small IQR
alone does not show a steady state: on an H200 a first round was steady at 29.5 ms on a machine started a minute
before (cause not established: the GPU's clocks or the host feeding it), and the same model took 20.6 ms one
minute later (docs/performance.md, "Round 8"). When `rounds` run out first, the latest steady round is reported,
else the round with the smallest IQR/median, and the result is marked `noisy`. `rounds` = 1 times one round and
only applies the IQR test. Warm-up runs once, before the first round. On CUDA it also lasts at least CUDA_WARMUP_S
seconds, so that the GPU's clocks have risen before any run is timed, and each round times `runs` runs at a time
until it has lasted CUDA_ROUND_MIN_S, so that two rounds are apart in time. The host's 1-minute load average is
recorded before the first and after the last round, so a reader can see what else the machine was doing.

GPU state (CUDA, bench/measure/gpu_state.py): NVML's clocks, power, temperature and throttle reasons are read before and
after every round. The warm-up goes on (up to CUDA_WARMUP_MAX_S) until the SM clock readings agree; a round during
which the GPU's state changed is not settled, and when the reported round is such a round, the result is `noisy`
with the change as its `noisy_reason`. Without NVML the readings are `unavailable` and the rule is as before."""
from __future__ import annotations

import os
import statistics
import time
from dataclasses import dataclass, field
from typing import Any, Sequence

import torch
from torch import nn

from bench.measure.gpu_state import CLOCK_READ_INTERVAL_S, GpuProbe, GpuState, changes, clocks_settled
from bench.measure.noise_rule import (
    CUDA_ROUND_MIN_S, CUDA_WARMUP_MAX_S, CUDA_WARMUP_S, NOISE_THRESHOLD, SETTLE_TOLERANCE, UNSETTLED,
)


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
    iqr_ms: float = 0.0  # 75th minus 25th percentile of the kept round
    noisy: bool = False  # the rounds never settled (see the module's noise rule)
    rounds: int = 1  # rounds of `runs` timed runs made (the kept one is reported)
    loadavg_before: float | None = None  # host 1-minute load average; None where the OS has none
    loadavg_after: float | None = None
    processes: int = 0  # fresh processes pooled (bench.measure.processes.fresh_processes); 0: timed in the calling process
    process_medians_ms: list[float] = field(repr=False, default_factory=list)
    rel_se: float | None = None  # the pool's relative standard error (bench.measure.processes.fresh_processes)
    span_s: float | None = None  # seconds from the pool's first timed run to its last
    blocks: int = 0  # time blocks behind rel_se (0: it is over the processes' medians)
    noisy_reason: str = ""  # why `noisy` ("" when it is not)
    gpu_before: GpuState | None = None  # the GPU before and after the reported round (None: not a GPU timing)
    gpu_after: GpuState | None = None
    bound_s: float | None = None  # the pool's time bound, when it cut the pool short (then noisy); None otherwise

    @property
    def spread(self) -> float:
        """IQR / median of the kept round (0 when the median is 0)."""
        return self.iqr_ms / self.median_ms if self.median_ms > 0 else 0.0


DEFAULT_ROUNDS = 5  # settling takes two rounds at least; three more leave room for a slow start or a noisy round


def loadavg() -> float | None:
    try:
        return round(os.getloadavg()[0], 2)
    except (OSError, AttributeError):
        return None


def iqr(values: Sequence[float]) -> float:
    """75th minus 25th linear-interpolation percentile: the IQR of every latency the suite reports."""
    return percentile(values, 75) - percentile(values, 25)


def spread_of(times: Sequence[float]) -> float:
    med = statistics.median(times)
    return iqr(times) / med if med > 0 else 0.0


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


def time_cuda_runs(fn, inputs, runs: int, device: torch.device) -> list[float]:
    """ms of each of `runs` calls `fn(*inputs)`: a pair of CUDA events per call on the current stream, synchronised
    before the first call and after the last."""
    starts = [torch.cuda.Event(enable_timing=True) for _ in range(runs)]
    ends = [torch.cuda.Event(enable_timing=True) for _ in range(runs)]
    torch.cuda.synchronize(device)
    for start, end in zip(starts, ends):
        start.record()
        fn(*inputs)
        end.record()
    torch.cuda.synchronize(device)
    return [s.elapsed_time(e) for s, e in zip(starts, ends)]


def time_cpu_runs(fn, inputs, runs: int) -> list[float]:
    """ms of each of `runs` calls `fn(*inputs)` by perf_counter (a CPU call is synchronous)."""
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn(*inputs)
        times.append((time.perf_counter() - t0) * 1000.0)
    return times


def time_wall_and_cpu(call, device: torch.device) -> tuple[float, float]:
    """(wall ms, process CPU ms) of one `call()`. CPU time (all threads) is far less sensitive than wall time to
    other processes competing for the cores; with T threads and no contention it is about T x wall. On CUDA, the
    GPU's time by events, and no CPU figure (NaN)."""
    if device.type == "cuda":
        return time_cuda_runs(call, (), 1, device)[0], float("nan")
    c0, t0 = time.process_time(), time.perf_counter()
    call()
    return (time.perf_counter() - t0) * 1000.0, (time.process_time() - c0) * 1000.0


def _settled(times: list[float], previous: list[float] | None, noise_threshold: float) -> bool:
    """Both rounds steady and their medians within SETTLE_TOLERANCE of each other."""
    if previous is None or spread_of(times) > noise_threshold or spread_of(previous) > noise_threshold:
        return False
    before, now = statistics.median(previous), statistics.median(times)
    return before > 0 and abs(now - before) / before <= SETTLE_TOLERANCE


def warm_up(model, inputs, warmup: int, min_seconds: float, device: torch.device, gpu: GpuProbe | None = None,
            max_seconds: float = CUDA_WARMUP_MAX_S) -> None:
    """`warmup` runs, then more until `min_seconds` have passed (none when `warmup` is 0). On CUDA each run is waited
    for, so that the seconds are the GPU's and no backlog of queued runs spills into the first timed round. With a
    GPU probe it goes on until two readings of the clocks CLOCK_READ_INTERVAL_S apart agree, up to `max_seconds`."""
    t0 = time.perf_counter()
    done = 0
    previous, read_at = None, None

    def clocks_ready() -> bool:
        nonlocal previous, read_at
        if gpu is None or time.perf_counter() - t0 >= max_seconds:
            return True
        if read_at is not None and time.perf_counter() - read_at < CLOCK_READ_INTERVAL_S:
            return False
        now, read_at = gpu.read(), time.perf_counter()
        settled, previous = clocks_settled(previous, now), now
        return settled

    while done < warmup or (done and (time.perf_counter() - t0 < min_seconds or not clocks_ready())):
        model(*inputs)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        done += 1


def measure_latency(model: nn.Module, inputs: Any, *, warmup: int = 3, runs: int = 10, rounds: int = 1,
                    noise_threshold: float = NOISE_THRESHOLD, warmup_s: float | None = None,
                    round_min_s: float | None = None, gpu: GpuProbe | None = None,
                    warmup_max_s: float = CUDA_WARMUP_MAX_S) -> LatencyStats:
    """`rounds` > 1 times until two consecutive rounds agree (see the module's noise rule); warm-up runs once, before
    the first round, for `warmup` runs and at least `warmup_s` seconds. A round times `runs` runs at a time until it
    has lasted `round_min_s` seconds. None: CUDA_WARMUP_S and CUDA_ROUND_MIN_S on CUDA, 0 on CPU. The record's
    `runs` is the reported round's count. `gpu`: the probe of the GPU's state; None: NVML's for a CUDA device, none
    on CPU (a test passes one built on a recorded NVML to check the rule anywhere). `warmup_max_s`: the longest the
    warm-up waits for the clocks to settle."""
    if runs < 1 or warmup < 0 or rounds < 1:
        raise ValueError(f"latency: need runs >= 1, warmup >= 0 and rounds >= 1 "
                         f"(got runs={runs}, warmup={warmup}, rounds={rounds})")
    inputs = (inputs,) if isinstance(inputs, torch.Tensor) else tuple(inputs)
    device = device_of(inputs, model)
    on_cuda = device.type == "cuda"
    warmup_s = (CUDA_WARMUP_S if on_cuda else 0.0) if warmup_s is None else warmup_s
    round_min_s = (CUDA_ROUND_MIN_S if on_cuda else 0.0) if round_min_s is None else round_min_s
    if gpu is None and on_cuda:
        gpu = GpuProbe(device.index if device.index is not None else torch.cuda.current_device())
    load_before = loadavg()
    made_rounds: list[list[float]] = []
    states: list[tuple[GpuState | None, GpuState | None, list[str]]] = []  # per round: before, after, changes
    settled = False
    with torch.inference_mode():
        warm_up(model, inputs, warmup, warmup_s, device, gpu, warmup_max_s)
        timer = "cuda_event" if on_cuda else "perf_counter"
        while len(made_rounds) < rounds:
            times: list[float] = []
            before = gpu.read() if gpu is not None else None
            round_start = time.perf_counter()
            while not times or time.perf_counter() - round_start < round_min_s:
                if on_cuda:
                    with torch.cuda.device(device):
                        times += time_cuda_runs(model, inputs, runs, device)
                else:
                    times += time_cpu_runs(model, inputs, runs)
            after = gpu.read() if gpu is not None else None
            changed = changes(before, after) if gpu is not None else []
            previous = made_rounds[-1] if made_rounds else None
            made_rounds.append(times)
            states.append((before, after, changed))
            if rounds == 1:
                settled = spread_of(times) <= noise_threshold and not changed
            else:
                settled = _settled(times, previous, noise_threshold) and not changed
            if settled:
                break
    made = len(made_rounds)
    if settled:
        k = made - 1
    else:  # the latest steady round of one GPU state, else the latest steady one, else the least spread
        steady = [i for i, t in enumerate(made_rounds) if spread_of(t) <= noise_threshold]
        calm = [i for i in steady if not states[i][2]]
        k = (calm or steady or [min(range(made), key=lambda i: spread_of(made_rounds[i]))])[-1]
    times = made_rounds[k]
    gpu_before, gpu_after, changed = states[k]
    reasons = list(changed) + ([] if settled or changed else [UNSETTLED])
    return LatencyStats(
        median_ms=statistics.median(times),
        p90_ms=percentile(times, 90),
        mean_ms=statistics.fmean(times),
        std_ms=statistics.stdev(times) if len(times) > 1 else 0.0,
        min_ms=min(times),
        max_ms=max(times),
        runs=len(times),
        warmup=warmup,
        device=str(device),
        timer=timer,
        threads=torch.get_num_threads(),
        times_ms=times,
        iqr_ms=iqr(times),
        noisy=not settled,
        noisy_reason="; ".join(reasons) if not settled else "",
        gpu_before=gpu_before,
        gpu_after=gpu_after,
        rounds=made,
        loadavg_before=load_before,
        loadavg_after=loadavg(),
    )
