"""Checkpoint key mappings, key by key, against fixtures in which every tensor has its own values (issue 32, "key
mappings where the tensor shapes happen to match"): tensor number i holds i + arange(numel) / numel (its integer part
is its identity), so swapping two same-shaped tensors, e.g. the two 32-channel BatchNorms of a V1c stem, is seen.

Where each key must land is written out here from the source layouts (mmcv's ConvModule = conv, bn; mmseg's
ResNetV1c stem = Sequential(conv, BN, ReLU) x 3; the hzhupku/IFA release's ModelBuilder), independently of the
converters' own tables."""
import gzip
import json
import re

import pytest
import torch

from bench.config.model import ModelConfig
from bench.convert.registry import detect_format, to_project
from tests.convert.test_mmseg_import import FIXTURES, MODELS
from tests.convert.test_release_checkpoint import CFG as RELEASE_CFG, _release_model


def distinct(shapes: dict) -> dict:
    """{key: tensor}: the i-th key (in order) holds i + arange(numel)/numel, long counters hold i."""
    out = {}
    for i, (key, shape) in enumerate(shapes.items(), start=1):
        n = 1
        for s in shape:
            n *= s
        if key.endswith("num_batches_tracked"):
            out[key] = torch.full(tuple(shape), i, dtype=torch.long)
        else:
            out[key] = (i + torch.arange(n, dtype=torch.float64) / max(n, 1)).reshape(tuple(shape))
    return out


def _identity(t: torch.Tensor) -> int:
    return int(t.flatten()[0].item()) if t.numel() else -1


# ---------------------------------------------------------------------------------------------------------------
# mmseg 1.x whole segmentors (bench/convert/mmseg.py)

# mmseg ResNetV1c: stem = [conv 3->32, BN, ReLU, conv 32->32, BN, ReLU, conv 32->64, BN, ReLU]; the project's deep
# stem: conv1 = [conv, BN, ReLU, conv, BN, ReLU, conv] and bn1. Both BNs at stem.1 and stem.4 have 32 channels.
STEM = {"0": "conv1.0", "1": "conv1.1", "3": "conv1.3", "4": "conv1.4", "6": "conv1.6", "7": "bn1"}
# the OCR head's object context block: mmseg module -> the project's attention module
OCR_BLOCK = {"query_project": "attention.query", "key_project": "attention.key", "value_project": "attention.value",
             "out_project": "attention.out", "bottleneck": "attention.fuse"}


def _conv_module(path: str) -> str:
    """mmcv ConvModule `<m>.conv.<p>` / `<m>.bn.<p>` -> Sequential index `<m>.0.<p>` / `<m>.1.<p>`."""
    path = re.sub(r"\.conv\.(weight|bias)$", r".0.\1", path)
    return re.sub(r"\.bn\.", ".1.", path)


def _mmseg_head(rest: str) -> str:
    if rest.startswith("conv_seg."):
        return "cls.1." + rest[len("conv_seg."):]
    if rest.startswith("object_context_block."):
        module, tail = rest[len("object_context_block."):].split(".", 1)
        return _conv_module(f"{OCR_BLOCK[module]}.{tail}")
    rest = re.sub(r"^convs\.0\.", "conv.", rest)
    rest = re.sub(r"^psp_modules\.(\d+)\.1\.", r"pools.\1.1.", rest)
    return _conv_module(rest)


def mmseg_expected(key: str) -> str:
    if key.startswith("backbone.stem."):
        index, tail = key[len("backbone.stem."):].split(".", 1)
        return f"backbone.{STEM[index]}.{tail}"
    if key.startswith("backbone."):
        return key
    m = re.match(r"^neck\.(lateral_convs|fpn_convs)\.(\d+)\.conv\.(weight|bias)$", key)
    if m:
        return f"head.{'lateral' if m.group(1) == 'lateral_convs' else 'smooth'}.{m.group(2)}.{m.group(3)}"
    m = re.match(r"^decode_head\.([01])\.(.*)$", key)
    if m:  # OCRNet's cascade: 0 = the region FCN, 1 = the OCR head
        return ("head.region_head." if m.group(1) == "0" else "head.") + _mmseg_head(m.group(2))
    if key.startswith("decode_head."):
        return "head." + _mmseg_head(key[len("decode_head."):])
    if key.startswith("auxiliary_head."):
        return "aux_head." + _mmseg_head(key[len("auxiliary_head."):])
    raise AssertionError(f"no expectation for {key}")


def _mmseg_checkpoint(name: str) -> dict:
    with gzip.open(FIXTURES / f"{name}.json.gz", "rt") as f:
        return {"meta": {"mmseg_version": "1.2.2"}, "state_dict": distinct(json.load(f))}


@pytest.mark.parametrize("name", sorted(MODELS))
def test_mmseg_every_key_lands_where_mmseg_means_it(name):
    """Catches: any two keys of an mmseg checkpoint swapped or misrouted by bench/convert/mmseg.py, same-shaped or
    not, e.g. the stem's two 32-channel BatchNorms (stem.1 <-> stem.4), whose strict load passes with the wrong
    weights; OCR's query/key projections; FPN's lateral/smooth convs; the aux head's conv/BN."""
    ckpt = _mmseg_checkpoint(name)
    assert detect_format(ckpt) == "mmseg"
    converted = to_project(ckpt, ModelConfig(num_classes=19, **MODELS[name]))
    source = ckpt["state_dict"]
    expected = {mmseg_expected(k): k for k in source}
    assert len(expected) == len(source)  # one place per key
    assert set(converted) == set(expected)
    wrong = [f"{expected[k]} -> {k} holds tensor {_identity(converted[k])}, not {_identity(source[expected[k]])}"
             for k in converted if not torch.equal(converted[k], source[expected[k]])]
    assert not wrong, wrong[:5]


def test_mmseg_stem_batchnorms_are_told_apart():
    """The audit's planted bug, spelled out: both stem BatchNorms have 32 channels; each must keep its own values."""
    ckpt = _mmseg_checkpoint("pspnet_r50d8")
    src = ckpt["state_dict"]
    assert src["backbone.stem.1.weight"].shape == src["backbone.stem.4.weight"].shape
    converted = to_project(ckpt, ModelConfig(num_classes=19, **MODELS["pspnet_r50d8"]))
    for stat in ("weight", "bias", "running_mean", "running_var", "num_batches_tracked"):
        assert torch.equal(converted[f"backbone.conv1.1.{stat}"], src[f"backbone.stem.1.{stat}"]), stat
        assert torch.equal(converted[f"backbone.conv1.4.{stat}"], src[f"backbone.stem.4.{stat}"]), stat
        assert torch.equal(converted[f"backbone.bn1.{stat}"], src[f"backbone.stem.7.{stat}"]), stat


# ---------------------------------------------------------------------------------------------------------------
# the hzhupku/IFA release (bench/convert/release.py)

RELEASE_REDUCE = {"enc1": 0, "enc2": 1, "enc3": 2, "head": 3}  # decoder.<name> -> head.reduce.<i> (c2, c3, c4, c5)
RELEASE_MLP_CONVS = [0, 3, 6, 9]  # imnet Sequential: Conv1d, BN1d, ReLU, ... the last Conv1d is the classifier
RELEASE_MLP_NORMS = [1, 4, 7]


def release_expected(source: dict) -> dict:
    """{project key: expected tensor}, from the release's layout."""
    want = {}
    for key, value in source.items():
        if key.startswith("encoder."):
            want["backbone." + key[len("encoder."):]] = value

    def folded(conv: str, bn: str, dst_conv: str, dst_bn: str):
        want[f"{dst_conv}.weight"] = source[f"{conv}.weight"]
        for stat in ("weight", "bias", "running_var", "num_batches_tracked"):
            want[f"{dst_bn}.{stat}"] = source[f"{bn}.{stat}"]
        # BN(conv(x) + b) == BN'(conv(x)) with running_mean' = running_mean - b
        want[f"{dst_bn}.running_mean"] = source[f"{bn}.running_mean"] - source[f"{conv}.bias"]

    for name, i in RELEASE_REDUCE.items():
        folded(f"decoder.{name}.0", f"decoder.{name}.1", f"head.reduce.{i}.0", f"head.reduce.{i}.1")
    for level in range(4):
        want[f"head.pe.{level}.freq"] = source[f"decoder.ifa.pos{level + 1}.emb"].t()
    for i, index in enumerate(RELEASE_MLP_CONVS):
        want[f"head.mlp.linears.{i}.weight"] = source[f"decoder.ifa.imnet.{index}.weight"][..., 0]
        want[f"head.mlp.linears.{i}.bias"] = source[f"decoder.ifa.imnet.{index}.bias"]
    for i, index in enumerate(RELEASE_MLP_NORMS):
        for stat in ("weight", "bias", "running_mean", "running_var", "num_batches_tracked"):
            want[f"head.mlp.norms.{i}.{stat}"] = source[f"decoder.ifa.imnet.{index}.{stat}"]
    folded("auxor.aux.0", "auxor.aux.1", "aux_head.conv.0", "aux_head.conv.1")
    want["aux_head.cls.1.weight"] = source["auxor.aux.4.weight"]
    want["aux_head.cls.1.bias"] = source["auxor.aux.4.bias"]
    return want


def test_release_every_key_lands_where_the_release_means_it():
    """Catches: any two keys of a hzhupku/IFA checkpoint swapped or misrouted by bench/convert/release.py, e.g. two of
    the PE levels' 12x2 frequency matrices, two MLP BatchNorms of equal width, the BatchNorms of enc1 and enc2 (16
    channels each here), or a bias folded into the wrong BatchNorm."""
    layout = {k: tuple(v.shape) for k, v in _release_model().state_dict().items()}
    source = distinct(layout)
    state = {"module." + k: v for k, v in source.items()}
    assert detect_format(state) == "release"
    converted = to_project(state, RELEASE_CFG)
    want = release_expected(source)
    assert set(converted) == set(want)
    wrong = [k for k in want if converted[k].shape != want[k].shape or not torch.equal(converted[k], want[k])]
    assert not wrong, wrong[:5]
    from bench.models import build_segmentor

    assert set(converted) == set(build_segmentor(RELEASE_CFG).state_dict())  # and it is the whole model
