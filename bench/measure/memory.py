"""Peak memory of one inference forward pass, as the *increase* over the memory held just before it
(weights and input already resident), in MiB (2**20 bytes). See docs/measurement.md.

CUDA: torch.cuda.max_memory_allocated after reset_peak_memory_stats, minus memory_allocated before (tensor
memory only; the caching allocator's reserve and the CUDA context are not counted).

CPU: process RSS. ru_maxrss is a lifetime peak and the allocator keeps freed memory, so the forward runs in a
fresh process (multiprocessing "spawn") that receives a copy of the model and input, touches them, records
RSS, resets the kernel's high-water mark (write "5" to /proc/self/clear_refs) and reads VmHWM after the
forward. That is exact at page granularity. Where clear_refs is not writable (non-Linux, locked-down
kernels) a thread samples RSS with psutil every 1 ms instead; it can miss a peak that lives under ~1 ms.
"""
from __future__ import annotations

import gc
import re
import threading
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from bench.measure.processes.isolated import run_in_fresh_process
from bench.measure.latency import device_of

MIB = 2**20
_SAMPLE_INTERVAL_S = 0.001


@dataclass(frozen=True)
class MemoryStats:
    peak_mb: float  # peak during the forward minus memory before it
    before_mb: float  # memory held before the forward (weights, input, runtime)
    device: str
    method: str  # "cuda_max_memory_allocated" | "rss_hwm_clear_refs" | "rss_psutil_sampling_1ms"


def _status_kib(key: str) -> int:
    with open("/proc/self/status") as f:
        return int(re.search(rf"^{key}:\s+(\d+) kB", f.read(), re.M).group(1))


def rss_bytes() -> int:
    """This process's resident set size now (Linux /proc)."""
    return _status_kib("VmRSS") * 1024


def rss_peak_bytes() -> int:
    """This process's RSS high-water mark since it started or since the last reset_rss_peak (Linux /proc)."""
    return _status_kib("VmHWM") * 1024


def reset_rss_peak() -> bool:
    """Reset the kernel's RSS high-water mark to the current RSS (write "5" to /proc/self/clear_refs); False where
    that is not possible, and rss_peak_bytes is then the process's lifetime peak."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        _status_kib("VmHWM")
        return True
    except (OSError, AttributeError):
        return False


class _RssSampler(threading.Thread):
    def __init__(self):
        super().__init__(daemon=True)
        import psutil

        self._process = psutil.Process()
        self._stop_event = threading.Event()
        self.peak = self._process.memory_info().rss

    def run(self):
        while not self._stop_event.is_set():
            self.peak = max(self.peak, self._process.memory_info().rss)
            self._stop_event.wait(_SAMPLE_INTERVAL_S)

    def stop(self) -> int:
        self._stop_event.set()
        self.join()
        self.peak = max(self.peak, self._process.memory_info().rss)
        return self.peak


def _touch(model: nn.Module, inputs) -> None:
    # Fault in every page of weights and input so they count as "before", not as the forward's growth.
    with torch.inference_mode():
        for t in list(model.parameters()) + list(model.buffers()):
            t.sum()
        stack = list(inputs)
        while stack:
            x = stack.pop()
            if isinstance(x, torch.Tensor):
                x.sum()
            elif isinstance(x, dict):
                stack.extend(x.values())
            elif isinstance(x, (list, tuple)):
                stack.extend(x)


def _cpu_peak_in_this_process(model: nn.Module, inputs) -> tuple[int, int, str]:
    """(before_bytes, peak_bytes, method). Meant for a fresh process."""
    _touch(model, inputs)
    gc.collect()
    use_hwm = reset_rss_peak()
    if use_hwm:
        before = rss_bytes()
        with torch.inference_mode():
            model(*inputs)
        return before, rss_peak_bytes(), "rss_hwm_clear_refs"
    import psutil

    before = psutil.Process().memory_info().rss
    sampler = _RssSampler()
    sampler.start()
    try:
        with torch.inference_mode():
            model(*inputs)
    finally:
        peak = sampler.stop()
    return before, peak, "rss_psutil_sampling_1ms"


def _cpu_peak_isolated(model: nn.Module, inputs, timeout_s: float) -> tuple[int, int, str]:
    return run_in_fresh_process(_cpu_peak_in_this_process, (model, inputs), what="memory", timeout_s=timeout_s)


def _cuda_peak(model: nn.Module, inputs, device: torch.device) -> tuple[int, int, str]:
    with torch.cuda.device(device):
        torch.cuda.synchronize(device)
        gc.collect()
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
        before = torch.cuda.memory_allocated(device)
        with torch.inference_mode():
            model(*inputs)
        torch.cuda.synchronize(device)
        return before, torch.cuda.max_memory_allocated(device), "cuda_max_memory_allocated"


def measure_peak_memory(
    model: nn.Module, inputs: Any, *, isolate: bool = True, timeout_s: float = 1800.0
) -> MemoryStats:
    """Peak memory of one `model(*inputs)` under inference_mode. On CPU with isolate=False the measurement
    runs in this process (faster, but the allocator's cached memory from earlier work can hide growth)."""
    inputs = (inputs,) if isinstance(inputs, torch.Tensor) else tuple(inputs)
    device = device_of(inputs, model)
    if device.type == "cuda":
        before, peak, method = _cuda_peak(model, inputs, device)
    elif isolate:
        before, peak, method = _cpu_peak_isolated(model, inputs, timeout_s)
    else:
        before, peak, method = _cpu_peak_in_this_process(model, inputs)
    return MemoryStats(
        peak_mb=max(peak - before, 0) / MIB, before_mb=before / MIB, device=str(device), method=method
    )
