"""Measurement: MACs (fvcore), parameters, latency, peak memory, environment. Conventions: docs/measurement.md."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Optional

import torch
from torch import nn

from bench.measure import gpu_state
from bench.measure.environment import environment
from bench.measure.ifa_on_gpu import RAN_KEYS, what_ran
from bench.measure.processes.fresh_processes import LatencyJob, pooled_latencies
from bench.measure.latency import DEFAULT_ROUNDS, LatencyStats, measure_latency
from bench.measure.macs import MacCount, count_macs
from bench.measure.noise_rule import noise_reason
from bench.measure.memory import MemoryStats, measure_peak_memory
from bench.measure.params import ParamCount, count_params
from bench.host.compiled import forget_compiled_graphs, is_compiled, uncompiled
from bench.results.schema import MEASUREMENTS, SWEEP_MEASUREMENTS

__all__ = [
    "LatencyStats", "MacCount", "MemoryStats", "ParamCount", "RECORD_KEYS", "count_macs", "count_params",
    "environment", "measure_latency", "measure_model", "measure_models", "measure_peak_memory", "ModelToMeasure",
]

# what measure_model returns, in the results' order (bench/results/schema.py); the sweep adds where it measured
MEASUREMENT_KEYS = [k for k in MEASUREMENTS if k not in SWEEP_MEASUREMENTS]
# then what IFA ran as (its formulation and kernels, "" for other heads) and the environment
RECORD_KEYS = MEASUREMENT_KEYS + list(RAN_KEYS) + list(environment().keys())


def _validate_size(input_size) -> tuple[int, int]:
    try:
        h, w = (int(v) for v in input_size)
    except (TypeError, ValueError):
        raise ValueError(f"input_size: expected (H, W), got {input_size!r}") from None
    if h < 1 or w < 1:
        raise ValueError(f"input_size: H and W must be positive, got {h}x{w}")
    return h, w


@dataclass
class ModelToMeasure:
    """measure_model's arguments for one model of measure_models."""
    segmentor: nn.Module
    input_size: tuple = (512, 1024)
    warmup: int = 3
    runs: int = 10
    latency: bool = True
    memory: bool = True
    macs: Optional[MacCount] = None
    rounds: int = DEFAULT_ROUNDS
    processes: int = 0
    max_processes: Optional[int] = None
    span_s: float = 0.0


def measure_model(
    segmentor: nn.Module,
    input_size=(512, 1024),
    device="cpu",
    dtype: torch.dtype = torch.float32,
    warmup: int = 3,
    runs: int = 10,
    latency: bool = True,
    memory: bool = True,
    *,
    macs: Optional[MacCount] = None,
    rounds: int = DEFAULT_ROUNDS,
    processes: int = 0,
    max_processes: Optional[int] = None,
    span_s: float = 0.0,
) -> dict:
    """One flat record (RECORD_KEYS) for a batch-1 inference of `segmentor` at `input_size`, in eval mode.

    The model is moved to `device`/`dtype` (with `.to`; the device is never hard-coded) and put back in its training mode afterwards.
    The auxiliary head only runs in training, so it is neither traced nor timed; its parameters are excluded.
    Keys that were not measured (latency=False, memory=False) are None. Pass `macs` to reuse a count.
    A noisy latency round is repeated up to `rounds` rounds (bench.measure.latency's noise rule).
    With `processes` > 0, CPU latency is timed in at least that many fresh processes over at least `span_s` seconds
    instead, and pooled (bench.measure.processes.fresh_processes: why, and its noise rule), up to `max_processes` processes
    (None: 4x) while the pool is imprecise; `rounds` does not apply there. CUDA latency is always timed in this
    process.
    """
    spec = ModelToMeasure(segmentor, input_size, warmup=warmup, runs=runs, latency=latency, memory=memory, macs=macs,
                          rounds=rounds, processes=processes, max_processes=max_processes, span_s=span_s)
    return measure_models([spec], device=device, dtype=dtype)[0]


def measure_models(specs: list[ModelToMeasure], device="cpu", dtype: torch.dtype = torch.float32, *,
                   max_pool_s: float | None = None, on_slot=None) -> list[dict]:
    """measure_model for several models, one record each, in order. GMACs, parameters and memory are taken model by
    model; the CPU latency pools (processes > 0) are then one pool whose models take turns
    (bench.measure.processes.fresh_processes.pooled_latencies), so a drift of the host's speed cannot favour one model.
    `max_pool_s` bounds that pool's time and `on_slot(slot, jobs)` follows it (pooled_latencies)."""
    sizes = [_validate_size(spec.input_size) for spec in specs]
    device = torch.device(device)
    was_training = [spec.segmentor.training for spec in specs]
    parts: list[dict] = []
    try:
        for spec, (h, w) in zip(specs, sizes):
            started_at = _now()
            spec.segmentor.eval().to(device=device, dtype=dtype)
            generator = torch.Generator().manual_seed(0)
            images = torch.randn(1, 3, h, w, generator=generator, dtype=dtype).to(device)
            with uncompiled(spec.segmentor):  # fvcore traces, and the memory probe pickles, the eager module
                parts.append({
                    "started_at": started_at, "images": images, "size": (h, w),
                    "macs": spec.macs if spec.macs is not None else count_macs(spec.segmentor, images),
                    "params": count_params(spec.segmentor),
                    "mem": measure_peak_memory(spec.segmentor, images) if spec.memory else None, "lat": None,
                })
        # a compiled model (model.compile) is timed in this process: a fresh process would compile it again
        pooled = [i for i, spec in enumerate(specs) if spec.latency and spec.processes > 0 and device.type == "cpu"
                  and not is_compiled(spec.segmentor)]
        jobs = [LatencyJob(specs[i].segmentor, parts[i]["images"], warmup=specs[i].warmup, runs=specs[i].runs,
                           processes=specs[i].processes, max_processes=specs[i].max_processes,
                           span_s=specs[i].span_s) for i in pooled]
        for i, lat in zip(pooled, pooled_latencies(jobs, max_s=max_pool_s, on_slot=on_slot)):
            parts[i]["lat"], parts[i]["finished_at"] = lat, _now()
        for spec, part in zip(specs, parts):
            if spec.latency and part["lat"] is None:
                if is_compiled(spec.segmentor):  # timed as a fresh process compiles it, whatever ran before
                    forget_compiled_graphs()
                part["lat"] = measure_latency(spec.segmentor, part["images"], warmup=spec.warmup, runs=spec.runs,
                                              rounds=spec.rounds)
            part.setdefault("finished_at", _now())
            part["ran"] = what_ran(spec.segmentor)
    finally:
        for spec, mode in zip(specs, was_training):
            spec.segmentor.train(mode)
    env = environment(device, dtype)
    return [_record(part, env, device) for part in parts]


def _record(part: dict, env: dict, device: torch.device) -> dict:
    macs, params, mem, lat = part["macs"], part["params"], part["mem"], part["lat"]
    h, w = part["size"]
    record = {
        "gmacs": macs.gmacs,
        "gmacs_backbone": macs.gmacs_of("backbone"),
        "gmacs_head": macs.gmacs_of("head"),
        "params_m": params.total / 1e6,
        "params_backbone_m": params.backbone / 1e6,
        "params_head_m": params.head / 1e6,
        "latency_ms_median": lat.median_ms if lat else None,
        "latency_ms_p90": lat.p90_ms if lat else None,
        "latency_ms_mean": lat.mean_ms if lat else None,
        "latency_ms_std": lat.std_ms if lat else None,
        "peak_mem_mb": mem.peak_mb if mem else None,
        "measure_input": f"{h}x{w}",
        "unsupported_ops": macs.unsupported_summary(),
        "latency_ms_min": lat.min_ms if lat else None,
        "latency_ms_iqr": lat.iqr_ms if lat else None,
        "latency_runs": lat.runs if lat else None,
        "latency_noisy": lat.noisy if lat else None,
        "loadavg_before": lat.loadavg_before if lat else None,
        "loadavg_after": lat.loadavg_after if lat else None,
        "latency_processes": lat.processes if lat else None,
        "latency_se_pct": (None if lat is None or lat.rel_se is None else round(lat.rel_se * 100, 2)),
        "latency_span_s": (None if lat is None or lat.span_s is None else round(lat.span_s, 1)),
        "latency_noisy_reason": lat.noisy_reason if lat else "",
        **gpu_state.columns(lat.gpu_before if lat else None, lat.gpu_after if lat else None),
        "latency_bound_s": lat.bound_s if lat else None,
    }
    if record["latency_noisy"] and not record["latency_noisy_reason"]:  # a pool's: from its figures
        record["latency_noisy_reason"] = noise_reason(record)
    record.update(
        measure_batch=int(part["images"].shape[0]), measure_dtype=env["dtype"], measure_threads=env["threads"],
        measure_device=device.type, measure_device_name=env["device_name"],
        measure_started_at=part["started_at"], measure_finished_at=part["finished_at"],
    )
    return {**{k: record[k] for k in MEASUREMENT_KEYS}, **part["ran"], **env}


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="microseconds")
