"""Typed model config: backbone + head + optional auxiliary head. Maps 1:1 to constructor kwargs."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal, Optional, Union, get_args

from pydantic import BaseModel, ConfigDict, Field, PositiveInt, model_validator

from bench.config.strict_numbers import refuse_bool_numbers


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)  # nan/inf: never a setting

    _no_bool_numbers = model_validator(mode="before")(classmethod(refuse_bool_numbers))


class BackboneConfig(_Strict):
    # HRNetV2 (mmseg's stage configurations) ignores stem, output_stride, multi_grid and width.
    name: Literal["resnet18", "resnet34", "resnet50", "resnet101", "hrnetv2_w18_small", "hrnetv2_w18",
                  "hrnetv2_w48"] = "resnet50"
    # standard: 7x7 conv; deep: 3x3 64-64-128 (the IFA release); v1c: 3x3 32-32-64 (mmseg "V1c").
    stem: Literal["standard", "deep", "v1c"] = "standard"
    output_stride: Literal[8, 16, 32] = 32
    # Dilations of the last stage's blocks, e.g. [1, 2, 4]. "absolute" (mmseg's rule): the values are the
    # dilations; "relative" (the DeepLabV3 paper's): they multiply the stage dilation. The release (OS32, stage
    # dilation 1) gives (2, 2, 4) either way.
    multi_grid: Optional[tuple[PositiveInt, ...]] = None
    multi_grid_rule: Literal["absolute", "relative"] = "absolute"
    width: float = Field(1.0, gt=0, le=4)
    pretrained: Optional[Path] = None
    pretrained_strict: bool = True
    norm: Literal["bn", "syncbn", "frozen_bn"] = "bn"
    # zero the last BatchNorm weight of every residual block at initialisation (the IFA release does)
    zero_init_residual: bool = False


class IFAHeadConfig(_Strict):
    name: Literal["ifa"] = "ifa"
    channels: PositiveInt = 256
    in_features: tuple[str, ...] = ("c2", "c3", "c4", "c5")
    pe: Literal["sinusoidal", "learned", "none"] = "sinusoidal"
    pe_dim: PositiveInt = 24  # sinusoidal: 4 * n_freqs; the encoding adds the 2 raw coordinates
    pe_learnable_freq: bool = True
    mlp: tuple[PositiveInt, ...] = (512, 256, 256)
    local_ensemble: bool = False
    # hzhupku/IFA's local ensemble as released (neighbours half a *query* cell away, eps_shift, clamp, and only the
    # last neighbour kept since it never accumulates); needs local_ensemble and sampling "release"
    released_ensemble_defect: bool = False
    # nearest-cell rule: "exact" (exact arithmetic) or "release" (hzhupku/IFA's float32 coordinates + grid_sample)
    sampling: Literal["exact", "release"] = "exact"
    # "auto": the fastest on the device the model runs on (bench/config/formulation.py: reference on CUDA, fused
    # elsewhere); both compute the same function from one state_dict
    formulation: Literal["auto", "reference", "fused"] = "auto"
    chunk_queries: Optional[PositiveInt] = None  # None: chosen from memory_budget_mb
    memory_budget_mb: PositiveInt = 1024
    align_corners: bool = True  # released code upsamples the stride-4 logits with align_corners=True
    # how the fused formulation runs (the function is the same): "auto" uses the Triton kernels (ifa/kernels) on
    # CUDA when triton imports, torch otherwise; cuda_graph captures the fused eval forward per shape on CUDA
    kernels: Literal["auto", "torch", "triton"] = "auto"
    cuda_graph: bool = False


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
    # The region FCN's input: one feature, or several concatenated (mmseg's HRNet OCRNet: c2..c5, region_kernel 1,
    # region_channels = their channel sum, region_dropout 0, dropout 0).
    in_feature_region: Union[str, tuple[str, ...]] = "c4"
    channels: PositiveInt = 512
    key_channels: PositiveInt = 256
    region_channels: Optional[PositiveInt] = 256  # None: the region input's channel sum (mmseg's HRNet OCRNet)
    region_loss_weight: float = Field(0.4, ge=0)
    dropout: float = Field(0.1, ge=0, lt=1)  # before the classifier
    region_kernel: Literal[1, 3] = 3
    region_dropout: float = Field(0.1, ge=0, lt=1)  # the region FCN's own, before its classifier


class FCNHeadConfig(_Strict):
    """FCN as a main head (mmseg's FCN-HRNet: in_feature c2..c5, kernel_size 1, channels = their sum, dropout 0)."""
    name: Literal["fcn"] = "fcn"
    in_feature: Union[str, tuple[str, ...]] = "c4"
    channels: Optional[PositiveInt] = 256  # None: the input's channel sum (mmseg's FCN-HRNet)
    dropout: float = Field(0.1, ge=0, lt=1)
    kernel_size: Literal[1, 3] = 3


HeadConfig = Annotated[
    Union[IFAHeadConfig, FPNHeadConfig, PPMHeadConfig, OCRHeadConfig, FCNHeadConfig], Field(discriminator="name")
]


class AuxHeadConfig(_Strict):
    enabled: bool = True
    in_feature: str = "c4"
    channels: PositiveInt = 256
    weight: float = Field(0.4, ge=0)
    dropout: float = Field(0.1, ge=0, lt=1)
    # resize the auxiliary logits to the label with align_corners=True for the loss (the IFA release does)
    align_corners: bool = False


class ModelConfig(_Strict):
    num_classes: PositiveInt
    backbone: BackboneConfig = BackboneConfig()
    head: HeadConfig = IFAHeadConfig()
    aux_head: AuxHeadConfig = AuxHeadConfig()
    # torch.compile (inductor), bench/host/compiled.py; opt-in. true: training, evaluation and latency; "eval":
    # evaluation and latency only, training eager (eager's training arithmetic; where compile pays on the CPU)
    compile: Union[bool, Literal["eval"]] = False
    # inductor's cache (TORCHINDUCTOR_CACHE_DIR); None: that variable if set, else ~/.cache/ifa-bench/inductor.
    # Not part of the config hash: where the cache lives changes no result.
    compile_cache: Optional[Path] = None


def choices(config: type[BaseModel], field: str) -> tuple:
    """The values a Literal field of a config model allows (e.g. choices(BackboneConfig, "name")), for a CLI."""
    return get_args(config.model_fields[field].annotation)


def head_names() -> tuple[str, ...]:
    """Every head's `name`, in HeadConfig's order."""
    union = get_args(HeadConfig)[0]
    return tuple(name for head in get_args(union) for name in choices(head, "name"))
