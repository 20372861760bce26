"""The measurement plan: which models a config measures, each in the IFA query mode it is evaluated in, and the
settings it is measured at. The sweep's measurement phase (bench/sweep/tasks/measurement.py) and `ifa-bench measure`
(bench/commands/measure.py) both measure what this plans; bench.measure.model measures it.

Torch-free: the sweep driver keys its measurements by the plan without loading torch. The threads a model is
timed with are a trial's (bench.sweep.spec.trials.Resources.threads), not part of the plan."""
from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Optional

from bench.config.experiment import ExperimentConfig, MeasureConfig
from bench.config.model import ModelConfig
from bench.config.query_stride import query_mode_of

# (label, head name, IFA formulation) of `ifa-bench measure --all`: every head on one backbone
ALL_HEADS = (
    ("IFA (reference)", "ifa", "reference"),
    ("IFA (fused)", "ifa", "fused"),
    ("Semantic-FPN", "fpn", None),
    ("PPM (PSPNet)", "ppm", None),
    ("OCR", "ocr", None),
)
HEAD_LABELS = {"fpn": "Semantic-FPN", "ppm": "PPM (PSPNet)", "ocr": "OCR", "fcn": "FCN"}


@dataclass(frozen=True)
class MeasureSettings:
    """bench.measure.model.ModelToMeasure's settings (all but the model and a reused MAC count)."""
    input_size: tuple[int, int]
    warmup: int
    runs: int
    latency: bool
    processes: int
    max_processes: Optional[int]
    span_s: float
    memory: bool = True


def settings_of(measure: MeasureConfig = MeasureConfig(), **given) -> MeasureSettings:
    """A config's measure section as settings; each of `given` that is not None replaces its value."""
    base = MeasureSettings(input_size=tuple(measure.input_size), warmup=measure.warmup, runs=measure.runs,
                           latency=measure.latency, processes=measure.processes,
                           max_processes=measure.max_processes, span_s=measure.span_s)
    return replace(base, **{k: v for k, v in given.items() if v is not None})


@dataclass(frozen=True)
class PlannedModel:
    label: str
    model: ModelConfig
    query: Optional[tuple[str, Optional[int]]]  # bench.config.query_stride.query_mode; None: the default mode
    settings: MeasureSettings

    def measure_kwargs(self) -> dict:
        """ModelToMeasure's keyword arguments besides the segmentor."""
        return asdict(self.settings)


def label(model: ModelConfig) -> str:
    head = model.head
    return f"IFA ({head.formulation})" if head.name == "ifa" else HEAD_LABELS[head.name]


def plan(cfg: ExperimentConfig, settings: Optional[MeasureSettings] = None, all_heads: bool = False
         ) -> list[PlannedModel]:
    """The models of an experiment, measured at `settings` (default: its measure section): its own model or,
    with `all_heads`, every head of ALL_HEADS on its backbone. A head the experiment does not use gets that head's
    defaults (as `--set model.head.name=...` would); the IFA rows keep the experiment's IFA options when it uses
    IFA. Each is queried as the experiment evaluates it."""
    settings = settings or settings_of(cfg.measure)
    models = [cfg.model] if not all_heads else [_with_head(cfg, head, formulation) for _, head, formulation in ALL_HEADS]
    return [PlannedModel(label(m), m, query_mode_of(cfg.model_copy(update={"model": m})), settings) for m in models]


def _with_head(cfg: ExperimentConfig, head: str, formulation: Optional[str]) -> ModelConfig:
    from bench.config import validate

    data = cfg.model.model_dump()
    if data["head"]["name"] != head:
        data["head"] = {"name": head}
    if formulation is not None:
        data["head"]["formulation"] = formulation
    return validate(ModelConfig, data, f"{cfg.name} with head {head}")
