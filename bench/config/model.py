"""Typed model config: backbone + head + optional auxiliary head. Maps 1:1 to constructor kwargs."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal, Optional, Union

from pydantic import BaseModel, ConfigDict, Field, PositiveInt, model_validator

from bench.config.strict_numbers import refuse_bool_numbers


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    _no_bool_numbers = model_validator(mode="before")(classmethod(refuse_bool_numbers))


class BackboneConfig(_Strict):
    name: Literal["resnet18", "resnet34", "resnet50", "resnet101"] = "resnet50"
    # standard: 7x7 conv; deep: 3x3 64-64-128 (the IFA release); v1c: 3x3 32-32-64 (mmseg "V1c").
    stem: Literal["standard", "deep", "v1c"] = "standard"
    output_stride: Literal[8, 16, 32] = 32
    # Dilation multipliers for the last stage's blocks, e.g. [1, 2, 4]; the release uses OS32 with
    # layer4 dilations (2, 2, 4), written here as multi_grid [2, 2, 4] on top of dilation 1.
    multi_grid: Optional[tuple[PositiveInt, ...]] = None
    width: float = Field(1.0, gt=0, le=4)
    pretrained: Optional[Path] = None
    pretrained_strict: bool = True
    norm: Literal["bn", "syncbn", "frozen_bn"] = "bn"


class IFAHeadConfig(_Strict):
    name: Literal["ifa"] = "ifa"
    channels: PositiveInt = 256
    in_features: tuple[str, ...] = ("c2", "c3", "c4", "c5")
    pe: Literal["sinusoidal", "learned", "none"] = "sinusoidal"
    pe_dim: PositiveInt = 24  # sinusoidal: 4 * n_freqs; the encoding adds the 2 raw coordinates
    pe_learnable_freq: bool = True
    mlp: tuple[PositiveInt, ...] = (512, 256, 256)
    local_ensemble: bool = False
    released_ensemble_defect: bool = False  # reproduce hzhupku/IFA's non-accumulating ensemble
    formulation: Literal["reference", "fused"] = "fused"
    chunk_queries: Optional[PositiveInt] = None  # None: chosen from memory_budget_mb
    memory_budget_mb: PositiveInt = 1024
    align_corners: bool = True  # released code upsamples the stride-4 logits with align_corners=True


class FPNHeadConfig(_Strict):
    name: Literal["fpn"] = "fpn"
    in_features: tuple[str, ...] = ("c2", "c3", "c4", "c5")
    channels: PositiveInt = 256  # FPN neck width
    scale_channels: PositiveInt = 128  # per-scale head width at stride 4
    dropout: float = Field(0.1, ge=0, lt=1)


class PPMHeadConfig(_Strict):
    name: Literal["ppm"] = "ppm"
    in_feature: str = "c5"
    channels: PositiveInt = 512
    pool_scales: tuple[PositiveInt, ...] = (1, 2, 3, 6)
    dropout: float = Field(0.1, ge=0, lt=1)


class OCRHeadConfig(_Strict):
    name: Literal["ocr"] = "ocr"
    # mmseg's ResNet OCRNet: the OCR head reads c5 (stride 8 on a D8 backbone), the soft-region FCN reads c4.
    # Several features are resized to the finest one and concatenated (HRNet style): on an OS32 ResNet-50,
    # c2..c5 at stride 4 costs ~2.5 TMACs at 1024x2048, so it is opt-in.
    in_features: tuple[str, ...] = ("c5",)
    in_feature_region: str = "c4"
    channels: PositiveInt = 512
    key_channels: PositiveInt = 256
    region_channels: PositiveInt = 256
    region_loss_weight: float = Field(0.4, ge=0)
    dropout: float = Field(0.1, ge=0, lt=1)


HeadConfig = Annotated[
    Union[IFAHeadConfig, FPNHeadConfig, PPMHeadConfig, OCRHeadConfig], Field(discriminator="name")
]


class AuxHeadConfig(_Strict):
    enabled: bool = True
    in_feature: str = "c4"
    channels: PositiveInt = 256
    weight: float = Field(0.4, ge=0)
    dropout: float = Field(0.1, ge=0, lt=1)


class ModelConfig(_Strict):
    num_classes: PositiveInt
    backbone: BackboneConfig = BackboneConfig()
    head: HeadConfig = IFAHeadConfig()
    aux_head: AuxHeadConfig = AuxHeadConfig()
