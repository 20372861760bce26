"""Kill tests for bench/convert/mmseg.py (issue 32's mutation pass), fast enough to run for every mutant: the key
names are mmsegmentation 1.2.2's own (tests/fixtures/mmseg), the shapes those of the same models at tiny widths
(ResNet width 1/16, 16-channel heads), and every tensor holds distinct values (tests/audit/planted/
test_key_mappings.distinct), so a swap of two same-shaped tensors is seen key by key. Where each key must land is
the planted test's own table (mmseg_expected), written from mmseg's layouts, not from the converter's rules.
(The HRNet model is left out here: HRNet ignores `width`, and its backbone keys are copied unchanged.)"""
import copy
import gzip
import json

import pytest
import torch

from bench.config.model import ModelConfig
from bench.convert import mmseg
from bench.convert.registry import detect_format, to_project
from bench.errors import UserError
from tests.audit.planted.test_key_mappings import distinct, mmseg_expected
from tests.convert.test_mmseg_import import FIXTURES, MODELS

SMALL_HEADS = {"fpn": dict(channels=16, scale_channels=8), "ppm": dict(channels=16),
               "ocr": dict(channels=16, key_channels=8, region_channels=8)}
TINY = ("fpn_r50", "pspnet_r50d8", "ocrnet_r101d8")


def tiny_config(name: str, **backbone) -> ModelConfig:
    m = copy.deepcopy(MODELS[name])
    m["backbone"].update(width=0.0625, **backbone)
    m["head"].update(SMALL_HEADS[m["head"]["name"]])
    if m.setdefault("aux_head", {}).get("enabled", True):
        m["aux_head"]["channels"] = 8
    return ModelConfig(num_classes=3, **m)


def tiny_checkpoint(name: str) -> dict:
    """mmseg's key names for `name`, in mmseg's order, each with its tiny model's shape and distinct values."""
    with gzip.open(FIXTURES / f"{name}.json.gz", "rt") as f:
        keys = list(json.load(f))
    target = mmseg._target_state(tiny_config(name))
    return distinct({k: tuple(target[mmseg_expected(k)].shape) for k in keys})


@pytest.mark.parametrize("name", TINY)
def test_every_key_lands_where_mmseg_means_it(name):
    source = tiny_checkpoint(name)
    ckpt = {"meta": {"mmseg_version": "1.2.2"}, "state_dict": {"module." + k: v for k, v in source.items()}}
    assert detect_format(ckpt) == "mmseg"
    converted = to_project(ckpt, tiny_config(name))
    expected = {mmseg_expected(k): k for k in source}
    assert len(expected) == len(source) and set(converted) == set(expected)
    wrong = [f"{k} holds {converted[k].flatten()[0].item()}, not {expected[k]}" for k in converted
             if not torch.equal(converted[k], source[expected[k]])]
    assert not wrong, wrong[:5]
    # the same from a bare state_dict
    assert all(torch.equal(v, converted[k]) for k, v in mmseg.convert(source, tiny_config(name)).items())


def test_detect_needs_a_backbone_and_a_decode_head():
    t = torch.zeros(1)
    assert mmseg.detect({"backbone.a": t, "decode_head.b": t})
    assert mmseg.detect({"state_dict": {"module.backbone.a": t, "module.decode_head.b": t}})
    assert not mmseg.detect({"backbone.a": t, "auxiliary_head.b": t})
    assert not mmseg.detect({"decode_head.b": t, "neck.a": t})
    assert not mmseg.detect({"state_dict": "not a dict", "backbone.a": t})
    assert mmseg._unwrap({"module.x": 1, "y.module.z": 2}) == {"x": 1, "y.module.z": 2}


def test_rename_routes_and_refuses():
    assert mmseg.rename("backbone.stem.7.bias", False) == "backbone.bn1.bias"
    assert mmseg.rename("backbone.layer1.0.conv1.weight", False) == "backbone.layer1.0.conv1.weight"
    assert mmseg.rename("backbone.xstem.0.weight", False) == "backbone.xstem.0.weight"
    assert mmseg.rename("neck.lateral_convs.2.conv.bias", False) == "head.lateral.2.bias"
    assert mmseg.rename("neck.fpn_convs.0.conv.weight", False) == "head.smooth.0.weight"
    assert mmseg.rename("neck.fpn_convs.0.bn.weight", False) is None
    assert mmseg.rename("decode_head.0.conv_seg.weight", False) is None  # a cascade key in a plain head
    assert mmseg.rename("decode_head.conv_seg.weight", True) is None  # a plain key in a cascade
    assert mmseg.rename("decode_head.2.conv_seg.weight", True) is None
    assert mmseg.rename("decode_head.1.conv_seg.bias", True) == "head.cls.1.bias"
    assert mmseg.rename("decode_head.0.convs.0.bn.weight", True) == "head.region_head.conv.1.weight"
    assert mmseg.rename("auxiliary_head.convs.0.conv.weight", True) == "aux_head.conv.0.weight"
    assert mmseg.rename("auxiliary_head.0.convs.0.conv.weight", False) is None
    assert mmseg.rename("decode_head.convs.1.conv.weight", False) is None  # FCN with two convs: no rule
    assert mmseg.rename("decode_head.bottleneck.bn.running_var", False) == "head.bottleneck.1.running_var"
    assert mmseg.rename("decode_head.scale_heads.1.0.conv.weight", False) == "head.scale_heads.1.0.0.weight"
    assert mmseg.rename("decode_head.psp_modules.2.1.bn.bias", False) == "head.pools.2.1.1.bias"
    assert mmseg.rename("decode_head.object_context_block.out_project.bn.weight", False) == "head.attention.out.1.weight"
    assert mmseg._head_key("conv_seg.conv.weight") == "cls.1.conv.weight"  # the classifier is not a ConvModule
    assert mmseg._head_key("nothing.conv.weight") is None


def _refusal(state: dict, cfg) -> str:
    with pytest.raises(UserError) as err:
        mmseg.convert(state, cfg)
    return str(err.value)


def test_refusals_name_the_keys():
    cfg = tiny_config("pspnet_r50d8")
    source = tiny_checkpoint("pspnet_r50d8")
    head = "mmseg checkpoint does not match the model config: "

    extra = {**source, "neck.other.weight": torch.zeros(1)}
    assert _refusal(extra, cfg) == head + "1 unmapped key(s): neck.other.weight"

    extra = {**source, "backbone.extra.weight": torch.zeros(1)}
    assert _refusal(extra, cfg) == head + "1 key(s) with no place in the model: backbone.extra.weight -> " \
                                          "backbone.extra.weight"

    bad = dict(source)
    bad["decode_head.conv_seg.bias"] = torch.zeros(5)
    assert _refusal(bad, cfg) == head + "1 shape mismatch(es): decode_head.conv_seg.bias: (5,) vs head.cls.1.bias (3,)"

    gone = dict(source)
    for stat in ("weight", "bias", "running_mean", "running_var", "num_batches_tracked"):
        del gone[f"backbone.stem.4.{stat}"]
    del gone["backbone.stem.3.weight"]
    assert _refusal(gone, cfg) == head + (
        "6 model key(s) not in the checkpoint: backbone.conv1.3.weight, backbone.conv1.4.bias, "
        "backbone.conv1.4.num_batches_tracked, backbone.conv1.4.running_mean, backbone.conv1.4.running_var "
        "(+1 more)")
    five = dict(source)
    for stat in ("weight", "bias", "running_mean", "running_var", "num_batches_tracked"):
        del five[f"backbone.stem.4.{stat}"]
    assert _refusal(five, cfg).endswith("backbone.conv1.4.running_var, backbone.conv1.4.weight")  # no "(+0 more)"

    every = {**bad, "neck.other.weight": torch.zeros(1), "backbone.extra.weight": torch.zeros(1)}
    del every["backbone.stem.3.weight"]
    assert _refusal(every, cfg) == head + "; ".join([
        "1 unmapped key(s): neck.other.weight",
        "1 key(s) with no place in the model: backbone.extra.weight -> backbone.extra.weight",
        "1 shape mismatch(es): decode_head.conv_seg.bias: (5,) vs head.cls.1.bias (3,)",
        "1 model key(s) not in the checkpoint: backbone.conv1.3.weight"])


def test_a_cascade_into_another_head_is_refused():
    source = tiny_checkpoint("ocrnet_r101d8")
    with pytest.raises(UserError) as err:
        mmseg.convert(source, tiny_config("pspnet_r50d8"))
    assert str(err.value) == ("mmseg checkpoint: a cascade decode head (OCRNet) cannot load into head 'ppm'")


def test_the_target_is_built_without_its_pretrained_weights(tmp_path):
    cfg = tiny_config("pspnet_r50d8", pretrained=tmp_path / "no-such-file.pth")
    target = mmseg._target_state(cfg)
    assert all(v.device.type == "meta" for v in target.values())
    assert set(target) == set(mmseg._target_state(tiny_config("pspnet_r50d8")))
