"""count_macs against hand-computed multiply-add counts."""
import torch
import torch.nn.functional as F
from torch import nn

from bench.measure.macs import count_macs


class _Fn(nn.Module):
    def __init__(self, fn):
        super().__init__()
        self.fn = fn

    def forward(self, *xs):
        return self.fn(*xs)


def test_conv_bias_free_counts_kernel_times_output():
    conv = nn.Conv2d(3, 8, kernel_size=3, padding=1, bias=False)
    macs = count_macs(conv, torch.rand(1, 3, 10, 12))
    assert macs.total == 8 * 3 * 3 * 3 * 10 * 12
    assert macs.by_operator == {"conv": macs.total}
    assert macs.unsupported_ops == {}


def test_linear_on_tokens_and_1x1_conv_agree():
    tokens = torch.rand(1, 50, 64)
    lin = count_macs(nn.Linear(64, 32), tokens)
    assert lin.total == 50 * 64 * 32
    conv = count_macs(nn.Conv1d(64, 32, 1), tokens.transpose(1, 2).contiguous())
    assert conv.total == lin.total


def test_matmul_bmm_einsum_under_broadcasting():
    a, b = torch.rand(2, 7, 5), torch.rand(5, 3)
    assert count_macs(_Fn(torch.matmul), (a, b)).total == 2 * 7 * 3 * 5
    # A broadcast batch on the *second* operand is where fvcore's default handle undercounts.
    assert count_macs(_Fn(torch.matmul), (torch.rand(7, 5), torch.rand(4, 5, 3))).total == 4 * 7 * 3 * 5
    assert count_macs(_Fn(torch.bmm), (a, torch.rand(2, 5, 3))).total == 2 * 7 * 3 * 5
    einsum = _Fn(lambda x, y: torch.einsum("bqc,bkc->bqk", x, y))
    assert count_macs(einsum, (a, torch.rand(2, 4, 5))).total == 2 * 7 * 4 * 5
    ellipsis = _Fn(lambda x, y: torch.einsum("...c,dc->...d", x, y))
    assert count_macs(ellipsis, (a, torch.rand(3, 5))).total == 2 * 7 * 3 * 5


def test_gathers_are_free_and_not_reported_unsupported():
    idx = torch.tensor([3, 0, 2])

    def gathers(x):
        flat = x.flatten(1)
        return (
            flat[:, idx].sum(dim=1, keepdim=True)
            + torch.index_select(flat, 1, idx)
            + torch.gather(flat, 1, idx.expand(2, 3))
            + torch.take_along_dim(flat, idx.expand(2, 3), dim=1)
            + F.embedding(idx, flat.t()).t()
        )

    macs = count_macs(_Fn(gathers), torch.rand(2, 4, 5))
    assert macs.total == 0
    for op in ("aten::index", "aten::gather", "aten::index_select", "aten::take_along_dim", "aten::embedding"):
        assert op not in macs.unsupported_ops
    assert macs.unsupported_ops == {"aten::add": 4, "aten::sum": 1}


def test_grid_sample_bilinear_is_4_per_output_value_nearest_is_0():
    feat = torch.rand(1, 6, 9, 11)
    grid = torch.rand(1, 5, 7, 2) * 2 - 1
    bilinear = _Fn(lambda f, g: F.grid_sample(f, g, mode="bilinear", align_corners=False))
    nearest = _Fn(lambda f, g: F.grid_sample(f, g, mode="nearest", align_corners=False))
    bicubic = _Fn(lambda f, g: F.grid_sample(f, g, mode="bicubic", align_corners=True))
    assert count_macs(bilinear, (feat, grid)).total == 4 * 6 * 5 * 7
    assert count_macs(nearest, (feat, grid)).total == 0
    assert count_macs(bicubic, (feat, grid)).total == 16 * 6 * 5 * 7
    nearest_up = _Fn(lambda f: F.interpolate(f, scale_factor=2, mode="nearest"))
    assert count_macs(nearest_up, feat).total == 0


def test_elementwise_and_softmax_are_listed_not_dropped():
    fn = _Fn(lambda x: torch.softmax(x * 2 + torch.sin(x), dim=-1).sigmoid())
    macs = count_macs(fn, torch.rand(3, 4))
    assert macs.total == 0
    assert macs.unsupported_ops == {
        "aten::add": 1, "aten::mul": 1, "aten::sin": 1, "aten::softmax": 1, "aten::sigmoid": 1,
    }
    assert macs.unsupported_summary() == "add*1,mul*1,sigmoid*1,sin*1,softmax*1"


class _Tiny(nn.Module):
    def __init__(self):
        super().__init__()
        self.backbone = nn.Sequential(nn.Conv2d(3, 4, 1, bias=False), nn.ReLU())
        self.head = nn.Module()
        self.head.proj = nn.Conv2d(4, 2, 1, bias=False)
        self.head.mlp = nn.Sequential(nn.Linear(2, 3, bias=False))
        self.aux_head = nn.Conv2d(4, 2, 1)  # never called at inference

    def forward(self, x):
        y = self.head.proj(self.backbone(x))
        return self.head.mlp(y.permute(0, 2, 3, 1))


def test_by_module_depth_and_uncalled_modules():
    macs = count_macs(_Tiny().eval(), torch.rand(1, 3, 4, 5), by_module_depth=2)
    hw = 4 * 5
    assert macs.by_module["backbone"] == hw * 3 * 4
    assert macs.by_module["head.proj"] == hw * 4 * 2
    assert macs.by_module["head.mlp"] == hw * 2 * 3
    assert "head.mlp.0" not in macs.by_module  # deeper than requested
    assert macs.total == hw * (12 + 8 + 6)
    assert macs.by_module.get("aux_head", 0) == 0 and "aux_head" in macs.uncalled_modules
    assert abs(macs.gmacs_of("head.mlp") - hw * 6 / 1e9) < 1e-15


def test_embedding_bag_weighted_counts_gathered_values_unweighted_is_free():
    table, idx, w = torch.rand(10, 4), torch.randint(0, 10, (6, 3)), torch.rand(6, 3)
    weighted = _Fn(lambda t, i, pw: F.embedding_bag(i, t, mode="sum", per_sample_weights=pw))
    plain = _Fn(lambda t, i: F.embedding_bag(i, t, mode="sum"))
    assert count_macs(weighted, (table, idx, w)).total == 6 * 3 * 4
    macs = count_macs(plain, (table, idx))
    assert macs.total == 0 and macs.unsupported_ops == {}
