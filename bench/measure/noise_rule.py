"""The latency noise rule's limits and its one-line explanation, without torch: the sweep's driver prints the
explanation and should not import torch only for that (it costs the driver about 2 s on 2 cores, part of the
sweep's Ray overhead, docs/performance.md). The rule itself: bench/measure/latency.py (one process's rounds) and
bench/measure/processes/fresh_processes.py (the pool of processes)."""
from __future__ import annotations

import math

NOISE_THRESHOLD = 0.10  # a round is noisy when its IQR exceeds this fraction of its median
SE_THRESHOLD = 0.035  # the pool grows while its relative standard error (bench/measure/processes/fresh_processes.py) exceeds this
BLOCK_S = 20.0  # the pool's standard error is over blocks of its time this long: nearly independent draws of the host's speed
# In-process timing (bench/measure/latency.py) is settled when two consecutive steady rounds' medians are within this
# fraction of each other: half the 10% that two sweeps must agree within.
SETTLE_TOLERANCE = 0.05
SETTLE_ROUNDS = 2  # so it takes this many rounds at least (the sweep's cost estimate counts them)
CUDA_WARMUP_S = 1.0  # CUDA warm-up lasts this long at least: GPUs raise their clocks under load
# ... and goes on until NVML's SM clock readings agree (bench/measure/gpu_state.py clocks_settled), for this long at most
CUDA_WARMUP_MAX_S = 20.0
# On CUDA a round also counts as settled only when the GPU's state did not change during it (gpu_state.changes): a
# round timed while the clocks rose or fell is flagged with the reason and timing goes on.
# A CUDA round goes on past `runs` until it has lasted this long, so that two rounds compared by the settle rule are
# apart in time, not a few milliseconds of one state (a 5-ms model's 10 runs take 0.05 s).
CUDA_ROUND_MIN_S = 0.25


UNSETTLED = (f"its rounds never settled: IQR above {NOISE_THRESHOLD * 100:g}% of the median, or two consecutive "
             f"rounds' medians more than {SETTLE_TOLERANCE * 100:g}% apart")


def noise_reason(row: dict) -> str:
    """Why a row's latency is marked noisy, in a few words (for warnings): its `latency_noisy_reason` when it has one
    (the GPU changed during timing, bench/measure/gpu_state.py), else from its pool's figures."""
    recorded = row.get("latency_noisy_reason")
    if isinstance(recorded, str) and recorded:
        return recorded
    se, procs, span = row.get("latency_se_pct"), row.get("latency_processes"), row.get("latency_span_s")
    bound = row.get("latency_bound_s")
    if isinstance(bound, (int, float)) and not math.isnan(bound):
        over = f" over {span:.0f} s" if isinstance(span, (int, float)) and not math.isnan(span) else ""
        from bench.results.text_table import plural

        n = plural(int(procs), "process", "processes") if isinstance(procs, (int, float)) else "its processes"
        return (f"the measurement phase reached its time bound (measure.max_phase_s = {bound:g} s) after "
                f"{n}{over}, before the pool met its rule (measure.span_s, a standard error under "
                f"{SE_THRESHOLD * 100:g}%)")
    if isinstance(se, (int, float)) and not math.isnan(se) and se > SE_THRESHOLD * 100:
        over = (f"{procs} processes over {span:.0f} s" if isinstance(span, (int, float)) and not math.isnan(span)
                else f"{procs} processes")
        return f"its standard error over {over} is {se:.1f}% of the mean (limit {SE_THRESHOLD * 100:g}%)"
    if isinstance(procs, (int, float)) and not math.isnan(procs) and procs > 0:
        return f"IQR above {NOISE_THRESHOLD * 100:g}% of the median over its {int(procs)} process(es)"
    return UNSETTLED
