"""MACs of the released head configuration under fvcore (one multiply-add = 1), both formulations."""
import pytest
import torch

from bench.measure.macs import count_macs
from ifa import IFAHead, ShapeSpec

RELEASED = {"c2": ShapeSpec(256, 4), "c3": ShapeSpec(512, 8), "c4": ShapeSpec(1024, 16), "c5": ShapeSpec(2048, 32)}


@pytest.mark.slow
def test_released_head_macs_at_1024x2048():
    head = IFAHead(RELEASED, 19).eval()
    feats = {k: torch.randn(1, s.channels, 1024 // s.stride, 2048 // s.stride) for k, s in RELEASED.items()}
    queries = 256 * 512
    cells = sum((1024 // s.stride) * (2048 // s.stride) for s in RELEASED.values())
    reductions = 256 * sum(s.channels * (1024 // s.stride) * (2048 // s.stride) for s in RELEASED.values())
    mlp_per_query = 1128 * 512 + 512 * 256 + 256 * 256 + 256 * 19
    assert mlp_per_query == 779_008

    head.formulation = "reference"
    ref = count_macs(head, (feats,))
    assert ref.gmacs == pytest.approx(118.0, rel=0.02)
    assert ref.by_module["mlp.linears"] == mlp_per_query * queries  # 102.1 G
    assert ref.by_module["reduce"] == pytest.approx(reductions, rel=0.01)  # 16.1 G (+ BatchNorm)

    head.formulation = "fused"
    fused = count_macs(head, (feats,))
    projection = 512 * 256 * cells
    tail = (512 * 256 + 256 * 256 + 256 * 19) * queries
    bands = -(-256 // head.band_rows((256, 512), 1))  # eval runs over bands of query rows
    pe_tiles = bands * sum(s * s for s in (1, 2, 4, 8)) * (26 * 512 + 2 * 12)  # one table entry per phase
    assert fused.total == reductions + projection + tail + pe_tiles  # 65.34 G
    assert fused.gmacs / ref.gmacs < 0.56
