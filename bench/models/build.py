"""Config -> modules. A small make/register in the LIIF style; heads are plain classes taking shape specs."""
from __future__ import annotations

import importlib

from torch import nn

from bench.config.model import AuxHeadConfig, BackboneConfig, ModelConfig
from bench.models.resnet import ResNet
from bench.models.segmentor import Segmentor

HEADS = {"ifa": "ifa:IFAHead", "fpn": "baselines:FPNHead", "ppm": "baselines:PPMHead", "ocr": "baselines:OCRHead"}


def register_head(name: str, target: str) -> None:
    """Register a head class as "module:ClassName" (imported when first built)."""
    HEADS[name] = target


def head_class(name: str) -> type:
    if name not in HEADS:
        raise KeyError(f"unknown head {name!r}; expected one of {sorted(HEADS)}")
    module, cls = HEADS[name].split(":")
    return getattr(importlib.import_module(module), cls)


def build_backbone(cfg: BackboneConfig) -> ResNet:
    depth = int(cfg.name.removeprefix("resnet"))
    backbone = ResNet(depth, cfg.stem, cfg.output_stride, cfg.multi_grid, cfg.width, cfg.norm)
    if cfg.pretrained is not None:
        from bench.models.pretrained import load_pretrained

        load_pretrained(backbone, cfg.pretrained, strict=cfg.pretrained_strict)
    return backbone


def build_head(cfg, input_shape, num_classes: int) -> nn.Module:
    options = cfg.model_dump(exclude={"name"})
    return head_class(cfg.name)(input_shape, num_classes, **options)


def build_aux_head(cfg: AuxHeadConfig, input_shape, num_classes: int):
    if not cfg.enabled:
        return None
    from baselines import FCNHead

    return FCNHead(input_shape, num_classes, cfg.in_feature, cfg.channels, cfg.dropout)


def build_segmentor(cfg: ModelConfig) -> Segmentor:
    backbone = build_backbone(cfg.backbone)
    shapes = backbone.output_shape()
    head = build_head(cfg.head, shapes, cfg.num_classes)
    aux = build_aux_head(cfg.aux_head, shapes, cfg.num_classes)
    return Segmentor(backbone, head, aux, cfg.aux_head.weight)
