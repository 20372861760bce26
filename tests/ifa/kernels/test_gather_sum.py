"""gather_sum (ifa/kernels/gather_sum.py) in triton's interpreter against torch, float64 unless said."""
import itertools

import pytest
import torch

from . import _cases

# odd query counts and widths that are not multiples of BLOCK_Q (32) / BLOCK_W (128)
Q, WIDTH, ROWS = 45, 150, 23


@pytest.mark.parametrize("slots,weighted,biased,relu", list(itertools.product((1, 4, 7, 16), (False, True),
                                                                              (False, True), (False, True))))
def test_forward_matches_torch(interpreter, slots, weighted, biased, relu):
    assert interpreter(_cases.gather_forward_error, Q, WIDTH, ROWS, slots, weighted, biased, relu) <= 1e-12


def test_forward_int32_index(interpreter):
    assert interpreter(_cases.gather_forward_error, 33, 40, 9, 7, True, True, True, torch.int32) <= 1e-12


@pytest.mark.parametrize("slots,weighted,relu,segment", [(1, False, False, None), (7, True, True, 4),
                                                         (16, True, False, 8), (4, False, True, 4)])
def test_gradients_match_autograd(interpreter, slots, weighted, relu, segment):
    errors = interpreter(_cases.gather_grad_errors, 37, 70, 19, slots, weighted, relu, segment)
    if segment:  # row 0 takes a third of the pairs: it must have been cut into pieces and joined
        assert errors.pop("split_rows") >= 1
    errors.pop("split_rows", None)
    assert max(errors.values()) <= 1e-12, errors


def test_edge_cases(interpreter):
    assert interpreter(_cases.gather_edge_cases)


def test_two_runs_bit_equal(interpreter):
    # the interpreter runs programs one after another, so this checks the fixed summation order of forward and
    # backward (pieces, then their join), not the absence of races; that is by construction (no atomics)
    assert interpreter(_cases.gather_bit_equal_twice, 45, 150, 23, 7)


@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
def test_low_precision_output_within_one_rounding(interpreter, dtype):
    # half an ulp, relative; bfloat16 one ulp: the interpreter truncates float32 -> bfloat16 (a GPU rounds to
    # nearest), float16 goes through numpy, which rounds
    eps = {"bfloat16": 2 ** -7, "float16": 2 ** -11}[dtype]
    assert interpreter(_cases.gather_low_precision_error, dtype) <= eps * 1.01
