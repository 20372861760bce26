"""bench/measure/macs.py: MAC handles `make mutation MUTATE=macs` found without an exact count."""
import torch
import torch.nn.functional as F
from torch import nn

from bench.measure.macs import count_macs
from tests.measure.test_macs import _Fn


def _macs(fn, *inputs) -> int:
    return count_macs(_Fn(fn), inputs).total


def test_einsum_one_operand_spaces_size_one_broadcast_and_three_operands():
    assert _macs(lambda x: torch.einsum("bij->bji", x), torch.rand(2, 3, 4)) == 0
    spaced = _macs(lambda x, y: torch.einsum("b q c, b k c -> b q k", x, y), torch.rand(2, 7, 5), torch.rand(2, 4, 5))
    assert spaced == 2 * 7 * 4 * 5
    # a size-1 batch broadcasts against 2, whichever operand has it; a batch of 1 on both stays 1
    bqk = lambda x, y: torch.einsum("bqc,bkc->bqk", x, y)  # noqa: E731
    assert _macs(bqk, torch.rand(1, 7, 5), torch.rand(2, 4, 5)) == 280
    assert _macs(bqk, torch.rand(2, 7, 5), torch.rand(1, 4, 5)) == 280
    assert _macs(bqk, torch.rand(1, 7, 5), torch.rand(1, 4, 5)) == 140
    # three operands: the optimal order (ij,jk)->ik (2*3*4) then (ik,kl)->il (2*4*5), not (jk,kl) first (60 + 30)
    chain = _macs(lambda a, b, c: torch.einsum("ij,jk,kl->il", a, b, c), torch.rand(2, 3), torch.rand(3, 4),
                  torch.rand(4, 5))
    assert chain == 2 * 3 * 4 + 2 * 4 * 5


def test_einsum_ellipsis_of_different_ranks_aligns_from_the_right():
    # (2, 3) and (3,) broadcast to batch (2, 3): 6 batches of 7x4 outputs, each a 5-long dot product
    x, y = torch.rand(2, 3, 7, 5), torch.rand(3, 4, 5)
    assert _macs(lambda a, b: torch.einsum("...qc,...kc->...qk", a, b), x, y) == 2 * 3 * 7 * 4 * 5
    x = torch.rand(2, 3, 4, 5)  # q (4) smaller than c (5): no letter's size can stand in for another's
    assert _macs(lambda a, b: torch.einsum("...qc,...kc->...qk", a, b), x, y) == 2 * 3 * 4 * 4 * 5


class _Attention(nn.Module):
    def forward(self, q, k, v):
        return F.scaled_dot_product_attention(q, k, v)


def test_sdpa_macs_on_three_dimensional_inputs():
    # (batch, length, dim) without a head axis: batch 2, L_q 5, L_kv 7, d_qk 4, d_v 6
    macs = count_macs(_Attention(), (torch.rand(2, 5, 4), torch.rand(2, 7, 4), torch.rand(2, 7, 6)))
    assert macs.total == 2 * 5 * 7 * (4 + 6)


def test_mm_addmm_baddbmm_and_bicubic_upsampling():
    assert _macs(torch.mm, torch.rand(7, 5), torch.rand(5, 3)) == 7 * 3 * 5
    assert _macs(torch.addmm, torch.rand(3), torch.rand(7, 5), torch.rand(5, 3)) == 7 * 3 * 5
    assert _macs(torch.baddbmm, torch.rand(2, 7, 3), torch.rand(2, 7, 5), torch.rand(2, 5, 3)) == 2 * 7 * 3 * 5
    assert _macs(lambda x, w: F.linear(x, w), torch.rand(2, 7, 5), torch.rand(3, 5)) == 2 * 7 * 3 * 5
    bicubic = _macs(lambda f: F.interpolate(f, size=(6, 8), mode="bicubic", align_corners=False), torch.rand(1, 2, 3, 4))
    assert bicubic == 16 * 2 * 6 * 8
