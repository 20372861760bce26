"""What the kernel tests run inside their worker processes (see conftest.py): each function builds its inputs,
runs a kernel and its torch reference, and returns plain numbers. Nothing here imports triton at module level,
so that `init_worker` sets the environment before triton's first import."""
from __future__ import annotations

import os
import re

import torch
import torch.nn.functional as F


def init_worker(env: dict) -> None:
    for key, value in env.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    torch.set_num_threads(1)


# ---- gather-sum ----------------------------------------------------------------------------------------------------

def _gather_inputs(q, width, rows, slots, weighted, biased, dtype, seed, index_dtype=torch.int64):
    g = torch.Generator().manual_seed(seed)
    table = torch.randn(rows, width, generator=g, dtype=torch.float64).to(dtype)
    # skewed: a third of the pairs read row 0 (a long segment); the last rows are never read (zero gradient)
    index = torch.randint(0, max(1, rows - 3), (q, slots), generator=g)
    index[torch.rand(q, slots, generator=g) < 1 / 3] = 0
    weight = torch.rand(q, slots, generator=g, dtype=torch.float64).to(dtype) if weighted else None
    bias = torch.randn(width, generator=g, dtype=torch.float64).to(dtype) if biased else None
    return table, index.to(index_dtype), weight, bias


def _gather_reference(table, index, weight, bias, relu):
    rows = table.index_select(0, index.reshape(-1).long()).view(*index.shape, -1)
    if weight is not None:
        rows = rows * weight[..., None]
    out = rows.sum(1)
    if bias is not None:
        out = out + bias
    return out.relu() if relu else out


def gather_forward_error(q, width, rows, slots, weighted, biased, relu, index_dtype=torch.int64) -> float:
    from ifa.kernels.gather_sum import gather_sum_triton

    args = _gather_inputs(q, width, rows, slots, weighted, biased, torch.float64, seed=slots, index_dtype=index_dtype)
    out = gather_sum_triton(*args, relu=relu)
    assert out.dtype == torch.float64 and out.shape == (q, width)
    return (out - _gather_reference(*args, relu)).abs().max().item()


def gather_grad_errors(q, width, rows, slots, weighted, relu, segment) -> dict:
    """Max abs error of the table, weight and bias gradients against torch autograd (float64); segment None:
    the inverse index is built inside backward with the default segment length."""
    from ifa.kernels.gather_sum import build_inverse_index, gather_sum

    table, index, weight, bias = _gather_inputs(q, width, rows, slots, weighted, True, torch.float64, seed=q)
    grad = torch.randn(q, width, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    leaves = [t.clone().requires_grad_() for t in (table, bias) + ((weight,) if weighted else ())]
    ref = _gather_reference(leaves[0], index, leaves[2] if weighted else None, leaves[1], relu)
    expected = torch.autograd.grad(ref, leaves, grad)
    mine = [t.clone().requires_grad_() for t in (table, bias) + ((weight,) if weighted else ())]
    inverse = build_inverse_index(index, rows, segment) if segment else None
    out = gather_sum(mine[0], index, mine[2] if weighted else None, mine[1], relu, inverse)
    got = torch.autograd.grad(out, mine, grad)
    names = ["table", "bias", "weight"]
    errors = {n: (a - b).abs().max().item() for n, a, b in zip(names, got, expected)}
    errors["split_rows"] = int(inverse.split_rows.numel()) if inverse is not None else -1
    return errors


def gather_bit_equal_twice(q, width, rows, slots) -> bool:
    """float32 forward and table gradient, twice: bit-equal (no atomics, fixed summation order)."""
    from ifa.kernels.gather_sum import build_inverse_index, gather_sum

    table, index, weight, bias = _gather_inputs(q, width, rows, slots, True, True, torch.float32, seed=3)
    inverse = build_inverse_index(index, rows, segment=8)
    grad = torch.randn(q, width, generator=torch.Generator().manual_seed(2))
    runs = []
    for _ in range(2):
        t = table.clone().requires_grad_()
        out = gather_sum(t, index, weight, bias, True, inverse)
        runs.append((out.detach(), torch.autograd.grad(out, t, grad)[0]))
    return all(torch.equal(a, b) for a, b in zip(*runs))


def gather_edge_cases() -> bool:
    """No queries, no slots (bias then ReLU only), and an inverse index for another shape (refused)."""
    from ifa.kernels.gather_sum import build_inverse_index, gather_sum, gather_sum_triton

    table, bias = torch.randn(5, 20, dtype=torch.float64), torch.randn(20, dtype=torch.float64)
    empty = gather_sum_triton(table, torch.zeros(0, 3, dtype=torch.int64), None, bias, True)
    no_slots = gather_sum_triton(table, torch.zeros(4, 0, dtype=torch.int64), None, bias, True)
    index = torch.randint(0, 5, (6, 2))
    try:
        gather_sum(table, index, None, None, False, build_inverse_index(index[:5], 5))
        refused = False
    except ValueError:
        refused = True
    return empty.shape == (0, 20) and torch.equal(no_slots, bias.relu().expand(4, 20)) and refused


def gather_low_precision_error(dtype_name: str) -> float:
    """bf16/fp16 table: output in that dtype, sums in float32: error against float64 within one output rounding."""
    from ifa.kernels.gather_sum import gather_sum_triton

    dtype = getattr(torch, dtype_name)
    table, index, weight, bias = _gather_inputs(45, 150, 20, 7, True, True, dtype, seed=5)
    out = gather_sum_triton(table, index, weight, bias, relu=False)
    assert out.dtype == dtype
    ref = _gather_reference(table.double(), index, weight.double(), bias.double(), False)
    return ((out.double() - ref).abs() / ref.abs().clamp(min=1)).max().item()


# ---- tail MLP ------------------------------------------------------------------------------------------------------

def _tail_reference(x, layers):
    for w, b in layers[:-1]:
        x = F.relu(F.linear(x, w, b))
    return F.linear(x, *layers[-1])


def tail_relative_error(dims, q, dtype_name, allow_tf32=None) -> float:
    """max |kernel - float64 torch| / max |float64 torch|, same inputs (rounded to the dtype) for both."""
    from ifa.kernels.tail_mlp import tail_mlp_triton

    dtype = getattr(torch, dtype_name)
    g = torch.Generator().manual_seed(len(dims) * 100 + dims[0])
    layers = [((torch.randn(o, i, generator=g, dtype=torch.float64) / i ** 0.5).to(dtype),
               (0.5 * torch.randn(o, generator=g, dtype=torch.float64)).to(dtype)) for i, o in zip(dims, dims[1:])]
    x = torch.randn(q, dims[0], generator=g, dtype=torch.float64).relu().to(dtype)
    out = tail_mlp_triton(x, layers, allow_tf32=allow_tf32)
    assert out.dtype == dtype and out.shape == (q, dims[-1])
    ref = _tail_reference(x.double(), [(w.double(), b.double()) for w, b in layers])
    return ((out.double() - ref).abs().max() / ref.abs().max()).item()


def tail_kernel_for(dims, dtype_name, allow_tf32) -> str:
    from ifa.kernels.tail_mlp import _precision, blocks

    dtype = getattr(torch, dtype_name)
    return blocks(dims, dtype, _precision(dtype, allow_tf32)).kernel


# ---- sm_90 ahead-of-time builds --------------------------------------------------------------------------------------

RELEASED_TAIL = (512, 256, 256, 19)
RELEASED_QUERIES = 2 * 256 * 512  # batch 2 at 1024x2048, output stride 4
RELEASED_SLOTS = 7
# tail3/bf16+fp32w: bf16 activations with float32 weights (autocast, weights not cast beforehand). A third part
# gives the classes instead of 19: with 59 (Pascal Context, padded to 64) the tail tiles sit exactly at blocks()'
# register budgets, the largest accumulators it picks at those rows: 128 x (256 + 64) bf16, 64 x (256 + 64) tf32,
# 64 x (64 + 64) for the bf16 two-layer tail.
SM90_VARIANTS = [
    "gather_fwd/fp32", "gather_fwd/bf16", "gather_bwd_pieces/fp32", "gather_bwd_pieces/bf16", "gather_bwd_join/fp32",
    "gather_bwd_join/bf16", "tail3/tf32", "tail3/bf16", "tail3/bf16+fp32w", "tail2_after_split/fp32", "tail2/fp32",
    "tail2/tf32", "tail2/bf16", "tail3/tf32/59", "tail3/bf16/59", "tail3/bf16+fp32w/59", "tail2/bf16/59",
]


def _sm90_launch(name: str):
    """The launch the released head would make, built by the kernels' own launch code on meta tensors (real
    shapes and strides, no memory; their null data pointers count as 16-byte aligned, as CUDA allocations are)."""
    from ifa.kernels import gather_sum as G
    from ifa.kernels import tail_mlp as T

    kernel, dt, *classes = name.split("/")
    dt, _, weights = dt.partition("+")
    dtype = torch.bfloat16 if dt == "bf16" else torch.float32
    wdtype = torch.float32 if weights == "fp32w" else dtype
    meta = dict(device="meta")
    q, s, width = RELEASED_QUERIES, RELEASED_SLOTS, RELEASED_TAIL[0]
    rows = 3 * q // 4  # projected cells of the coarser levels of both images, plus PE tiles
    if kernel == "gather_fwd":
        table = torch.empty(rows, width, dtype=dtype, **meta)
        return G._forward_launch(table, torch.empty(q, s, dtype=torch.int64, **meta),
                                 torch.empty(q, s, dtype=dtype, **meta), torch.empty(width, dtype=dtype, **meta),
                                 True, torch.empty(q, width, dtype=dtype, **meta))
    if kernel.startswith("gather_bwd"):
        items, split = rows + q * s // G.SEGMENT, 64
        i64 = lambda n: torch.empty(n, dtype=torch.int64, **meta)  # noqa: E731
        inverse = G.InverseIndex(torch.empty(q * s, dtype=torch.int32, **meta), i64(rows + 1), i64(items),
                                 i64(items), i64(items), i64(split), i64(split + 1), rows, q, s, 2 * split)
        launches = G._backward_launches(
            torch.empty(q, width, dtype=dtype, **meta), inverse, torch.empty(q, s, dtype=dtype, **meta),
            torch.empty(rows, width, dtype=dtype, **meta), torch.empty(2 * split, width, **meta))
        return launches[0] if kernel == "gather_bwd_pieces" else launches[1]
    dims = RELEASED_TAIL if kernel == "tail3" else RELEASED_TAIL[1:] if kernel == "tail2_after_split" \
        else (512, 256, 19)
    if classes:
        dims = (*dims[:-1], int(classes[0]))
    prec = "tf32" if dt == "tf32" else "ieee"
    full = RELEASED_TAIL if kernel == "tail2_after_split" else dims
    cfg = T.blocks(full, dtype, prec)
    assert cfg.kernel == {"tail3": "tail3", "tail2_after_split": "split", "tail2": "tail2"}[kernel], cfg
    x = torch.empty(q, dims[0], dtype=dtype, **meta)
    ws = [torch.empty(o, i, dtype=wdtype, **meta) for i, o in zip(dims, dims[1:])]
    bs = [torch.empty(o, dtype=wdtype, **meta) for o in dims[1:]]
    return T._launch(cfg, x, ws, bs, prec, torch.empty(q, dims[-1], dtype=dtype, **meta))


def sm90_build(name: str) -> dict:
    """Compile one variant for sm_90 with triton's bundled ptxas; registers and spills from ptxas' report (a
    kernel's n_regs/n_spills are read only when it is loaded on a GPU), shared memory from the metadata."""
    import contextlib
    import io

    import triton
    from triton.backends.compiler import BaseBackend, GPUTarget
    from triton.compiler import ASTSource
    from triton.runtime.jit import native_specialize_impl

    launch = _sm90_launch(name)
    signature, constexprs, attrs = {}, dict(launch.constexprs), {}
    for i, arg_name in enumerate(launch.kernel.arg_names):
        if arg_name in launch.constexprs:
            signature[arg_name] = "constexpr"
            continue
        # the specialisation a launch gets: ints equal to 1 become constants, multiples of 16 (and aligned
        # pointers) are marked divisible by 16
        ty, spec = native_specialize_impl(BaseBackend, launch.args[i], False, True, True)
        signature[arg_name] = ty
        if ty == "constexpr":
            constexprs[arg_name] = spec
        else:
            attrs[(i,)] = BaseBackend.parse_attr(spec)
    triton.knobs.nvidia.dump_ptxas_log = True
    log = io.StringIO()
    with contextlib.redirect_stdout(log):
        compiled = triton.compile(ASTSource(launch.kernel, signature, constexprs, attrs),
                                  target=GPUTarget("cuda", 90, 32), options=dict(launch.options))
    report = log.getvalue()
    used = re.findall(r"Used (\d+) registers", report)
    if not used:
        raise RuntimeError(f"no ptxas report for {name}:\n{report}")
    spills = [int(n) for n in re.findall(r"(\d+) bytes spill (?:stores|loads)", report)]
    return dict(registers=int(used[-1]), spills=max(spills or [0]), shared=compiled.metadata.shared,
                num_warps=launch.options["num_warps"], num_stages=launch.options["num_stages"],
                blocks={k: v for k, v in launch.constexprs.items() if k.startswith(("BLOCK", "NA_", "NC_"))})


# ---- the whole head with its Triton kernels ------------------------------------------------------------------------

def head_with_kernels_error(variant: dict, size, batch: int) -> dict:
    """The fused IFA head forced onto its Triton kernels (`kernels="triton"`), in float64, against the reference
    formulation of the same head: max relative error, and which kernels ran."""
    from ifa.head import IFAHead
    from ifa.shape_spec import ShapeSpec

    shapes = {"c2": ShapeSpec(16, 4), "c3": ShapeSpec(24, 8), "c4": ShapeSpec(32, 16), "c5": ShapeSpec(40, 32)}
    torch.manual_seed(0)
    head = IFAHead(shapes, 5, channels=8, mlp=(32, 16, 16), kernels="triton", **variant).double().eval()
    for m in head.modules():  # non-trivial BatchNorm statistics, so that folding them matters
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
    g = torch.Generator().manual_seed(1)
    image = (61, 97)  # odd: non-integer scales between the levels' grids
    feats = {k: torch.randn(batch, s.channels, -(-image[0] // s.stride), -(-image[1] // s.stride), generator=g,
                            dtype=torch.float64) for k, s in shapes.items()}
    with torch.no_grad():
        head.formulation = "reference"
        ref = head(feats, size)
        head.formulation = "fused"
        fused = head(feats, size)
    return {"error": ((fused - ref).abs().max() / ref.abs().max().clamp_min(1.0)).item(),
            "kernels": head.last_kernels}


# ---- ifa.kernels itself (mutation kills, tests/ifa/kernels/test_mutation_kills.py) ---------------------------------

def available_here() -> tuple:
    import ifa.kernels

    return ifa.kernels.available()


def available_when_interpret_set_late() -> tuple:
    """TRITON_INTERPRET=1 set after triton was imported without it: refused, with the reason."""
    import triton  # noqa: F401  (imported first, compiled mode)

    import ifa.kernels

    os.environ["TRITON_INTERPRET"] = "1"
    return ifa.kernels.available()


def gather_strided_inputs_error() -> float:
    """Forward and table gradient on views that are not contiguous (a transposed table, every other index and
    weight column, a transposed gradient): the launchers pass strides or make them contiguous."""
    from ifa.kernels.gather_sum import build_inverse_index, gather_sum_backward_triton, gather_sum_triton

    table, index, weight, bias = _gather_inputs(45, 150, 23, 14, True, True, torch.float64, seed=7)
    table_t = table.t().contiguous().t()  # same values, column-major
    index_s, weight_s = index[:, ::2], weight[:, ::2]
    errors = [(gather_sum_triton(table_t, index_s, weight_s, bias, True)
               - _gather_reference(table, index_s, weight_s, bias, True)).abs().max()]
    grad = torch.randn(150, 45, generator=torch.Generator().manual_seed(4), dtype=torch.float64).t()
    leaf = table.clone().requires_grad_()
    expected = torch.autograd.grad(_gather_reference(leaf, index_s, weight_s, None, False), leaf, grad)[0]
    inverse = build_inverse_index(index_s, 23, segment=4)
    got = gather_sum_backward_triton(grad, inverse, weight_s)
    errors.append((got - expected).abs().max())
    as32 = gather_sum_backward_triton(grad, inverse, weight_s, dtype=torch.float32)
    assert as32.dtype == torch.float32
    errors.append((as32.double() - expected).abs().max() / expected.abs().max() * 1e-5)  # float32 rounding
    return max(e.item() for e in errors)


def gather_empty_shapes() -> bool:
    """No slots without bias (zeros, ReLU or not), no columns, and a backward over an empty table or no columns."""
    from ifa.kernels.gather_sum import build_inverse_index, gather_sum_backward_triton, gather_sum_triton

    table = torch.randn(5, 20, dtype=torch.float64)
    no_slots = [gather_sum_triton(table, torch.zeros(4, 0, dtype=torch.int64), None, None, relu) for relu in
                (False, True)]
    bias = torch.randn(20, dtype=torch.float64)
    no_slots_bias = gather_sum_triton(table, torch.zeros(4, 0, dtype=torch.int64), None, bias, False)
    index = torch.randint(0, 5, (6, 2))
    no_columns = gather_sum_triton(table[:, :0], index)
    grad_no_columns = gather_sum_backward_triton(torch.zeros(6, 0, dtype=torch.float64), build_inverse_index(index, 5))
    grad_no_rows = gather_sum_backward_triton(torch.randn(3, 8, dtype=torch.float64),
                                              build_inverse_index(torch.zeros(3, 0, dtype=torch.int64), 0))
    return (all(torch.equal(o, torch.zeros(4, 20, dtype=torch.float64)) for o in no_slots)
            and torch.equal(no_slots_bias, bias.expand(4, 20)) and no_columns.shape == (6, 0)
            and grad_no_columns.shape == (5, 0) and grad_no_rows.shape == (0, 8))


def tail_strided_inputs_error(dims) -> float:
    """tail_mlp on a non-contiguous x (every other row of a wider tensor, transposed) and transposed weights."""
    from ifa.kernels.tail_mlp import tail_mlp_triton

    g = torch.Generator().manual_seed(11)
    layers = [(torch.randn(o, i, generator=g, dtype=torch.float64) / i ** 0.5,
               0.5 * torch.randn(o, generator=g, dtype=torch.float64)) for i, o in zip(dims, dims[1:])]
    x = torch.randn(dims[0], 70, generator=g, dtype=torch.float64).t()
    strided = [(w.t().contiguous().t(), b) for w, b in layers]
    out = tail_mlp_triton(x, strided)
    ref = _tail_reference(x, layers)
    return ((out - ref).abs().max() / ref.abs().max()).item()


def _guarded(t: torch.Tensor, fill=float("nan")) -> torch.Tensor:
    """t as the leading rows of a larger contiguous tensor whose other rows hold `fill`: a read past t's end (a
    mask one element too wide) brings in NaN."""
    big = torch.full((t.shape[0] + 64, *t.shape[1:]), fill, dtype=t.dtype)
    big[: t.shape[0]] = t
    return big[: t.shape[0]]


def tail_guarded_error(dims) -> float:
    """tail_mlp with x, every weight and bias followed in memory by NaN: the output must hold no NaN."""
    from ifa.kernels.tail_mlp import tail_mlp_triton

    g = torch.Generator().manual_seed(13)
    layers = [(torch.randn(o, i, generator=g, dtype=torch.float64) / i ** 0.5,
               0.5 * torch.randn(o, generator=g, dtype=torch.float64)) for i, o in zip(dims, dims[1:])]
    x = torch.randn(70, dims[0], generator=g, dtype=torch.float64)
    out = tail_mlp_triton(_guarded(x), [(_guarded(w), _guarded(b)) for w, b in layers])
    ref = _tail_reference(x, layers)
    return ((out - ref).abs().max() / ref.abs().max()).item()  # NaN compares false with any bound


def gather_guarded_error() -> float:
    """Forward and table gradient with table, weight, bias, index and gradient followed in memory by NaN (the
    index by a row of NaN in the table)."""
    from ifa.kernels.gather_sum import build_inverse_index, gather_sum_backward_triton, gather_sum_triton

    table, index, weight, bias = _gather_inputs(45, 150, 23, 7, True, True, torch.float64, seed=9)
    gtable = _guarded(table)
    out = gather_sum_triton(gtable, _guarded(index, 23), _guarded(weight), _guarded(bias))  # relu off by default
    errors = [(out - _gather_reference(table, index, weight, bias, False)).abs().max()]
    grad = torch.randn(45, 150, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    leaf = table.clone().requires_grad_()
    expected = torch.autograd.grad(_gather_reference(leaf, index, weight, None, False), leaf, grad)[0]
    got = gather_sum_backward_triton(_guarded(grad), build_inverse_index(index, 23, segment=4), _guarded(weight))
    errors.append((got - expected).abs().max())
    return max(e.item() for e in errors)


def gather_autograd_defaults_error() -> float:
    """The autograd `gather_sum` given only table and index (no weight, bias, ReLU or inverse index): the plain sum,
    negative sums included, and its table gradient."""
    from ifa.kernels.gather_sum import gather_sum

    table, index, _, _ = _gather_inputs(45, 150, 23, 7, False, False, torch.float64, seed=8)
    grad = torch.randn(45, 150, generator=torch.Generator().manual_seed(6), dtype=torch.float64)
    leaf, ref_leaf = table.clone().requires_grad_(), table.clone().requires_grad_()
    out = gather_sum(leaf, index)
    ref = _gather_reference(ref_leaf, index, None, None, False)
    assert (ref < 0).sum() > 1000  # a ReLU would change them
    errors = [(out - ref).abs().max(),
              (torch.autograd.grad(out, leaf, grad)[0] - torch.autograd.grad(ref, ref_leaf, grad)[0]).abs().max()]
    return max(e.item() for e in errors)
