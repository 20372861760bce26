"""Typed experiment config: dataset, model, schedule, evaluation protocol, measurement options.

One YAML file = one ExperimentConfig. Sweeps override keys by dotted path (e.g. `model.head.name`).
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, PositiveFloat, PositiveInt, model_validator

from bench.host.budget import MAX_ITERATIONS
from bench.config.formulation import hashed_formulation
from bench.config.key_conflict import key_conflict
from bench.config.model import ModelConfig
from bench.config.safe_name import SafeName
from bench.config.query_stride import check_query_stride, omit_unset_stride, only_ifa_queries, stride_one_implies_label
from bench.config.strict_numbers import refuse_bool_numbers

DatasetName = Literal["cityscapes", "ade20k", "pascal_context_59", "pascal_context_60", "synthetic"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)  # nan/inf: never a setting

    _no_bool_numbers = model_validator(mode="before")(classmethod(refuse_bool_numbers))


MAX_THREADS = 1024  # intra-op threads (train.threads, measure.threads)
MAX_WORKERS = 64  # data loader processes: each is a process of its own; more than a node's cores only costs memory


class DataConfig(_Strict):
    dataset: DatasetName
    root: Path
    # synthetic only: write the dataset (Cityscapes layout) under `root` if it is not there yet.
    generate: bool = False
    synthetic_size: tuple[PositiveInt, PositiveInt] = (128, 256)  # (H, W) of generated images
    synthetic_train: PositiveInt = 64
    synthetic_val: PositiveInt = 16
    train_split: str = "train"
    val_split: str = "val"
    crop_size: tuple[PositiveInt, PositiveInt] = (512, 1024)  # (H, W)
    scale_range: tuple[float, float] = (0.5, 2.0)
    base_size: Optional[tuple[PositiveInt, PositiveInt]] = None  # (H, W) the scale factors apply to
    cat_max_ratio: float = Field(1.0, gt=0, le=1)  # random crop: max share of one category
    flip: bool = True
    photometric: bool = True
    # resize only the random crop's window instead of the whole rescaled image (bench/data/transforms.py
    # random_rescale_crop): same draws and labels, image values within 1; docs/performance.md has the speed
    crop_first: bool = False
    mean: tuple[float, float, float] = (123.675, 116.28, 103.53)
    std: tuple[float, float, float] = (58.395, 57.12, 57.375)
    num_workers: int = Field(2, ge=0, le=MAX_WORKERS)  # loader processes per trial

    @model_validator(mode="after")
    def _check(self):
        lo, hi = self.scale_range
        if not 0 < lo <= hi:
            raise ValueError("scale_range must be (low, high) with 0 < low <= high")
        return self


class TrainConfig(_Strict):
    iterations: PositiveInt = Field(1000, le=MAX_ITERATIONS)  # bench/host/budget.py
    batch_size: PositiveInt = 8  # global batch (split over DDP workers)
    lr: float = Field(0.01, gt=0)
    head_lr_mult: float = Field(10.0, gt=0)
    momentum: float = Field(0.9, ge=0, lt=1)
    weight_decay: float = Field(5e-4, ge=0)
    poly_power: float = Field(0.9, ge=0)
    min_lr: float = Field(1e-4, ge=0)
    warmup_iters: int = Field(0, ge=0, le=MAX_ITERATIONS)
    warmup_ratio: float = Field(1e-6, gt=0, le=1)
    loss: Literal["ce", "ohem"] = "ce"
    ohem_thresh: float = Field(0.7, gt=0, le=1)
    ohem_min_kept: PositiveInt = 100_000
    ignore_index: int = 255
    amp: Literal["none", "bf16", "fp16"] = "none"  # fp16: CUDA only; bf16 on CUDA and CPU (autocast)
    channels_last: bool = False  # weights and input batches in channels-last memory format
    device: Literal["auto", "cpu", "cuda"] = "auto"
    threads: Optional[PositiveInt] = Field(None, le=MAX_THREADS)  # CPU intra-op threads
    deterministic: bool = True
    checkpoint_every: PositiveInt = 200
    log_every: PositiveInt = 10
    eval_every: Optional[PositiveInt] = None  # None: only at the end
    keep_checkpoints: PositiveInt = 2


class EvalConfig(_Strict):
    mode: Literal["whole", "slide"] = "whole"
    crop_size: Optional[tuple[PositiveInt, PositiveInt]] = None  # slide window; default: data.crop_size
    stride: Optional[tuple[PositiveInt, PositiveInt]] = None  # default: 2/3 of the window
    scales: tuple[PositiveFloat, ...] = Field((1.0,), min_length=1)
    flip: bool = False
    ifa_query: Literal["label", "upsample"] = "upsample"  # IFA: query at label resolution, or upsample stride-4 logits
    boundary_dilation_ratio: float = Field(0.02, gt=0)  # boundary IoU band: ratio of the image diagonal
    batch_size: PositiveInt = 1
    # IFA: query on the 1/stride grid of the output and upsample the rest (1 = label resolution); None: ifa_query's
    # own grid. Rules: bench/config/query_stride.py.
    ifa_query_stride: Optional[Literal[1, 2, 4]] = None

    _stride_1_means_label = model_validator(mode="before")(classmethod(stride_one_implies_label))
    _consistent_query = model_validator(mode="after")(check_query_stride)


def slide_stride_problem(ev: "EvalConfig", data_crop) -> Optional[str]:
    """Why a slide evaluation's stride cannot work (larger than its window: pixels left unpredicted), or None."""
    if ev.mode != "slide" or ev.stride is None:
        return None
    crop = ev.crop_size or data_crop
    if ev.stride[0] > crop[0] or ev.stride[1] > crop[1]:
        return (f"{ev.stride[0]}x{ev.stride[1]} is larger than the window {crop[0]}x{crop[1]} and would leave pixels "
                f"unpredicted")
    return None


DEFAULT_MEASURE_PROCESSES = 3
# 240 s since round 10: on a CPU host whose speed drifts, the latencies of separate sweeps agreed within 10% at 240 s
# (two runs of four sweeps) and not at 60 s (six runs); docs/measurement.md, docs/performance.md "Round 10"
DEFAULT_MEASURE_SPAN_S = 240.0
EARLIER_DEFAULT_SPANS_S = (60.0,)  # the defaults before that, kept out of the config hash like the current one
MAX_PROCESSES_FACTOR = 4  # without measure.max_processes the latency pool may grow to this many times processes


class MeasureConfig(_Strict):
    enabled: bool = True
    input_size: tuple[PositiveInt, PositiveInt] = (1024, 2048)
    warmup: int = Field(3, ge=0)
    runs: PositiveInt = 10
    latency: bool = True
    processes: int = Field(DEFAULT_MEASURE_PROCESSES, ge=0)  # fresh processes whose timed runs are pooled; 0: time in the measuring process
    # the pool's limit while it is imprecise (bench/measure/processes/fresh_processes.py); None: 4 x processes
    max_processes: Optional[PositiveInt] = None
    # the least time the pool of fresh processes spans (the host's speed drifts over tens of seconds); 0: one turn each
    span_s: float = Field(DEFAULT_MEASURE_SPAN_S, ge=0, le=3600)
    # a sweep's latency pool stops at the first round of turns after this many seconds; the models it cut short are
    # marked noisy with that reason (bench/measure/processes/fresh_processes.py); None: no bound
    max_phase_s: Optional[float] = Field(None, gt=0, le=86400)

    @model_validator(mode="after")
    def _check(self):
        if self.processes and self.max_processes is not None and self.max_processes < self.processes:
            raise key_conflict("max_processes", f"{self.max_processes} is below processes ({self.processes}): the "
                                                "pool starts with `processes` and grows up to `max_processes`")
        return self


MAX_SEED = 2**32 - 1  # numpy's and the data loaders' seeds are 32-bit


def model_for_hashing(model: dict) -> dict:
    """A model section (as JSON) without the keys added after trials and measurements were first keyed, while they
    are at their defaults, so that those keys stay what they were: how the model is compiled (`compile`, off; the
    cache folder never counts) and how IFA's fused head executes (`kernels` auto, no `cuda_graph`). The config hash
    and the sweep's measurement key both go through it."""
    model = {k: v for k, v in model.items() if k != "compile_cache" and not (k == "compile" and not v)}
    head = dict(model["head"])
    for key, default in (("kernels", "auto"), ("cuda_graph", False)):
        if head.get(key, default) == default:
            head.pop(key, None)
    return {**model, "head": head}


class ExperimentConfig(_Strict):
    name: SafeName = "experiment"
    seed: int = Field(0, ge=0, le=MAX_SEED)
    data: DataConfig
    model: ModelConfig
    train: TrainConfig = TrainConfig()
    eval: EvalConfig = EvalConfig()
    measure: MeasureConfig = MeasureConfig()

    _query_stride_needs_ifa = model_validator(mode="after")(only_ifa_queries)

    @model_validator(mode="after")
    def _slide_stride_fits(self):  # refused before training, not by the final evaluation
        problem = slide_stride_problem(self.eval, self.data.crop_size)
        if problem:
            raise key_conflict("eval.stride", problem)
        return self

    def config_hash(self) -> str:
        """Stable 12-hex-digit hash of everything that changes a result (not the run's name)."""
        payload = omit_unset_stride(self.model_dump(mode="json", exclude={"name"}))
        # added after trials were first hashed: at their defaults they stay out, so an existing sweep keeps its trial
        # folders (its measurements, keyed by the whole measure section, are taken again)
        # (the span only changes the measurement, which is keyed apart: at any default, past or present, it stays out)
        later = {"processes": (DEFAULT_MEASURE_PROCESSES,), "max_processes": (None,), "max_phase_s": (None,),
                 "span_s": (DEFAULT_MEASURE_SPAN_S, *EARLIER_DEFAULT_SPANS_S)}
        for section, key in (("data", "crop_first"), ("train", "channels_last")):
            if not payload[section].get(key):  # opt-in options added later: out of the hash while off
                payload[section].pop(key, None)
        payload["measure"] = {k: v for k, v in payload["measure"].items() if k not in later or v not in later[k]}
        head = payload["model"]["head"]
        if "formulation" in head:  # `auto` hashes as "fused", the default it replaced (bench/config/formulation.py)
            head["formulation"] = hashed_formulation(head["formulation"])
        payload["model"] = model_for_hashing(payload["model"])
        blob = json.dumps(payload, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()[:12]
