"""Load ImageNet ResNet weights saved by torchvision, timm, mmcv/mmseg or PSPNet-style deep-base code.

Keys are mapped to this package's names (torchvision's, with timm's deep-stem layout); the classifier is dropped by
design. Any other missing, unexpected or shape-mismatched key is an error unless strict=False, in which case the
report lists them and a warning is logged: never silently skipped.

Containers: a bare state dict, or one wrapped in `state_dict` / `model` / `model_state` / `module` (also nested, as
in mmcv and `ifa-bench train` checkpoints). Prefixes `module.` (DDP), `backbone.`, `encoder.`, `model.` are
stripped; when a file holds a whole segmentor (some keys under `backbone.`, others not), only the backbone part
is used and the rest is listed as ignored.
"""
from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from bench.errors import UserError
from bench.files.unreadable import unreadable_reason
from bench.models.finite import require_finite

log = logging.getLogger(__name__)

_WRAPPERS = ("state_dict", "model", "model_state", "module")
_PREFIXES = ("module.", "backbone.", "encoder.", "model.")
# ResNet's fc; the official HRNet ImageNet checkpoints' classification head (incre/downsamp modules, final layer).
_CLASSIFIER = re.compile(r"^(fc|head\.fc|classifier|head|incre_modules|downsamp_modules|final_layer)\.")
# mmseg/mmcv V1c stems: stem.{0,1,3,4,6,7}; PSPNet deep base: conv1,bn1,conv2,bn2,conv3,bn3 at the top level.
_MMSEG_STEM = {"stem.0.": "conv1.0.", "stem.1.": "conv1.1.", "stem.3.": "conv1.3.", "stem.4.": "conv1.4.",
               "stem.6.": "conv1.6.", "stem.7.": "bn1."}
_PSP_STEM = {"conv1.": "conv1.0.", "bn1.": "conv1.1.", "conv2.": "conv1.3.", "bn2.": "conv1.4.", "conv3.": "conv1.6.",
             "bn3.": "bn1."}
# timm/mmcv ResNet-D: shortcut = AvgPool, 1x1 conv, BN, so the conv sits at downsample.1 and the BN at downsample.2.
_AVG_DOWN = re.compile(r"^layer\d+\.\d+\.downsample\.2\.")


@dataclass
class LoadReport:
    path: str
    source_format: str
    loaded: list[str] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)  # classifier / non-backbone keys, dropped by design
    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    mismatched: list[str] = field(default_factory=list)  # "key: checkpoint shape vs model shape"
    hints: list[str] = field(default_factory=list)  # likely causes of the mismatches

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
        parts += self.hints
        return "; ".join(parts) or f"all {len(self.loaded)} keys loaded"


def _unwrap(obj):
    changed = True
    while changed and isinstance(obj, dict):
        changed = False
        for key in _WRAPPERS:
            if isinstance(obj.get(key), dict):
                obj, changed = obj[key], True
                break
    return obj


def _strip(key: str) -> str:
    stripped = True
    while stripped:
        stripped = False
        for prefix in _PREFIXES:
            if key.startswith(prefix):
                key, stripped = key[len(prefix):], True
    return key


def read_state_dict(path: str | Path) -> tuple[dict[str, torch.Tensor], list[str]]:
    """(backbone state with prefixes stripped, keys of the file that are not backbone keys)."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: pretrained weights file does not exist")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # unpickling refused or corrupt file
        raise UserError(f"{path}: not a readable torch weights file ({unreadable_reason(exc)})") from None
    obj = _unwrap(obj)
    if not isinstance(obj, dict) or not obj:
        raise UserError(f"{path}: expected a state dict of tensors, found {type(obj).__name__}"
                        + (" (empty)" if isinstance(obj, dict) else ""))
    obj = {k[len("module."):] if k.startswith("module.") else k: v for k, v in obj.items()}
    ignored = []
    if any(k.startswith("backbone.") for k in obj) and not all(k.startswith("backbone.") for k in obj):
        ignored = [k for k in obj if not k.startswith("backbone.")]  # a whole segmentor: heads are not ours to load
        obj = {k: v for k, v in obj.items() if k.startswith("backbone.")}
    bad = [k for k, v in obj.items() if not isinstance(v, torch.Tensor)]
    if bad:
        raise UserError(f"{path}: expected a state dict of tensors; {bad[0]!r} is a {type(obj[bad[0]]).__name__}")
    require_finite(obj, path, "pretrained weights")
    return {_strip(k): v for k, v in obj.items()}, ignored


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


def _hints(state: dict[str, torch.Tensor], own: dict[str, torch.Tensor]) -> list[str]:
    hints = []
    if any(_AVG_DOWN.match(k) for k in state):
        hints.append("the file is a ResNet-D (average-pool shortcut, e.g. timm resnet50d / mmseg V1d); this "
                     "backbone has strided 1x1 shortcuts: use a non-D checkpoint (e.g. resnet50 or V1c)")
    file_deep, model_deep = "conv1.0.weight" in state, "conv1.0.weight" in own
    if "conv1.weight" in state and model_deep:
        hints.append("the file has the standard 7x7 stem; the backbone has a 3x3 deep stem (backbone.stem)")
    elif file_deep and not model_deep:
        hints.append("the file has a 3x3 deep stem; the backbone has the standard 7x7 stem (backbone.stem)")
    elif file_deep and model_deep and state["conv1.0.weight"].shape != own["conv1.0.weight"].shape:
        hints.append(f"the file's stem starts with {state['conv1.0.weight'].shape[0]} channels, the backbone's "
                     f"with {own['conv1.0.weight'].shape[0]} (backbone.stem: deep = 64-64-128, v1c = 32-32-64)")
    return hints


def load_pretrained(model: nn.Module, path: str | Path, strict: bool = True) -> LoadReport:
    """Load `path` into `model` (a `ResNet`); return what was loaded, ignored, missing, unexpected or mismatched.

    strict=True raises `UserError` naming the file and the first offending keys on any mismatch and loads nothing;
    strict=False loads the matching keys and logs a warning with the report's summary.
    """
    raw, ignored = read_state_dict(path)
    fmt = detect_format(raw)
    state = map_keys(raw, fmt)
    report = LoadReport(str(path), fmt, ignored=list(ignored))
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
    mismatched_keys = {m.split(":")[0] for m in report.mismatched}
    report.missing = [k for k in own if k not in usable and not k.endswith("num_batches_tracked")
                      and k not in mismatched_keys]
    report.loaded = sorted(usable)
    if not report.ok:
        report.hints = _hints(state, own)
    if strict and not report.ok:
        raise UserError(f"{path}: weights do not match the backbone ({fmt} format): {report.summary()}; "
                        "set backbone.pretrained_strict: false to load the matching part")
    model.load_state_dict(usable, strict=False)
    if not report.ok:
        log.warning("%s: loaded %d keys non-strictly: %s", path, len(report.loaded), report.summary())
    return report
