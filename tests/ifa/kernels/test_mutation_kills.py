"""Tests added for what the mutation check of ifa/kernels (`make mutation MUTATE=kernels`) found unchecked."""
import sys

import pytest
import torch

import ifa.kernels

pytest.importorskip("triton", reason="the kernel modules import triton (dev extras on Linux x86_64)")
from ifa.kernels import gather_sum as G  # noqa: E402
from ifa.kernels import tail_mlp as T  # noqa: E402

from . import _cases


def test_available_in_the_interpreter(interpreter):
    assert interpreter(_cases.available_here) == (True, "")


def test_available_refuses_interpret_set_after_the_import(interpreter):
    # a fresh worker: this one imports triton in compiled mode first
    worker = type(interpreter)({"TRITON_INTERPRET": None})
    try:
        ok, why = worker(_cases.available_when_interpret_set_late)
    finally:
        worker.pool.shutdown(cancel_futures=True)
    assert not ok and "after triton was imported" in why


def test_available_without_interpreter_needs_cuda(interpreter):
    worker = type(interpreter)({"TRITON_INTERPRET": None})
    try:
        ok, why = worker(_cases.available_here)
    finally:
        worker.pool.shutdown(cancel_futures=True)
    if torch.cuda.is_available():
        assert (ok, why) == (True, "")
    else:
        assert not ok and "no CUDA device" in why


def test_available_with_cuda_and_without_interpreter(monkeypatch):
    # this machine's CUDA reported as present (none is here; on a GPU machine the worker test above checks the
    # real one): the compiled kernels are then available, which the head's "auto" relies on
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert ifa.kernels.available() == (True, "")


def test_available_without_triton(monkeypatch):
    monkeypatch.setitem(sys.modules, "triton", None)  # find_spec("triton") is then None, as when not installed
    assert ifa.kernels.available() == (False, "triton is not installed")


def test_exports_resolve_to_their_modules():
    for name, module in (("gather_sum_triton", G), ("build_inverse_index", G), ("InverseIndex", G),
                         ("GatherSum", G), ("gather_sum_backward_triton", G),
                         ("tail_mlp_triton", T)):
        assert getattr(ifa.kernels, name) is getattr(module, name)
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        ifa.kernels.nope  # noqa: B018


def test_no_export_is_named_like_a_submodule():
    # an export named like its submodule resolves to the function once, then to the module for good
    import importlib.util

    clash = [n for n in ifa.kernels.__all__ if importlib.util.find_spec(f"ifa.kernels.{n}") is not None]
    assert clash == []
    from ifa.kernels import gather_sum

    assert gather_sum is G and callable(G.gather_sum)


# ---- gather-sum ----------------------------------------------------------------------------------------------------

def test_inverse_index_csr_and_pieces_exactly():
    # rows read 5, 0, 8 and 3 times; segment 4: row 0 -> pieces [0, 4) [4, 5), row 1 -> one empty item, row 2 ->
    # [5, 9) [9, 13) (exactly two full pieces), row 3 -> [13, 16)
    flat = torch.tensor([0] * 5 + [2] * 8 + [3] * 3)
    perm = torch.randperm(16, generator=torch.Generator().manual_seed(0))
    index = flat[perm].view(8, 2)
    inv = G.build_inverse_index(index, 4, segment=4)
    assert torch.equal(index.view(-1)[inv.positions.long()], flat)
    assert inv.positions.dtype == torch.int32
    assert G.build_inverse_index(torch.zeros(500, 7, dtype=torch.int64), 1).positions.dtype == torch.int32
    assert inv.offsets.tolist() == [0, 5, 5, 13, 16]
    assert inv.item_start.tolist() == [0, 4, 5, 5, 9, 13]
    assert inv.item_end.tolist() == [4, 5, 5, 9, 13, 16]
    assert inv.item_dest.tolist() == [-1, -2, 1, -3, -4, 3]
    assert inv.split_rows.tolist() == [0, 2] and inv.split_offsets.tolist() == [0, 2, 4]
    assert (inv.num_rows, inv.queries, inv.slots, inv.num_partials) == (4, 8, 2, 4)


def test_inverse_index_keeps_each_rows_pairs_in_order():
    # the backward sums a row's pairs in this order, so it is fixed whatever sort torch uses on the device. More
    # than 16 pairs: below 17 elements CPU's unstable sort (an insertion sort there) keeps equal keys in order too
    index = torch.randint(0, 5, (45, 7), generator=torch.Generator().manual_seed(0))
    pos = G.build_inverse_index(index, 5).positions.long()
    key = index.view(-1)[pos] * pos.numel() + pos  # by row, then by position
    assert bool((key[1:] > key[:-1]).all())


def test_inverse_index_refuses_a_row_outside_the_table():
    with pytest.raises(ValueError, match="refers to row 4 of a 4-row table"):
        G.build_inverse_index(torch.tensor([[0, 4]]), 4)
    assert G.build_inverse_index(torch.tensor([[0, 3]]), 4).num_rows == 4


def test_shape_checks_name_the_argument():
    table, index = torch.randn(5, 8, dtype=torch.float64), torch.zeros(3, 2, dtype=torch.int64)
    with pytest.raises(ValueError, match=r"weight has shape \(3, 3\), expected \(3, 2\)"):
        G.gather_sum_triton(table, index, torch.ones(3, 3, dtype=torch.float64))
    inverse = G.build_inverse_index(index, 5)
    with pytest.raises(ValueError, match="grad_out has 4 rows, the inverse index 3 queries"):
        G.gather_sum_backward_triton(torch.ones(4, 8, dtype=torch.float64), inverse)
    with pytest.raises(ValueError, match=r"weight has shape \(3, 1\)"):
        G.gather_sum_backward_triton(torch.ones(3, 8, dtype=torch.float64), inverse, torch.ones(3, 1))


def test_strided_inputs(interpreter):
    assert interpreter(_cases.gather_strided_inputs_error) <= 1e-12


def test_reads_stay_inside_the_inputs(interpreter):
    # widths 150 (not a multiple of BLOCK_W), 45 queries (not of BLOCK_Q): a mask one element too wide reads NaN
    assert interpreter(_cases.gather_guarded_error) <= 1e-12


def test_empty_shapes(interpreter):
    assert interpreter(_cases.gather_empty_shapes)


def test_autograd_gather_sum_defaults(interpreter):
    # no ReLU unless asked for (the head's callers always pass it; others may not)
    assert interpreter(_cases.gather_autograd_defaults_error) <= 1e-12


# ---- tail MLP ------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("dims", [(50, 24, 40, 7), (64, 32, 10)], ids=["three", "two"])
def test_tail_strided_inputs(interpreter, dims):
    assert interpreter(_cases.tail_strided_inputs_error, dims) <= 1e-12


@pytest.mark.parametrize("dims", [(50, 24, 40, 7), (40, 32, 32, 32, 10), (50, 40, 10)], ids=["three", "four", "two"])
def test_tail_reads_stay_inside_the_inputs(interpreter, dims):
    # widths 50, 24 and 40 are not multiples of the tiles (32 in float64): a mask one element too wide reads NaN
    assert interpreter(_cases.tail_guarded_error, dims) <= 1e-12


def test_tail_refuses_widths_that_do_not_chain():
    layers = [(torch.randn(8, 6), torch.randn(8)), (torch.randn(4, 7), torch.randn(4))]
    with pytest.raises(ValueError, match="layer widths do not chain"):
        T.tail_mlp_triton(torch.randn(3, 6), layers)
    with pytest.raises(ValueError, match="at least one layer"):
        T.tail_mlp_triton(torch.randn(3, 6), [])


# The tiles the sm_90 builds were checked with (tests/ifa/kernels/test_sm90_compile.py builds the released ones):
# (kernel, block_m, block_k, block_n, na_pad, nc_pad, num_warps, num_stages)
RELEASED = (512, 256, 256, 19)
TILES = [
    (RELEASED, torch.bfloat16, "ieee", ("tail3", 128, 64, 64, 256, 32, 8, 2)),
    (RELEASED, torch.float32, "tf32", ("tail3", 64, 32, 32, 256, 32, 8, 2)),
    (RELEASED, torch.float32, "ieee", ("split", 64, 32, 32, 0, 32, 4, 2)),
    (RELEASED, torch.float64, "ieee", ("tail3", 64, 32, 32, 256, 32, 8, 2)),
    ((512, 256, 19), torch.bfloat16, "ieee", ("tail2", 64, 64, 64, 0, 32, 4, 2)),
    ((512, 256, 19), torch.float32, "tf32", ("tail2", 64, 32, 32, 0, 32, 4, 2)),
    ((64, 32, 10), torch.float16, "ieee", ("tail2", 64, 64, 32, 0, 16, 4, 2)),
    # the budgets' edges: 16 rows is the least a block may have; wider hidden layers leave the fused kernel
    ((64, 1024, 64, 10), torch.float32, "tf32", ("tail3", 16, 32, 32, 1024, 16, 8, 2)),
    ((64, 2048, 64, 10), torch.float32, "tf32", ("split", 64, 32, 32, 0, 16, 4, 2)),
    ((64, 256, 64, 200), torch.float32, "tf32", ("tail3", 32, 32, 32, 256, 256, 8, 2)),  # many classes count too
    ((64, 32, 100), torch.float32, "ieee", ("tail2", 32, 32, 32, 0, 128, 4, 2)),
    ((64, 32, 500), torch.float32, "ieee", ("tail2", 16, 32, 32, 0, 512, 4, 2)),
    # 59 classes (Pascal Context, padded to 64): accumulators exactly at the budgets, which still fit (built as
    # tail3/bf16/59, tail3/tf32/59, tail2/bf16/59: no spills)
    ((512, 256, 256, 59), torch.bfloat16, "ieee", ("tail3", 128, 64, 64, 256, 64, 8, 2)),
    ((512, 256, 256, 59), torch.float32, "tf32", ("tail3", 64, 32, 32, 256, 64, 8, 2)),
    ((512, 256, 59), torch.bfloat16, "ieee", ("tail2", 64, 64, 64, 0, 64, 4, 2)),
]


@pytest.mark.parametrize("dims,dtype,precision,tiles", TILES)
def test_blocks_are_the_built_tiles(dims, dtype, precision, tiles):
    assert tuple(T.blocks(dims, dtype, precision)) == tiles


def test_precision_follows_dtype_and_flag():
    assert T._precision(torch.bfloat16, True) == "ieee" and T._precision(torch.float64, True) == "ieee"
    assert T._precision(torch.float32, True) == "tf32" and T._precision(torch.float32, False) == "ieee"
    before = torch.backends.cuda.matmul.allow_tf32  # a property of torch's cuBLAS settings (no monkeypatch)
    try:
        for flag in (True, False):
            torch.backends.cuda.matmul.allow_tf32 = flag
            assert T._precision(torch.float32, None) == ("tf32" if flag else "ieee")
            assert T._precision(torch.float32, not flag) == ("ieee" if flag else "tf32")
    finally:
        torch.backends.cuda.matmul.allow_tf32 = before
