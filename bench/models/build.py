"""Config -> modules. A small make/register in the LIIF style; heads are plain classes taking shape specs.

Constructor errors (a multi-grid of the wrong length, a head reading a feature the backbone lacks) become
`UserError`s naming the config key, so the CLI reports them in one line.
"""
from __future__ import annotations

import importlib
from typing import Union

from torch import nn

from bench.config.formulation import AUTO, ran_formulation
from bench.config.model import AuxHeadConfig, BackboneConfig, ModelConfig
from bench.errors import UserError
from bench.models.hrnet import HRNet
from bench.models.resnet import ResNet
from bench.models.segmentor import Segmentor

# name -> class, or "module:ClassName" imported on first use (IFA lives in a package that may be absent).
HEADS: dict[str, Union[type, str]] = {"ifa": "ifa:IFAHead", "fpn": "baselines:FPNHead", "ppm": "baselines:PPMHead",
                                      "ocr": "baselines:OCRHead", "fcn": "baselines:FCNHead"}


def register_head(name: str, target: Union[type, str]) -> None:
    """Register a head class, or "module:ClassName" to import when first built."""
    HEADS[name] = target


def head_class(name: str) -> type:
    if name not in HEADS:
        raise KeyError(f"unknown head {name!r}; expected one of {sorted(HEADS)}")
    target = HEADS[name]
    if isinstance(target, str):
        module, cls = target.split(":")
        target = HEADS[name] = getattr(importlib.import_module(module), cls)
    return target


def _user_error(key: str, exc: ValueError) -> UserError:
    return UserError(f"model.{key}: {exc}")


def build_backbone(cfg: BackboneConfig) -> Union[ResNet, HRNet]:
    try:
        if cfg.name.startswith("hrnet"):
            backbone = HRNet(cfg.name, cfg.norm)
        else:
            depth = int(cfg.name.removeprefix("resnet"))
            backbone = ResNet(depth, cfg.stem, cfg.output_stride, cfg.multi_grid, cfg.width, cfg.norm,
                              cfg.multi_grid_rule,
                              zero_init_residual=cfg.zero_init_residual)
    except ValueError as exc:
        raise _user_error("backbone", exc) from None
    if cfg.pretrained is not None:
        from bench.models.pretrained import load_pretrained

        load_pretrained(backbone, cfg.pretrained, strict=cfg.pretrained_strict)
    return backbone


def build_head(cfg, input_shape, num_classes: int) -> nn.Module:
    """The head of `cfg`; IFA's `formulation: auto` is built as on the CPU (a Segmentor chooses again per device)."""
    options = cfg.model_dump(exclude={"name"})
    if options.get("formulation") == AUTO:
        options["formulation"] = ran_formulation(AUTO, "cpu")
    try:
        return head_class(cfg.name)(input_shape, num_classes, **options)
    except ValueError as exc:
        raise _user_error("head", exc) from None


def build_aux_head(cfg: AuxHeadConfig, input_shape, num_classes: int):
    if not cfg.enabled:
        return None
    from baselines import FCNHead

    try:
        return FCNHead(input_shape, num_classes, cfg.in_feature, cfg.channels, cfg.dropout,
                       align_corners=cfg.align_corners)
    except ValueError as exc:
        raise _user_error("aux_head", exc) from None


def build_segmentor(cfg: ModelConfig) -> Segmentor:
    backbone = build_backbone(cfg.backbone)
    shapes = backbone.output_shape()
    head = build_head(cfg.head, shapes, cfg.num_classes)
    aux = build_aux_head(cfg.aux_head, shapes, cfg.num_classes)
    return Segmentor(backbone, head, aux, cfg.aux_head.weight, getattr(cfg.head, "formulation", None))
