"""The fused formulation's per-shape plan cache, eval caches (folded weights, PE rows), kernel seam and CUDA-graph
option: no host work after the first call at a shape, no stale cache after a parameter change, same function as
the reference formulation (float64, <= 1e-12)."""
import sys
import types

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

from tests.ifa.batchnorm import randomise_batchnorm
from ifa import IFAHead, ShapeSpec
from ifa import fused_ops

SHAPES = {"c2": ShapeSpec(16, 4), "c3": ShapeSpec(24, 8), "c4": ShapeSpec(32, 16), "c5": ShapeSpec(40, 32)}
RELEASED = {"c2": ShapeSpec(256, 4), "c3": ShapeSpec(512, 8), "c4": ShapeSpec(1024, 16), "c5": ShapeSpec(2048, 32)}
# deep-stem grids of a 512x1024 image (ceil-mode max-pool): non-integer scales between levels
DEEP_STEM_512 = {"c2": (129, 257), "c3": (65, 129), "c4": (33, 65), "c5": (17, 33)}
VIEW_OPS = {"view", "t", "transpose", "permute", "expand", "slice", "select", "unsqueeze", "_unsafe_view", "alias",
            "as_strided", "squeeze", "flatten", "reshape"}


class OpLog(TorchDispatchMode):
    """Every aten op below autograd (views included), with the device types of its tensor inputs and outputs."""

    def __init__(self):
        super().__init__()
        self.ops = []

    def __torch_dispatch__(self, func, types_, args=(), kwargs=None):
        kwargs = kwargs or {}
        ins = {t.device.type for t in tree_leaves((args, kwargs)) if isinstance(t, torch.Tensor)}
        out = func(*args, **kwargs)
        outs = {t.device.type for t in tree_leaves(out) if isinstance(t, torch.Tensor)}
        self.ops.append((func.overloadpacket.__name__, ins, outs))
        return out

    def names(self):
        return [name for name, _, _ in self.ops]


def _features(n=2, image=(64, 96), shapes=SHAPES, seed=1, dtype=torch.float32, grids=None, device="cpu"):
    g = torch.Generator().manual_seed(seed)
    out = {}
    for k, s in shapes.items():
        hw = grids[k] if grids else (-(-image[0] // s.stride), -(-image[1] // s.stride))
        out[k] = torch.randn(n, s.channels, *hw, generator=g, dtype=dtype).to(device)
    return out


def _head(shapes=SHAPES, classes=5, **kw):
    torch.manual_seed(0)
    opts = dict(channels=8, mlp=(32, 16, 16)) if shapes is SHAPES else {}
    opts.update(kw)
    return randomise_batchnorm(IFAHead(shapes, classes, **opts))


def _both(head, feats, size=None):
    with torch.no_grad():
        head.formulation = "reference"
        ref = head(feats, size)
        head.formulation = "fused"
        head(feats, size)  # builds the plan and the caches
        fused = head(feats, size)  # from the caches
    return ref, fused


# -- op counts ----------------------------------------------------------------------------------------------
def _logged_second_call(head, feats, grad=False):
    with torch.set_grad_enabled(grad):
        head(feats)
        with OpLog() as log:
            head(feats)
    return log


def test_eval_second_call_has_no_host_work_on_meta():
    """Released widths at the deep-stem 512x1024 grids, on the meta device: after the first call every op runs on
    the device's tensors (0 ops on CPU tensors, so no host-built index and no host-to-device copy), and the whole
    forward is at most 30 aten ops counting views (15 that launch work: 4 x (reduction + ReLU, projection), the
    gather's offsets, gather, ReLU, 3 tail GEMMs, the NCHW copy)."""
    head = IFAHead(RELEASED, 19).to("meta").eval()
    log = _logged_second_call(head, _features(1, shapes=RELEASED, grids=DEEP_STEM_512, device="meta"))
    assert [op for op in log.ops if "cpu" in op[1] | op[2]] == []
    assert len(log.ops) <= 30, log.names()
    assert len([n for n in log.names() if n not in VIEW_OPS]) <= 16, log.names()
    assert head.last_kernels == "torch"


@pytest.mark.parametrize("ensemble,defect,sampling", [(False, False, "exact"), (True, False, "exact"),
                                                      (True, True, "release")])
def test_eval_second_call_op_count_on_cpu(ensemble, defect, sampling):
    """On CPU tensors: no host-side index work (unique, arange of indices, scalar reads, copies) besides the gather's
    offsets (an arange that a device run makes on the device), at most 30 ops with views."""
    head = _head(local_ensemble=ensemble, released_ensemble_defect=defect, sampling=sampling).eval()
    log = _logged_second_call(head, _features(1, image=(60, 100)))
    names = log.names()
    for banned in ("unique_dim", "_unique2", "unique_consecutive", "_local_scalar_dense", "nonzero", "_to_copy",
                   "copy_", "index", "index_select", "stack", "cat", "sin", "cos", "rsqrt"):
        assert banned not in names, (banned, names)
    assert names.count("arange") <= 1
    assert len(names) <= 30, names


def test_training_forward_has_no_host_work_on_meta():
    """Training keeps its semantics (BatchNorm over all queries, recomputed PE tables) but reads the cached plan:
    0 ops on CPU tensors after the first call; 159 aten ops (views included) at this configuration."""
    head = IFAHead(RELEASED, 19).to("meta").train()
    log = _logged_second_call(head, _features(1, shapes=RELEASED, grids=DEEP_STEM_512, device="meta"), grad=True)
    assert [op for op in log.ops if "cpu" in op[1] | op[2]] == []
    assert len(log.ops) <= 170, len(log.ops)


def test_bf16_autocast_casts_only_the_features():
    """Under autocast the eval path computes in the autocast dtype with weights cast once: a later call casts the
    four input maps and nothing else."""
    head = _head().eval()
    feats = _features(1)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        log = _logged_second_call(head, feats)
        out = head(feats)
    assert log.names().count("_to_copy") == len(SHAPES), log.names()
    assert out.dtype == torch.bfloat16
    with torch.no_grad():
        ref = head(feats)
    assert (out.float() - ref).abs().max() < 0.05 * ref.abs().max()


# -- correctness in float64 ---------------------------------------------------------------------------------
CASES = [
    dict(),
    dict(local_ensemble=True),
    dict(local_ensemble=True, released_ensemble_defect=True, sampling="release"),
    dict(sampling="release"),
    dict(pe="learned"),
    dict(pe="none"),
    dict(pe="learned", local_ensemble=True),
]


@pytest.mark.parametrize("opts", CASES, ids=lambda o: ",".join(f"{k}={v}" for k, v in o.items()) or "default")
@pytest.mark.parametrize("size", [None, (32, 48), (26, 40), (14, 20), (5, 7), (1, 1)])
def test_fused_equals_reference_float64(opts, size):
    """Integer scales (None: the c2 grid, (32, 48): 2x c2), non-integer ones, below the c2 grid, batch 2."""
    head = _head(**opts).double().eval()
    ref, fused = _both(head, _features(2, dtype=torch.float64), size)
    assert ref.shape == fused.shape
    assert (fused - ref).abs().max() <= 1e-12 * max(1.0, float(ref.abs().max()))


def test_deep_stem_grids_float64_and_bands():
    """Non-integer scales of the deep stem at 129x257 queries; bands forced by a small budget give the same result."""
    head = _head(local_ensemble=True).double().eval()
    feats = _features(1, dtype=torch.float64, grids={k: (h // 4, w // 4) for k, (h, w) in DEEP_STEM_512.items()})
    ref, fused = _both(head, feats)
    assert (fused - ref).abs().max() <= 1e-12 * max(1.0, float(ref.abs().max()))
    head.memory_budget_mb = 1
    rows = head.band_rows(tuple(feats["c2"].shape[-2:]), 1, 8)
    assert rows < feats["c2"].shape[-2]
    with torch.no_grad():
        banded = head(feats)
    assert len(head.plans._plans[head.plans.keys()[-1]].bands) > 1
    assert (banded - ref).abs().max() <= 1e-12 * max(1.0, float(ref.abs().max()))


def test_whole_map_by_default_at_1024x2048():
    """The released head at its 257x513 grid runs in one band under the default 1 GiB budget (fp32, batch 1)."""
    head = IFAHead(RELEASED, 19)
    assert head.band_rows((257, 513), 1) == 257
    assert head.band_rows((257, 513), 4) < 257  # the budget still bounds larger batches


# -- cache invalidation and bounds ---------------------------------------------------------------------------
def test_parameter_updates_reach_the_cached_eval_path():
    """Folded weights and PE rows are recomputed after an in-place update (optimizer-like), a load_state_dict, a
    training step (BatchNorm statistics) and a dtype change: never a stale result."""
    head = _head(local_ensemble=True).double().eval()
    feats = _features(2, dtype=torch.float64)

    def check():
        ref, fused = _both(head, feats, (26, 40))
        assert (fused - ref).abs().max() <= 1e-12 * max(1.0, float(ref.abs().max()))
        return fused

    first = check()
    with torch.no_grad():
        head.pe[1].freq.mul_(1.5)  # PE rows
        head.mlp.linears[0].weight.add_(0.01)  # first layer: projections and PE rows
        head.reduce[2][1].running_var.mul_(2.0)  # a folded BatchNorm
        head.mlp.linears[-1].bias.add_(0.1)  # the tail
    second = check()
    assert (second - first).abs().max() > 1e-3
    other = _head(local_ensemble=True).double()
    other.pe[2].freq.data.mul_(0.5)
    head.load_state_dict(other.state_dict())
    third = check()
    assert (third - second).abs().max() > 1e-3
    head.train()
    head(feats, (26, 40)).sum().backward()  # updates BatchNorm running statistics
    head.eval()
    fourth = check()
    assert (fourth - third).abs().max() > 1e-6
    head.float()
    with torch.no_grad():
        out32 = head({k: v.float() for k, v in feats.items()}, (26, 40))
    assert (out32.double() - fourth).abs().max() < 1e-4


def test_data_writes_need_clear_caches():
    """Writes through `.data` keep the version counter (a torch rule): `clear_caches()` is the documented remedy."""
    head = _head().double().eval()
    feats = _features(1, dtype=torch.float64)
    _both(head, feats)
    head.pe[0].freq.data.mul_(3.0)
    head.mlp.linears[1].weight.data.mul_(2.0)
    head.clear_caches()
    ref, fused = _both(head, feats)
    assert (fused - ref).abs().max() <= 1e-12 * max(1.0, float(ref.abs().max()))


def test_plan_cache_is_bounded_and_reused():
    head = _head().eval()
    head.plans.maxsize = 2
    feats = _features(1)
    with torch.no_grad():
        for size in [(10, 10), (11, 11), (10, 10), (12, 12), (13, 13)]:
            head(feats, size)
    assert len(head.plans) == 2
    assert head.plans.builds == 4  # (10, 10) was reused once, then evicted by (12, 12) and (13, 13)
    with torch.no_grad():
        head(feats, (13, 13))
    assert head.plans.builds == 4
    assert head._weights.folds == 1  # weights folded once for all shapes


def test_eval_with_gradients_is_differentiable_and_uncached():
    head = _head().eval()
    feats = _features(1)
    out = head(feats, (14, 20))
    out.square().sum().backward()
    assert head.mlp.linears[0].weight.grad is not None and head.pe[1].freq.grad is not None
    with torch.no_grad():
        assert torch.allclose(head(feats, (14, 20)), out.detach(), atol=1e-5)


# -- kernels seam and CUDA graphs ----------------------------------------------------------------------------
@pytest.fixture
def fake_kernels(monkeypatch):
    """An `ifa.kernels` stand-in whose functions wrap the torch ones and record their calls."""
    calls = []
    module = types.ModuleType("ifa.kernels")

    def gather_sum_triton(table, index, weight, bias, relu):
        calls.append("gather_sum")
        return fused_ops.gather_sum(table, index, weight, bias, relu)

    def tail_mlp_triton(x, layers):
        calls.append("tail_mlp")
        return fused_ops.tail_mlp(x, layers)

    module.gather_sum_triton, module.tail_mlp_triton = gather_sum_triton, tail_mlp_triton
    monkeypatch.setitem(sys.modules, "ifa.kernels", module)
    monkeypatch.setattr(fused_ops, "_triton_cache", {})
    yield calls
    fused_ops._triton_cache.clear()


def test_kernels_option_dispatch(fake_kernels):
    head = _head(local_ensemble=True).eval()
    feats = _features(2)
    with torch.no_grad():
        head.kernels = "torch"
        expected = head(feats, (26, 40))
        assert head.last_kernels == "torch" and fake_kernels == []
        head.kernels = "auto"  # CPU tensors: auto keeps torch
        head(feats, (26, 40))
        assert head.last_kernels == "torch" and fake_kernels == []
        head.kernels = "triton"  # forced, whatever the device (TRITON_INTERPRET=1 runs it on CPU tensors)
        out = head(feats, (26, 40))
    assert head.last_kernels == "triton" and fake_kernels == ["gather_sum", "tail_mlp"]
    assert torch.equal(out, expected)
    with pytest.raises(ValueError, match="kernels"):
        IFAHead(SHAPES, 5, kernels="cuda")


def test_kernels_fall_back_to_torch_when_absent(monkeypatch):
    monkeypatch.setitem(sys.modules, "ifa.kernels", None)  # import raises ImportError
    monkeypatch.setattr(fused_ops, "_triton_cache", {})
    head = _head(kernels="triton").eval()
    with torch.no_grad():
        head(_features(1))
    assert head.last_kernels == "torch"


def test_cuda_graph_option_falls_back_off_cuda():
    head = _head(cuda_graph=True).eval()
    feats = _features(1)
    with torch.no_grad():
        out = head(feats)
        assert head.cuda_graph_status.startswith("off:") and "cuda" in head.cuda_graph_status.lower()
        head.cuda_graph = False
        assert torch.equal(head(feats), out)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_graph_replays_and_follows_parameter_updates():
    head = _head(cuda_graph=True).cuda().eval()
    feats = _features(2, device="cuda")
    with torch.no_grad():
        first = head(feats, (26, 40))
        assert head.cuda_graph_status == "captured"
        again = head(feats, (26, 40))
        assert head.cuda_graph_status == "replayed" and torch.equal(first, again)
        head.mlp.linears[0].weight.add_(0.01)
        updated = head(feats, (26, 40))
        head.cuda_graph = False
        plain = head(feats, (26, 40))
    torch.testing.assert_close(updated, plain)
    assert (updated - first).abs().max() > 1e-4
