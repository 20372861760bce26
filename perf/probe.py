"""Peak memory of one benchmark case in a fresh process: `python -m perf.probe '<spec json>'`.

Prints one JSON line {"peak_mb", "before_mb", "method"}. The case is built and its inputs and weights are
touched first; then the peak of `repeat` calls is measured as growth over the memory held before them:
- CPU: the kernel's RSS high-water mark, reset via /proc/self/clear_refs ("5") just before the calls and
  read from VmHWM after (page-exact; the process is fresh, so no allocator cache from earlier cases hides
  growth). Without clear_refs, the lifetime VmHWM is used and the method says so.
- CUDA: torch.cuda.max_memory_allocated after reset_peak_memory_stats, minus memory_allocated before
  (tensor memory, not the caching allocator's reserve).
"""
from __future__ import annotations

import gc
import json
import sys

import torch

from bench.measure.memory import reset_rss_peak, rss_bytes, rss_peak_bytes  # the same /proc high-water mark
from perf.cases import build


def measure(spec: dict, repeat: int = 1) -> dict:
    torch.set_num_threads(int(spec.get("threads", torch.get_num_threads())))
    built = build(spec)
    with torch.no_grad():
        if built.module is not None:
            for t in list(built.module.parameters()) + list(built.module.buffers()):
                t.sum()
        for x in built.inputs:
            for t in (x.values() if isinstance(x, dict) else [x]):
                if isinstance(t, torch.Tensor):
                    t.sum()
    gc.collect()
    device = torch.device(spec.get("device", "cpu"))
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        before = torch.cuda.memory_allocated(device)
        for _ in range(repeat):
            built.call()
        torch.cuda.synchronize(device)
        peak, method = torch.cuda.max_memory_allocated(device), "cuda_max_memory_allocated"
    else:
        reset = reset_rss_peak()
        before = rss_bytes()
        for _ in range(repeat):
            built.call()
        peak = rss_peak_bytes()
        method = "rss_hwm_clear_refs_fresh_process" if reset else "rss_lifetime_hwm_fresh_process"
    return {"peak_mb": max(peak - before, 0) / 2**20, "before_mb": before / 2**20, "method": method}


if __name__ == "__main__":
    print(json.dumps(measure(json.loads(sys.argv[1]), int(sys.argv[2]) if len(sys.argv) > 2 else 1)))
