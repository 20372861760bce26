"""Whole mmsegmentation 1.x segmentor checkpoints -> the project's Segmentor state_dict.

Covered: ResNet-V1c and HRNetV2 backbones; decode heads FPN (neck + FPNHead), PSPHead, FCNHead (one conv, no input
concat: FCN-HRNet, OCR's region head and the auxiliary head) and OCRNet's cascade (decode_head.0 = region FCN,
decode_head.1 = OCRHead). Strict: every source key must be renamed by a rule, land on a key of the model that
`model_cfg` builds with the same shape, and every model key must be filled; otherwise a UserError names the keys.
"""
from __future__ import annotations

import re

import torch

from bench.convert.registry import Converter, register
from bench.errors import UserError

# mmcv ConvModule: conv / bn submodules -> the project's Sequential(conv, bn, relu) indices.
_CONV_MODULE = ((re.compile(r"\.conv\.(weight|bias)$"), r".0.\1"), (re.compile(r"\.bn\."), ".1."))
# Head-internal renames, applied in order before the ConvModule rule (`conv_seg` is the classifier conv).
_HEAD_RULES = [
    (re.compile(r"^conv_seg\."), "cls.1."),
    (re.compile(r"^convs\.0\."), "conv."),  # FCNHead with num_convs=1
    (re.compile(r"^psp_modules\.(\d+)\.1\."), r"pools.\1.1."),
    (re.compile(r"^scale_heads\.(\d+)\.(\d+)\."), r"scale_heads.\1.\2."),
    (re.compile(r"^bottleneck\."), "bottleneck."),
    (re.compile(r"^object_context_block\.query_project\."), "attention.query."),
    (re.compile(r"^object_context_block\.key_project\."), "attention.key."),
    (re.compile(r"^object_context_block\.value_project\."), "attention.value."),
    (re.compile(r"^object_context_block\.out_project\."), "attention.out."),
    (re.compile(r"^object_context_block\.bottleneck\."), "attention.fuse."),
]
_NECK = re.compile(r"^neck\.(lateral_convs|fpn_convs)\.(\d+)\.conv\.(weight|bias)$")
_STEM = {"stem.0.": "conv1.0.", "stem.1.": "conv1.1.", "stem.3.": "conv1.3.", "stem.4.": "conv1.4.",
         "stem.6.": "conv1.6.", "stem.7.": "bn1."}  # mmseg ResNetV1c's deep stem


def _unwrap(state: dict) -> dict:
    if isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    return {k[len("module."):] if k.startswith("module.") else k: v for k, v in state.items()}


def detect(state: dict) -> bool:
    keys = _unwrap(state)
    return any(k.startswith("decode_head.") for k in keys) and any(k.startswith("backbone.") for k in keys)


def _head_key(rest: str):
    for pattern, repl in _HEAD_RULES:
        if pattern.match(rest):
            rest = pattern.sub(repl, rest, count=1)
            break
    else:
        return None
    if rest.startswith("cls.1."):
        return rest
    for pattern, repl in _CONV_MODULE:
        rest = pattern.sub(repl, rest)
    return rest


def rename(key: str, cascade: bool):
    """The project key of one mmseg key, or None when no rule covers it."""
    if key.startswith("backbone."):
        rest = key[len("backbone."):]
        for old, new in _STEM.items():
            if rest.startswith(old):
                return "backbone." + new + rest[len(old):]
        return key
    neck = _NECK.match(key)
    if neck:
        part = {"lateral_convs": "lateral", "fpn_convs": "smooth"}[neck.group(1)]
        return f"head.{part}.{neck.group(2)}.{neck.group(3)}"
    if cascade:
        match = re.match(r"^decode_head\.([01])\.(.*)$", key)
        prefix = {"0": "head.region_head.", "1": "head."}.get(match.group(1)) if match else None
    else:
        match = re.match(r"^decode_head\.(?!\d+\.)(.*)$", key)
        prefix = "head." if match else None
    if match is None:
        match = re.match(r"^auxiliary_head\.(?!\d+\.)(.*)$", key)
        prefix = "aux_head." if match else None
    if match is None:
        return None
    rest = _head_key(match.groups()[-1])
    return None if rest is None else prefix + rest


def _target_state(model_cfg) -> dict:
    from bench.models.build import build_segmentor

    cfg = model_cfg.model_copy(update={"backbone": model_cfg.backbone.model_copy(update={"pretrained": None})})
    with torch.device("meta"):
        model = build_segmentor(cfg)
    return model.state_dict()


def _name(keys, limit=5) -> str:
    keys = sorted(keys)
    more = f" (+{len(keys) - limit} more)" if len(keys) > limit else ""
    return ", ".join(keys[:limit]) + more


def convert(state: dict, model_cfg) -> dict:
    source = _unwrap(state)
    cascade = any(k.startswith("decode_head.1.") for k in source)
    if cascade and model_cfg.head.name != "ocr":
        raise UserError("mmseg checkpoint: a cascade decode head (OCRNet) cannot load into head "
                        f"{model_cfg.head.name!r}")
    target = _target_state(model_cfg)
    out, unmapped, unexpected, mismatched, misshapen = {}, [], [], [], set()
    for key, value in source.items():
        new = rename(key, cascade)
        if new is None:
            unmapped.append(key)
        elif new not in target:
            unexpected.append(f"{key} -> {new}")
        elif tuple(target[new].shape) != tuple(value.shape):
            mismatched.append(f"{key}: {tuple(value.shape)} vs {new} {tuple(target[new].shape)}")
            misshapen.add(new)
        else:
            out[new] = value
    missing = [k for k in target if k not in out and k not in misshapen]
    problems = []
    if unmapped:
        problems.append(f"{len(unmapped)} unmapped key(s): {_name(unmapped)}")
    if unexpected:
        problems.append(f"{len(unexpected)} key(s) with no place in the model: {_name(unexpected)}")
    if mismatched:
        problems.append(f"{len(mismatched)} shape mismatch(es): {_name(mismatched)}")
    if missing:
        problems.append(f"{len(missing)} model key(s) not in the checkpoint: {_name(missing)}")
    if problems:
        raise UserError("mmseg checkpoint does not match the model config: " + "; ".join(problems))
    return out


CONVERTER = register(Converter("mmseg", detect, convert))
