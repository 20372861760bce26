"""Whole mmseg checkpoints import strictly. The fixtures are the key -> shape layouts that mmsegmentation 1.2.2 itself
produced (`make check-mmseg`'s --dump-keys), so this runs in CI without mmseg."""
import gzip
import json
from pathlib import Path

import pytest
import torch

from bench.config.model import ModelConfig
from bench.convert.registry import detect_format, to_project
from bench.errors import UserError
from bench.models.build import build_segmentor

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "mmseg"
LEVELS = ["c2", "c3", "c4", "c5"]
# The project configs of mmseg's models (as in tools/mmseg_parity/check_mmseg.py).
MODELS = {
    "fpn_r50": dict(backbone=dict(name="resnet50", stem="v1c", output_stride=32), head=dict(name="fpn"),
                    aux_head=dict(enabled=False)),
    "pspnet_r50d8": dict(backbone=dict(name="resnet50", stem="v1c", output_stride=8), head=dict(name="ppm")),
    "ocrnet_r101d8": dict(backbone=dict(name="resnet101", stem="v1c", output_stride=8), head=dict(name="ocr"),
                          aux_head=dict(enabled=False)),
    "ocrnet_hrnetv2w18": dict(backbone=dict(name="hrnetv2_w18"),
                              head=dict(name="ocr", in_features=LEVELS, in_feature_region=LEVELS, region_kernel=1,
                                        region_channels=270, region_dropout=0, dropout=0),
                              aux_head=dict(enabled=False)),
}
# One mmseg key per part, and where its tensor must land.
LANDINGS = {
    "fpn_r50": {"backbone.stem.7.running_var": "backbone.bn1.running_var",
                "neck.fpn_convs.3.conv.bias": "head.smooth.3.bias",
                "decode_head.scale_heads.3.4.bn.weight": "head.scale_heads.3.4.1.weight",
                "decode_head.conv_seg.weight": "head.cls.1.weight"},
    "pspnet_r50d8": {"decode_head.psp_modules.3.1.conv.weight": "head.pools.3.1.0.weight",
                     "auxiliary_head.convs.0.conv.weight": "aux_head.conv.0.weight",
                     "auxiliary_head.conv_seg.bias": "aux_head.cls.1.bias"},
    "ocrnet_r101d8": {"decode_head.0.convs.0.bn.running_mean": "head.region_head.conv.1.running_mean",
                      "decode_head.1.object_context_block.key_project.1.conv.weight": "head.attention.key.1.0.weight",
                      "decode_head.1.object_context_block.bottleneck.conv.weight": "head.attention.fuse.0.weight",
                      "decode_head.1.bottleneck.conv.weight": "head.bottleneck.0.weight"},
    "ocrnet_hrnetv2w18": {"backbone.stage4.2.fuse_layers.3.0.2.0.weight":
                              "backbone.stage4.2.fuse_layers.3.0.2.0.weight",
                          "decode_head.0.conv_seg.weight": "head.region_head.cls.1.weight",
                          "decode_head.1.object_context_block.value_project.conv.weight":
                              "head.attention.value.0.weight"},
}


def _checkpoint(name):
    with gzip.open(FIXTURES / f"{name}.json.gz", "rt") as f:
        layout = json.load(f)
    gen = torch.Generator().manual_seed(0)
    state = {k: torch.zeros(shape, dtype=torch.long) if k.endswith("num_batches_tracked")
             else torch.randn(shape, generator=gen) for k, shape in layout.items()}
    return {"meta": {"mmseg_version": "1.2.2"}, "state_dict": state}


@pytest.mark.parametrize("name", sorted(MODELS))
def test_whole_mmseg_checkpoint_loads_strictly(name):
    ckpt = _checkpoint(name)
    cfg = ModelConfig(num_classes=19, **MODELS[name])
    assert detect_format(ckpt) == "mmseg"
    converted = to_project(ckpt, cfg)
    model = build_segmentor(cfg)
    assert len(converted) == len(ckpt["state_dict"]) == len(model.state_dict())
    model.load_state_dict(converted, strict=True)
    for source, target in LANDINGS[name].items():
        assert torch.equal(ckpt["state_dict"][source], converted[target]), source


def test_unmapped_keys_are_named():
    ckpt = _checkpoint("pspnet_r50d8")
    ckpt["state_dict"]["decode_head.conv_cat.conv.weight"] = torch.zeros(512, 2560, 3, 3)
    ckpt["state_dict"]["auxiliary_head.1.conv_seg.weight"] = torch.zeros(19, 256, 1, 1)
    cfg = ModelConfig(num_classes=19, **MODELS["pspnet_r50d8"])
    with pytest.raises(UserError, match=r"2 unmapped key\(s\): auxiliary_head\.1\.conv_seg\.weight, "
                                        r"decode_head\.conv_cat\.conv\.weight"):
        to_project(ckpt, cfg, "mmseg")


def test_missing_and_misshapen_keys_are_named():
    ckpt = _checkpoint("fpn_r50")
    del ckpt["state_dict"]["neck.lateral_convs.2.conv.weight"]
    cfg = ModelConfig(num_classes=21, **MODELS["fpn_r50"])  # 19-class checkpoint
    with pytest.raises(UserError) as err:
        to_project(ckpt, cfg)
    message = str(err.value)
    assert "model key(s) not in the checkpoint: head.lateral.2.weight" in message
    assert "decode_head.conv_seg.weight: (19, 128, 1, 1) vs head.cls.1.weight (21, 128, 1, 1)" in message


def test_a_model_without_the_checkpoint_s_aux_head_is_refused():
    cfg = ModelConfig(num_classes=19, **{**MODELS["pspnet_r50d8"], "aux_head": {"enabled": False}})
    with pytest.raises(UserError, match=r"no place in the model: auxiliary_head\.conv_seg\.bias -> aux_head"):
        to_project(_checkpoint("pspnet_r50d8"), cfg)


def test_an_ocrnet_checkpoint_into_another_head_is_refused():
    cfg = ModelConfig(num_classes=19, **{**MODELS["fpn_r50"], "backbone": {"name": "resnet101", "stem": "v1c"}})
    with pytest.raises(UserError, match="cascade decode head"):
        to_project(_checkpoint("ocrnet_r101d8"), cfg)
