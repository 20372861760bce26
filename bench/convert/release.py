"""hzhupku/IFA checkpoints (the released code's `ModelBuilder`) onto the project's IFA segmentor.

Source layout (after an optional `module.` prefix): `encoder.*` (the deep-stem ResNet, same names as ours),
`decoder.enc1/enc2/enc3` (1x1 conv with bias -> BN on c2..c4), `decoder.head` (the same on c5, no_aspp),
`decoder.ifa.pos{1..4}.emb` (the 12x2 frequency matrix of each level's encoding, y = rel @ emb.T),
`decoder.ifa.imnet.{0,3,6,9}` (Conv1d, weight (out, in, 1)) and `.{1,4,7}` (BatchNorm1d), and `auxor.aux`
(3x3 conv with bias -> BN -> ReLU -> Dropout -> 1x1 classifier).

The five convs right before a BatchNorm carry a bias the project's layers do not have. BN(conv(x) + b) equals
BN'(conv(x)) with running_mean' = running_mean - b in eval, and in training too (batch statistics subtract the
mean, and the running mean then tracks the bias-free activations), so each bias is folded into its BatchNorm.
"""
from __future__ import annotations

import re

import torch

from bench.convert.registry import Converter, register
from bench.errors import UserError

_MARK = "decoder.ifa.imnet."
# release prefix -> (project conv, project BN) for the convs whose bias is folded into the following BN
_REDUCE = {"decoder.enc1": "head.reduce.0", "decoder.enc2": "head.reduce.1", "decoder.enc3": "head.reduce.2",
           "decoder.head": "head.reduce.3"}
_BN_KEYS = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")


def _strip(state: dict) -> dict:
    if state and all(k.startswith("module.") for k in state):
        return {k[len("module."):]: v for k, v in state.items()}
    return dict(state)


def detect(state: dict) -> bool:
    return any(k.removeprefix("module.").startswith(_MARK) for k in state)


class _Mapper:
    """Moves source keys into the target, remembering which were used, so nothing is silently left over."""

    def __init__(self, source: dict):
        self.source = source
        self.used: set[str] = set()
        self.out: dict = {}

    def take(self, key: str) -> torch.Tensor:
        if key not in self.source:
            raise UserError(f"hzhupku/IFA checkpoint: key {key!r} is missing")
        self.used.add(key)
        return self.source[key]

    def bn(self, src: str, dst: str) -> None:
        for name in _BN_KEYS:
            if name == "num_batches_tracked" and f"{src}.{name}" not in self.source:
                continue  # checkpoints of old PyTorch versions have none
            self.out[f"{dst}.{name}"] = self.take(f"{src}.{name}")

    def conv_bias_bn(self, conv: str, bn: str, dst_conv: str, dst_bn: str) -> None:
        """conv (weight + bias) -> BN: the weight as is, the bias folded into the BN's running mean."""
        self.out[f"{dst_conv}.weight"] = self.take(f"{conv}.weight")
        bias = self.take(f"{conv}.bias")
        self.bn(bn, dst_bn)
        mean = self.out[f"{dst_bn}.running_mean"]
        self.out[f"{dst_bn}.running_mean"] = (mean.double() - bias.double()).to(mean.dtype)


def convert(state: dict, model_cfg) -> dict:
    head = model_cfg.head
    if head.name != "ifa":
        raise UserError(f"hzhupku/IFA checkpoint: model.head.name is {head.name!r}; the release's decoder is IFA")
    if tuple(head.in_features) != ("c2", "c3", "c4", "c5") or head.pe != "sinusoidal":
        raise UserError("hzhupku/IFA checkpoint: model.head needs in_features [c2, c3, c4, c5] and pe sinusoidal "
                        "(the released fpn_ifa with ultra_pe)")
    src = _strip(state)
    m = _Mapper(src)
    for key in src:
        if key.startswith("encoder."):
            m.out["backbone." + key[len("encoder."):]] = m.take(key)
    for rel, dst in _REDUCE.items():
        m.conv_bias_bn(f"{rel}.0", f"{rel}.1", f"{dst}.0", f"{dst}.1")
    for level in range(4):
        key = f"decoder.ifa.pos{level + 1}.emb"
        if key in src:  # absent when the release's frequencies were not learnable (require_grad=False)
            m.out[f"head.pe.{level}.freq"] = m.take(key).t().contiguous()
        elif head.pe_learnable_freq:
            raise UserError(f"hzhupku/IFA checkpoint: key {key!r} is missing (model.head.pe_learnable_freq is true)")
    convs = sorted(int(k.split(".")[3]) for k in src if re.fullmatch(r"decoder\.ifa\.imnet\.\d+\.weight", k)
                   and src[k].dim() == 3)
    for i, index in enumerate(convs):
        conv = f"decoder.ifa.imnet.{index}"
        m.out[f"head.mlp.linears.{i}.weight"] = m.take(f"{conv}.weight").squeeze(-1)
        m.out[f"head.mlp.linears.{i}.bias"] = m.take(f"{conv}.bias")
        if i < len(convs) - 1:
            m.bn(f"decoder.ifa.imnet.{index + 1}", f"head.mlp.norms.{i}")
    if any(k.startswith("auxor.") for k in src):
        if not model_cfg.aux_head.enabled:
            raise UserError("hzhupku/IFA checkpoint has an auxiliary head (auxor.*); enable model.aux_head")
        m.conv_bias_bn("auxor.aux.0", "auxor.aux.1", "aux_head.conv.0", "aux_head.conv.1")
        m.out["aux_head.cls.1.weight"] = m.take("auxor.aux.4.weight")
        m.out["aux_head.cls.1.bias"] = m.take("auxor.aux.4.bias")
    left = sorted(set(src) - m.used)
    if left:
        more = f" (+{len(left) - 1} more)" if len(left) > 1 else ""
        raise UserError(f"hzhupku/IFA checkpoint: key {left[0]!r} has no counterpart in the project's model{more}")
    return m.out


register(Converter("release", detect, convert))
