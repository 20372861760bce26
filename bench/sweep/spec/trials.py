"""Sweep spec: the optional top-level `sweep:` section of an experiment YAML, and its expansion into trials.

    name: synthetic            # the experiment, as for `ifa-bench train` (everything but `sweep:`)
    data: {...}
    model: {...}
    sweep:
      name: heads              # default: the experiment's name
      axes:                    # cartesian product, in this order
        dataset: [synthetic]   # a preset under `datasets:`, or the base experiment's own dataset
        backbone: [resnet18]   # a name, or a mapping merged into model.backbone
        head: [ifa, fpn]       # a name (that head's defaults), or a mapping with `name`
        seed: [0, 1]
        train.iterations: [100, 200]          # any config key by dotted path
      datasets: {cityscapes: cityscapes.yaml} # or {cityscapes: {data: {...}, model: {num_classes: 19}}}
      resources: {cpus: 1, gpus: 0, workers: 1}
      max_failures: 2

See docs/sweeps.md for the exact semantics.
"""
from __future__ import annotations

import copy
import math
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Optional, Union

from pydantic import BaseModel, ConfigDict, Field, NonNegativeInt, PositiveInt, model_validator

from bench.config import ExperimentConfig, read_yaml, validate
from bench.config.safe_name import SafeName
from bench.config.query_stride import QUERY_STRIDE_KEY
from bench.config.strict_numbers import refuse_bool_numbers
from bench.errors import UserError

NAMED_AXES = ("dataset", "backbone", "head", "seed")
HEAD_KEY = "model.head"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)  # nan/inf: never a setting

    _no_bool_numbers = model_validator(mode="before")(classmethod(refuse_bool_numbers))


class Resources(_Strict):
    """Per trial. With workers > 1 each Ray Train worker gets `cpus` and `gpus` (fractions allowed)."""

    cpus: float = Field(1.0, gt=0)
    gpus: float = Field(0.0, ge=0)
    workers: PositiveInt = 1
    # How Ray Train places the workers' bundles (a placement group): PACK on as few nodes as possible, SPREAD
    # over as many as possible. Only matters with workers > 1 (docs/sweeps.md, "Resources and placement").
    placement: Literal["PACK", "SPREAD"] = "PACK"
    custom: dict[str, float] = {}  # Ray custom resources per worker (e.g. {node_a: 1} to pin trials to a node)

    def total(self) -> tuple[float, float]:
        return self.cpus * self.workers, self.gpus * self.workers

    def threads(self, requested: Optional[int] = None) -> int:
        """Intra-op threads a trial (each worker) runs with: `train.threads` when set, else its CPUs rounded to the
        nearest whole number (at least 1). Training, evaluation tasks, the measurement phase and the cost estimate
        all use this."""
        return int(requested) if requested else max(1, int(round(self.cpus)))

    def max_threads(self) -> int:
        """The most intra-op threads a trial may ask for: its CPUs rounded up (a fraction of a CPU is still a core)."""
        return max(1, math.ceil(self.cpus - 1e-9))


class SweepSection(_Strict):
    name: Optional[SafeName] = None  # runs/<name> by default
    axes: dict[str, list[Any]] = {}
    datasets: dict[str, Union[str, dict[str, Any]]] = {}
    resources: Resources = Resources()
    max_failures: NonNegativeInt = 2
    max_concurrent: Optional[PositiveInt] = None
    evaluate: list[Any] = []  # protocols, each its own Ray task per trial (bench/sweep/spec/protocols.py)


class _SweepFile(_Strict):
    sweep: SweepSection = SweepSection()


@dataclass(frozen=True)
class TrialSpec:
    trial_id: str  # readable: dataset-backbone-head-seed[-key=value...]
    config_hash: str
    axis_values: dict[str, Any]  # axis name -> label
    config: ExperimentConfig
    resources: Resources
    extra_axes: dict[str, Any] = field(default_factory=dict)  # dotted axes: key -> applied value ("" if n/a)


@dataclass
class Sweep:
    path: Path
    name: str
    section: SweepSection
    trials: list[TrialSpec]
    collapsed: int  # combinations identical to an earlier one (e.g. an IFA-only key on an FPN trial)
    protocols: list = field(default_factory=list)  # bench.sweep.spec.protocols.Protocol, from `evaluate:`

    @property
    def extra_axis_keys(self) -> list[str]:
        return [k for k in self.section.axes if k not in NAMED_AXES]


# ---------------------------------------------------------------------------------------------------------------
# key paths


def _is_model(tp) -> bool:
    return isinstance(tp, type) and issubclass(tp, BaseModel)


def _models_in(annotation) -> list[type[BaseModel]]:
    """The pydantic models an annotation may hold (one for a plain field, several for a tagged union)."""
    if _is_model(annotation):
        return [annotation]
    out = []
    for arg in typing.get_args(annotation):
        out.extend(_models_in(arg))
    return out


def _owners(path: list[str]) -> list[type[BaseModel]] | None:
    """The model classes that may hold the last key of `path`; None when an earlier key does not exist."""
    models: list[type[BaseModel]] = [ExperimentConfig]
    for part in path[:-1]:
        nxt = []
        for m in models:
            if part in m.model_fields:
                nxt.extend(_models_in(m.model_fields[part].annotation))
        if not nxt:
            return None
        models = nxt
    return models


def _check_key(key: str, where: str) -> None:
    parts = key.split(".")
    owners = _owners(parts)
    if owners is None or not any(parts[-1] in m.model_fields for m in owners):
        raise UserError(f"{where}: unknown config key {key!r}")
    if key == "model.head.name":
        raise UserError(f"{where}: use the `head` axis to switch heads (it resets the head's options)")


def _head_fields(name: str) -> set[str]:
    for m in _models_in(ExperimentConfig.model_fields["model"].annotation.model_fields["head"].annotation):
        if m.model_fields["name"].default == name:
            return set(m.model_fields)
    return set()


# ---------------------------------------------------------------------------------------------------------------
# dict helpers


def _merge(base: dict, over: dict) -> dict:
    out = copy.deepcopy(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def _set(cfg: dict, key: str, value: Any) -> None:
    parts = key.split(".")
    cur = cfg
    for p in parts[:-1]:
        if not isinstance(cur.get(p), dict):
            cur[p] = {}
        cur = cur[p]
    if isinstance(value, dict) and isinstance(cur.get(parts[-1]), dict):
        cur[parts[-1]] = _merge(cur[parts[-1]], value)
    else:
        cur[parts[-1]] = copy.deepcopy(value)


def _label(value: Any, name_key: str = "name") -> str:
    if isinstance(value, dict):
        rest = ",".join(f"{k}={_label(v)}" for k, v in value.items() if k != name_key)
        head = str(value.get(name_key, ""))
        return f"{head}({rest})" if rest and head else head or f"({rest})"
    if isinstance(value, (list, tuple)):
        return "x".join(_label(v) for v in value)
    return str(value)


# ---------------------------------------------------------------------------------------------------------------
# axis application


def _apply_dataset(cfg: dict, value: Any, presets: dict, where: str, experiment_dir: Path) -> str:
    if isinstance(value, dict):  # inline data section
        cfg["data"] = copy.deepcopy(value)
        return _label(value.get("dataset", "data"))
    name = str(value)
    if name in presets:
        preset = presets[name]
        if isinstance(preset, str):  # another experiment file: take its data, classes and evaluation protocol
            path = (experiment_dir / preset) if not Path(preset).is_absolute() else Path(preset)
            other = read_yaml(path)
            if not isinstance(other, dict) or "data" not in other:
                raise UserError(f"{where}: dataset preset {name!r}: {path} has no `data` section")
            preset = {"data": other["data"]}
            if isinstance(other.get("model"), dict) and "num_classes" in other["model"]:
                preset["model"] = {"num_classes": other["model"]["num_classes"]}
            if "eval" in other:
                preset["eval"] = other["eval"]
        if not isinstance(preset, dict):
            raise UserError(f"{where}: dataset preset {name!r} must be a mapping or a file path")
        unknown = set(preset) - set(ExperimentConfig.model_fields)
        if unknown:
            raise UserError(f"sweep.datasets.{name}: unknown section {sorted(unknown)[0]!r}")
        for section, over in preset.items():
            if section in ("data", "eval") and isinstance(over, dict):
                cfg[section] = copy.deepcopy(over)  # a dataset brings its own preprocessing and protocol
            elif isinstance(over, dict) and isinstance(cfg.get(section), dict):
                cfg[section] = _merge(cfg[section], over)
            else:
                cfg[section] = copy.deepcopy(over)
        return name
    if name == (cfg.get("data") or {}).get("dataset"):
        return name  # the base experiment's own dataset
    raise UserError(f"{where}: dataset {name!r} is neither the base experiment's dataset nor under sweep.datasets")


def _apply_backbone(cfg: dict, value: Any) -> None:
    backbone = cfg.setdefault("model", {}).setdefault("backbone", {})
    if isinstance(value, dict):
        cfg["model"]["backbone"] = _merge(backbone, value)
    else:
        backbone["name"] = value


def _apply_head(cfg: dict, value: Any, where: str) -> None:
    model = cfg.setdefault("model", {})
    base = model.get("head") or {"name": "ifa"}
    spec = dict(value) if isinstance(value, dict) else {"name": value}
    if "name" not in spec:
        raise UserError(f"{where}: a head given as a mapping needs a `name`")
    # Same head: keep the base options. Another head: start from that head's defaults (model.head is a tagged union).
    model["head"] = _merge(base, spec) if spec["name"] == base.get("name") else spec


# ---------------------------------------------------------------------------------------------------------------


def split_experiment(raw: Any, path: Path) -> tuple[dict, dict]:
    """(experiment dict, sweep dict) from a YAML document."""
    if not isinstance(raw, dict):
        raise UserError(f"{path}: expected a mapping at the top level, got {type(raw).__name__}")
    raw = dict(raw)
    sweep = raw.pop("sweep", None)
    if sweep is None:
        sweep = {}
    if not isinstance(sweep, dict):
        raise UserError(f"{path}: sweep: expected a mapping")
    return raw, sweep


def load_sweep(path: str | Path, overrides: list[str] = ()) -> Sweep:
    """Parse, expand and validate every trial. Raises UserError (one line) on any problem; starts nothing.
    The file is read with its bases (`base:`), then the --set overrides apply (bench/config/overrides.py)."""
    from bench.config.inherit import read_with_bases
    from bench.config.overrides import apply_override, parse_override

    path = Path(path)
    data, _ = read_with_bases(path)
    for text in overrides:
        apply_override(data, *parse_override(text))
    base, sweep_raw = split_experiment(data, path)
    section = validate(_SweepFile, {"sweep": sweep_raw}, str(path)).sweep

    axes = dict(section.axes)
    for key, values in axes.items():
        where = f"{path}: sweep.axes.{key}"
        if key not in NAMED_AXES:
            _check_key(key, where)
        if len(values) == 0:
            raise UserError(f"{where}: empty axis (give at least one value)")
    for name in section.datasets:
        if "dataset" not in axes:
            raise UserError(f"{path}: sweep.datasets.{name}: defined but there is no `dataset` axis")

    # Every axis present; a missing named axis is the base experiment's value.
    order = [a for a in NAMED_AXES if a in axes] + [a for a in axes if a not in NAMED_AXES]
    combos: list[dict[str, Any]] = [{}]
    for axis in order:
        combos = [{**c, axis: v} for c in combos for v in axes[axis]]

    head_keys = [k for k in axes if k.startswith(HEAD_KEY + ".")]
    sweep_heads = {
        (v.get("name") if isinstance(v, dict) else v) for v in axes.get("head", [(base.get("model") or {}).get("head", {}).get("name", "ifa")])
    }
    for key in head_keys:
        field_name = key.split(".")[2]
        if not any(field_name in _head_fields(str(h)) for h in sweep_heads):
            raise UserError(f"{path}: sweep.axes.{key}: no head in this sweep has the option {field_name!r}")

    value_labels = {a: _short_labels(axes[a]) for a in ("backbone", "head") if a in axes}
    trials: list[TrialSpec] = []
    seen: set[str] = set()
    collapsed = 0
    for combo in combos:
        cfg = copy.deepcopy(base)
        labels: dict[str, Any] = {}
        extras: dict[str, Any] = {}
        where = f"{path}: sweep.axes"
        if "dataset" in combo:
            labels["dataset"] = _apply_dataset(cfg, combo["dataset"], section.datasets, f"{where}.dataset", path.parent)
        if "backbone" in combo:
            _apply_backbone(cfg, combo["backbone"])
            labels["backbone"] = value_labels["backbone"][_index(axes["backbone"], combo["backbone"])]
        if "head" in combo:
            _apply_head(cfg, combo["head"], f"{where}.head")
            labels["head"] = value_labels["head"][_index(axes["head"], combo["head"])]
        if "seed" in combo:
            cfg["seed"] = combo["seed"]
            labels["seed"] = combo["seed"]
        head_name = ((cfg.get("model") or {}).get("head") or {}).get("name", "ifa")
        for key in order:
            if key in NAMED_AXES:
                continue
            value = combo[key]
            if key.startswith(HEAD_KEY + ".") and key.split(".")[2] not in _head_fields(head_name):
                extras[key] = ""  # an option this trial's head does not have: not applied
                continue
            if key == QUERY_STRIDE_KEY and head_name != "ifa":
                extras[key] = ""  # only IFA can be queried at a chosen resolution: not applied
                continue
            _set(cfg, key, value)
            extras[key] = value
            labels[key] = _label(value)
        desc = ", ".join(f"{k}={v}" for k, v in labels.items()) or "base"
        exp = validate(ExperimentConfig, cfg, f"{path} (trial {desc})")
        _check_threads(exp, section.resources, f"{path} (trial {desc})")
        h = exp.config_hash()
        if h in seen:
            collapsed += 1
            continue
        seen.add(h)
        trials.append(
            TrialSpec(
                trial_id=_trial_id(exp, labels),
                config_hash=h,
                axis_values=labels,
                config=exp,
                resources=section.resources,
                extra_axes=extras,
            )
        )
    ids = [t.trial_id for t in trials]
    if len(set(ids)) != len(ids):  # two combinations with the same labels (e.g. mappings): disambiguate by hash
        trials = [
            TrialSpec(f"{t.trial_id}-{t.config_hash[:6]}", t.config_hash, t.axis_values, t.config, t.resources,
                      t.extra_axes) if ids.count(t.trial_id) > 1 else t
            for t in trials
        ]
    name = section.name or str(base.get("name") or path.stem)
    from bench.sweep.spec.protocols import check_trials, parse_protocols

    protocols = parse_protocols(section.evaluate, str(path))
    check_trials(protocols, trials, str(path))
    return Sweep(path=path, name=name, section=section, trials=trials, collapsed=collapsed, protocols=protocols)


def _index(values: list, value: Any) -> int:
    return next(i for i, v in enumerate(values) if v is value)


def _short_labels(values: list) -> list[str]:
    """A mapping value is labelled by its name alone unless another value of the axis has the same name."""
    names = [str(v.get("name", "")) if isinstance(v, dict) else str(v) for v in values]
    return [n if names.count(n) == 1 else _label(v) for n, v in zip(names, values)]


def _trial_id(cfg: ExperimentConfig, labels: dict[str, Any]) -> str:
    parts = [
        str(labels.get("dataset", cfg.data.dataset)),
        str(labels.get("backbone", cfg.model.backbone.name)),
        str(labels.get("head", cfg.model.head.name)),
        f"s{cfg.seed}",
    ]
    parts += [f"{k.split('.')[-1]}={v}" for k, v in labels.items() if k not in NAMED_AXES]
    return "-".join(p.replace(" ", "") for p in parts)


def _check_threads(exp: ExperimentConfig, resources: Resources, where: str) -> None:
    """train.threads beyond the CPUs a trial (each worker) reserves would compete with the other trials' cores, and
    the sweep's latency, measured at train.threads, would time that competition."""
    threads, reserved = exp.train.threads, resources.max_threads()
    if threads is not None and threads > reserved:
        raise UserError(f"{where}: train.threads: {threads} is more than the {resources.cpus:g} CPU(s) each trial "
                        f"reserves (sweep.resources.cpus); raise sweep.resources.cpus or lower train.threads")


def check_resources(resources: Resources, cpus_available: float, gpus_available: float, where: str) -> None:
    """Refuse a trial that could never be scheduled (Ray would wait forever)."""
    cpus, gpus = resources.total()
    if resources.cpus > cpus_available + 1e-9 or cpus > cpus_available + 1e-9:
        raise UserError(
            f"{where}: sweep.resources: a trial needs {cpus:g} CPUs ({resources.workers} x {resources.cpus:g}) "
            f"but only {cpus_available:g} exist"
        )
    if gpus > gpus_available + 1e-9:
        raise UserError(
            f"{where}: sweep.resources: a trial needs {gpus:g} GPUs ({resources.workers} x {resources.gpus:g}) "
            f"but only {gpus_available:g} exist"
        )
