"""tail_mlp (ifa/kernels/tail_mlp.py) in triton's interpreter against torch.

The interpreter's tl.dot is a numpy matmul: float64 runs in float64 (so the 1e-12 checks are exact tests of the
tiling, masking and chunked layer walk) and TF32 is not emulated (allow_tf32=True runs the three-layer kernel
at full float32 precision). bf16/fp16 dots are not interpretable (numpy has no bfloat16): their numerics need a
GPU; tests/ifa/kernels/test_sm90_compile.py builds them."""
import pytest

from . import _cases

RELEASED = (512, 256, 256, 19)
SHAPES = [RELEASED, (64, 32, 32, 10), (50, 24, 40, 7), (64, 32, 10), (40, 32, 32, 32, 10), (48, 10)]
Q = 70  # not a multiple of any BLOCK_M


@pytest.mark.parametrize("dims", SHAPES, ids=lambda d: "-".join(map(str, d)))
def test_float64_matches_torch(interpreter, dims):
    assert interpreter(_cases.tail_relative_error, dims, Q, "float64") <= 1e-12


@pytest.mark.parametrize("dims,allow_tf32,kernel", [(RELEASED, True, "tail3"), (RELEASED, False, "split"),
                                                    ((64, 32, 10), False, "tail2")],
                         ids=["released-tf32-flag", "released-ieee", "two-layer"])
def test_float32_matches_torch(interpreter, dims, allow_tf32, kernel):
    assert interpreter(_cases.tail_kernel_for, dims, "float32", allow_tf32) == kernel
    assert interpreter(_cases.tail_relative_error, dims, Q, "float32", allow_tf32) <= 1e-5


def test_float64_runs_the_three_layer_kernel(interpreter):
    assert interpreter(_cases.tail_kernel_for, RELEASED, "float64", None) == "tail3"
