"""Load ImageNet ResNet weights saved by torchvision, timm, mmcv/mmseg or PSPNet-style deep-base code.

Keys are mapped to this package's names (torchvision's, with timm's deep-stem layout); the classifier is dropped by
design. Any other missing, unexpected or shape-mismatched key is an error unless strict=False, in which case the
report lists them and a warning is logged: never silently skipped.
"""
from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from bench.errors import UserError

log = logging.getLogger(__name__)

_WRAPPERS = ("state_dict", "model", "model_state", "module")
_PREFIXES = ("module.", "backbone.", "encoder.", "model.")
_CLASSIFIER = re.compile(r"^(fc|head\.fc|classifier|head)\.")
# mmseg/mmcv V1c stems: stem.{0,1,3,4,6,7}; PSPNet deep base: conv1,bn1,conv2,bn2,conv3,bn3 at the top level.
_MMSEG_STEM = {"stem.0.": "conv1.0.", "stem.1.": "conv1.1.", "stem.3.": "conv1.3.", "stem.4.": "conv1.4.",
               "stem.6.": "conv1.6.", "stem.7.": "bn1."}
_PSP_STEM = {"conv1.": "conv1.0.", "bn1.": "conv1.1.", "conv2.": "conv1.3.", "bn2.": "conv1.4.", "conv3.": "conv1.6.",
             "bn3.": "bn1."}


@dataclass
class LoadReport:
    path: str
    source_format: str
    loaded: list[str] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)  # classifier keys, dropped by design
    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    mismatched: list[str] = field(default_factory=list)  # "key: checkpoint shape vs model shape"

    @property
    def ok(self) -> bool:
        return not (self.missing or self.unexpected or self.mismatched)

    def summary(self, limit: int = 3) -> str:
        parts = []
        for name in ("missing", "unexpected", "mismatched"):
            keys = getattr(self, name)
            if keys:
                more = f" (+{len(keys) - limit} more)" if len(keys) > limit else ""
                parts.append(f"{len(keys)} {name} key(s): {', '.join(keys[:limit])}{more}")
        return "; ".join(parts) or f"all {len(self.loaded)} keys loaded"


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: pretrained weights file does not exist")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # unpickling refused or corrupt file
        raise UserError(f"{path}: not a readable torch weights file ({type(exc).__name__}: {str(exc).splitlines()[0]})") from None
    for key in _WRAPPERS:
        if isinstance(obj, dict) and key in obj and isinstance(obj[key], dict):
            obj = obj[key]
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise UserError(f"{path}: expected a state dict of tensors")
    out = {}
    for key, value in obj.items():
        for prefix in _PREFIXES:
            if key.startswith(prefix):
                key = key[len(prefix):]
        out[key] = value
    return out


def detect_format(state: dict[str, torch.Tensor]) -> str:
    if "stem.0.weight" in state:
        return "mmseg"
    if "conv1.0.weight" in state:
        return "timm"
    if "conv2.weight" in state and "conv3.weight" in state:
        return "psp_deep_base"
    return "torchvision"


def map_keys(state: dict[str, torch.Tensor], fmt: str) -> dict[str, torch.Tensor]:
    table = {"mmseg": _MMSEG_STEM, "psp_deep_base": _PSP_STEM}.get(fmt, {})
    out = {}
    for key, value in state.items():
        for old, new in table.items():
            if key.startswith(old):
                key = new + key[len(old):]
                break
        out[key] = value
    return out


def load_pretrained(model: nn.Module, path: str | Path, strict: bool = True) -> LoadReport:
    raw = read_state_dict(path)
    fmt = detect_format(raw)
    state = map_keys(raw, fmt)
    report = LoadReport(str(path), fmt)
    own = model.state_dict()
    usable = {}
    for key, value in state.items():
        if _CLASSIFIER.match(key):
            report.ignored.append(key)
        elif key not in own:
            if not key.endswith("num_batches_tracked"):
                report.unexpected.append(key)
        elif own[key].shape != value.shape:
            report.mismatched.append(f"{key}: {tuple(value.shape)} vs {tuple(own[key].shape)}")
        else:
            usable[key] = value
    report.missing = [k for k in own if k not in usable and not k.endswith("num_batches_tracked")
                      and not any(m.startswith(k + ":") for m in report.mismatched)]
    report.loaded = sorted(usable)
    if strict and not report.ok:
        raise UserError(f"{path}: weights do not match the backbone ({fmt} format): {report.summary()}; "
                        "set backbone.pretrained_strict: false to load the matching part")
    model.load_state_dict(usable, strict=False)
    if not report.ok:
        log.warning("%s: loaded %d keys non-strictly: %s", path, len(report.loaded), report.summary())
    return report
