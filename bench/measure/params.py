"""Parameter counts of a segmentor: inference total (backbone + head + anything else that runs at test time),
per part, and the auxiliary head listed separately (it only runs in training, so it is not in the total)."""
from __future__ import annotations

from dataclasses import dataclass

from torch import nn

_PARTS = ("backbone", "head", "aux_head")


@dataclass(frozen=True)
class ParamCount:
    total: int  # inference parameters: everything except the auxiliary head
    backbone: int
    head: int
    aux_head: int  # listed, excluded from `total`
    other: int  # parameters outside backbone/head/aux_head (counted in `total`)


def _unique(module: nn.Module | None) -> dict[int, int]:
    if module is None:
        return {}
    return {id(p): p.numel() for p in module.parameters()}


def count_params(model: nn.Module) -> ParamCount:
    """Counts each tensor once, even if shared. A model without `.backbone`/`.head` counts wholly as `other`."""
    everything = _unique(model)
    parts = {name: _unique(getattr(model, name, None)) for name in _PARTS}
    aux_only = {k: v for k, v in parts["aux_head"].items() if k not in parts["backbone"] and k not in parts["head"]}
    named = set(parts["backbone"]) | set(parts["head"]) | set(aux_only)
    other = sum(n for k, n in everything.items() if k not in named)
    return ParamCount(
        total=sum(everything.values()) - sum(aux_only.values()),
        backbone=sum(parts["backbone"].values()),
        head=sum(parts["head"].values()),
        aux_head=sum(aux_only.values()),
        other=other,
    )
